//! Rust plugins through wasm-opt: the pass runs when a wasm-opt is there,
//! its output is what gets placed and loads, a wasm-opt that fails leaves
//! the plugin built without it, and the installed one (CI installs
//! Binaryen and sets `WARDEN_TEST_REQUIRE_WASM_OPT`) makes a smaller
//! plugin that answers the same.

mod support;

use support::{Fake, answers, build, executable, fake_wasm_opt};
use warden_build::WasmOpt;

#[test]
fn a_rust_plugin_is_optimised_by_wasm_opt_and_still_answers() {
    let tools = tempfile::tempdir().expect("dir");
    let out = tempfile::tempdir().expect("dir");
    let fake = fake_wasm_opt(tools.path(), "wasm-opt version test", Fake::Copy);
    let (built, progress) = build(Some(WasmOpt::at(&fake).expect("fake runs")), out.path());
    assert_eq!(built.wasm_opt.as_deref(), Some("wasm-opt version test"));
    let args = std::fs::read_to_string(tools.path().join("args")).expect("wasm-opt ran");
    assert!(args.starts_with("-O3 "), "{args}");
    assert!(args.contains("--enable-simd"), "{args}");
    assert!(
        progress.iter().any(|l| l.contains("wasm-opt version test")),
        "{progress:?}"
    );
    // The core module wasm-opt saw was made a component here.
    assert_eq!(answers(&built)[0], "HELLO, WÖRLD OF WARDEN 42");
}

/// Builds text-transform with a stand-in wasm-opt that does `what`: the
/// plugin must come out unoptimised but working, with one warning, which
/// is returned.
fn built_without_wasm_opt(what: Fake) -> String {
    let tools = tempfile::tempdir().expect("dir");
    let out = tempfile::tempdir().expect("dir");
    let fake = fake_wasm_opt(tools.path(), "wasm-opt version old", what);
    let (built, progress) = build(Some(WasmOpt::at(&fake).expect("fake runs")), out.path());
    assert_eq!(built.wasm_opt, None);
    assert_eq!(answers(&built)[0], "HELLO, WÖRLD OF WARDEN 42");
    let warnings: Vec<&String> = progress
        .iter()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{progress:?}");
    assert!(warnings[0].contains("text-transform"), "{}", warnings[0]);
    warnings[0].clone()
}

#[test]
fn a_failing_wasm_opt_leaves_the_plugin_built_without_it() {
    let warning = built_without_wasm_opt(Fake::Fail);
    assert!(warning.contains("surprising value"), "{warning}");
}

#[test]
fn a_broken_optimised_module_leaves_the_plugin_built_the_plain_way() {
    let warning = built_without_wasm_opt(Fake::Garbage);
    assert!(warning.contains("making a component"), "{warning}");
}

#[test]
fn a_program_that_is_not_wasm_opt_is_refused_by_name() {
    let err = WasmOpt::at("/nonexistent/wasm-opt").expect_err("missing");
    let message = err.to_string();
    assert!(
        message.starts_with("/nonexistent/wasm-opt: cannot run it"),
        "{message}"
    );
    assert!(message.contains("install Binaryen"), "{message}");

    let tools = tempfile::tempdir().expect("dir");
    let mute = tools.path().join("mute");
    executable(&mute, "#!/bin/sh\nexit 1\n");
    let message = WasmOpt::at(&mute).expect_err("no version").to_string();
    assert!(
        message.contains("did not answer with a version"),
        "{message}"
    );
    assert!(message.contains("mute"), "{message}");
}

#[test]
fn the_installed_wasm_opt_makes_a_smaller_plugin_that_answers_the_same() {
    let Some(wasm_opt) = WasmOpt::detect() else {
        assert!(
            std::env::var_os("WARDEN_TEST_REQUIRE_WASM_OPT").is_none(),
            "WARDEN_TEST_REQUIRE_WASM_OPT is set but no wasm-opt was found"
        );
        eprintln!("wasm-opt is not installed: nothing to compare");
        return;
    };
    let plain_out = tempfile::tempdir().expect("dir");
    let optimised_out = tempfile::tempdir().expect("dir");
    let (plain, _) = build(None, plain_out.path());
    let (optimised, _) = build(Some(wasm_opt.clone()), optimised_out.path());
    assert_eq!(optimised.wasm_opt.as_deref(), Some(wasm_opt.version()));
    assert!(
        optimised.size < plain.size,
        "{} bytes optimised, {} without",
        optimised.size,
        plain.size
    );
    assert_eq!(answers(&optimised), answers(&plain));
}
