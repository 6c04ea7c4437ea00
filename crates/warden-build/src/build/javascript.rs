//! JavaScript plugins, built with componentize-js (the StarlingMonkey
//! engine): one ES module (`main` of `package.json`, else `app.js`)
//! exports one object per exported interface (`plugin`, `processing`,
//! `eventHandling`) and imports the host's interfaces by their WIT names
//! (`warden:plugin/logging@0.1.0`).
//!
//! The engine's `wasi:http` support (`fetch` and the fetch-event
//! handler) is left out: plugins reach
//! HTTP only when the operator grants it, and a plugin that needs it uses
//! the contract's standard `wasi:http/outgoing-handler` like every other
//! language.

use super::toolchain::Tool;
use super::{Job, run::run_tool};
use crate::error::{Error, Result};

/// The entry module of a JavaScript plugin.
fn entry(job: &Job<'_>) -> Result<String> {
    let package = job.dir.join("package.json");
    let main = match std::fs::read_to_string(&package) {
        Ok(text) => {
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| job.fail(format!("package.json is not valid JSON: {e}")))?;
            json["main"].as_str().map(str::to_string)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&package, e)),
    };
    let main = main.unwrap_or_else(|| "app.js".to_string());
    if !job.dir.join(&main).is_file() {
        return Err(job.fail(format!(
            "the plugin's module {main} is missing (package.json's `main`, else app.js)"
        )));
    }
    Ok(main)
}

/// Builds the JavaScript plugin of `job` and returns its component.
pub(crate) fn build(job: &Job<'_>) -> Result<Vec<u8>> {
    let main = entry(job)?;
    let wit_dir = job.wit_dir()?;
    let out = job.build_dir()?.join("component.wasm");
    job.progress(&format!(
        "componentizing {} with componentize-js",
        job.manifest.name
    ));
    let mut command = job.tool(Tool::ComponentizeJs)?;
    command
        // The entry first: `--disable` takes every value after it.
        .arg(&main)
        .arg("--wit")
        .arg(&wit_dir)
        .args(["--world-name", job.manifest.world.name(), "-o"])
        .arg(&out)
        .args(["--disable", "http", "fetch-event"]);
    run_tool(command, job.dir, "componentize-js")?;
    std::fs::read(&out).map_err(|e| Error::io(&out, e))
}
