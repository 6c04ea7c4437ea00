//! Building plugin sources (found with [`crate::discover`]) into components ready to load: runs the plugin's
//! toolchain, checks the result against the declared world, and places the
//! `.wasm` and its `plugin.toml` in an output directory.
//!
//! Rust plugins (a `Cargo.toml` beside the `plugin.toml`) are built with
//! `cargo build --release --target wasm32-wasip2`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::contract::ContractVersion;
use crate::error::{Error, Result};
use crate::fsutil::write_atomically;
use crate::inspect::inspect;
use crate::manifest::{MANIFEST_FILE, Manifest};

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
    /// The built component.
    pub component: PathBuf,
    /// Its size in bytes.
    pub size: usize,
    /// How long the build took.
    pub duration: Duration,
}

/// Builds the plugin source in `source_dir` and places the result in
/// `out_dir/<name>/`.
pub fn build_plugin(source_dir: &Path, out_dir: &Path) -> Result<BuiltPlugin> {
    build_with(source_dir, None, out_dir)
}

/// Builds the plugin source in `source_dir` with `command` (a program and
/// its arguments, run in `source_dir`; `None`: cargo, for a Rust crate),
/// which must write the component its `plugin.toml` names, and places the
/// result in `out_dir/<name>/`.
pub fn build_with(
    source_dir: &Path,
    command: Option<&[String]>,
    out_dir: &Path,
) -> Result<BuiltPlugin> {
    let started = Instant::now();
    let manifest = Manifest::from_file(&source_dir.join(MANIFEST_FILE))?;
    let wasm = match command {
        Some(command) => run_command(source_dir, command, &manifest)?,
        None if source_dir.join("Cargo.toml").is_file() => cargo_build(source_dir)?,
        None => {
            return Err(Error::Build {
                dir: source_dir.to_path_buf(),
                message: "no Cargo.toml found; `warden build` builds Rust plugins (a cdylib \
                          crate); give other sources a build command"
                    .into(),
            });
        }
    };
    let bytes = std::fs::read(&wasm).map_err(|e| Error::io(&wasm, e))?;
    let found = inspect(&bytes, &wasm.display().to_string())?;
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
    let dir = out_dir.join(&manifest.name);
    let component = manifest.component_path(&dir);
    let component_dir = component.parent().unwrap_or(&dir);
    std::fs::create_dir_all(component_dir).map_err(|e| Error::io(component_dir, e))?;
    write_atomically(&component, &bytes).map_err(|e| Error::io(&component, e))?;
    let manifest_text =
        std::fs::read(source_dir.join(MANIFEST_FILE)).map_err(|e| Error::io(source_dir, e))?;
    let manifest_out = dir.join(MANIFEST_FILE);
    write_atomically(&manifest_out, &manifest_text).map_err(|e| Error::io(&manifest_out, e))?;
    Ok(BuiltPlugin {
        name: manifest.name,
        version: manifest.version,
        dir,
        component,
        size: bytes.len(),
        duration: started.elapsed(),
    })
}

/// Whether the plugin built from `source_dir` into `out_dir` is missing or
/// older than a file of its source (build outputs, `target/` and hidden
/// directories aside).
pub fn is_stale(source_dir: &Path, out_dir: &Path) -> Result<bool> {
    let manifest = Manifest::from_file(&source_dir.join(MANIFEST_FILE))?;
    let built_dir = out_dir.join(&manifest.name);
    let built = [
        built_dir.join(MANIFEST_FILE),
        manifest.component_path(&built_dir),
    ]
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

/// Runs a plugin's own build command and returns the component it made.
fn run_command(dir: &Path, command: &[String], manifest: &Manifest) -> Result<PathBuf> {
    let fail = |message: String| Error::Build {
        dir: dir.to_path_buf(),
        message,
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| fail("the build command is empty".into()))?;
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run `{program}`: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        return Err(fail(format!(
            "`{}` failed ({}):\n{}",
            command.join(" "),
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    let wasm = manifest.component_path(dir);
    if !wasm.is_file() {
        return Err(fail(format!(
            "`{}` succeeded but did not write {}, the component plugin.toml names",
            command.join(" "),
            wasm.display()
        )));
    }
    Ok(wasm)
}

/// Makes sure the Rust toolchain that builds `dir` can target
/// [`GUEST_TARGET`], adding it with rustup when it is missing (rustup does
/// not add the targets of `rust-toolchain.toml` to a toolchain that is
/// already installed).
fn ensure_guest_target(dir: &Path) -> Result<()> {
    let fail = |message: String| Error::Build {
        dir: dir.to_path_buf(),
        message,
    };
    // Through rustup's proxy in the plugin's directory (not `$RUSTC`), so the
    // check sees the same toolchain as the build and `rustup target add`.
    let libdir = Command::new("rustc")
        .env_remove("RUSTC")
        .args(["--print", "target-libdir", "--target", GUEST_TARGET])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run rustc: {e}; is Rust installed?")))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim());
    if libdir.is_dir() {
        return Ok(());
    }
    tracing::info!(
        target = GUEST_TARGET,
        "installing the guest target with rustup"
    );
    let added = Command::new("rustup")
        .args(["target", "add", GUEST_TARGET])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            fail(format!("the {GUEST_TARGET} target is missing and rustup cannot run ({e}); install the target"))
        })?;
    if !added.status.success() {
        return Err(fail(format!(
            "the {GUEST_TARGET} target is missing and `rustup target add {GUEST_TARGET}` failed:\n{}",
            String::from_utf8_lossy(&added.stderr)
        )));
    }
    Ok(())
}

/// Runs cargo for the crate in `dir` and returns the `.wasm` it produced.
fn cargo_build(dir: &Path) -> Result<PathBuf> {
    let fail = |message: String| Error::Build {
        dir: dir.to_path_buf(),
        message,
    };
    ensure_guest_target(dir)?;
    let cargo_toml = dir.join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            GUEST_TARGET,
            "--message-format=json",
        ])
        .arg("--manifest-path")
        .arg(&cargo_toml)
        // Guest artifacts belong in the plugin workspace's own target
        // directory; sharing the host's would also deadlock a build started
        // from inside `cargo test`, which holds that directory's lock.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            fail(format!(
                "cannot run {}: {e}; is Rust installed?",
                Path::new(&cargo).display()
            ))
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let messages: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    if !output.status.success() {
        let diagnostics: Vec<&str> = messages
            .iter()
            .filter(|m| m["reason"] == "compiler-message" && m["message"]["level"] == "error")
            .filter_map(|m| m["message"]["rendered"].as_str())
            .collect();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let mut message = diagnostics.join("");
        message.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        if message.contains("target may not be installed")
            || message.contains("can't find crate for `core`")
        {
            message.push_str(&format!("\nhint: rustup target add {GUEST_TARGET}"));
        }
        return Err(fail(format!("cargo build failed:\n{message}")));
    }
    let wanted = cargo_toml
        .canonicalize()
        .map_err(|e| Error::io(&cargo_toml, e))?;
    messages
        .iter()
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| {
            msg["manifest_path"]
                .as_str()
                .is_some_and(|p| Path::new(p) == wanted)
        })
        .flat_map(|msg| {
            msg["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| {
            fail("cargo produced no .wasm; the crate needs `crate-type = [\"cdylib\"]`".into())
        })
}
