//! # warden-cluster
//!
//! Several Warden servers as one, on NATS (the engine wasmCloud's lattice
//! runs on), with nothing NATS-related in a server that is not in a
//! cluster:
//!
//! - **Calls** ([`calls`]): every node listens on one subject per plugin it
//!   has, in a queue group; a call a node cannot serve (no such plugin, all
//!   instances busy, its version out of service) goes by request/reply to
//!   one that can, and is answered with that node's own response — same
//!   errors, same limits — naming it in `x-warden-node`.
//! - **Desired state** ([`desired`]): a JetStream key-value record per
//!   plugin (versions, stable, canary) and the components by digest in a
//!   JetStream object store; a change through any node's admin API reaches
//!   every node, and a node that joins late catches up.
//! - **Events** ([`events`]): an event on one node's bus reaches the
//!   subscribers on every node.
//! - **Membership** ([`members`]): each node renews an entry with its
//!   plugins and load every heartbeat; one that stops drops out within the
//!   time-to-live.
//!
//! NATS is the cluster's trusted network: whoever may publish on it may
//! call plugins and change what runs. Give the server credentials (in the
//! URL, `nats://user:password@host:4222`) and keep it off public networks.

#![warn(missing_docs)]

mod calls;
mod desired;
mod error;
mod events;
mod members;
mod narrow;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_nats::jetstream::{self, kv, object_store};
use tokio::sync::Semaphore;
use warden::Warden;
use warden_server::remote::{BoxFuture, Remote, RemoteAnswer, RemoteCall};

pub use desired::{Desired, DesiredVersion, GrantsChange};
pub use error::{Error, Result};
pub use members::{Member, MemberPlugin};

/// The longest a leaving node waits to tell the cluster.
pub const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// The bucket of node entries.
pub const NODES_BUCKET: &str = "warden-nodes";
/// The bucket of desired-state records.
pub const DESIRED_BUCKET: &str = "warden-desired";
/// The object store of components, by digest.
pub const ARTIFACTS_BUCKET: &str = "warden-artifacts";

/// How a node joins.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The NATS server, `nats://host:4222`.
    pub nats: String,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// The node's data directory; fetched plugins go under `cluster/`.
    pub data_dir: PathBuf,
    /// Forwarded calls this node serves at once; more are answered busy.
    pub max_concurrency: usize,
    /// The longest a forwarded call may run here, whatever its caller asks.
    pub max_call_time: Duration,
    /// The largest input a forwarded call may bring here (this node's own
    /// `server.max-body-bytes`, whatever the caller's is).
    pub max_input_bytes: usize,
    /// The most options a forwarded call may pass here (`server.max-options`).
    pub max_options: usize,
    /// How often the node renews its membership.
    pub heartbeat: Duration,
    /// How long after its last renewal a node drops out of the list.
    pub ttl: Duration,
}

impl ClusterSettings {
    /// Settings for node `node` on `nats`, with the defaults: a heartbeat
    /// every second, out after three.
    pub fn new(
        nats: impl Into<String>,
        node: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        ClusterSettings {
            nats: nats.into(),
            node: node.into(),
            data_dir: data_dir.into(),
            max_concurrency: 512,
            max_call_time: Duration::from_secs(30),
            max_input_bytes: 16 << 20,
            max_options: 256,
            heartbeat: Duration::from_secs(1),
            ttl: Duration::from_secs(3),
        }
    }
}

/// A node's membership: what the server uses as its [`Remote`].
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    node: String,
    settings: ClusterSettings,
    client: async_nats::Client,
    warden: Arc<Warden>,
    nodes: kv::Store,
    desired: kv::Store,
    artifacts: object_store::ObjectStore,
    slots: Arc<Semaphore>,
    served: AtomicU64,
    forwarded: AtomicU64,
    /// Held while publishing: each publish reads the deployment after
    /// taking it, so the last record put is the latest state, whatever
    /// order the changes' tasks run in.
    publishing: tokio::sync::Mutex<()>,
}

impl Inner {
    /// Where fetched plugins are kept.
    fn store(&self) -> PathBuf {
        self.settings.data_dir.join("cluster")
    }
}

/// JetStream on `nats`, for a tool that does not join the cluster.
async fn jetstream_at(nats: &str) -> Result<jetstream::Context> {
    let client = async_nats::connect(nats)
        .await
        .map_err(|source| Error::Connect {
            url: redact(nats),
            source,
        })?;
    Ok(jetstream::new(client))
}

/// The nodes of the cluster on `nats` whose entry is younger than `ttl`,
/// without joining it.
pub async fn members_at(nats: &str, ttl: Duration) -> Result<Vec<Member>> {
    match jetstream_at(nats).await?.get_key_value(NODES_BUCKET).await {
        Ok(nodes) => Ok(members::list(&nodes, ttl).await),
        Err(_) => Ok(Vec::new()),
    }
}

/// Deploys the built plugin in `files` to every node of the cluster on
/// `nats`, without joining it: its component goes to the object store, and
/// the plugin's desired state gets the version (stable when it is the
/// first, loaded beside the stable one otherwise). `grants` sets (as
/// `--grant` takes them), keeps or clears the most any version of the
/// plugin may be granted on any node; each node still loads it under its
/// own grants and signature policy too.
pub async fn deploy_at(
    nats: &str,
    files: &warden::PluginFiles,
    grants: GrantsChange,
    by: &str,
) -> Result<Desired> {
    let js = jetstream_at(nats).await?;
    let desired = key_value(&js, DESIRED_BUCKET, Duration::ZERO).await?;
    let artifacts = object_store(&js).await?;
    desired::deploy(&desired, &artifacts, files, grants, by).await
}

/// Opens the object store of components, creating it when it does not
/// exist.
async fn object_store(js: &jetstream::Context) -> Result<object_store::ObjectStore> {
    match js.get_object_store(ARTIFACTS_BUCKET).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: ARTIFACTS_BUCKET.to_string(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::jetstream(format!("object store `{ARTIFACTS_BUCKET}`"), e)),
    }
}

/// Opens key-value bucket `bucket`, creating it (keeping one value per key,
/// each for `max_age`; zero: for ever) when it does not exist. The stream
/// is made here as the client would make it, because the client's own
/// `create_key_value` first asks for account details that the NATS 2.9
/// servers of Debian answer in a shape it cannot read.
async fn key_value(js: &jetstream::Context, bucket: &str, max_age: Duration) -> Result<kv::Store> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    let created = js
        .create_stream(jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    // Another node may have made it meanwhile.
    js.get_key_value(bucket).await.map_err(|e| match created {
        Err(created) => Error::jetstream(format!("bucket `{bucket}`"), created),
        Ok(_) => Error::jetstream(format!("bucket `{bucket}`"), e),
    })
}

impl Cluster {
    /// Connects to NATS, opens the buckets, and starts taking calls,
    /// following the desired state, bridging events and renewing
    /// membership, in tasks of the current tokio runtime.
    pub async fn join(settings: ClusterSettings, warden: Arc<Warden>) -> Result<Cluster> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("warden {}", settings.node))
            .connect(settings.nats.as_str())
            .await
            .map_err(|source| Error::Connect {
                url: redact(&settings.nats),
                source,
            })?;
        let js = jetstream::new(client.clone());
        let nodes = key_value(&js, NODES_BUCKET, settings.ttl).await?;
        let desired = key_value(&js, DESIRED_BUCKET, Duration::ZERO).await?;
        let artifacts = object_store(&js).await?;
        let inner = Arc::new(Inner {
            node: settings.node.clone(),
            slots: Arc::new(Semaphore::new(settings.max_concurrency)),
            settings,
            client,
            warden,
            nodes,
            desired,
            artifacts,
            served: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            publishing: tokio::sync::Mutex::new(()),
        });
        events::bridge(inner.clone())?;
        tokio::spawn(calls::serve(inner.clone()));
        tokio::spawn(desired::follow(inner.clone()));
        tokio::spawn(members::heartbeat(inner.clone()));
        tracing::info!(
            node = inner.node,
            nats = redact(&inner.settings.nats),
            "joined the cluster"
        );
        Ok(Cluster { inner })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The nodes, by name.
    pub async fn members(&self) -> Vec<Member> {
        members::list(&self.inner.nodes, self.inner.settings.ttl).await
    }

    /// Publishes what this node runs of `plugin` as every node's desired
    /// state.
    pub async fn publish(&self, plugin: &str) -> Result<()> {
        let _turn = self.inner.publishing.lock().await;
        desired::publish(&self.inner, plugin).await
    }

    /// Leaves: the node's entry goes at once, and its subscriptions with
    /// its connection. Given at most [`LEAVE_TIMEOUT`]: with the NATS
    /// server gone, the delete and the flush would wait for a reconnection
    /// that may never come, and the process could not stop; the entry then
    /// expires with its TTL.
    pub async fn leave(&self) {
        let leaving = async {
            let _ = self.inner.nodes.delete(&self.inner.node).await;
            let _ = self.inner.client.flush().await;
        };
        if tokio::time::timeout(LEAVE_TIMEOUT, leaving).await.is_err() {
            tracing::warn!(
                node = %self.inner.node,
                "could not tell the cluster this node is leaving (NATS unreachable); \
                 the other nodes drop it when its entry expires"
            );
        }
    }
}

impl Remote for Cluster {
    fn forward(&self, call: RemoteCall) -> BoxFuture<'_, Option<RemoteAnswer>> {
        Box::pin(calls::forward(&self.inner, call))
    }

    fn members(&self) -> BoxFuture<'_, serde_json::Value> {
        Box::pin(async move {
            serde_json::json!({
                "node": self.inner.node,
                "nodes": self.members().await,
            })
        })
    }

    fn changed(&self, plugin: &str) {
        let cluster = self.clone();
        let plugin = plugin.to_string();
        tokio::spawn(async move {
            if let Err(e) = cluster.publish(&plugin).await {
                tracing::error!(plugin, error = %e, "cannot publish the change to the cluster");
            }
        });
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => url.to_string(),
    }
}
