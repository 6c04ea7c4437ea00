//! Python plugins, built with componentize-py: the module `app` (`app.py`)
//! defines one class per exported interface, named after it (`Plugin`,
//! `Processing`, `EventHandling`), and reaches the host through
//! `wit_world.imports`.

use super::toolchain::Tool;
use super::{Job, run::run_tool};
use crate::error::{Error, Result};

/// The module componentize-py is given.
const MODULE: &str = "app";

/// Builds the Python plugin of `job` and returns its component.
pub(crate) fn build(job: &Job<'_>) -> Result<Vec<u8>> {
    if !job.dir.join(format!("{MODULE}.py")).is_file() {
        return Err(job.fail(format!(
            "a Python plugin's code starts in {MODULE}.py, which is missing"
        )));
    }
    let wit_dir = job.wit_dir()?;
    let out = job.build_dir()?.join("component.wasm");
    job.progress(&format!(
        "componentizing {} with componentize-py",
        job.manifest.name
    ));
    let mut command = job.tool(Tool::ComponentizePy)?;
    command
        .arg("-d")
        .arg(&wit_dir)
        .args([
            "-w",
            job.manifest.world.name(),
            "componentize",
            MODULE,
            "-o",
        ])
        .arg(&out);
    run_tool(command, job.dir, "componentize-py")?;
    std::fs::read(&out).map_err(|e| Error::io(&out, e))
}
