//! The optional `wasm-opt` pass (Binaryen) over a Rust plugin's core
//! module, run when the tool is installed: `WARDEN_WASM_OPT` names the
//! program (`off`: none), else `wasm-opt` is looked for on the `PATH`.
//!
//! A Rust plugin for wasm32-wasip2 is then linked as a core module, which
//! wasm-opt optimises and `componentize` makes a component of (wasm-opt
//! does not read components). A wasm-opt that fails leaves the module as
//! it was, with a warning: an old Binaryen that does not know a feature
//! must not stop a build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The WebAssembly features Rust's wasm targets emit, with the SIMD that
/// `warden build` turns on: a stripped module has no section listing
/// them, and wasm-opt rejects what it was not told to allow.
const FEATURES: [&str; 7] = [
    "--enable-simd",
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// The environment variable that chooses the wasm-opt program.
pub const WASM_OPT_ENV: &str = "WARDEN_WASM_OPT";

/// A wasm-opt program that runs, and the version it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmOpt {
    pub(super) program: PathBuf,
    pub(super) version: String,
}

impl WasmOpt {
    /// The wasm-opt builds use by default: the program `WARDEN_WASM_OPT`
    /// names (`off` or empty: none), else `wasm-opt` from the `PATH`;
    /// `None` when it is missing or does not run. Looked up once per
    /// process.
    pub fn detect() -> Option<WasmOpt> {
        static FOUND: OnceLock<Option<WasmOpt>> = OnceLock::new();
        FOUND
            .get_or_init(|| {
                let (program, named) = match std::env::var_os(WASM_OPT_ENV) {
                    Some(p) if p.is_empty() || p == "off" => return None,
                    Some(p) => (PathBuf::from(p), true),
                    None => (PathBuf::from("wasm-opt"), false),
                };
                WasmOpt::at(program)
                    .inspect_err(|e| {
                        if named {
                            tracing::warn!(
                                "{WASM_OPT_ENV}: {e}; plugins are built without wasm-opt"
                            );
                        }
                    })
                    .ok()
            })
            .clone()
    }

    /// The wasm-opt at `program` (a path, or a name looked up on the
    /// `PATH`); an error when it does not run or does not say its version.
    pub fn at(program: impl Into<PathBuf>) -> Result<WasmOpt> {
        let program = program.into();
        let fail = |message: String| Error::Tool {
            program: program.clone(),
            message,
        };
        let output = Command::new(&program)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                fail(format!(
                    "cannot run it: {e}; install Binaryen or set {WASM_OPT_ENV}"
                ))
            })?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !output.status.success() || version.is_empty() {
            return Err(fail(format!(
                "`--version` did not answer with a version ({}); is it Binaryen's wasm-opt?",
                output.status
            )));
        }
        Ok(WasmOpt { program, version })
    }

    /// What `--version` said, such as `wasm-opt version 108`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `core` optimised for speed (`-O3`), with its files in a directory
    /// of its own under `work_dir` (builds of one plugin may run at once);
    /// why not, in one line with the tool's own message.
    pub(crate) fn optimize(&self, core: &[u8], work_dir: &Path) -> Result<Vec<u8>, String> {
        let work = tempfile::Builder::new()
            .prefix("wasm-opt-")
            .tempdir_in(work_dir)
            .map_err(|e| format!("{}: {e}", work_dir.display()))?;
        let input = work.path().join("core.wasm");
        let output = work.path().join("core.opt.wasm");
        std::fs::write(&input, core).map_err(|e| format!("{}: {e}", input.display()))?;
        let run = Command::new(&self.program)
            .arg("-O3")
            .args(FEATURES)
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        if !run.status.success() {
            let stderr = String::from_utf8_lossy(&run.stderr);
            let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(format!("{} failed ({}): {first}", self.version, run.status));
        }
        std::fs::read(&output).map_err(|e| format!("{}: {e}", output.display()))
    }
}
