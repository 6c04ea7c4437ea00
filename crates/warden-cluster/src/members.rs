//! Membership: every node puts what it is — its plugins and load — into a
//! key-value bucket every heartbeat, under its name, and the bucket forgets
//! entries older than the time-to-live. A node that stops (or is killed)
//! stops renewing its entry and drops out of the list within that time;
//! its calls already went elsewhere when its connection closed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::Inner;

/// A node, as the others see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    /// Its name (`[cluster] name`).
    pub node: String,
    /// Its plugins: name, stable version, every loaded version.
    pub plugins: Vec<MemberPlugin>,
    /// Calls its plugins have served, all versions together.
    pub calls: u64,
    /// Forwarded calls it is serving now.
    pub forwarded_in_flight: usize,
    /// Forwarded calls it has served.
    pub forwarded_served: u64,
    /// Calls it has forwarded to others.
    pub forwarded_sent: u64,
    /// When it last said so, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// A plugin a node has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberPlugin {
    /// Its name.
    pub name: String,
    /// The version serving unqualified calls.
    pub stable: String,
    /// Every loaded version.
    pub versions: Vec<String>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What this node is now.
fn this_node(inner: &Inner) -> Member {
    let deployments = inner.warden.deployments();
    let calls = deployments
        .iter()
        .flat_map(|d| d.versions.iter())
        .map(|v| v.metrics.calls)
        .sum();
    Member {
        node: inner.node.clone(),
        plugins: deployments
            .iter()
            .map(|d| MemberPlugin {
                name: d.plugin.clone(),
                stable: d.stable.to_string(),
                versions: d.versions.iter().map(|v| v.version.to_string()).collect(),
            })
            .collect(),
        calls,
        forwarded_in_flight: inner.settings.max_concurrency - inner.slots.available_permits(),
        forwarded_served: inner.served.load(Ordering::Relaxed),
        forwarded_sent: inner.forwarded.load(Ordering::Relaxed),
        at_ms: now_ms(),
    }
}

/// Renews this node's entry every heartbeat, for as long as the node runs.
pub(crate) async fn heartbeat(inner: Arc<Inner>) {
    loop {
        let member = this_node(&inner);
        match serde_json::to_vec(&member) {
            Ok(json) => {
                if let Err(e) = inner.nodes.put(&inner.node, Bytes::from(json)).await {
                    tracing::warn!(error = %e, "cannot renew this node's cluster membership");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot encode this node's membership"),
        }
        tokio::time::sleep(inner.settings.heartbeat).await;
    }
}

/// The nodes whose entry is younger than `ttl`, by name.
pub async fn list(nodes: &kv::Store, ttl: Duration) -> Vec<Member> {
    let mut members = Vec::new();
    let Ok(mut keys) = nodes.keys().await else {
        return members;
    };
    let oldest = now_ms().saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    while let Some(Ok(key)) = keys.next().await {
        if let Ok(Some(value)) = nodes.get(&key).await
            && let Ok(member) = serde_json::from_slice::<Member>(&value)
            && member.at_ms >= oldest
        {
            members.push(member);
        }
    }
    members.sort_by(|a, b| a.node.cmp(&b.node));
    members
}
