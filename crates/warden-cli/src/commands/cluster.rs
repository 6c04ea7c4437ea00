//! `warden cluster`, and joining one: `warden serve` and `warden up` with
//! `[cluster]` (or `--cluster`) run as a node of a cluster on NATS.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use warden::Warden;
use warden_cluster::{Cluster, ClusterSettings};
use warden_server::ServeSettings;

use crate::args::{ClusterArgs, ServeArgs};
use crate::commands::oci::block_on;
use crate::config::AppConfig;

/// The node's settings, when the config or the command line names a
/// cluster.
pub fn settings(
    config: &AppConfig,
    args: &ServeArgs,
    serve: &ServeSettings,
) -> Result<Option<ClusterSettings>> {
    let Some(nats) = args.cluster.clone().or_else(|| config.cluster.nats.clone()) else {
        return Ok(None);
    };
    let node = match args.node.clone().or_else(|| config.cluster.name.clone()) {
        Some(node) => node,
        None => host_name(),
    };
    let valid = !node.is_empty()
        && node.len() <= 64
        && node
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !valid {
        bail!(
            "cluster node name `{node}` (`cluster.name` or `--node`): use 1 to 64 letters, \
             digits, `-` and `_`"
        );
    }
    let mut settings = ClusterSettings::new(nats, node, config.data_dir());
    settings.max_concurrency = serve.max_concurrency;
    settings.max_call_time = serve.request_timeout;
    settings.max_input_bytes = serve.max_body_bytes;
    settings.max_options = serve.max_options;
    Ok(Some(settings))
}

/// The machine's name, the default node name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| {
            h.trim()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        })
        .unwrap_or_else(|_| "warden".to_string())
}

/// Joins the cluster `settings` names.
pub async fn join(settings: ClusterSettings, warden: Arc<Warden>) -> Result<Cluster> {
    let node = settings.node.clone();
    Cluster::join(settings, warden)
        .await
        .with_context(|| format!("joining the cluster as node `{node}`"))
}

pub fn list(args: &ClusterArgs) -> Result<ExitCode> {
    let config = AppConfig::load_or_default(&args.file)?;
    let nats = args
        .nats
        .clone()
        .or_else(|| config.cluster.nats.clone())
        .ok_or_else(|| {
            anyhow!(
                "no cluster: give `--nats URL` or `[cluster] nats` in {}",
                args.file.display()
            )
        })?;
    let members =
        block_on(async { Ok(warden_cluster::members_at(&nats, Duration::from_secs(3)).await?) })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&members)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:>8} {:>10} {:>10}  PLUGINS",
        "NODE", "CALLS", "FWD-IN", "FWD-OUT"
    );
    for m in &members {
        let plugins: Vec<String> = m
            .plugins
            .iter()
            .map(|p| format!("{} {}", p.name, p.stable))
            .collect();
        println!(
            "{:<20} {:>8} {:>10} {:>10}  {}",
            m.node,
            m.calls,
            m.forwarded_served,
            m.forwarded_sent,
            plugins.join(", ")
        );
    }
    if members.is_empty() {
        eprintln!(
            "no node is in the cluster at {}",
            warden_cluster::redact(&nats)
        );
    }
    Ok(ExitCode::SUCCESS)
}
