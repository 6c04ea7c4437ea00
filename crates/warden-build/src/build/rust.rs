//! Rust plugins: a cdylib crate built with `cargo build --release
//! --target <target>`: wasm32-wasip2 makes a component directly; core-module
//! plugins use wasm32-unknown-unknown or (with WASI) wasm32-wasip1. With
//! wasm-opt, the component's core module is linked alone, optimised, and
//! made a component here.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::componentize::componentize;
use super::optimize::WasmOpt;
use super::run::Progress;
use crate::error::{Error, Result};

/// Tells the wasm32-wasip2 linker to stop at the core module.
const CORE_ONLY: &str = "-Clink-arg=--skip-wit-component";

/// The cargo profile the core module is built with: the release profile
/// under another name, so that the core module and the component are
/// different files (a `cargo build` of the plugin must not overwrite the
/// one being optimised) and neither build undoes the other's fingerprint.
const CORE_PROFILE: &str = "warden-core";

/// A Rust plugin's bytes and the wasm-opt version that optimised them.
pub(crate) type Optimised = (Vec<u8>, Option<String>);

/// Builds the crate in `dir` into a component for `target`: made by the
/// linker, or, with `wasm_opt`, from a core module that wasm-opt
/// optimised. When that way fails (a linker that cannot stop at the core
/// module, a module wasm-opt broke), the plugin is built the plain way,
/// with a warning.
pub(crate) fn component(
    dir: &Path,
    target: &str,
    wasm_opt: Option<&WasmOpt>,
    progress: &Progress,
) -> Result<Optimised> {
    if let Some(wasm_opt) = wasm_opt {
        let optimised = build(dir, target, true)
            .and_then(|core| read(&core))
            .and_then(|core| optimised(dir, core, wasm_opt, progress))
            .and_then(|(core, by)| Ok((componentize(&core, None, dir)?, by)));
        match optimised {
            Ok(built) => return Ok(built),
            Err(e) => warn_unoptimised(dir, &e.to_string(), progress),
        }
    }
    Ok((read(&build(dir, target, false)?)?, None))
}

/// Builds the crate in `dir` into a core module for `target`, through
/// `wasm_opt` when there is one.
pub(crate) fn module(
    dir: &Path,
    target: &str,
    wasm_opt: Option<&WasmOpt>,
    progress: &Progress,
) -> Result<Optimised> {
    let core = read(&build(dir, target, false)?)?;
    match wasm_opt {
        Some(wasm_opt) => optimised(dir, core, wasm_opt, progress),
        None => Ok((core, None)),
    }
}

/// `core` through wasm-opt, or as it was (with a warning) when wasm-opt
/// fails on it.
fn optimised(
    dir: &Path,
    core: Vec<u8>,
    wasm_opt: &WasmOpt,
    progress: &Progress,
) -> Result<Optimised> {
    let work = dir.join("target").join("warden");
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    progress(&format!(
        "optimising {} with {}",
        dir.display(),
        wasm_opt.version()
    ));
    match wasm_opt.optimize(&core, &work) {
        Ok(bytes) => Ok((bytes, Some(wasm_opt.version().to_string()))),
        Err(why) => {
            warn_unoptimised(dir, &why, progress);
            Ok((core, None))
        }
    }
}

/// Says, in the log and as a progress line starting `warning:`, that the
/// plugin in `dir` is built without wasm-opt, and why.
fn warn_unoptimised(dir: &Path, why: &str, progress: &Progress) {
    tracing::warn!(plugin = %dir.display(), "built without wasm-opt: {why}");
    progress(&format!(
        "warning: {}: built without wasm-opt: {why}",
        dir.display()
    ));
}

fn read(wasm: &Path) -> Result<Vec<u8>> {
    std::fs::read(wasm).map_err(|e| Error::io(wasm, e))
}

/// Makes sure the Rust toolchain that builds `dir` can target
/// `target`, adding it with rustup when it is missing (rustup does
/// not add the targets of `rust-toolchain.toml` to a toolchain that is
/// already installed).
fn ensure_guest_target(dir: &Path, target: &str) -> Result<()> {
    let fail = |message: String| Error::Build {
        dir: dir.to_path_buf(),
        message,
    };
    // Through rustup's proxy in the plugin's directory (not `$RUSTC`), so the
    // check sees the same toolchain as the build and `rustup target add`.
    let libdir = Command::new("rustc")
        .env_remove("RUSTC")
        .args(["--print", "target-libdir", "--target", target])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run rustc: {e}; is Rust installed?")))?;
    let libdir = PathBuf::from(String::from_utf8_lossy(&libdir.stdout).trim());
    if libdir.is_dir() {
        return Ok(());
    }
    tracing::info!(target, "installing the guest target with rustup");
    let added = Command::new("rustup")
        .args(["target", "add", target])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            fail(format!(
                "the {target} target is missing and rustup cannot run ({e}); install the target"
            ))
        })?;
    if !added.status.success() {
        return Err(fail(format!(
            "the {target} target is missing and `rustup target add {target}` failed:\n{}",
            String::from_utf8_lossy(&added.stderr)
        )));
    }
    Ok(())
}

/// Lets LLVM use WebAssembly SIMD in the plugin's own code (wasmtime runs
/// it): text-transform's warm 1 MiB upper-casing took a third less time.
/// Cargo adds this to the `rustflags` the plugin's own configuration sets
/// for the target; an explicit `RUSTFLAGS` replaces both.
fn simd(target: &str) -> String {
    format!("target.{target}.rustflags=[\"-Ctarget-feature=+simd128\"]")
}

/// Runs cargo for the crate in `dir` and returns the `.wasm` it produced.
/// With `core_only`, the linker stops at the core module: the flag goes to
/// the crate's own link only (`cargo rustc`), in [`CORE_PROFILE`].
fn build(dir: &Path, target: &str, core_only: bool) -> Result<PathBuf> {
    let fail = |message: String| Error::Build {
        dir: dir.to_path_buf(),
        message,
    };
    ensure_guest_target(dir, target)?;
    let cargo_toml = dir.join("Cargo.toml");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    match core_only {
        true => command
            .args(["rustc", "--profile", CORE_PROFILE, "--config"])
            .arg(format!("profile.{CORE_PROFILE}.inherits=\"release\"")),
        false => command.args(["build", "--release"]),
    };
    command
        .args(["--target", target, "--message-format=json"])
        .arg("--config")
        .arg(simd(target))
        .arg("--manifest-path")
        .arg(&cargo_toml);
    if core_only {
        command.args(["--lib", "--", CORE_ONLY]);
    }
    let output = command
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
        let mut message = diagnostics.join("");
        message.push_str(&super::run::tail(&String::from_utf8_lossy(&output.stderr)));
        if message.contains("target may not be installed")
            || message.contains("can't find crate for `core`")
        {
            message.push_str(&format!("\nhint: rustup target add {target}"));
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
