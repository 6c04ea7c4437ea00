//! Desired state: one record per plugin in a JetStream key-value bucket —
//! its versions (each a component digest, its manifest and signature), the
//! stable one and the canary — and the components themselves in a
//! JetStream object store, by digest. A node whose admin API changed a
//! plugin publishes what it now runs; every other node converges to each
//! record it sees, and one that joins late sees every current record
//! first. A record may narrow what its plugin is granted (never widen it:
//! each node still applies its own grants and signature policy when it
//! loads what it fetched).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::Operation;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use warden::{MANIFEST_FILE, PluginFiles, sha256_hex};

use crate::Inner;
use crate::error::{Error, Result};
use crate::members::now_ms;
use crate::narrow::{fetched_within, parse_grants, running_within};

/// The largest component a node fetches from the object store.
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// What should run of one plugin, on every node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Desired {
    /// The plugin.
    pub plugin: String,
    /// The version serving unqualified calls.
    pub stable: String,
    /// The canary: a version and its share of calls, in percent.
    pub canary: Option<(String, f64)>,
    /// Every version that should be loaded.
    pub versions: Vec<DesiredVersion>,
    /// The most any version may be granted, as `--grant` takes them
    /// (`http:https://api.example.com`, `kv:orders`). Each node applies its
    /// own grants as well, so these can only narrow them: a version whose
    /// manifest asks for more is loaded by no node. `None`: each node's own
    /// grants alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<String>>,
    /// The node that published it.
    pub by: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// What a deploy does to a record's grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantsChange {
    /// Keeps what the record holds (none for a new record).
    Keep,
    /// Makes these (as `--grant` takes them) the most any version may be
    /// granted.
    Set(Vec<String>),
    /// Takes the record's grants away: each node's own grants alone decide.
    Clear,
}

/// One version of a plugin, as nodes fetch it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DesiredVersion {
    /// The version.
    pub version: String,
    /// The component's digest, `sha256:…`: its name in the object store.
    pub digest: String,
    /// The `plugin.toml` text.
    pub manifest: String,
    /// The `plugin.sig` text, when signed.
    pub signature: Option<String>,
}

/// Stores `files`' component in the object store under its digest, unless
/// it is there; the version as a record holds it.
async fn store_artifact(
    artifacts: &async_nats::jetstream::object_store::ObjectStore,
    files: &PluginFiles,
) -> Result<DesiredVersion> {
    let hex = sha256_hex(&files.component);
    if artifacts.info(&hex).await.is_err() {
        artifacts
            .put(hex.as_str(), &mut files.component.as_slice())
            .await
            .map_err(|e| Error::jetstream("storing an artifact", e))?;
    }
    Ok(DesiredVersion {
        version: files.version.to_string(),
        digest: format!("sha256:{hex}"),
        manifest: files.manifest_text.clone(),
        signature: files.signature.clone(),
    })
}

/// How often a read-modify-write of a record is tried when another writer
/// gets in between.
const WRITE_ATTEMPTS: u32 = 5;

/// The record of `plugin` in the desired state (if there is a readable
/// one) and its revision, which a write must still find to succeed (0:
/// none yet).
async fn current(
    desired: &async_nats::jetstream::kv::Store,
    plugin: &str,
) -> Result<(Option<Desired>, u64)> {
    let entry = desired
        .entry(plugin)
        .await
        .map_err(|e| Error::jetstream("reading desired state", e))?;
    Ok(match entry {
        Some(entry) => (
            (entry.operation == Operation::Put)
                .then(|| serde_json::from_slice::<Desired>(&entry.value).ok())
                .flatten(),
            entry.revision,
        ),
        None => (None, 0),
    })
}

/// Writes `record` if its key is still at `revision`; `false` when another
/// writer changed it first.
async fn put_record(
    desired: &async_nats::jetstream::kv::Store,
    record: &Desired,
    revision: u64,
) -> Result<bool> {
    let json = serde_json::to_vec(record).map_err(|e| Error::Record {
        plugin: record.plugin.clone(),
        message: e.to_string(),
    })?;
    match desired
        .update(&record.plugin, Bytes::from(json), revision)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == async_nats::jetstream::kv::UpdateErrorKind::WrongLastRevision => {
            Ok(false)
        }
        Err(e) => Err(Error::jetstream("publishing desired state", e)),
    }
}

/// The error for a record that kept changing under a writer.
fn contended(plugin: &str) -> Error {
    Error::Record {
        plugin: plugin.to_string(),
        message: format!(
            "it changed {WRITE_ATTEMPTS} times while this change was being written; try again"
        ),
    }
}

/// Adds the plugin in `files` to the desired state of the cluster behind
/// `js`, as `warden deploy` does on one host: the first version of a name
/// serves, a later one is loaded beside it (no share of calls until a
/// canary gives it one), and `grants` changes what the record grants.
/// `by` names who deployed it.
pub(crate) async fn deploy(
    desired: &async_nats::jetstream::kv::Store,
    artifacts: &async_nats::jetstream::object_store::ObjectStore,
    files: &PluginFiles,
    grants: GrantsChange,
    by: &str,
) -> Result<Desired> {
    if let GrantsChange::Set(specs) = &grants {
        parse_grants(&files.name, specs)?;
    }
    let version = files.version.to_string();
    let added = store_artifact(artifacts, files).await?;
    for _ in 0..WRITE_ATTEMPTS {
        let (current, revision) = current(desired, &files.name).await?;
        if current
            .as_ref()
            .is_some_and(|c| c.versions.iter().any(|v| v.version == version))
        {
            return Err(Error::Record {
                plugin: files.name.clone(),
                message: format!(
                    "version {version} is deployed already; give the build a new version"
                ),
            });
        }
        let mut record = current.unwrap_or_else(|| Desired {
            plugin: files.name.clone(),
            stable: version.clone(),
            canary: None,
            versions: Vec::new(),
            grants: None,
            by: String::new(),
            at_ms: 0,
        });
        record.versions.push(added.clone());
        match &grants {
            GrantsChange::Keep => {}
            GrantsChange::Set(specs) => record.grants = Some(specs.clone()),
            GrantsChange::Clear => record.grants = None,
        }
        record.by = by.to_string();
        record.at_ms = now_ms();
        if put_record(desired, &record, revision).await? {
            return Ok(record);
        }
    }
    Err(contended(&files.name))
}

/// Publishes what this node runs of `plugin` as the desired state of every
/// node (or, when it no longer runs it, removes the record), keeping the
/// record's grants: nothing is published when a version this node runs
/// asks for more than they allow.
pub(crate) async fn publish(inner: &Inner, plugin: &str) -> Result<()> {
    let Ok(status) = inner.warden.deployment(plugin) else {
        inner
            .desired
            .delete(plugin)
            .await
            .map_err(|e| Error::jetstream("removing desired state", e))?;
        return Ok(());
    };
    let mut versions = Vec::new();
    for v in &status.versions {
        if let Some(source) = &v.source {
            let files = PluginFiles::read(source)?;
            // Rebuilt in place since it was loaded: what is on disk is not
            // what runs, and must not go to the other nodes as if it were.
            if files.version != v.version {
                return Err(Error::Record {
                    plugin: plugin.to_string(),
                    message: format!(
                        "{} now holds version {}, not the {} this node runs; reload it first",
                        source.display(),
                        files.version,
                        v.version
                    ),
                });
            }
            versions.push(store_artifact(&inner.artifacts, &files).await?);
        }
    }
    for _ in 0..WRITE_ATTEMPTS {
        let (current, revision) = current(&inner.desired, plugin).await?;
        let grants = current.and_then(|record| record.grants);
        if let Some(limit) = grants
            .as_deref()
            .map(|specs| parse_grants(plugin, specs))
            .transpose()?
        {
            for v in &status.versions {
                running_within(inner, &limit, plugin, &v.version.to_string())?;
            }
        }
        let record = Desired {
            plugin: plugin.to_string(),
            stable: status.stable.to_string(),
            canary: status
                .canary
                .as_ref()
                .map(|c| (c.version.to_string(), c.percent)),
            versions: versions.clone(),
            grants,
            by: inner.node.clone(),
            at_ms: now_ms(),
        };
        if put_record(&inner.desired, &record, revision).await? {
            return Ok(());
        }
    }
    Err(contended(plugin))
}

/// Follows the desired state for as long as the node runs: every current
/// record first, then every change.
pub(crate) async fn follow(inner: Arc<Inner>) {
    loop {
        match inner.desired.watch_with_history(">").await {
            Ok(mut watch) => {
                while let Some(entry) = watch.next().await {
                    let Ok(entry) = entry else { break };
                    let plugin = entry.key.clone();
                    let outcome = match entry.operation {
                        Operation::Put => match serde_json::from_slice::<Desired>(&entry.value) {
                            Ok(record) if record.by == inner.node => Ok(()),
                            Ok(record) => converge(&inner, &record).await,
                            Err(e) => Err(Error::Record {
                                plugin: plugin.clone(),
                                message: e.to_string(),
                            }),
                        },
                        Operation::Delete | Operation::Purge => forget(&inner, &plugin).await,
                    };
                    if let Err(e) = outcome {
                        tracing::error!(plugin, error = %e, "cannot converge to the cluster's desired state");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch the cluster's desired state"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Makes this node run what `record` says: each version fetched (unless
/// it runs here already) and held to the record's grants, the permitted
/// ones loaded, the stable one first, and every other version unloaded —
/// also when some version failed, so that nothing outside the record's
/// grants keeps running.
async fn converge(inner: &Inner, record: &Desired) -> Result<()> {
    let warden = &inner.warden;
    let name = record.plugin.as_str();
    let limit = record
        .grants
        .as_deref()
        .map(|specs| parse_grants(name, specs))
        .transpose()?;
    let mut failed: Option<Error> = None;
    let mut fail = |version: &str, e: Error| {
        tracing::error!(plugin = name, version, error = %e, "a version of the cluster's desired state is not loaded");
        failed.get_or_insert(e);
    };
    // Each permitted version, with the directory to deploy it from when it
    // does not run here yet.
    let mut permitted: Vec<(&DesiredVersion, Option<PathBuf>)> = Vec::new();
    for version in &record.versions {
        if permitted.iter().any(|(v, _)| v.version == version.version) {
            continue;
        }
        let running = warden.get(&format!("{name}@{}", version.version)).is_ok();
        let checked = if running {
            match &limit {
                Some(limit) => running_within(inner, limit, name, &version.version),
                None => Ok(()),
            }
            .map(|()| None)
        } else {
            match fetch(inner, name, version).await {
                Ok(dir) => {
                    fetched_within(inner, limit.as_ref(), name, version, &dir).map(|()| Some(dir))
                }
                Err(e) => Err(e),
            }
        };
        match checked {
            Ok(dir) => permitted.push((version, dir)),
            Err(e) => fail(&version.version, e),
        }
    }
    // The stable version first, so that a node new to the plugin starts
    // with it serving.
    permitted.sort_by_key(|(v, _)| v.version != record.stable);
    for (version, dir) in &permitted {
        if let Some(dir) = dir
            && let Err(e) = warden.deploy(dir).await
        {
            fail(&version.version, e.into());
        }
    }
    let loaded: Vec<String> = warden
        .deployment(name)
        .map(|d| d.versions.iter().map(|v| v.version.to_string()).collect())
        .unwrap_or_default();
    let permits = |version: &str| {
        loaded.iter().any(|v| v == version) && permitted.iter().any(|(d, _)| d.version == version)
    };
    if !permits(&record.stable) {
        if loaded.iter().any(|v| !permits(v)) {
            warden.unload(name).await?;
        }
        return Err(failed.unwrap_or_else(|| Error::Record {
            plugin: name.to_string(),
            message: format!(
                "its stable version {} is not among its versions",
                record.stable
            ),
        }));
    }
    if warden.deployment(name)?.stable.to_string() != record.stable {
        warden.canary(name, &record.stable, 100.0)?;
        warden.promote(name).await?;
    }
    let wanted = record
        .canary
        .clone()
        .filter(|(version, _)| permits(version));
    let current = warden
        .deployment(name)?
        .canary
        .map(|c| (c.version.to_string(), c.percent));
    match (&wanted, &current) {
        _ if wanted == current => {}
        (Some((version, percent)), _) => warden.canary(name, version, *percent)?,
        (None, Some((version, _))) => warden.canary(name, version, 0.0)?,
        (None, None) => {}
    }
    for version in &loaded {
        if !permits(version) {
            warden.unload(&format!("{name}@{version}")).await?;
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    tracing::info!(
        plugin = name,
        stable = record.stable,
        by = record.by,
        "converged to the cluster's desired state"
    );
    Ok(())
}

/// Unloads a plugin the cluster no longer wants, when it came from the
/// cluster (a node's own plugins stay).
async fn forget(inner: &Inner, plugin: &str) -> Result<()> {
    let store = inner.store();
    let Ok(status) = inner.warden.deployment(plugin) else {
        return Ok(());
    };
    let from_cluster = status
        .versions
        .iter()
        .all(|v| v.source.as_ref().is_some_and(|s| s.starts_with(&store)));
    if from_cluster {
        inner.warden.unload(plugin).await?;
    }
    Ok(())
}

/// The directory holding `version` of `plugin`, fetched by digest from the
/// object store and checked against it, unless already here.
async fn fetch(inner: &Inner, plugin: &str, version: &DesiredVersion) -> Result<PathBuf> {
    let bad = |message: String| Error::Artifact {
        plugin: plugin.to_string(),
        digest: version.digest.clone(),
        message,
    };
    let hex = version
        .digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| bad("not a sha256 digest".to_string()))?;
    // The directory is named by everything it holds, so that two records
    // with one component and different manifests never share it.
    let key = sha256_hex(
        format!(
            "{hex}\n{}\n{}",
            version.manifest,
            version.signature.as_deref().unwrap_or_default()
        )
        .as_bytes(),
    );
    let store = inner.store();
    let dir = store.join(&key);
    if dir.is_dir() {
        return Ok(dir);
    }
    let mut object = inner
        .artifacts
        .get(hex)
        .await
        .map_err(|e| bad(format!("not in the object store: {e}")))?;
    if object.info.size as u64 > MAX_COMPONENT_BYTES {
        return Err(bad(format!(
            "{} bytes, more than the {MAX_COMPONENT_BYTES} a node fetches",
            object.info.size
        )));
    }
    let mut component = Vec::new();
    (&mut object)
        .take(MAX_COMPONENT_BYTES + 1)
        .read_to_end(&mut component)
        .await
        .map_err(|e| bad(format!("reading it: {e}")))?;
    let actual = sha256_hex(&component);
    if actual != hex {
        return Err(bad(format!("what arrived has digest sha256:{actual}")));
    }
    let files = PluginFiles::from_parts(
        &version.manifest,
        component,
        version.signature.clone(),
        Path::new(MANIFEST_FILE),
    )?;
    if files.name != plugin || files.version.to_string() != version.version {
        return Err(bad(format!(
            "its manifest is {} {}, not {plugin} {}",
            files.name, files.version, version.version
        )));
    }
    files.install(&dir)?;
    Ok(dir)
}
