//! `warden list`: the plugins in a directory, loaded to show their state.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::args::{Global, ListArgs};
use crate::host;

#[derive(Serialize)]
struct Row {
    name: String,
    version: String,
    world: String,
    /// The contract version the component targets (`?` when it failed).
    contract: String,
    size: Option<usize>,
    status: String,
    path: String,
    /// What the manifest asks for.
    requested: Vec<String>,
    /// What the plugin got under this host's grants (empty when it failed).
    permissions: Vec<String>,
}

pub fn run(global: &Global, args: &ListArgs) -> Result<ExitCode> {
    let host = host::host(global)?;
    let mut rows = Vec::new();
    for dir in warden::discover(&args.dir)? {
        let row = match host.load_blocking(&dir) {
            Ok(plugin) => {
                let info = plugin.info();
                let status = match plugin.status_blocking() {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("error: {e}"),
                };
                Row {
                    name: info.name.clone(),
                    version: info.version.to_string(),
                    world: info.world.to_string(),
                    contract: info.contract.to_string(),
                    size: Some(info.size),
                    status,
                    path: dir.display().to_string(),
                    requested: info.requested.describe(),
                    permissions: info.permissions.describe(),
                }
            }
            Err(e) => {
                let manifest = warden::Manifest::from_file(&dir.join(warden::MANIFEST_FILE)).ok();
                Row {
                    name: manifest
                        .as_ref()
                        .map_or_else(|| dir.display().to_string(), |m| m.name.clone()),
                    version: manifest
                        .as_ref()
                        .map_or_else(|| "?".into(), |m| m.version.to_string()),
                    world: manifest
                        .as_ref()
                        .map_or_else(|| "?".into(), |m| m.world.to_string()),
                    contract: "?".into(),
                    size: None,
                    status: format!("error: {}", first_line(&e.to_string())),
                    path: dir.display().to_string(),
                    requested: manifest
                        .as_ref()
                        .map_or_else(Vec::new, |m| m.permissions.describe()),
                    permissions: Vec::new(),
                }
            }
        };
        rows.push(row);
    }
    host.shutdown_blocking()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("no plugins in {}", args.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let widths = [
        rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4),
        rows.iter()
            .map(|r| r.version.len())
            .max()
            .unwrap_or(0)
            .max(7),
        rows.iter().map(|r| r.world.len()).max().unwrap_or(0).max(5),
    ];
    println!(
        "{:<w0$}  {:<w1$}  {:<w2$}  {:<8}  {:>9}  STATUS",
        "NAME",
        "VERSION",
        "WORLD",
        "CONTRACT",
        "SIZE",
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    for r in &rows {
        let size = r
            .size
            .map_or_else(|| "-".to_string(), |s| format!("{} KiB", s.div_ceil(1024)));
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<8}  {:>9}  {}",
            r.name,
            r.version,
            r.world,
            r.contract,
            size,
            r.status,
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    if global.verbose {
        for r in &rows {
            println!();
            print_permissions(&r.name, &r.requested, &r.permissions);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The requested and effective permissions of one plugin, one per line.
pub fn print_permissions(name: &str, requested: &[String], effective: &[String]) {
    let none = |lines: &[String]| lines.is_empty().then_some("  none");
    println!("{name}: requested permissions");
    for line in requested.iter().map(String::as_str).chain(none(requested)) {
        println!("  {}", line.trim_start());
    }
    println!("{name}: effective permissions");
    for line in effective.iter().map(String::as_str).chain(none(effective)) {
        println!("  {}", line.trim_start());
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
