//! The text operations of `text-transform`, free of any WebAssembly bindings.
//!
//! Kept apart from `lib.rs` so the host's benchmarks can compile this file
//! natively (`#[path = ".../transform.rs"] mod transform;`) and compare it
//! with the same code running inside the sandbox. Depends on `std` only.

use std::fmt;

/// One of the operations selected with the `op` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Upper,
    Lower,
    Title,
    Reverse,
    Slugify,
    WordCount,
}

/// The accepted `op` values, in the order error messages list them.
pub const OP_NAMES: &str = "upper, lower, title, reverse, slugify, word-count";

impl Op {
    /// Parses an `op` option value.
    pub fn parse(name: &str) -> Result<Op, TransformError> {
        match name {
            "upper" => Ok(Op::Upper),
            "lower" => Ok(Op::Lower),
            "title" => Ok(Op::Title),
            "reverse" => Ok(Op::Reverse),
            "slugify" => Ok(Op::Slugify),
            "word-count" => Ok(Op::WordCount),
            other => Err(TransformError::Unsupported(format!(
                "unknown op `{other}`: expected one of {OP_NAMES}"
            ))),
        }
    }

    /// The option value that selects this operation.
    pub fn name(self) -> &'static str {
        match self {
            Op::Upper => "upper",
            Op::Lower => "lower",
            Op::Title => "title",
            Op::Reverse => "reverse",
            Op::Slugify => "slugify",
            Op::WordCount => "word-count",
        }
    }
}

/// Why a request could not be served; `lib.rs` maps the variants one to one
/// onto the contract's `plugin-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformError {
    InvalidInput(String),
    Unsupported(String),
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransformError::InvalidInput(m) | TransformError::Unsupported(m) => f.write_str(m),
        }
    }
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub text: String,
    /// Words for `word-count`, characters of the input otherwise.
    pub items: u64,
}

/// Does everything `process` does: option check, UTF-8 check, operation.
/// Takes the input by value, as a call hands it over, so upper and lower
/// work in place.
pub fn run(op: Option<&str>, input: Vec<u8>) -> Result<Output, TransformError> {
    let op = op.ok_or_else(|| {
        TransformError::InvalidInput(format!("missing option `op`: one of {OP_NAMES}"))
    })?;
    let op = Op::parse(op)?;
    // ASCII input (the common case) is valid UTF-8 with one character per
    // byte and ASCII case rules, so upper and lower need neither the UTF-8
    // check nor character decoding: one pass over the bytes does it.
    let input = match ascii_case(op, input) {
        Ok(text) => return Ok(ascii(text)),
        Err(input) => input,
    };
    let text = String::from_utf8(input).map_err(|e| {
        TransformError::InvalidInput(format!("input is not valid UTF-8: {}", e.utf8_error()))
    })?;
    Ok(by_chars(op, &text))
}

/// Runs `op` character by character.
fn by_chars(op: Op, text: &str) -> Output {
    let chars = text.chars().count() as u64;
    match op {
        Op::Upper => Output {
            text: text.to_uppercase(),
            items: chars,
        },
        Op::Lower => Output {
            text: text.to_lowercase(),
            items: chars,
        },
        Op::Title => Output {
            text: title_case(text),
            items: chars,
        },
        Op::Reverse => Output {
            text: text.chars().rev().collect(),
            items: chars,
        },
        Op::Slugify => Output {
            text: slugify(text),
            items: chars,
        },
        Op::WordCount => {
            let words = word_count(text);
            Output {
                text: words.to_string(),
                items: words,
            }
        }
    }
}

/// `bytes` upper- or lower-cased in place, for those two ops and all-ASCII
/// input. Otherwise the bytes come back with only their ASCII letters
/// cased (for the other ops, untouched), which upper and lower of the
/// whole text would do anyway: non-ASCII bytes are left alone, and ASCII
/// letters stay ASCII letters.
///
/// Written as one branch-free loop over the bytes, which the compiler
/// vectorises (WebAssembly SIMD in the plugin): the standard library's
/// `from_utf8`, `is_ascii` and `to_ascii_uppercase` are three passes and
/// a copy, and on WebAssembly they run precompiled without SIMD.
fn ascii_case(op: Op, mut bytes: Vec<u8>) -> Result<String, Vec<u8>> {
    let first = match op {
        Op::Upper => b'a',
        Op::Lower => b'A',
        _ => return Err(bytes),
    };
    let mut seen = 0u8;
    for b in &mut bytes {
        seen |= *b;
        // ASCII letters of one case differ from the other case in bit 5.
        *b ^= u8::from(b.wrapping_sub(first) < 26) << 5;
    }
    if !seen.is_ascii() {
        return Err(bytes);
    }
    // SAFETY: no byte has its top bit set (`seen` is their OR before the
    // loop flipped bit 5 of some), so the bytes are ASCII: valid UTF-8.
    Ok(unsafe { String::from_utf8_unchecked(bytes) })
}

/// The output for ASCII `text`: one item per byte.
fn ascii(text: String) -> Output {
    let items = text.len() as u64;
    Output { text, items }
}

/// Whether `run` would accept `input` (given a valid `op`).
pub fn validate(input: &[u8]) -> bool {
    std::str::from_utf8(input).is_ok()
}

/// Uppercases the first character of every whitespace-separated word and
/// lowercases the rest, leaving the whitespace itself untouched.
pub fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_word_start = true;
    for c in text.chars() {
        if c.is_whitespace() {
            out.push(c);
            at_word_start = true;
        } else if at_word_start {
            out.extend(c.to_uppercase());
            at_word_start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Lowercase ASCII letters and digits, with each run of anything else
/// collapsed to one `-` and none at either end.
pub fn slugify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Deferring the dash until the next kept character is what keeps
    // trailing separators from producing a trailing `-`.
    let mut pending_dash = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    out
}

/// Number of whitespace-separated words.
pub fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(op: &str, input: &str) -> Output {
        match run(Some(op), input.as_bytes().to_vec()) {
            Ok(out) => out,
            Err(e) => panic!("op {op} failed on {input:?}: {e}"),
        }
    }

    #[test]
    fn ascii_text_takes_the_byte_path_with_the_same_result() {
        let text = "Hello, World 42!";
        assert_eq!(ok("upper", text).text, "HELLO, WORLD 42!");
        assert_eq!(ok("lower", text).text, "hello, world 42!");
        assert_eq!(ok("upper", text).items, 16);
        assert_eq!(ok("upper", text).text, text.to_uppercase());
    }

    #[test]
    fn every_ascii_byte_is_cased_as_the_standard_library_does() {
        let all: String = (0u8..128).map(char::from).collect();
        assert_eq!(ok("upper", &all).text, all.to_ascii_uppercase());
        assert_eq!(ok("lower", &all).text, all.to_ascii_lowercase());
    }

    #[test]
    fn upper_and_lower() {
        assert_eq!(ok("upper", "Hello, wörld").text, "HELLO, WÖRLD");
        assert_eq!(ok("lower", "Hello, WÖRLD").text, "hello, wörld");
        assert_eq!(ok("upper", "Hello, wörld").items, 12);
    }

    #[test]
    fn title_keeps_whitespace() {
        assert_eq!(ok("title", "hELLO   wORLD\tfoo").text, "Hello   World\tFoo");
        assert_eq!(ok("title", "  émile zola ").text, "  Émile Zola ");
        assert_eq!(ok("title", "").text, "");
    }

    #[test]
    fn reverse_by_chars() {
        assert_eq!(ok("reverse", "abc").text, "cba");
        assert_eq!(ok("reverse", "añb").text, "bña");
        assert_eq!(ok("reverse", "añb").items, 3);
    }

    #[test]
    fn slugify_collapses_runs() {
        assert_eq!(ok("slugify", "Hello, World!  Foo").text, "hello-world-foo");
        assert_eq!(
            ok("slugify", "--Rust 2024 edition--").text,
            "rust-2024-edition"
        );
        assert_eq!(ok("slugify", "Crème brûlée").text, "cr-me-br-l-e");
        assert_eq!(ok("slugify", "!!!").text, "");
        assert_eq!(ok("slugify", "Hello, World!  Foo").items, 18);
    }

    #[test]
    fn word_count_counts_words() {
        let out = ok("word-count", "  the quick\nbrown\tfox  ");
        assert_eq!(out.text, "4");
        assert_eq!(out.items, 4);
        assert_eq!(ok("word-count", "").text, "0");
    }

    #[test]
    fn missing_op_is_invalid_input() {
        assert_eq!(
            run(None, b"x".to_vec()),
            Err(TransformError::InvalidInput(
                "missing option `op`: one of upper, lower, title, reverse, slugify, word-count"
                    .into()
            ))
        );
    }

    #[test]
    fn unknown_op_is_unsupported_and_named() {
        match run(Some("shout"), b"x".to_vec()) {
            Err(TransformError::Unsupported(m)) => {
                assert!(m.contains("shout"), "{m}");
                assert!(m.contains("word-count"), "{m}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Input that is not all ASCII comes back from the byte loop with its
    /// ASCII letters cased; the character path must give what it gives on
    /// the untouched text.
    #[test]
    fn mixed_input_is_cased_as_by_characters() {
        for text in ["AΣ Σ", "ÀB σΣ x", "straße STRASSE"] {
            assert_eq!(ok("upper", text).text, text.to_uppercase(), "{text}");
            assert_eq!(ok("lower", text).text, text.to_lowercase(), "{text}");
        }
        match run(Some("lower"), b"AB\xff".to_vec()) {
            Err(TransformError::InvalidInput(m)) => assert_eq!(
                m,
                "input is not valid UTF-8: invalid utf-8 sequence of 1 bytes from index 2"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_utf8_is_invalid_input() {
        assert!(matches!(
            run(Some("upper"), vec![0xff, 0xfe]),
            Err(TransformError::InvalidInput(_))
        ));
        assert!(!validate(&[0xff, 0xfe]));
        assert!(validate("héllo".as_bytes()));
    }

    #[test]
    fn op_names_round_trip() {
        for name in OP_NAMES.split(", ") {
            assert_eq!(Op::parse(name).map(Op::name), Ok(name));
        }
    }
}
