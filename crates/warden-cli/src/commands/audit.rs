//! `warden audit`: the host's audit log, filtered.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Result;
use warden::{AuditLog, AuditQuery};

use crate::args::{AuditArgs, Global};

pub fn run(global: &Global, args: &AuditArgs) -> Result<ExitCode> {
    let log = AuditLog::open(&global.data_dir, u64::MAX)?;
    let query = AuditQuery {
        plugin: args.plugin.clone(),
        since: args.since.as_deref().map(parse_since).transpose()?,
        kind: args.kind,
        limit: args.limit,
    };
    let entries = log.query(&query)?;
    if args.json {
        for e in &entries {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        eprintln!(
            "no audit entries in {} match",
            global.data_dir.join(warden::AUDIT_DIR).display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    for e in &entries {
        println!(
            "{}  {} {}  {}  {}  {}  -> {}",
            humantime::format_rfc3339_seconds(e.time),
            e.plugin,
            e.version,
            e.call_id.as_deref().unwrap_or("-"),
            e.kind,
            e.resource,
            e.action
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// An RFC 3339 time, or a duration before now.
fn parse_since(text: &str) -> Result<SystemTime> {
    warden::parse_since(text).map_err(|e| anyhow::anyhow!("--since {e}"))
}
