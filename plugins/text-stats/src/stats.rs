//! The statistics themselves: plain Rust, tested natively.

use std::collections::HashMap;

/// What `text-stats` reports about a text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Characters (Unicode scalar values).
    pub chars: usize,
    /// Words: runs of letters, digits and apostrophes.
    pub words: usize,
    /// Lines; a final line without a newline counts.
    pub lines: usize,
    /// Sentences: runs of text ended by `.`, `!` or `?` (or by the end).
    pub sentences: usize,
    /// The most frequent words, lowercased, most frequent first (ties in
    /// alphabetical order), with their counts.
    pub top: Vec<(String, usize)>,
}

/// Why a request cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsError {
    /// The input is not UTF-8 text, or an option value is malformed.
    InvalidInput(String),
    /// An option value is well-formed but not one this plugin serves.
    Unsupported(String),
}

/// The most words `top` may ask for.
pub const MAX_TOP: usize = 100;

/// Parses the `top` option (default 5).
pub fn parse_top(value: Option<&str>) -> Result<usize, StatsError> {
    let Some(value) = value else { return Ok(5) };
    let n: usize = value.parse().map_err(|_| {
        StatsError::InvalidInput(format!("option `top` must be a whole number, not `{value}`"))
    })?;
    if n > MAX_TOP {
        return Err(StatsError::Unsupported(format!(
            "option `top` is at most {MAX_TOP}, not {n}"
        )));
    }
    Ok(n)
}

/// The statistics of `input`, with the `top` most frequent words.
pub fn compute(input: &[u8], top: usize) -> Result<Stats, StatsError> {
    let text = std::str::from_utf8(input)
        .map_err(|e| StatsError::InvalidInput(format!("the input is not UTF-8 text: {e}")))?;
    let words: Vec<String> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for w in &words {
        *counts.entry(w.as_str()).or_default() += 1;
    }
    let mut ranked: Vec<(String, usize)> =
        counts.into_iter().map(|(w, n)| (w.to_string(), n)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(top);
    let sentences = text
        .split(['.', '!', '?'])
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .count();
    Ok(Stats {
        chars: text.chars().count(),
        words: words.len(),
        lines: text.lines().count(),
        sentences,
        top: ranked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_lines_and_sentences() {
        let s = compute(b"The cat sat. The cat ran!\nA dog? the end", 2).unwrap();
        assert_eq!(s.words, 10);
        assert_eq!(s.lines, 2);
        assert_eq!(s.sentences, 4);
        assert_eq!(s.top, vec![("the".into(), 3), ("cat".into(), 2)]);
    }

    #[test]
    fn bad_input_and_options_are_refused() {
        assert!(matches!(compute(&[0xff, 0xfe], 5), Err(StatsError::InvalidInput(_))));
        assert_eq!(parse_top(None), Ok(5));
        assert!(matches!(parse_top(Some("x")), Err(StatsError::InvalidInput(_))));
        assert!(matches!(parse_top(Some("1000")), Err(StatsError::Unsupported(_))));
    }
}
