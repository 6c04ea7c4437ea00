//! Which language a plugin source is written in, told from the files in its
//! directory.

use std::path::Path;

use crate::error::{Error, Result};

/// A language `warden build` can build plugins in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// A cdylib crate (`Cargo.toml`), built with cargo for wasm32-wasip2.
    Rust,
    /// `app.py` (or a `pyproject.toml`), built with componentize-py.
    Python,
    /// `package.json` or `app.js`, built with componentize-js.
    #[serde(rename = "js")]
    JavaScript,
    /// `go.mod`, built with Go for wasip1 and made a component with the
    /// preview1 adapter.
    Go,
    /// `.c` files, compiled with zig cc for wasm32-wasi and made a component
    /// with the preview1 adapter.
    C,
}

impl Language {
    /// Every language, in the order detection tries them.
    pub const ALL: [Language; 5] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::Go,
        Language::C,
    ];

    /// The short name used on the command line (`rust`, `python`, `js`,
    /// `go`, `c`).
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "js",
            Language::Go => "go",
            Language::C => "c",
        }
    }

    /// The language named `name` (`javascript` is accepted for `js`).
    pub fn from_name(name: &str) -> Option<Language> {
        match name {
            "javascript" => Some(Language::JavaScript),
            _ => Language::ALL.into_iter().find(|l| l.name() == name),
        }
    }

    /// Whether `dir` holds a source of this language.
    pub(crate) fn is_in(self, dir: &Path) -> bool {
        let has = |file: &str| dir.join(file).is_file();
        match self {
            Language::Rust => has("Cargo.toml"),
            Language::Python => has("app.py") || has("pyproject.toml"),
            Language::JavaScript => has("package.json") || has("app.js"),
            Language::Go => has("go.mod"),
            Language::C => !c_sources(dir).is_empty(),
        }
    }

    /// The language of the plugin source in `dir`.
    pub fn detect(dir: &Path) -> Result<Language> {
        Language::ALL
            .into_iter()
            .find(|language| language.is_in(dir))
            .ok_or_else(|| Error::Build {
                dir: dir.to_path_buf(),
                message:
                    "cannot tell the plugin's language: expected Cargo.toml (Rust), app.py or \
                          pyproject.toml (Python), package.json or app.js (JavaScript), go.mod \
                          (Go) or .c files (C); or give the source a build command"
                        .into(),
            })
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `.c` files of a C plugin: in its directory and in `src/`, sorted.
pub(crate) fn c_sources(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = [dir.to_path_buf(), dir.join("src")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "c") && path.is_file())
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        dir
    }

    #[test]
    fn each_language_is_told_by_its_files() {
        let cases: [(&[&str], Language); 7] = [
            (&["Cargo.toml", "src/lib.rs"], Language::Rust),
            (&["app.py"], Language::Python),
            (&["pyproject.toml", "app.py"], Language::Python),
            (&["package.json", "app.js"], Language::JavaScript),
            (&["go.mod", "main.go"], Language::Go),
            (&["checksum.c"], Language::C),
            (&["src/checksum.c", "Makefile"], Language::C),
        ];
        for (files, expected) in cases {
            let dir = dir_with(files);
            assert_eq!(Language::detect(dir.path()).unwrap(), expected, "{files:?}");
        }
    }

    #[test]
    fn an_unknown_source_names_what_is_expected() {
        let dir = dir_with(&["plugin.toml", "main.zig"]);
        let message = Language::detect(dir.path()).unwrap_err().to_string();
        assert!(message.contains("go.mod (Go)"), "{message}");
    }

    #[test]
    fn names_round_trip() {
        for language in Language::ALL {
            assert_eq!(Language::from_name(language.name()), Some(language));
        }
        assert_eq!(
            Language::from_name("javascript"),
            Some(Language::JavaScript)
        );
        assert_eq!(Language::from_name("cobol"), None);
    }
}
