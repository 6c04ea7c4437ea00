//! What Warden's test suites share: the example and fixture plugins, built
//! once per test binary with `warden-build`, hosts to load them in, and
//! components made from WIT.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use warden::{AuditEntry, AuditKind, AuditQuery, Manifest, Warden};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Cargo's directory for test scratch files (`target/tmp`), found from
/// the test binary, which lives in `target/<profile>/deps`.
pub fn target_tmp() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lives in target/<profile>/deps");
    target.join("tmp")
}

/// The built example Rust plugins (`<dir>/<name>/plugin.toml`), from
/// `plugins/`.
pub fn plugins() -> &'static Path {
    &built().0
}

/// The built test fixtures, from `plugins/testing/`.
pub fn fixtures() -> &'static Path {
    &built().1
}

fn built() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = target_tmp();
        let dirs = (out.join("examples"), out.join("fixtures"));
        for (root, dest) in [("plugins", &dirs.0), ("plugins/testing", &dirs.1)] {
            // Plugins in other languages are built by `tests/integration/languages.rs`
            // alone: their toolchains are slow to start.
            let sources = warden::discover(&repo().join(root)).expect("plugin sources");
            let rust = sources.into_iter().filter(|source| {
                warden_build::Language::detect(source).ok() == Some(warden_build::Language::Rust)
            });
            for source in rust {
                if let Err(e) = warden_build::build_plugin(&source, dest) {
                    panic!("building {}: {e}", source.display());
                }
            }
        }
        dirs
    })
}

/// The hostile suite, ready to load: one directory per attack (named as in
/// `plugins/hostile/suite`), each holding its manifest and a copy of the
/// built `hostile` component.
pub fn hostile_suite() -> &'static Path {
    static SUITE: OnceLock<PathBuf> = OnceLock::new();
    SUITE.get_or_init(|| {
        let out = target_tmp();
        let built = warden_build::build_plugin(
            &repo().join("plugins/hostile/plugin"),
            &out.join("fixtures"),
        )
        .unwrap_or_else(|e| panic!("building the hostile plugin: {e}"));
        let suite = out.join("hostile");
        for source in warden::discover(&repo().join("plugins/hostile/suite")).expect("suite") {
            let dest = suite.join(source.file_name().expect("attack name"));
            std::fs::create_dir_all(&dest).expect("suite dir");
            std::fs::copy(source.join("plugin.toml"), dest.join("plugin.toml")).expect("manifest");
            std::fs::copy(&built.component, dest.join("hostile.wasm")).expect("component");
        }
        suite
    })
}

/// The built plugin directory of `name` (an example or a fixture).
pub fn plugin_dir(name: &str) -> PathBuf {
    let example = plugins().join(name);
    if example.is_dir() {
        example
    } else {
        fixtures().join(name)
    }
}

/// The built component of `name`.
pub fn wasm(name: &str) -> Vec<u8> {
    let manifest = manifest(name);
    std::fs::read(manifest.component_path(&plugin_dir(name))).expect("built component")
}

/// The manifest of `name`.
pub fn manifest(name: &str) -> Manifest {
    Manifest::from_file(&plugin_dir(name).join("plugin.toml")).expect("manifest")
}

/// The component of core module `module`, which implements `world` of
/// `resolve`.
pub fn component_of(
    mut module: Vec<u8>,
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
) -> Vec<u8> {
    wit_component::embed_component_metadata(
        &mut module,
        resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("embed metadata");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode component")
}

/// A host with default settings and no disk cache.
pub fn host() -> Warden {
    Warden::new().expect("host")
}

/// Builds a manifest from TOML text (panics on bad test input).
pub fn manifest_from(text: &str) -> Manifest {
    Manifest::parse(text, Path::new("test.toml")).expect("test manifest")
}

/// The audit entries of `kind` (of `plugin`, when given), oldest first.
pub fn audited(host: &Warden, plugin: Option<&str>, kind: AuditKind) -> Vec<AuditEntry> {
    host.audit()
        .query(&AuditQuery {
            plugin: plugin.map(str::to_string),
            kind: Some(kind),
            ..Default::default()
        })
        .expect("audit query")
}

/// A copy of built plugin `plugin` in a directory of its own under
/// `root`, its manifest saying `version`.
pub fn stage(root: &Path, plugin: &str, version: &str) -> PathBuf {
    let dir = root.join(format!("{plugin}-{version}"));
    std::fs::create_dir_all(&dir).expect("stage dir");
    let built = plugin_dir(plugin);
    let manifest = std::fs::read_to_string(built.join("plugin.toml")).expect("manifest");
    let versioned: Vec<String> = manifest
        .lines()
        .map(|line| match line.starts_with("version") {
            true => format!("version = \"{version}\""),
            false => line.to_string(),
        })
        .collect();
    std::fs::write(dir.join("plugin.toml"), versioned.join("\n")).expect("write manifest");
    std::fs::write(dir.join(format!("{plugin}.wasm")), wasm(plugin)).expect("write component");
    dir
}
