//! Static composition: `compose-shout` imports `warden-example:text/case`,
//! which no host provides; plugged with `compose-case-lib`, which exports
//! it, the result is one component that loads and runs like any plugin.

use warden_testkit as common;

use std::path::{Path, PathBuf};
use std::process::Command;

use warden::{Error, ProcessRequest};
use warden_build::compose::{Part, compose};

/// Builds the library component (not a plugin: no manifest) with cargo.
fn case_lib() -> Vec<u8> {
    let plugins = common::repo().join("plugins");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "compose-case-lib",
        ])
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .status()
        .expect("cargo");
    assert!(status.success(), "building compose-case-lib");
    std::fs::read(plugins.join("target/wasm32-wasip2/release/compose_case_lib.wasm"))
        .expect("case-lib component")
}

fn shout() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compose");
    warden_build::build_plugin(&common::repo().join("plugins/composition/shout"), &out)
        .expect("build compose-shout")
        .dir
}

#[test]
fn a_plugged_component_loads_and_runs_like_any_plugin() {
    let shout_dir = shout();
    let host = common::host();
    let alone = host.load_blocking(&shout_dir);
    match alone {
        Err(Error::UnsatisfiedImport { import, .. }) => {
            assert!(import.contains("warden-example:text/case"), "{import}")
        }
        other => panic!("an unplugged socket must not load: {other:?}"),
    }

    let socket = std::fs::read(shout_dir.join("compose-shout.wasm")).expect("socket");
    let lib = case_lib();
    let composed = compose(
        Part {
            name: "compose-shout.wasm",
            bytes: &socket,
        },
        &[Part {
            name: "compose_case_lib.wasm",
            bytes: &lib,
        }],
    )
    .expect("compose");
    let inspection = warden::inspect::inspect(&composed, "composed").expect("inspect");
    assert!(
        !inspection
            .imports
            .iter()
            .any(|i| i.contains("warden-example")),
        "the plugged import is gone: {:?}",
        inspection.imports
    );

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        shout_dir.join("plugin.toml"),
        dir.path().join("plugin.toml"),
    )
    .expect("manifest");
    std::fs::write(dir.path().join("compose-shout.wasm"), &composed).expect("component");
    host.load_blocking(dir.path())
        .expect("the composed plugin loads");
    let out = host
        .process_blocking("compose-shout", ProcessRequest::new("straße"))
        .expect("call");
    assert_eq!(out.output, "STRASSE".as_bytes());
    let out = host
        .process_blocking(
            "compose-shout",
            ProcessRequest::new("hello big world").option("mode", "title"),
        )
        .expect("call");
    assert_eq!(out.output, "Hello Big World".as_bytes());
}

#[test]
fn a_plug_that_fills_nothing_is_refused() {
    let shout_dir = shout();
    let socket = std::fs::read(shout_dir.join("compose-shout.wasm")).expect("socket");
    // A plugin exports `plugin` and `processing`, which the socket does not
    // import.
    let unrelated = common::wasm("text-transform");
    let err = compose(
        Part {
            name: "compose-shout.wasm",
            bytes: &socket,
        },
        &[Part {
            name: "text-transform.wasm",
            bytes: &unrelated,
        }],
    )
    .expect_err("nothing to plug");
    let message = err.to_string();
    assert!(
        message.contains("compose-shout.wasm") && message.contains("no matching imports"),
        "{message}"
    );
}
