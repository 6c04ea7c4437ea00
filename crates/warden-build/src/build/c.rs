//! C plugins: bindings from wit-bindgen's C generator, compiled with zig's
//! C compiler for wasm32-wasi (a preview1 reactor, with zig's own
//! wasi-libc), then a component made with the preview1 adapter.
//!
//! The generated `<world>.h`, `<world>.c` and `<world>_component_type.o`
//! are written to `target/warden/c`, which is on the include path: a
//! processor plugin includes `processor.h`.

use super::componentize::{WitWorld, componentize};
use super::language::c_sources;
use super::toolchain::Tool;
use super::{Job, bindgen, run::run_tool};
use crate::error::{Error, Result};

/// Builds the C plugin of `job` and returns its component.
pub(crate) fn build(job: &Job<'_>) -> Result<Vec<u8>> {
    let wit_dir = job.wit_dir()?;
    let wit = WitWorld {
        dir: &wit_dir,
        world: job.manifest.world.name(),
    };
    let build_dir = job.build_dir()?;
    let generated_dir = build_dir.join("c");
    let generated = bindgen::generate(
        wit_bindgen_c::Opts::default().build(),
        &wit,
        &generated_dir,
        &[],
        job.dir,
    )?;
    let core = build_dir.join("core.wasm");
    job.progress(&format!("compiling {} with zig cc", job.manifest.name));
    let mut command = job.tool(Tool::Zig)?;
    command
        .args([
            "cc",
            "-target",
            "wasm32-wasi",
            "-mexec-model=reactor",
            "-O2",
            "-s",
            "-Wall",
            // zig's default 16 MiB stack would be linear memory every
            // instance pays for up front; 1 MiB is plenty for a plugin.
            "-Wl,-z,stack-size=1048576",
        ])
        .arg("-I")
        .arg(&generated_dir)
        .arg("-I")
        .arg(job.dir)
        .arg("-o")
        .arg(&core)
        .args(c_sources(job.dir))
        .args(
            generated
                .iter()
                .filter(|f| f.extension().is_some_and(|e| e == "c" || e == "o")),
        );
    run_tool(command, job.dir, "zig cc")?;
    let core = std::fs::read(&core).map_err(|e| Error::io(&core, e))?;
    componentize(&core, None, job.dir)
}
