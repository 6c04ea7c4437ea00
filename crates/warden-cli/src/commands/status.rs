//! `warden status` and `warden history`: the deployments kept in the data
//! directory, loaded to show each version's state, and their history.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::args::{Global, HistoryArgs, StatusArgs};
use crate::host;

pub fn status(global: &Global, args: &StatusArgs) -> Result<ExitCode> {
    let deployments = match &args.server {
        Some(url) => served(url, args.name.as_deref())?,
        None => {
            let host = host::deployed(global)?;
            let deployments = match &args.name {
                Some(name) => vec![host.deployment(name)?],
                None => host.deployments(),
            };
            deployments
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&deployments)?);
        return Ok(ExitCode::SUCCESS);
    }
    if deployments.is_empty() {
        match &args.server {
            Some(url) => eprintln!("{url} serves no plugin"),
            None => eprintln!(
                "nothing is deployed in {}; deploy a plugin with `warden deploy <dir>`",
                global.data_dir.display()
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<10} {:<10} {:>6}  {:<12} {:>5} {:>9} {:>9} {:>8}  SOURCE",
        "PLUGIN", "VERSION", "ROLE", "SHARE", "STATE", "INST", "MEMORY", "CODE", "RECYCLED"
    );
    for d in &deployments {
        let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or("?").to_string();
        let number = |v: &serde_json::Value, key: &str| v["metrics"][key].as_u64().unwrap_or(0);
        let candidate_share = d["canary"]["percent"].as_f64().unwrap_or(0.0);
        for v in d["versions"].as_array().into_iter().flatten() {
            let role = text(v, "role");
            let share = match role.as_str() {
                "stable" => 100.0 - candidate_share,
                "candidate" => candidate_share,
                _ => 0.0,
            };
            println!(
                "{:<20} {:<10} {:<10} {:>5}%  {:<12} {:>5} {:>6.1}MiB {:>6.1}MiB {:>8}  {}",
                text(d, "plugin"),
                text(v, "version"),
                role,
                share,
                text(v, "state"),
                number(v, "instances_busy") + number(v, "instances_idle"),
                number(v, "memory_bytes") as f64 / f64::from(1 << 20),
                number(v, "code_bytes") as f64 / f64::from(1 << 20),
                number(v, "instances_recycled"),
                v["source"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The deployments the server at `url` reports, or only plugin `name`'s.
fn served(url: &str, name: Option<&str>) -> Result<Vec<serde_json::Value>> {
    let url = url.trim_end_matches('/');
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let get = |path: &str| -> Result<serde_json::Value> {
        let mut response = agent
            .get(format!("{url}{path}"))
            .call()
            .with_context(|| format!("asking {url}{path}"))?;
        Ok(response.body_mut().read_json()?)
    };
    let names: Vec<String> = match name {
        Some(name) => vec![name.to_string()],
        None => get("/v1/plugins")?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect(),
    };
    names
        .iter()
        .map(|name| Ok(get(&format!("/v1/plugins/{name}"))?["deployment"].take()))
        .collect()
}

pub fn history(global: &Global, args: &HistoryArgs) -> Result<ExitCode> {
    let host = host::host(global)?;
    let entries = host.history(&args.name, args.limit)?;
    if args.json {
        for e in &entries {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        eprintln!("no deployment history for `{}`", args.name);
    }
    for e in &entries {
        println!(
            "{}  {:<13} {:<10} {}",
            humantime::format_rfc3339_seconds(e.at),
            e.action.as_str(),
            e.version,
            e.detail
        );
    }
    Ok(ExitCode::SUCCESS)
}
