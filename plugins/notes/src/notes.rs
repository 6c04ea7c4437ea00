//! The file logic of `notes`, free of any WebAssembly bindings: every note
//! is one file in a directory (`/data` in the sandbox, a temporary directory
//! in the native tests). Depends on `std` only.

use std::io::Write;
use std::path::Path;

/// What a call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Replace note `name` with the input.
    Write { name: String },
    /// Add the input to the end of note `name`.
    Append { name: String },
    /// The text of note `name`.
    Read { name: String },
    /// The names of all notes, one per line.
    List,
    /// Remove note `name`.
    Delete { name: String },
}

/// Reads the `op` and `name` options.
pub fn parse(option: impl Fn(&str) -> Option<String>) -> Result<Op, String> {
    let name = || -> Result<String, String> {
        let name = option("name").ok_or("option `name` is required")?;
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        match ok {
            true => Ok(name),
            false => Err(format!(
                "`{name}` is not a note name: 1 to 64 letters, digits, `-` or `_`"
            )),
        }
    };
    match option("op").as_deref() {
        Some("write") => Ok(Op::Write { name: name()? }),
        Some("append") => Ok(Op::Append { name: name()? }),
        Some("read") | None => Ok(Op::Read { name: name()? }),
        Some("list") => Ok(Op::List),
        Some("delete") => Ok(Op::Delete { name: name()? }),
        Some(other) => Err(format!(
            "unknown op `{other}`; use write, append, read, list or delete"
        )),
    }
}

/// Runs `op` on the notes in `dir`; returns the call's output.
pub fn run(dir: &Path, op: &Op, input: &[u8]) -> std::io::Result<Vec<u8>> {
    let file = |name: &str| dir.join(format!("{name}.txt"));
    match op {
        Op::Write { name } => {
            std::fs::write(file(name), input)?;
            Ok(format!("{} bytes", input.len()).into_bytes())
        }
        Op::Append { name } => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file(name))?;
            f.write_all(input)?;
            let len = f.metadata()?.len();
            Ok(format!("{len} bytes").into_bytes())
        }
        Op::Read { name } => std::fs::read(file(name)),
        Op::List => {
            let mut names: Vec<String> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".txt"))
                        .map(str::to_string)
                })
                .collect();
            names.sort();
            Ok(names.join("\n").into_bytes())
        }
        Op::Delete { name } => {
            std::fs::remove_file(file(name))?;
            Ok(b"deleted".to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_append_read_list_delete() {
        let dir = std::env::temp_dir().join(format!("notes-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let op = |o: &str, n: &str| {
            parse(|k| match k {
                "op" => Some(o.to_string()),
                "name" => Some(n.to_string()),
                _ => None,
            })
            .expect("op")
        };
        run(&dir, &op("write", "a"), b"hello").expect("write");
        assert_eq!(
            run(&dir, &op("append", "a"), b" world").expect("append"),
            b"11 bytes"
        );
        assert_eq!(
            run(&dir, &op("read", "a"), b"").expect("read"),
            b"hello world"
        );
        run(&dir, &op("write", "b"), b"").expect("write b");
        assert_eq!(run(&dir, &Op::List, b"").expect("list"), b"a\nb");
        run(&dir, &op("delete", "a"), b"").expect("delete");
        assert!(run(&dir, &op("read", "a"), b"").is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", "../x", "a/b", "x.txt", &"n".repeat(65)] {
            let r = parse(|k| match k {
                "op" => Some("write".into()),
                "name" => Some(bad.to_string()),
                _ => None,
            });
            assert!(r.is_err(), "{bad}");
        }
        assert!(parse(|k| (k == "op").then(|| "nope".into())).is_err());
    }
}
