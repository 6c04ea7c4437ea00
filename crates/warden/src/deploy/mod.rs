//! Deployments: several versions of a plugin side by side, a canary that
//! sends a share of calls to a candidate version (sticky by routing key),
//! promotion and rollback (by hand or automatic), and the state and
//! history of all this kept in the host's embedded store so that a
//! restarted host serves what it served before.

pub(crate) mod deployment;
pub(crate) mod rollback;
pub(crate) mod routing;
pub(crate) mod state;

use std::path::{Path, PathBuf};

use semver::Version;

use crate::audit::{AuditEntry, AuditKind};
use crate::claims::Claim;
use crate::error::{Error, Result};
use crate::lifecycle::State;
use crate::loader::Source;
use crate::metrics::VersionMetrics;
use crate::plugin::Plugin;
use crate::registry::Inserted;
use crate::warden::Warden;
use deployment::{Canary, Deployment};
use rollback::CanaryWatch;
use routing::{ALL, basis_points};
use state::Saved;

pub use rollback::RollbackPolicy;
pub use state::{DeployAction, HistoryEntry};

/// Where one plugin's calls go, and how each of its versions is doing.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct DeploymentStatus {
    /// The plugin's name.
    pub plugin: String,
    /// The version unqualified calls go to (outside the canary's share).
    pub stable: Version,
    /// The canary, if one runs.
    pub canary: Option<CanaryStatus>,
    /// Every loaded version, oldest first.
    pub versions: Vec<VersionStatus>,
    /// Whether the deployment is kept in the store and restored at start-up
    /// (it was made through [`Warden::deploy`] and friends).
    pub persisted: bool,
}

/// A running canary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CanaryStatus {
    /// The candidate version.
    pub version: Version,
    /// Its share of unqualified calls, in percent.
    pub percent: f64,
}

/// One loaded version of a plugin.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct VersionStatus {
    /// The version.
    pub version: Version,
    /// What it serves.
    pub role: Role,
    /// Its lifecycle state.
    pub state: State,
    /// Where it was loaded from.
    pub source: Option<PathBuf>,
    /// Its metrics.
    pub metrics: VersionMetrics,
}

/// What a loaded version serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Unqualified calls outside a canary's share.
    Stable,
    /// A canary's share of unqualified calls.
    Candidate,
    /// Only calls that name its version (`name@1.2.0`, `name@^1`).
    Pinned,
}

impl Deployment {
    fn status(&self, plugin: &str) -> DeploymentStatus {
        let role = |v: &Version| match &self.canary {
            _ if *v == self.stable => Role::Stable,
            Some(c) if c.version == *v => Role::Candidate,
            _ => Role::Pinned,
        };
        DeploymentStatus {
            plugin: plugin.to_string(),
            stable: self.stable.clone(),
            canary: self.canary.as_ref().map(|c| CanaryStatus {
                version: c.version.clone(),
                percent: f64::from(c.basis_points) / 100.0,
            }),
            versions: self
                .versions
                .iter()
                .map(|(v, p)| VersionStatus {
                    version: v.clone(),
                    role: role(v),
                    state: p.state(),
                    source: p.info().source.clone(),
                    metrics: p.metrics(),
                })
                .collect(),
            persisted: self.managed,
        }
    }

    fn saved(&self, plugin: &str) -> Saved {
        Saved {
            plugin: plugin.to_string(),
            stable: self.stable.clone(),
            canary: self
                .canary
                .as_ref()
                .map(|c| (c.version.clone(), c.basis_points)),
            // Versions that failed to restore stay stored: a file missing
            // for a moment must not drop a deployed version for good.
            versions: self
                .versions
                .iter()
                .filter_map(|(v, p)| Some((v.clone(), p.info().source.clone()?)))
                .chain(self.unrestored.iter().cloned())
                .collect(),
        }
    }
}

impl Warden {
    /// Loads the plugin at `path` as a deployment the host keeps: the
    /// first version of a name serves; a later version is loaded beside
    /// the serving one (reachable as `name@version`) until a
    /// [canary](Warden::canary) sends it calls. The deployment is written
    /// to the store and comes back with [`Warden::restore`].
    ///
    /// Deploying is the operator vouching for the plugin's directory: it
    /// becomes one of the directories the plugin's name belongs to (see
    /// [`Warden::load`]), so a new version may come from a directory of
    /// its own.
    pub async fn deploy(&self, path: impl AsRef<Path>) -> Result<Plugin> {
        let source = Source::from_path(path.as_ref())?;
        let (plugin, inserted) = self.register(source, Some(Claim::Vouch)).await?;
        let name = plugin.name().to_string();
        let version = plugin.info().version.clone();
        self.registry.update(&name, |d| {
            d.managed = true;
            d.unrestored.retain(|(v, _)| *v != version);
            Ok(())
        })?;
        self.persist(&name)?;
        let detail = match inserted {
            Inserted::Stable => "serving".to_string(),
            Inserted::Beside => format!("loaded beside stable {}", self.get(&name)?.info().version),
        };
        let version = plugin.info().version.to_string();
        self.deploys
            .record(&name, DeployAction::Deploy, &version, &detail);
        Ok(plugin)
    }

    /// Sends `percent` (0–100) of plugin `name`'s unqualified calls to its
    /// loaded `version`, the candidate; the rest go to the stable version.
    /// Calls with the same routing key ([`crate::ProcessRequest::routing_key`])
    /// always land on the same side at a given share, and raising the share
    /// only moves keys from stable to candidate. Setting the share again
    /// for the same candidate keeps its error and latency comparison.
    pub fn canary(&self, name: &str, version: &str, percent: f64) -> Result<()> {
        let version = parse_version(name, version)?;
        let share = basis_points(name, percent)?;
        let policy = self.rollback_policy;
        self.registry.update(name, |d| {
            if version == d.stable {
                return Err(deploy_error(
                    name,
                    format!("{version} is the stable version already"),
                ));
            }
            if !d.versions.contains_key(&version) {
                return Err(deploy_error(
                    name,
                    format!(
                        "version {version} is not loaded (loaded: {}); deploy it first",
                        loaded_versions(d)
                    ),
                ));
            }
            match &mut d.canary {
                Some(c) if c.version == version => c.basis_points = share,
                _ => {
                    d.canary = Some(Canary {
                        version: version.clone(),
                        basis_points: share,
                        watch: std::sync::Arc::new(CanaryWatch::new(policy)),
                    })
                }
            }
            d.managed = true;
            Ok(())
        })?;
        self.persist(name)?;
        self.deploys.record(
            name,
            DeployAction::Canary,
            &version.to_string(),
            &format!("{percent}% of calls"),
        );
        Ok(())
    }

    /// Makes plugin `name`'s candidate its stable version, in one step:
    /// every call from then on goes to it, and the old stable version
    /// finishes its running calls and is unloaded. Returns the new stable
    /// version.
    pub async fn promote(&self, name: &str) -> Result<Version> {
        let turn = self.turn(name);
        let held = turn.lock().await;
        // Asked before anything changes: a candidate that cannot say what
        // it subscribes to is not promoted.
        let candidate = self
            .registry
            .inspect(name, |d| {
                let c = d.canary.as_ref()?;
                d.versions.get(&c.version).cloned()
            })?
            .ok_or_else(|| no_canary(name))?;
        let patterns = match candidate.info().world {
            crate::World::EventHandler => Some(candidate.subscriptions().await?),
            _ => None,
        };
        let old = self.registry.update(name, |d| match d.canary.take() {
            Some(c) if c.version == candidate.info().version => {
                let old = d.versions.remove(&d.stable);
                d.stable = c.version;
                Ok(old)
            }
            other => {
                d.canary = other;
                Err(no_canary(name))
            }
        })?;
        if let Err(e) = self.retarget_events(&candidate, patterns) {
            tracing::error!(plugin = %name, error = %e, "the promoted version receives no events");
        }
        let version = candidate.info().version.clone();
        let detail = match &old {
            Some(old) => format!("replaces {}", old.info().version),
            None => String::new(),
        };
        self.persist_logged(name);
        self.deploys
            .record(name, DeployAction::Promote, &version.to_string(), &detail);
        drop(held);
        if let Some(old) = old {
            self.retire_later(old).await;
        }
        Ok(version)
    }

    /// Ends plugin `name`'s canary: every call goes to the stable version
    /// again, and the candidate finishes its running calls and is
    /// unloaded. Returns the version rolled back.
    pub async fn rollback(&self, name: &str) -> Result<Version> {
        let turn = self.turn(name);
        let held = turn.lock().await;
        let candidate = self.drop_candidate(name, None)?;
        let version = candidate.info().version.clone();
        self.persist_logged(name);
        self.deploys.record(
            name,
            DeployAction::Rollback,
            &version.to_string(),
            "on request",
        );
        drop(held);
        self.retire_later(candidate).await;
        Ok(version)
    }

    /// Rolls back candidate `version` of plugin `name` because `why`; runs
    /// inside the call that noticed, so it never waits: when another
    /// change of the plugin is under way, a later call tries again.
    pub(crate) fn auto_rollback(
        &self,
        name: &str,
        watch: &CanaryWatch,
        version: &Version,
        why: String,
    ) {
        let turn = self.turn(name);
        let Ok(_turn) = turn.try_lock() else {
            watch.rearm();
            return;
        };
        let Ok(candidate) = self.drop_candidate(name, Some(version)) else {
            return;
        };
        let version = version.to_string();
        tracing::warn!(plugin = %name, %version, reason = %why, "canary rolled back automatically");
        self.core.audit.record(AuditEntry::now(
            name,
            &version,
            None,
            AuditKind::AutoRollback,
            "canary".to_string(),
            format!("rolled back: {why}"),
        ));
        self.persist_logged(name);
        self.deploys
            .record(name, DeployAction::AutoRollback, &version, &why);
        drop(self.detach(candidate));
    }

    /// Takes plugin `name`'s candidate (only if it is `expected`, when
    /// given) out of the deployment.
    fn drop_candidate(&self, name: &str, expected: Option<&Version>) -> Result<Plugin> {
        self.registry.update(name, |d| {
            let canary = match d.canary.take() {
                Some(c) if expected.is_none_or(|v| *v == c.version) => c,
                other => {
                    d.canary = other;
                    return Err(no_canary(name));
                }
            };
            d.versions
                .remove(&canary.version)
                .ok_or_else(|| no_canary(name))
        })
    }

    /// The deployment of plugin `name`: its versions, their roles, states
    /// and metrics, and the canary.
    pub fn deployment(&self, name: &str) -> Result<DeploymentStatus> {
        self.registry.inspect(name, |d| d.status(name))
    }

    /// The deployment of every loaded plugin, by name.
    pub fn deployments(&self) -> Vec<DeploymentStatus> {
        self.registry
            .names()
            .iter()
            .filter_map(|name| self.deployment(name).ok())
            .collect()
    }

    /// The last `limit` deploys, canaries, promotions, rollbacks, restarts
    /// and quarantines of plugin `name`, oldest first (kept in the store,
    /// so across restarts).
    pub fn history(&self, name: &str, limit: usize) -> Result<Vec<HistoryEntry>> {
        self.deploys.history(name, limit)
    }

    /// Loads every deployment kept in the store (the versions, the stable
    /// one and the canary) as it was when the host last changed it.
    /// Returns each plugin's outcome: a version that no longer loads is
    /// reported and the rest of its deployment restored.
    pub async fn restore(&self) -> Result<Vec<(String, Result<()>)>> {
        let mut outcomes = Vec::new();
        for (plugin, saved) in self.deploys.saved()? {
            let outcome = match saved {
                Ok(saved) => self.restore_one(&saved).await,
                Err(e) => Err(e),
            };
            match &outcome {
                Ok(()) => tracing::info!(%plugin, "deployment restored"),
                Err(e) => tracing::warn!(%plugin, error = %e, "deployment not fully restored"),
            }
            outcomes.push((plugin, outcome));
        }
        Ok(outcomes)
    }

    async fn restore_one(&self, saved: &Saved) -> Result<()> {
        let name = &saved.plugin;
        if self.registry.inspect(name, |_| ()).is_ok() {
            return Err(deploy_error(
                name,
                "a plugin of that name is loaded already; restore runs once, at start-up, \
                 before anything else is loaded"
                    .to_string(),
            ));
        }
        // The stable version first: the first version loaded serves (and
        // gets the plugin's events).
        let mut order: Vec<_> = saved.versions.iter().collect();
        order.sort_by_key(|(v, _)| *v != saved.stable);
        let mut failures = Vec::new();
        let mut unrestored = Vec::new();
        for (version, source) in order {
            let loaded = async {
                let source = Source::from_path(source)?;
                let found = (&source.manifest.name, &source.manifest.version);
                if found != (name, version) {
                    return Err(deploy_error(
                        name,
                        format!(
                            "{} now holds {} {}, not the deployed {name} {version}; deploy it again",
                            source.manifest_file.display(),
                            found.0,
                            found.1
                        ),
                    ));
                }
                self.register(source, Some(Claim::Vouch)).await
            }
            .await;
            if let Err(e) = loaded {
                failures.push(format!("{version}: {e}"));
                unrestored.push((version.clone(), source.clone()));
            }
        }
        let policy = self.rollback_policy;
        self.registry.update(name, |d| {
            d.managed = true;
            d.unrestored = unrestored;
            d.canary = saved
                .canary
                .as_ref()
                .filter(|(v, _)| d.versions.contains_key(v) && *v != d.stable)
                .map(|(version, share)| Canary {
                    version: version.clone(),
                    basis_points: (*share).min(ALL),
                    watch: std::sync::Arc::new(CanaryWatch::new(policy)),
                });
            Ok(())
        })?;
        match failures.is_empty() {
            true => Ok(()),
            false => Err(deploy_error(
                name,
                format!(
                    "restored without {} (kept in the store: deploy it again, or unload `{name}` \
                     to forget the deployment)",
                    failures.join("; ")
                ),
            )),
        }
    }

    /// Writes plugin `name`'s deployment to the store, if it is kept there
    /// (forgets it when the plugin is gone). The snapshot is taken under
    /// the store's lock, so concurrent changes are stored in order.
    pub(crate) fn persist(&self, name: &str) -> Result<()> {
        self.deploys.save_latest(name, || {
            self.registry
                .inspect(name, |d| d.managed.then(|| d.saved(name)))
                .ok()
        })
    }

    /// [`Warden::persist`] for changes that have already happened: a
    /// failure to store them is logged, not returned.
    pub(crate) fn persist_logged(&self, name: &str) {
        if let Err(e) = self.persist(name) {
            tracing::error!(plugin = %name, error = %e, "cannot store the deployment; a restart will not restore it as it is now");
        }
    }

    /// Blocking form of [`Warden::deploy`].
    pub fn deploy_blocking(&self, path: impl AsRef<Path>) -> Result<Plugin> {
        self.core.block_on("deploy_blocking", self.deploy(path))
    }

    /// Blocking form of [`Warden::promote`].
    pub fn promote_blocking(&self, name: &str) -> Result<Version> {
        self.core.block_on("promote_blocking", self.promote(name))
    }

    /// Blocking form of [`Warden::rollback`].
    pub fn rollback_blocking(&self, name: &str) -> Result<Version> {
        self.core.block_on("rollback_blocking", self.rollback(name))
    }

    /// Blocking form of [`Warden::restore`].
    pub fn restore_blocking(&self) -> Result<Vec<(String, Result<()>)>> {
        self.core.block_on("restore_blocking", self.restore())
    }
}

fn parse_version(plugin: &str, text: &str) -> Result<Version> {
    Version::parse(text.trim()).map_err(|e| {
        deploy_error(
            plugin,
            format!("`{text}` is not a version ({e}); write it as 1.2.0"),
        )
    })
}

fn loaded_versions(d: &Deployment) -> String {
    d.versions
        .keys()
        .map(Version::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn no_canary(plugin: &str) -> Error {
    deploy_error(
        plugin,
        "no canary runs; start one with `canary <name> <version> --percent N`".to_string(),
    )
}

fn deploy_error(plugin: &str, message: String) -> Error {
    Error::Deploy {
        plugin: plugin.to_string(),
        message,
    }
}
