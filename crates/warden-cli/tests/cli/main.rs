//! The `warden` binary end to end: build the example plugins, call each one,
//! list, inspect, send an event, and check exit codes and error lines.

#[path = "../common/mod.rs"]
mod common;

mod calls;
mod cluster;
mod crash;
mod dashboard;
mod grants;
mod oci;
mod serving;
mod tools;
mod tracing;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{Serving, repo};

/// The example plugins, built once by `warden build` itself.
fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-dist");
        let result = warden(
            &[
                "build",
                "plugins",
                "--out",
                out.to_str().expect("utf-8 path"),
            ],
            None,
        );
        assert!(
            result.status.success(),
            "warden build failed: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        out
    })
}

/// The `warden` binary with `args`, run in the repository with the tests'
/// caches, toolchains and data directory.
fn warden_command(args: &[&str]) -> Command {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.args(args)
        .current_dir(repo())
        .env("WARDEN_CACHE_DIR", cache)
        // Guest toolchains for the Python, JavaScript, Go and C examples,
        // shared with the other test binaries.
        .env(
            "WARDEN_TOOLCHAINS",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-toolchains"),
        )
        .env(
            "WARDEN_DATA_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-data"),
        )
        .env_remove("WARDEN_PLUGIN_DIR");
    cmd
}

fn warden(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = warden_command(args);
    match stdin {
        Some(bytes) => {
            use std::io::Write;
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("spawn warden");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(bytes)
                .expect("write stdin");
            child.wait_with_output().expect("wait")
        }
        None => cmd.output().expect("run warden"),
    }
}

fn call(args: &[&str]) -> Output {
    let dir = dist().to_str().expect("utf-8").to_string();
    let mut full = vec!["call"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--dir", &dir]);
    warden(&full, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An HTTP client that returns every status as a response.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into()
}

/// A `warden serve` of the example plugins `examples` with its data in
/// `tmp/data`.
fn serve_examples(tmp: &Path, examples: &[&str]) -> Serving {
    serve_examples_with(tmp, examples, "")
}

/// [`serve_examples`] with `more` appended to its `warden.toml`.
fn serve_examples_with(tmp: &Path, examples: &[&str], more: &str) -> Serving {
    for example in examples {
        let plugins = tmp.join("plugins").join(example);
        if plugins.exists() {
            continue;
        }
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        for entry in std::fs::read_dir(dist().join(example)).expect("built example") {
            let from = entry.expect("entry").path();
            let to = plugins.join(from.file_name().expect("file name"));
            std::fs::copy(&from, to).expect("copy");
        }
    }
    let file = tmp.join("warden.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata-dir = \"data\"\n\
             admin-token-file = \"data/token\"\n[plugins]\ndirs = [\"plugins\"]\nsources = []\n{more}"
        ),
    )
    .expect("config");
    Serving::start("serve", &file)
}
