//! `warden new` in every language and world: the scaffolded plugin builds
//! with `warden build` and answers `warden call` / `warden event` out of the
//! box, as its README promises.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LANGUAGES: [&str; 5] = ["rust", "python", "js", "go", "c"];

fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

/// Runs `warden` in `dir` with the test-wide toolchain and compile caches.
fn warden(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(dir)
        .env("WARDEN_TOOLCHAINS", tmp().join("guest-toolchains"))
        .env("WARDEN_CACHE_DIR", tmp().join("templates-cache"))
        .env("WARDEN_DATA_DIR", dir.join(".warden"))
        .env_remove("WARDEN_PLUGIN_DIR")
        .output()
        .expect("run warden")
}

fn check(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed:\n{stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Scaffolds `name` in a fresh directory and builds it; returns the
/// plugin's directory.
fn scaffold_and_build(root: &Path, lang: &str, world: &str) -> PathBuf {
    let name = format!("t-{lang}-{world}");
    check(
        &warden(root, &["new", &name, "--lang", lang, "--world", world]),
        &format!("warden new {name}"),
    );
    let dir = root.join(&name);
    for file in ["plugin.toml", "README.md", ".gitignore", "wit/worlds.wit"] {
        assert!(dir.join(file).is_file(), "{name} lacks {file}");
    }
    check(
        &warden(&dir, &["build"]),
        &format!("warden build of {name}"),
    );
    assert!(
        dir.join("dist").join(&name).join("plugin.toml").is_file(),
        "{name} built into dist/"
    );
    dir
}

#[test]
fn every_processor_template_builds_and_answers() {
    let root = tempfile::tempdir().expect("tempdir");
    for lang in LANGUAGES {
        let dir = scaffold_and_build(root.path(), lang, "processor");
        let name = format!("t-{lang}-processor");
        let out = check(
            &warden(&dir, &["call", &name, "-i", "hello from warden"]),
            &format!("warden call {name}"),
        );
        assert_eq!(out, "HELLO FROM WARDEN", "{name}");
    }
}

#[test]
fn every_event_handler_template_builds_and_handles() {
    let root = tempfile::tempdir().expect("tempdir");
    for lang in LANGUAGES {
        let dir = scaffold_and_build(root.path(), lang, "event-handler");
        let name = format!("t-{lang}-event-handler");
        let out = check(
            &warden(&dir, &["event", "demo.happened", "{\"n\":1}", "--json"]),
            &format!("warden event to {name}"),
        );
        let outcomes: serde_json::Value = serde_json::from_str(&out).expect("JSON outcomes");
        let delivered = outcomes["delivered"].as_array().expect("delivered");
        assert_eq!(delivered.len(), 1, "{name}: {outcomes}");
        assert_eq!(delivered[0]["plugin"], name.as_str(), "{outcomes}");
        assert_eq!(delivered[0]["ok"], true, "{name}: {outcomes}");
    }
}

#[test]
fn new_refuses_bad_names_and_existing_directories() {
    let root = tempfile::tempdir().expect("tempdir");
    let bad = warden(root.path(), &["new", "Bad_Name"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a valid plugin name"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    check(
        &warden(root.path(), &["new", "twice", "--lang", "c"]),
        "first new",
    );
    let again = warden(root.path(), &["new", "twice", "--lang", "c"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let quoted = warden(
        root.path(),
        &["new", "quoted", "--description", "say \"hi\""],
    );
    assert!(!quoted.status.success());
    assert!(!root.path().join("quoted").exists(), "nothing written");
}
