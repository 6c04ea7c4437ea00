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
pub fn run(op: Option<&str>, input: &[u8]) -> Result<Output, TransformError> {
    let op = op.ok_or_else(|| {
        TransformError::InvalidInput(format!("missing option `op`: one of {OP_NAMES}"))
    })?;
    let op = Op::parse(op)?;
    let text = std::str::from_utf8(input)
        .map_err(|e| TransformError::InvalidInput(format!("input is not valid UTF-8: {e}")))?;
    Ok(apply(op, text))
}

/// Runs `op` on text already known to be valid.
pub fn apply(op: Op, text: &str) -> Output {
    // ASCII text (the common case) has one character per byte and ASCII
    // case rules: a loop over bytes, which the compiler vectorises, instead
    // of decoding every character.
    if text.is_ascii() {
        match op {
            Op::Upper => return ascii(text.to_ascii_uppercase()),
            Op::Lower => return ascii(text.to_ascii_lowercase()),
            _ => {}
        }
    }
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
        match run(Some(op), input.as_bytes()) {
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
            run(None, b"x"),
            Err(TransformError::InvalidInput(
                "missing option `op`: one of upper, lower, title, reverse, slugify, word-count"
                    .into()
            ))
        );
    }

    #[test]
    fn unknown_op_is_unsupported_and_named() {
        match run(Some("shout"), b"x") {
            Err(TransformError::Unsupported(m)) => {
                assert!(m.contains("shout"), "{m}");
                assert!(m.contains("word-count"), "{m}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_utf8_is_invalid_input() {
        assert!(matches!(
            run(Some("upper"), &[0xff, 0xfe]),
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
