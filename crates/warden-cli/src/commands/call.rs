//! `warden call`: one `process` call, output to stdout.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use warden::ProcessRequest;

use crate::args::{CallArgs, Global};
use crate::host;

pub fn run(global: &Global, args: &CallArgs) -> Result<ExitCode> {
    if let Some(module) = host::core_module_path(&args.plugin, &args.dir) {
        return run_module(global, args, &module);
    }
    if args.export.is_some() {
        anyhow::bail!(
            "{} is a component; --export and --args are for core modules",
            args.plugin
        );
    }
    let input = read_input(args)?;
    let started = Instant::now();
    let host = host::host(global)?;
    let plugin = host::load(&host, &args.plugin, &args.dir)?;
    let loaded = started.elapsed();
    if global.verbose {
        let info = plugin.info();
        eprintln!(
            "plugin   {} {} ({}, {} bytes, {:?})",
            info.name, info.version, info.world, info.size, info.cache
        );
        if let Ok(meta) = plugin.metadata_blocking() {
            eprintln!(
                "metadata {} {} by {}: {}",
                meta.name, meta.version, meta.author, meta.description
            );
        }
    }
    let mut request = ProcessRequest::new(input).content_type(&args.content_type);
    for (k, v) in &args.options {
        request = request.option(k, v);
    }
    let call_started = Instant::now();
    let response = plugin.process_blocking(request)?;
    let call_time = call_started.elapsed();
    if global.verbose {
        eprintln!(
            "timing   load {:.1} ms, call {:.3} ms; {} items, {} bytes of {}",
            loaded.as_secs_f64() * 1e3,
            call_time.as_secs_f64() * 1e3,
            response.items_processed,
            response.output.len(),
            response.content_type
        );
    }
    if args.json {
        let output = match std::str::from_utf8(&response.output) {
            Ok(text) => serde_json::json!({ "output": text }),
            Err(_) => serde_json::json!({ "output_hex": hex(&response.output) }),
        };
        let mut doc = serde_json::json!({
            "plugin": plugin.name(),
            "version": plugin.info().version.to_string(),
            "content_type": response.content_type,
            "items_processed": response.items_processed,
            "call_ms": call_time.as_secs_f64() * 1e3,
        });
        if let (Some(doc), Some(out)) = (doc.as_object_mut(), output.as_object()) {
            doc.extend(out.clone());
        }
        println!("{doc}");
    } else if let Some(file) = &args.output_file {
        std::fs::write(file, &response.output)
            .with_context(|| format!("writing {}", file.display()))?;
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&response.output)?;
        if std::io::stdout().is_terminal() && !response.output.ends_with(b"\n") {
            stdout.write_all(b"\n")?;
        }
        stdout.flush()?;
    }
    host.shutdown_blocking()?;
    Ok(ExitCode::SUCCESS)
}

fn read_input(args: &CallArgs) -> Result<Vec<u8>> {
    if let Some(text) = &args.input {
        return Ok(text.clone().into_bytes());
    }
    if let Some(file) = &args.input_file {
        return std::fs::read(file)
            .with_context(|| format!("reading input file {}", file.display()));
    }
    let mut input = Vec::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin()
            .read_to_end(&mut input)
            .context("reading stdin")?;
    }
    Ok(input)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A core-module plugin: one numeric export (`--export` with `--args`), or,
/// for the JSON ABI, `execute` on the input.
fn run_module(global: &Global, args: &CallArgs, path: &std::path::Path) -> Result<ExitCode> {
    let host = host::host(global)?;
    let module = host.load_module_blocking(path)?;
    if global.verbose {
        eprintln!(
            "module   {} {} (core module, {} ABI)",
            module.name(),
            module.manifest().version,
            module.abi().name()
        );
    }
    let text = match &args.export {
        Some(export) => {
            let results = module.call_text_blocking(export, &args.args)?;
            if args.json {
                serde_json::to_string(&results)?
            } else {
                results
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }
        None if module.abi() == warden::module::ModuleAbi::Json => {
            let input = read_input(args)?;
            serde_json::to_string(&module.execute_json_blocking(&input)?)?
        }
        None => return Err(nothing_to_call(&args.plugin, &module)),
    };
    match &args.output_file {
        Some(file) => {
            std::fs::write(file, &text).with_context(|| format!("writing {}", file.display()))?
        }
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a numeric-exports module called without `--export` was not run,
/// and what to call instead.
fn nothing_to_call(plugin: &str, module: &warden::module::CoreModule) -> anyhow::Error {
    let exports = module.exports();
    if exports.is_empty() {
        return anyhow::anyhow!(
            "{plugin} is a core module without function exports: nothing to call (a component \
             plugin is built for wasm32-wasip2)"
        );
    }
    // Component exports (`iface#func`, `cabi_realloc`) in a core module: a
    // plugin built for the wrong target.
    if exports
        .iter()
        .any(|e| e.name.contains('#') || e.name == "cabi_realloc")
    {
        return anyhow::anyhow!(
            "{plugin} is a core WebAssembly module, not a component: build the plugin for \
             wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
        );
    }
    let signatures: Vec<String> = exports
        .iter()
        .map(|e| format!("{}({})", e.name, e.params.join(", ")))
        .collect();
    anyhow::anyhow!(
        "{} has numeric exports; call one with --export NAME --args ...: {}",
        module.name(),
        signatures.join(", ")
    )
}
