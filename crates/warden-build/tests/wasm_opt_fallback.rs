//! A Rust plugin whose core module cannot be linked on its own (an older
//! toolchain's linker without `--skip-wit-component`, a custom linker) is
//! built the plain way, with a warning, instead of failing. Alone in its
//! test binary: it points `CARGO` at a stand-in for the whole process.

mod support;

use support::{Fake, answers, build, executable, fake_wasm_opt};
use warden_build::WasmOpt;

#[test]
fn a_core_module_that_cannot_be_linked_leaves_the_plugin_built_the_plain_way() {
    let tools = tempfile::tempdir().expect("dir");
    let out = tempfile::tempdir().expect("dir");
    let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo = tools.path().join("cargo");
    executable(
        &cargo,
        &format!(
            "#!/bin/sh\nif [ \"$1\" = rustc ]; then\n\
             echo 'error: unexpected argument --skip-wit-component' >&2; exit 101\nfi\n\
             exec '{real}' \"$@\"\n"
        ),
    );
    // SAFETY: the only test in this binary, and nothing else runs yet.
    unsafe { std::env::set_var("CARGO", &cargo) };
    let fake = fake_wasm_opt(tools.path(), "wasm-opt version test", Fake::Copy);
    let (built, progress) = build(Some(WasmOpt::at(&fake).expect("fake runs")), out.path());
    assert_eq!(built.wasm_opt, None);
    assert!(
        !tools.path().join("args").exists(),
        "wasm-opt ran without a core module"
    );
    let warnings: Vec<&String> = progress
        .iter()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{progress:?}");
    assert!(
        warnings[0].contains("--skip-wit-component"),
        "{}",
        warnings[0]
    );
    assert_eq!(answers(&built)[0], "HELLO, WÖRLD OF WARDEN 42");
}
