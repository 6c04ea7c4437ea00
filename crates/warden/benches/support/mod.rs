//! What several benches share: the example plugins, built once into
//! `target/bench-plugins` (a later run rebuilds only what changed).

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example plugin `name` (under `plugins/`), built: its directory.
pub fn built_plugin(name: &str) -> PathBuf {
    let out = repo().join("target/bench-plugins");
    warden_build::build_plugin(&repo().join("plugins").join(name), &out)
        .unwrap_or_else(|e| panic!("building {name}: {e}"));
    out.join(name)
}
