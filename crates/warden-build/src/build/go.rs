//! Go plugins: bindings from wit-bindgen's Go generator, `go build` for
//! wasip1 (`//go:wasmexport`, Go 1.27+), then a component made with the
//! preview1 adapter.
//!
//! The generated bindings are written into the plugin's directory, as `go
//! generate` would, so editors see them: `wit_exports.go` and one package
//! per imported interface (`warden_plugin_logging`, …). The plugin author
//! writes the packages of the exported interfaces (`export_warden_plugin_plugin`,
//! `export_warden_plugin_processing`, …). The generator's small runtime
//! package (`go.bytecodealliance.org/pkg`) ships with Warden and is written
//! to `.warden/go-pkg`, which the plugin's `go.mod` replaces the module with,
//! so nothing is fetched.

use super::componentize::{WitWorld, componentize};
use super::toolchain::Tool;
use super::{Job, bindgen, run::run_tool};
use crate::error::{Error, Result};

/// The Go module path of the bindings' runtime package.
const RUNTIME_MODULE: &str = "go.bytecodealliance.org/pkg";

/// Where the runtime package is written, relative to the plugin.
pub const RUNTIME_DIR: &str = ".warden/go-pkg";

/// The runtime package's files (Apache-2.0, from wit-bindgen's Go generator).
pub(crate) const RUNTIME_FILES: [(&str, &str); 12] = [
    ("go.mod", include_str!("../../guest/go-pkg/go.mod")),
    ("LICENSE", include_str!("../../guest/go-pkg/LICENSE")),
    (
        "wit/async/async.go",
        include_str!("../../guest/go-pkg/wit/async/async.go"),
    ),
    (
        "wit/async/empty.s",
        include_str!("../../guest/go-pkg/wit/async/empty.s"),
    ),
    (
        "wit/runtime/runtime.go",
        include_str!("../../guest/go-pkg/wit/runtime/runtime.go"),
    ),
    (
        "wit/runtime/empty.s",
        include_str!("../../guest/go-pkg/wit/runtime/empty.s"),
    ),
    (
        "wit/types/future.go",
        include_str!("../../guest/go-pkg/wit/types/future.go"),
    ),
    (
        "wit/types/option.go",
        include_str!("../../guest/go-pkg/wit/types/option.go"),
    ),
    (
        "wit/types/result.go",
        include_str!("../../guest/go-pkg/wit/types/result.go"),
    ),
    (
        "wit/types/stream.go",
        include_str!("../../guest/go-pkg/wit/types/stream.go"),
    ),
    (
        "wit/types/tuple.go",
        include_str!("../../guest/go-pkg/wit/types/tuple.go"),
    ),
    (
        "wit/types/unit.go",
        include_str!("../../guest/go-pkg/wit/types/unit.go"),
    ),
];

/// The `go.mod` of a Go plugin: the generated bindings live in the module
/// `wit_component`, and the runtime package comes from `.warden/go-pkg`.
pub fn go_mod() -> String {
    format!(
        "module wit_component\n\ngo 1.27\n\nrequire {RUNTIME_MODULE} v0.4.0\n\nreplace {RUNTIME_MODULE} => ./{RUNTIME_DIR}\n"
    )
}

/// Builds the Go plugin of `job` and returns its component.
pub(crate) fn build(job: &Job<'_>) -> Result<Vec<u8>> {
    let wit_dir = job.wit_dir()?;
    let wit = WitWorld {
        dir: &wit_dir,
        world: job.manifest.world.name(),
    };
    let go_mod_text = std::fs::read_to_string(job.dir.join("go.mod"))
        .map_err(|e| Error::io(job.dir.join("go.mod"), e))?;
    if !go_mod_text.contains(&format!("{RUNTIME_MODULE} =>")) {
        return Err(job.fail(format!(
            "go.mod must replace {RUNTIME_MODULE} with the copy Warden writes; add the line\n  \
             replace {RUNTIME_MODULE} => ./{RUNTIME_DIR}"
        )));
    }
    let runtime = job.dir.join(RUNTIME_DIR);
    for (name, text) in RUNTIME_FILES {
        let path = runtime.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        warden::write_atomically(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))?;
    }
    // Quiet: the generator would print to stderr, under the progress bar.
    let opts = wit_bindgen_go::Opts {
        format: wit_bindgen_go::Format::False,
        quiet: true,
        ..Default::default()
    };
    bindgen::generate(opts.build(), &wit, job.dir, &["go.mod"], job.dir)?;

    let core = job.build_dir()?.join("core.wasm");
    job.progress(&format!("compiling {} with Go", job.manifest.name));
    let mut command = job.tool(Tool::Go)?;
    command
        .args([
            "build",
            "-buildmode=c-shared",
            "-ldflags=-checklinkname=0",
            "-o",
        ])
        .arg(&core)
        .arg(".")
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("CGO_ENABLED", "0")
        // Never download a toolchain or a module: everything is local.
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod");
    run_tool(command, job.dir, "go build").map_err(|e| match e {
        Error::Build { dir, message } if message.contains("export_") && message.contains("is not in std") => {
            Error::Build {
                dir,
                message: format!(
                    "{message}\nhint: write the package of each exported interface, e.g. \
                     export_warden_plugin_plugin/ (GetMetadata, Initialize, Shutdown, GetStatus) \
                     and export_warden_plugin_processing/ (Process, Validate); `warden new --lang go` \
                     shows them"
                ),
            }
        }
        other => other,
    })?;
    let core = std::fs::read(&core).map_err(|e| Error::io(&core, e))?;
    componentize(&core, Some(wit), job.dir)
}
