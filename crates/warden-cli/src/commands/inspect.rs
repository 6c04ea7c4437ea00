//! `warden inspect`: a component's imports and exports as WIT, plus the
//! metadata it reports when loaded; for a core module, its ABI and exports.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::args::{Global, InspectArgs};
use crate::host;

pub fn run(global: &Global, args: &InspectArgs) -> Result<ExitCode> {
    if host::is_core_module(&args.path) {
        return run_module(global, args);
    }
    let wasm = component_file(&args.path)?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let inspection = warden::inspect::inspect(&bytes, &wasm.display().to_string())?;
    let host = host::host(global)?;
    let loaded = host.load_blocking(&args.path);
    let effective = loaded
        .as_ref()
        .map_or_else(|_| Vec::new(), |p| p.info().permissions.describe());
    let requested = loaded.as_ref().map_or_else(
        |_| {
            warden::Manifest::from_file(&args.path.join(warden::MANIFEST_FILE))
                .map_or_else(|_| Vec::new(), |m| m.permissions.describe())
        },
        |p| p.info().requested.describe(),
    );
    let options = loaded
        .as_ref()
        .ok()
        .filter(|p| p.info().world == warden::World::Processor)
        .and_then(|p| p.describe_options_blocking().ok().flatten());
    let metadata = loaded.and_then(|p| p.metadata_blocking());
    host.shutdown_blocking()?;
    if args.json {
        let doc = serde_json::json!({
            "file": wasm.display().to_string(),
            "inspection": inspection,
            "metadata": metadata.as_ref().ok(),
            "options": options,
            "requested_permissions": requested,
            "effective_permissions": effective,
            "load_error": metadata.as_ref().err().map(|e| e.to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("file:    {}", wasm.display());
    println!("size:    {} bytes", inspection.size);
    println!("sha256:  {}", inspection.sha256);
    println!(
        "contract: {}",
        match (&inspection.contract, &inspection.contract_error) {
            (Some(version), _) => format!("warden:plugin@{version}"),
            (None, Some(why)) => why.clone(),
            (None, None) => "none".to_string(),
        }
    );
    println!(
        "world:   {}",
        inspection
            .world
            .map_or("none (not a warden plugin)".to_string(), |w| w.to_string())
    );
    match &metadata {
        Ok(m) => {
            println!("name:    {} {}", m.name, m.version);
            println!("author:  {}", m.author);
            println!("about:   {}", m.description);
        }
        Err(e) => println!(
            "metadata unavailable: {}",
            e.to_string().lines().next().unwrap_or("")
        ),
    }
    if let Some(options) = &options {
        println!("options:");
        for o in options {
            let mut line = format!("  {:<12} {}", o.name, o.description);
            if !o.values.is_empty() {
                line.push_str(&format!(" [{}]", o.values.join("|")));
            }
            if let Some(default) = &o.default {
                line.push_str(&format!(" (default {default})"));
            }
            println!("{line}");
        }
    }
    crate::commands::list::print_permissions("plugin", &requested, &effective);
    println!("imports: {}", inspection.imports.join(", "));
    println!("exports: {}", inspection.exports.join(", "));
    println!();
    println!("{}", inspection.wit.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// The `.wasm` for `path`: the file itself, or the component a plugin
/// directory's manifest names.
fn component_file(path: &std::path::Path) -> Result<PathBuf> {
    if path.is_dir() {
        let manifest = warden::Manifest::from_file(&path.join(warden::MANIFEST_FILE))?;
        Ok(manifest.component_path(path))
    } else {
        Ok(path.to_path_buf())
    }
}

/// A core module: its ABI (declared, or detected from its exports), whether
/// it gets WASI, its exports' signatures and, for the JSON ABI, its `meta`.
fn run_module(global: &Global, args: &InspectArgs) -> Result<ExitCode> {
    let host = host::host(global)?;
    let module = host.load_module_blocking(&args.path)?;
    // A broken `meta` is shown, not fatal: inspect is for finding out why.
    let meta = match module.abi() {
        warden::module::ModuleAbi::Json => Some(
            module
                .meta_blocking()
                .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() })),
        ),
        warden::module::ModuleAbi::Exports => None,
    };
    let manifest = module.manifest();
    if args.json {
        let doc = serde_json::json!({
            "file": args.path.display().to_string(),
            "kind": "core-module",
            "name": manifest.name,
            "version": manifest.version.to_string(),
            "abi": manifest.abi,
            "wasi": manifest.wasi,
            "exports": module.exports(),
            "meta": meta,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("core module {} {}", manifest.name, manifest.version);
    println!("abi         {}", manifest.abi.name());
    println!(
        "wasi        {}",
        if manifest.wasi {
            "preview1 (sandboxed)"
        } else {
            "none"
        }
    );
    println!("exports");
    for export in module.exports() {
        println!(
            "  {}({}) -> ({})",
            export.name,
            export.params.join(", "),
            export.results.join(", ")
        );
    }
    if let Some(meta) = meta {
        println!("meta        {meta}");
    }
    Ok(ExitCode::SUCCESS)
}
