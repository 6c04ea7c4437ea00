//! The facade's deployment operations: deploy a version beside the
//! serving one, send it a canary share, promote or roll it back (by hand
//! or when its canary fails), and restore what the store kept.

use std::path::Path;
use std::sync::Arc;

use semver::Version;

use crate::audit::{AuditEntry, AuditKind};
use crate::claims::Claim;
use crate::deploy::deployment::Canary;
use crate::deploy::rollback::CanaryWatch;
use crate::deploy::routing::{ALL, basis_points};
use crate::deploy::state::{DeployAction, Saved};
use crate::deploy::{
    DeploymentStatus, HistoryEntry, deploy_error, loaded_versions, no_canary, parse_version,
};
use crate::error::Result;
use crate::loader::Source;
use crate::plugin::Plugin;
use crate::registry::Inserted;

use super::Warden;

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
                        watch: Arc::new(CanaryWatch::new(policy)),
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
                    watch: Arc::new(CanaryWatch::new(policy)),
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
}
