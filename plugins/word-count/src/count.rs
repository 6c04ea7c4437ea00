//! The counting of `word-count`, free of any WebAssembly bindings, so it is
//! unit-tested natively. Every word-count plugin (Python, JavaScript, Go, C,
//! Rust) must give byte-identical output.

/// Bytes, lines and words of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// The input's length in bytes.
    pub bytes: usize,
    /// The number of `\n` (0x0A) bytes.
    pub lines: usize,
    /// Maximal runs of bytes that are not word separators.
    pub words: usize,
}

/// Whether `b` separates words: space, `\t`, `\n`, `\v`, `\f`, `\r`.
/// Only these ASCII bytes; no Unicode white space.
pub fn is_space(b: u8) -> bool {
    b == b' ' || (0x09..=0x0d).contains(&b)
}

/// Counts `data` as raw bytes (it need not be UTF-8).
pub fn count(data: &[u8]) -> Counts {
    let mut lines = 0;
    let mut words = 0;
    let mut in_word = false;
    for &b in data {
        if b == b'\n' {
            lines += 1;
        }
        if is_space(b) {
            in_word = false;
        } else if !in_word {
            in_word = true;
            words += 1;
        }
    }
    Counts {
        bytes: data.len(),
        lines,
        words,
    }
}

impl Counts {
    /// `{"bytes":B,"lines":L,"words":W}`, no spaces.
    pub fn to_json(self) -> String {
        format!(
            r#"{{"bytes":{},"lines":{},"words":{}}}"#,
            self.bytes, self.lines, self.words
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(data: &[u8]) -> String {
        count(data).to_json()
    }

    #[test]
    fn counts_words_and_lines() {
        assert_eq!(
            json(b"hello  world\nfoo\tbar \n"),
            r#"{"bytes":22,"lines":2,"words":4}"#
        );
        assert_eq!(json(b"one"), r#"{"bytes":3,"lines":0,"words":1}"#);
        assert_eq!(json(b"a\nb"), r#"{"bytes":3,"lines":1,"words":2}"#);
    }

    #[test]
    fn empty_and_all_space() {
        assert_eq!(json(b""), r#"{"bytes":0,"lines":0,"words":0}"#);
        assert_eq!(
            json(b"  \t\n\r\x0b\x0c \n"),
            r#"{"bytes":9,"lines":2,"words":0}"#
        );
    }

    #[test]
    fn non_ascii_bytes_are_word_bytes() {
        // U+00E9, U+4E16 U+754C: multi-byte UTF-8 counts as one word each run.
        assert_eq!(
            json("caf\u{e9} \u{4e16}\u{754c}\n".as_bytes()),
            r#"{"bytes":13,"lines":1,"words":2}"#
        );
        // NEL (0x85), NBSP (0xA0), NUL and 0xFF are not separators; \v and \f are.
        assert_eq!(
            json(b"\x0b\x0c\x85\xa0\x00\xff"),
            r#"{"bytes":6,"lines":0,"words":1}"#
        );
        assert_eq!(json(b"a\x85b\xa0c"), r#"{"bytes":5,"lines":0,"words":1}"#);
    }

    #[test]
    fn separators() {
        for b in 0..=255u8 {
            assert_eq!(
                is_space(b),
                matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
                "{b:#04x}"
            );
        }
    }
}
