//! `warden status` and `warden history`: the deployments kept in the data
//! directory, loaded to show each version's state, and their history.

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Global, HistoryArgs, StatusArgs};
use crate::host;

pub fn status(global: &Global, args: &StatusArgs) -> Result<ExitCode> {
    let host = host::deployed(global)?;
    let deployments = match &args.name {
        Some(name) => vec![host.deployment(name)?],
        None => host.deployments(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&deployments)?);
        return Ok(ExitCode::SUCCESS);
    }
    if deployments.is_empty() {
        eprintln!(
            "nothing is deployed in {}; deploy a plugin with `warden deploy <dir>`",
            global.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<10} {:<10} {:>6}  {:<12} SOURCE",
        "PLUGIN", "VERSION", "ROLE", "SHARE", "STATE"
    );
    for d in &deployments {
        let candidate_share = d.canary.as_ref().map_or(0.0, |c| c.percent);
        for v in &d.versions {
            let share = match v.role {
                warden::Role::Stable => 100.0 - candidate_share,
                warden::Role::Candidate => candidate_share,
                warden::Role::Pinned => 0.0,
            };
            println!(
                "{:<20} {:<10} {:<10} {:>5}%  {:<12} {}",
                d.plugin,
                v.version.to_string(),
                format!("{:?}", v.role).to_lowercase(),
                share,
                v.state.to_string(),
                v.source
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
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
