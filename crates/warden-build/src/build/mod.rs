//! Building plugin sources (found with [`warden::discover`]) into components
//! ready to load: detects the source's language, runs its toolchain
//! (installing it first when missing), checks the result against the
//! declared world, and places the `.wasm` and its `plugin.toml` in an
//! output directory.
//!
//! One module per language: [`Language`] tells them apart; `rust` runs
//! cargo, `python` componentize-py, `javascript` componentize-js, `go` and
//! `c` generate bindings in-process and compile a core module that
//! `componentize` adapts. `toolchain` finds or installs the tools;
//! `optimize` runs wasm-opt over Rust plugins when it is installed.

mod bindgen;
mod c;
mod componentize;
mod go;
mod javascript;
mod language;
mod optimize;
mod python;
mod run;
mod rust;
mod toolchain;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use go::{RUNTIME_DIR as GO_RUNTIME_DIR, go_mod};
pub use language::Language;
pub use optimize::{WASM_OPT_ENV, WasmOpt};
pub use run::Progress;
use toolchain::Tool;
pub use toolchain::Toolchains;

use crate::error::{Error, Result};
use warden::ContractVersion;
use warden::inspect::inspect;
use warden::module::ModuleManifest;
use warden::write_atomically;
use warden::{MANIFEST_FILE, Manifest};

/// The target plugins are compiled for.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// A plugin that was built and placed in the output directory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltPlugin {
    /// The plugin's name.
    pub name: String,
    /// Its version.
    pub version: semver::Version,
    /// The directory holding the built `.wasm` and `plugin.toml`.
    pub dir: PathBuf,
    /// The built component (for a core-module plugin, the module).
    pub component: PathBuf,
    /// Its size in bytes.
    pub size: usize,
    /// The language it was built from (`None`: its own build command).
    pub language: Option<Language>,
    /// How long the build took.
    pub duration: Duration,
    /// The wasm-opt that optimised it (what its `--version` said); `None`
    /// when none did.
    pub wasm_opt: Option<String>,
}

/// Builds the plugin source in `source_dir` and places the result in
/// `out_dir/<name>/`, with the default [`Builder`].
pub fn build_plugin(source_dir: &Path, out_dir: &Path) -> Result<BuiltPlugin> {
    Builder::new().build(source_dir, None, out_dir)
}

/// Builds the plugin source in `source_dir` with `command` (see
/// [`Builder::build`]) and places the result in `out_dir/<name>/`, with the
/// default [`Builder`].
pub fn build_with(
    source_dir: &Path,
    command: Option<&[String]>,
    out_dir: &Path,
) -> Result<BuiltPlugin> {
    Builder::new().build(source_dir, command, out_dir)
}

/// Builds plugin sources: where guest toolchains are kept, which wasm-opt
/// optimises Rust plugins, and who hears about slow steps.
#[derive(Clone)]
pub struct Builder {
    toolchains: Toolchains,
    wasm_opt: Option<WasmOpt>,
    progress: Arc<Progress>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("toolchains", &self.toolchains)
            .field("wasm_opt", &self.wasm_opt)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder using [`Toolchains::default_location`] and
    /// [`WasmOpt::detect`], reporting progress to the log.
    pub fn new() -> Self {
        Builder {
            toolchains: Toolchains::default_location(),
            wasm_opt: WasmOpt::detect(),
            progress: Arc::new(|step: &str| tracing::info!("{step}")),
        }
    }

    /// Keeps installed guest toolchains in `toolchains`.
    pub fn toolchains(mut self, toolchains: Toolchains) -> Self {
        self.toolchains = toolchains;
        self
    }

    /// Optimises Rust plugins with `wasm_opt`; `None`: not at all.
    pub fn wasm_opt(mut self, wasm_opt: Option<WasmOpt>) -> Self {
        self.wasm_opt = wasm_opt;
        self
    }

    /// Calls `progress` with a line for each slow step (installing a tool,
    /// compiling).
    pub fn on_progress(mut self, progress: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.progress = Arc::new(progress);
        self
    }

    /// Builds the plugin source in `source_dir` and places the result in
    /// `out_dir/<name>/`. With `command` (a program and its arguments, run in
    /// `source_dir`), that command builds it and must write the component its
    /// `plugin.toml` names; without, the source's [`Language`] decides.
    pub fn build(
        &self,
        source_dir: &Path,
        command: Option<&[String]>,
        out_dir: &Path,
    ) -> Result<BuiltPlugin> {
        let started = Instant::now();
        // Toolchains run inside the source directory and are handed paths
        // within it: those must not be relative to where Warden runs.
        let source_dir = &std::path::absolute(source_dir).map_err(|e| Error::io(source_dir, e))?;
        let manifest_file = source_dir.join(MANIFEST_FILE);
        let manifest_text =
            std::fs::read_to_string(&manifest_file).map_err(|e| Error::io(&manifest_file, e))?;
        if ModuleManifest::is_module_manifest(&manifest_text) {
            let manifest = ModuleManifest::parse(&manifest_text, &manifest_file)?;
            return self.build_module(source_dir, manifest, command, out_dir, started);
        }
        let manifest = Manifest::from_file(&manifest_file)?;
        let job = Job {
            dir: source_dir,
            manifest: &manifest,
            toolchains: &self.toolchains,
            progress: &*self.progress,
        };
        let ((bytes, wasm_opt), language) = match command {
            Some(command) => {
                let wasm = run_command(source_dir, command, &manifest.component_path(source_dir))?;
                let bytes = std::fs::read(&wasm).map_err(|e| Error::io(&wasm, e))?;
                ((bytes, None), None)
            }
            None => {
                let language = Language::detect(source_dir)?;
                let built = match language {
                    Language::Rust => rust::component(
                        source_dir,
                        GUEST_TARGET,
                        self.wasm_opt.as_ref(),
                        &*self.progress,
                    )?,
                    Language::Python => (python::build(&job)?, None),
                    Language::JavaScript => (javascript::build(&job)?, None),
                    Language::Go => (go::build(&job)?, None),
                    Language::C => (c::build(&job)?, None),
                };
                (built, Some(language))
            }
        };
        let made = Made {
            bytes: &bytes,
            language,
            wasm_opt,
            started,
        };
        self.place(source_dir, manifest, made, out_dir)
    }

    /// The build stamp of what this builder makes of `source_dir`.
    fn stamp(&self, source_dir: &Path) -> String {
        build_stamp(source_dir, self.wasm_opt.as_ref())
    }

    /// Builds a core-module plugin with `command`, or a Rust crate: for
    /// wasm32-wasip1 with `wasi = true`, else for wasm32-unknown-unknown.
    fn build_module(
        &self,
        source_dir: &Path,
        manifest: ModuleManifest,
        command: Option<&[String]>,
        out_dir: &Path,
        started: Instant,
    ) -> Result<BuiltPlugin> {
        let fail = |message: String| Error::Build {
            dir: source_dir.to_path_buf(),
            message,
        };
        let (bytes, wasm_opt) = match command {
            Some(command) => {
                let wasm = run_command(source_dir, command, &manifest.module_path(source_dir))?;
                (std::fs::read(&wasm).map_err(|e| Error::io(&wasm, e))?, None)
            }
            None if Language::detect(source_dir)? == Language::Rust => {
                let target = if manifest.wasi {
                    "wasm32-wasip1"
                } else {
                    "wasm32-unknown-unknown"
                };
                rust::module(source_dir, target, self.wasm_opt.as_ref(), &*self.progress)?
            }
            None => {
                return Err(fail(
                    "core-module plugins are built from Rust crates; give other sources a build \
                     command"
                        .into(),
                ));
            }
        };
        if !warden::module::is_core_module_bytes(&bytes) {
            let made = match command {
                Some(_) => manifest.module_path(source_dir).display().to_string(),
                None => "what cargo built".to_string(),
            };
            return Err(fail(format!("{made} is not a core WebAssembly module")));
        }
        let file = manifest.module_path(Path::new(""));
        let made = Made {
            bytes: &bytes,
            language: command.is_none().then_some(Language::Rust),
            wasm_opt,
            started,
        };
        self.finish(
            source_dir,
            out_dir,
            manifest.name,
            manifest.version,
            &file,
            made,
        )
    }
}

/// One plugin being built by a language's toolchain.
pub(crate) struct Job<'a> {
    /// The plugin's source directory.
    pub dir: &'a Path,
    /// Its manifest.
    pub manifest: &'a Manifest,
    toolchains: &'a Toolchains,
    progress: &'a Progress,
}

impl Job<'_> {
    /// A build error about this plugin.
    pub fn fail(&self, message: String) -> Error {
        Error::Build {
            dir: self.dir.to_path_buf(),
            message,
        }
    }

    /// Reports a slow step.
    pub fn progress(&self, step: &str) {
        (self.progress)(step)
    }

    /// A command running `tool` (installed first if needed) in the
    /// plugin's directory.
    pub fn tool(&self, tool: Tool) -> Result<Command> {
        let program: Vec<OsString> = self.toolchains.command(tool, self.dir, self.progress)?;
        let mut command = Command::new(&program[0]);
        command.args(&program[1..]).current_dir(self.dir);
        Ok(command)
    }

    /// `target/warden` in the plugin's directory, for intermediate files.
    pub fn build_dir(&self) -> Result<PathBuf> {
        let dir = self.dir.join("target").join("warden");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(dir)
    }

    /// The WIT the plugin is built against: its own `wit/` directory, or
    /// else the stable contract written to the build directory.
    pub fn wit_dir(&self) -> Result<PathBuf> {
        let own = self.dir.join("wit");
        if own.is_dir() {
            return Ok(own);
        }
        let dir = self.build_dir()?.join("wit");
        warden::write_contract_wit(&dir)?;
        Ok(dir)
    }
}

/// What a toolchain made of a plugin source, on its way to the output
/// directory.
struct Made<'a> {
    bytes: &'a [u8],
    language: Option<Language>,
    /// The wasm-opt that optimised it.
    wasm_opt: Option<String>,
    started: Instant,
}

impl Builder {
    /// Checks the built component against the manifest and places it,
    /// with the manifest, in `out_dir/<name>/`.
    fn place(
        &self,
        source_dir: &Path,
        manifest: Manifest,
        made: Made<'_>,
        out_dir: &Path,
    ) -> Result<BuiltPlugin> {
        let wasm = manifest.component_path(source_dir);
        let found = inspect(made.bytes, &wasm.display().to_string())?;
        let contract = ContractVersion::detect(
            &manifest.name,
            found
                .imports
                .iter()
                .chain(&found.exports)
                .map(String::as_str),
        )?;
        manifest
            .world
            .check_exports(&manifest.name, contract, &found.exports)?;
        let file = manifest.component_path(Path::new(""));
        self.finish(
            source_dir,
            out_dir,
            manifest.name,
            manifest.version,
            &file,
            made,
        )
    }

    /// Writes what was made to `out_dir/<name>/<file>`, with the source's
    /// manifest and this builder's stamp.
    fn finish(
        &self,
        source_dir: &Path,
        out_dir: &Path,
        name: String,
        version: semver::Version,
        file: &Path,
        made: Made<'_>,
    ) -> Result<BuiltPlugin> {
        let stamp = self.stamp(source_dir);
        let (dir, component) = write_built(source_dir, out_dir, &name, file, made.bytes, &stamp)?;
        Ok(BuiltPlugin {
            name,
            version,
            dir,
            component,
            size: made.bytes.len(),
            language: made.language,
            duration: made.started.elapsed(),
            wasm_opt: made.wasm_opt,
        })
    }
}

/// The file beside each build that records [`build_stamp`].
const STAMP_FILE: &str = ".warden-build";

/// What decides a build of `source_dir` besides its own files: this
/// Warden's version, the pinned guest tools, the Go runtime package it
/// ships and, for a Rust source (the only one it runs on), the wasm-opt.
/// A build made with another stamp is stale.
fn build_stamp(source_dir: &Path, wasm_opt: Option<&WasmOpt>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION"));
    if Language::Rust.is_in(source_dir) {
        hash.update(wasm_opt.map_or("", WasmOpt::version));
    }
    for tool in Tool::ALL {
        hash.update(tool.pin());
    }
    for (name, text) in go::RUNTIME_FILES {
        hash.update(name);
        hash.update(text);
    }
    hex::encode(hash.finalize())
}

/// Writes the built `bytes` to `out_dir/<name>/<file>` and copies the
/// source's `plugin.toml` beside it, with the build stamp; returns the
/// directory and the file.
fn write_built(
    source_dir: &Path,
    out_dir: &Path,
    name: &str,
    file: &Path,
    bytes: &[u8],
    stamp: &str,
) -> Result<(PathBuf, PathBuf)> {
    let dir = out_dir.join(name);
    let built = dir.join(file);
    let parent = built.parent().unwrap_or(&dir);
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    write_atomically(&built, bytes).map_err(|e| Error::io(&built, e))?;
    let manifest_in = source_dir.join(MANIFEST_FILE);
    let manifest_text = std::fs::read(&manifest_in).map_err(|e| Error::io(&manifest_in, e))?;
    let manifest_out = dir.join(MANIFEST_FILE);
    write_atomically(&manifest_out, &manifest_text).map_err(|e| Error::io(&manifest_out, e))?;
    let stamp_file = dir.join(STAMP_FILE);
    write_atomically(&stamp_file, stamp.as_bytes()).map_err(|e| Error::io(&stamp_file, e))?;
    Ok((dir, built))
}

/// Whether the plugin built from `source_dir` into `out_dir` is missing,
/// was made by another Warden or wasm-opt (see [`build_stamp`]; wasm-opt as
/// [`WasmOpt::detect`] finds it), or is older than a file
/// of its source (build outputs, `target/` and hidden directories aside).
pub fn is_stale(source_dir: &Path, out_dir: &Path) -> Result<bool> {
    let manifest_file = source_dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_file).map_err(|e| Error::io(&manifest_file, e))?;
    let (name, file) = if ModuleManifest::is_module_manifest(&text) {
        let manifest = ModuleManifest::parse(&text, &manifest_file)?;
        let file = manifest.module_path(Path::new(""));
        (manifest.name, file)
    } else {
        let manifest = Manifest::from_file(&manifest_file)?;
        let file = manifest.component_path(Path::new(""));
        (manifest.name, file)
    };
    let built_dir = out_dir.join(&name);
    let stamp = std::fs::read_to_string(built_dir.join(STAMP_FILE)).unwrap_or_default();
    if stamp != build_stamp(source_dir, WasmOpt::detect().as_ref()) {
        return Ok(true);
    }
    let built = [built_dir.join(MANIFEST_FILE), built_dir.join(file)]
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect::<Option<Vec<_>>>()
        .and_then(|times| times.into_iter().min());
    let Some(built) = built else {
        return Ok(true);
    };
    let mut dirs = vec![source_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let name = entry.file_name();
            let skip = name.to_string_lossy().starts_with('.') || name == "target";
            let Ok(meta) = entry.metadata() else { continue };
            if skip {
                continue;
            }
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.modified().is_ok_and(|t| t > built) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Runs a plugin's own build command, which must write `wasm`; returns it.
fn run_command(dir: &Path, command: &[String], wasm: &Path) -> Result<PathBuf> {
    let fail = |message: String| Error::Build {
        dir: dir.to_path_buf(),
        message,
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| fail("the build command is empty".into()))?;
    let mut run = Command::new(program);
    run.args(args).current_dir(dir);
    run::run_tool(run, dir, &command.join(" "))?;
    if !wasm.is_file() {
        return Err(fail(format!(
            "`{}` succeeded but did not write {}, the file plugin.toml names",
            command.join(" "),
            wasm.display()
        )));
    }
    Ok(wasm.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_from_another_warden_is_stale() {
        let source = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        std::fs::write(
            source.path().join(MANIFEST_FILE),
            "name = \"m\"\nversion = \"1.0.0\"\nabi = \"exports\"\n",
        )
        .unwrap();
        assert!(is_stale(source.path(), out.path()).unwrap(), "never built");
        write_built(
            source.path(),
            out.path(),
            "m",
            Path::new("m.wasm"),
            b"\0asm",
            &build_stamp(source.path(), WasmOpt::detect().as_ref()),
        )
        .unwrap();
        assert!(!is_stale(source.path(), out.path()).unwrap(), "just built");
        std::fs::write(out.path().join("m").join(STAMP_FILE), "older warden").unwrap();
        assert!(
            is_stale(source.path(), out.path()).unwrap(),
            "another stamp"
        );
    }

    #[test]
    fn the_wasm_opt_version_is_part_of_the_stamp() {
        let wasm_opt = |version: &str| WasmOpt {
            program: "wasm-opt".into(),
            version: version.into(),
        };
        let rust = tempfile::tempdir().unwrap();
        std::fs::write(rust.path().join("Cargo.toml"), "").unwrap();
        let stamps = [
            build_stamp(rust.path(), None),
            build_stamp(rust.path(), Some(&wasm_opt("wasm-opt version 108"))),
            build_stamp(rust.path(), Some(&wasm_opt("wasm-opt version 116"))),
        ];
        assert_ne!(stamps[0], stamps[1]);
        assert_ne!(stamps[1], stamps[2]);
        // Other languages are not run through it: installing it does not
        // make their builds stale.
        let python = tempfile::tempdir().unwrap();
        std::fs::write(python.path().join("app.py"), "").unwrap();
        assert_eq!(
            build_stamp(python.path(), None),
            build_stamp(python.path(), Some(&wasm_opt("wasm-opt version 108")))
        );
    }
}
