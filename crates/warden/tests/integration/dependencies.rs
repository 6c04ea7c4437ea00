//! The runtime stays lean: `cargo tree -p warden -e normal` names no HTTP
//! server framework, OpenAPI generator, Prometheus client, bindings
//! generator for other languages, composition tool or file watcher. Those
//! belong to `warden-server`, `warden-build` and the `watch` feature.

use std::process::Command;

/// Crates that must not reach an embedder through the runtime.
const FORBIDDEN: [&str; 12] = [
    "axum",
    "axum-core",
    "tower-http",
    "utoipa",
    "utoipa-axum",
    "prometheus-client",
    "wit-bindgen-core",
    "wit-bindgen-c",
    "wit-bindgen-go",
    "wac-graph",
    "wac-types",
    "notify",
];

#[test]
fn the_runtime_pulls_in_no_server_build_or_watcher_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "warden", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"wasmtime"),
        "not the runtime's tree: {tree}"
    );
    let found: Vec<&str> = FORBIDDEN
        .iter()
        .copied()
        .filter(|f| names.contains(f))
        .collect();
    assert!(
        found.is_empty(),
        "the runtime depends on {found:?}; move that code to warden-server, \
         warden-build or behind a feature"
    );
}
