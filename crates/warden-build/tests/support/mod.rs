//! What the wasm-opt tests share: text-transform's source, stand-in
//! wasm-opt programs, a build that records its progress lines, and what a
//! built plugin answers.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use warden::{ProcessRequest, Warden};
use warden_build::{Builder, BuiltPlugin, WasmOpt};

/// The plugin the tests build.
pub fn text_transform() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/text-transform")
}

/// What a stand-in wasm-opt does with its input.
#[derive(Clone, Copy)]
pub enum Fake {
    /// Copies it to its output.
    Copy,
    /// Fails, as an old Binaryen does on a module it cannot read.
    Fail,
    /// Writes something that is not WebAssembly to its output.
    Garbage,
}

/// A stand-in wasm-opt: says `version`, records its arguments beside
/// itself, and does `what`.
pub fn fake_wasm_opt(dir: &Path, version: &str, what: Fake) -> PathBuf {
    let script = dir.join("wasm-opt");
    let output = r#"prev=""; for a; do
  if [ "$prev" = "-o" ]; then out="$a"; elif [ "${a%.wasm}" != "$a" ]; then in="$a"; fi
  prev="$a"
done"#;
    let work = match what {
        Fake::Copy => format!("{output}\ncp \"$in\" \"$out\""),
        Fake::Fail => "echo '[parse exception: surprising value (at 0:8)]' >&2; exit 1".into(),
        Fake::Garbage => format!("{output}\necho 'not wasm' > \"$out\""),
    };
    let text = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{version}'; exit 0; fi\n\
         echo \"$@\" > \"$(dirname \"$0\")/args\"\n{work}\n"
    );
    executable(&script, &text);
    script
}

/// Writes `text` to `path`, executable. A child process writes it: a
/// process another test thread forks while this one holds the file open
/// for writing would keep it open, and running the script would then fail
/// with "Text file busy".
pub fn executable(path: &Path, text: &str) {
    use std::io::Write;
    let mut writer = std::process::Command::new("sh")
        .args(["-c", "cat > \"$0\" && chmod 755 \"$0\""])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    let mut stdin = writer.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).expect("script");
    drop(stdin);
    assert!(
        writer.wait().expect("sh").success(),
        "writing {}",
        path.display()
    );
}

/// Builds text-transform with `wasm_opt` into `out`; the progress lines.
pub fn build(wasm_opt: Option<WasmOpt>, out: &Path) -> (BuiltPlugin, Vec<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    let built = Builder::new()
        .wasm_opt(wasm_opt)
        .on_progress(move |line| seen.lock().expect("lines").push(line.to_string()))
        .build(&text_transform(), None, out)
        .expect("build text-transform");
    let lines = lines.lock().expect("lines").clone();
    (built, lines)
}

/// What the built plugin answers to a few requests.
pub fn answers(built: &BuiltPlugin) -> Vec<String> {
    let host = Warden::new().expect("host");
    let plugin = host.load_blocking(&built.dir).expect("load");
    [
        "upper",
        "lower",
        "title",
        "reverse",
        "slugify",
        "word-count",
    ]
    .iter()
    .map(|op| {
        let request = ProcessRequest::new("Hello, wörld of Warden 42").option("op", *op);
        let response = plugin.process_blocking(request).expect("call");
        String::from_utf8(response.output).expect("UTF-8")
    })
    .collect()
}
