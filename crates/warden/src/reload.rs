//! Hot reload: a loaded plugin's source is read again and, when it changed,
//! the new build is compiled, linked and initialized beside the old one and
//! then swapped in, in one step. Calls already running finish on the old
//! build, which is shut down once drained. When anything fails, the old
//! build keeps serving and the failure is logged and audited.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::audit::{AuditEntry, AuditKind};
use crate::call::{ProcessRequest, ProcessResponse};
use crate::deploy::DeployAction;
use crate::digest::sha256_hex;
use crate::error::{Error, Result, Unavailability};
use crate::loader::{Source, fingerprint};
use crate::locks::lock;
use crate::plugin::Plugin;
use crate::warden::{ReloadStats, Warden};

/// How long a replaced build keeps taking calls: a caller that looked the
/// plugin up just before the swap is still served.
const GRACE: Duration = Duration::from_millis(200);

/// What [`Warden::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The source holds what is loaded (component and manifest alike).
    Unchanged,
    /// A new build serves now.
    Replaced {
        /// The version that served before.
        from: semver::Version,
        /// The version that serves now.
        to: semver::Version,
        /// From the start of the reload to the new build taking calls.
        serving_after: Duration,
    },
}

impl Warden {
    /// Reads plugin `name` again from where it was loaded and, if the
    /// component or the manifest changed, starts the new build beside the
    /// loaded one and swaps it in: calls made through [`Warden::process`]
    /// and event deliveries move to it without failing; `Plugin` handles
    /// taken before keep working for a short grace period, then refuse.
    /// Permissions and limits of the new manifest are checked against the
    /// host's grants and caps as at load. On failure the loaded build keeps
    /// serving. Reloads and unloads of one plugin take turns. `target` is
    /// `name` (the stable version) or names a version (`name@1.2.0`).
    /// Returns once the old build is retired.
    pub async fn reload(&self, target: &str) -> Result<Reloaded> {
        let (outcome, retiring) = self.reload_detached(target).await?;
        if let Some(retiring) = retiring {
            finish(retiring).await;
        }
        Ok(outcome)
    }

    /// Every plugin's reloads since the host started, by name.
    pub fn reload_stats(&self) -> BTreeMap<String, ReloadStats> {
        lock(&self.reloads).clone()
    }

    /// [`Warden::reload`] that returns as soon as the new build serves,
    /// with the task retiring the old build (for the watcher, which must
    /// not sit out the grace period before its next change).
    pub(crate) async fn reload_detached(
        &self,
        target: &str,
    ) -> Result<(Reloaded, Option<tokio::task::JoinHandle<()>>)> {
        let current = self.registry.get(target)?;
        let name = current.name().to_string();
        let turn = self.turn(&name);
        let _turn = turn.lock().await;
        self.rebuild(&current, false).await
    }

    /// Starts a new build of `current` from its source and swaps it in
    /// (`force`: even when the files did not change, as a restart does).
    /// The caller holds the plugin's turn.
    /// Returns the task retiring the old build, when one was replaced.
    pub(crate) async fn rebuild(
        &self,
        current: &Plugin,
        force: bool,
    ) -> Result<(Reloaded, Option<tokio::task::JoinHandle<()>>)> {
        let name = current.name();
        let Some(origin) = current.info().source.clone() else {
            return Err(Error::Host(format!(
                "plugin `{name}` was loaded from bytes, not from a path; load the new build \
                 under another name, or unload and load it"
            )));
        };
        let outcome = self.replace_from(current, &origin, force).await;
        {
            let mut reloads = lock(&self.reloads);
            let stats = reloads.entry(name.to_string()).or_default();
            match &outcome {
                Ok((Reloaded::Replaced { .. }, _)) => stats.replaced += 1,
                Ok((Reloaded::Unchanged, _)) => {}
                Err(_) => stats.failed += 1,
            }
        }
        if let Err(e) = &outcome {
            tracing::error!(plugin = %name, error = %e, "reload failed; the loaded build keeps serving");
            self.core.audit.record(AuditEntry::now(
                name,
                &current.info().version.to_string(),
                None,
                AuditKind::ReloadFailed,
                origin.display().to_string(),
                format!("kept the loaded build: {}", first_line(&e.to_string())),
            ));
        }
        outcome
    }

    async fn replace_from(
        &self,
        current: &Plugin,
        origin: &Path,
        force: bool,
    ) -> Result<(Reloaded, Option<tokio::task::JoinHandle<()>>)> {
        let started = Instant::now();
        let source = Source::from_path(origin)?;
        if source.manifest.name != current.name() {
            return Err(Error::Manifest {
                file: source.manifest_file.clone(),
                message: format!(
                    "the plugin there is now called `{}`, not `{}`; a reload keeps the name \
                     (load it as a new plugin instead)",
                    source.manifest.name,
                    current.name()
                ),
            });
        }
        if !force
            && fingerprint(&sha256_hex(&source.bytes), &source.manifest) == current.fingerprint()
        {
            return Ok((Reloaded::Unchanged, None));
        }
        let (next, patterns) = self.start(source).await?;
        // An operator's quarantine outlives a rebuild: only a release ends it.
        if current.held() {
            next.hold("quarantined by an operator before this rebuild");
        }
        if let Err(e) = self.registry.replace(current, next.clone()) {
            self.retire(&next).await;
            return Err(e);
        }
        let serving_after = started.elapsed();
        let old = current.clone();
        let is_stable = self
            .registry
            .get(next.name())
            .is_ok_and(|p| p.same_build(&next));
        if is_stable && let Err(e) = self.retarget_events(&next, patterns) {
            tracing::error!(plugin = %next.name(), error = %e, "the reloaded plugin receives no events");
        }
        let (from, to) = (old.info().version.clone(), next.info().version.clone());
        tracing::info!(plugin = %next.name(), %from, %to, "reloaded");
        if let Err(e) = self.persist(next.name()) {
            tracing::error!(plugin = %next.name(), error = %e, "cannot store the reloaded deployment");
        }
        let action = match force {
            true => DeployAction::Restart,
            false => DeployAction::Reload,
        };
        self.deploys.record(
            next.name(),
            action,
            &to.to_string(),
            &format!("replaces {from}"),
        );
        let retiring = self.detach(old);
        Ok((
            Reloaded::Replaced {
                from,
                to,
                serving_after,
            },
            Some(retiring),
        ))
    }

    /// Runs `process` on the build `target` routes to now: the way to
    /// call a plugin that may be reloaded, promoted or rolled back
    /// meanwhile. `name` goes to the stable version, or to a canary's
    /// candidate for its share of routing keys; `name@1.2.0` and
    /// `name@^1.2` go to that version. A call that was waiting for an
    /// instance of a build that got replaced goes to the new build instead
    /// of failing. Calls on a canary count towards its automatic rollback.
    pub async fn process(&self, target: &str, request: ProcessRequest) -> Result<ProcessResponse> {
        let (mut call, key) = request.into_call();
        loop {
            let routed = self.registry.route(target, key.as_deref())?;
            let started = Instant::now();
            match routed.plugin.process_call(call).await {
                Ok(result) => {
                    // A full pool says nothing about the version's quality.
                    // Nor does an operator's quarantine.
                    let busy = matches!(
                        result,
                        Err(Error::Busy { .. })
                            | Err(Error::Unavailable {
                                reason: Unavailability::Held,
                                ..
                            })
                    );
                    let fault = result.as_ref().is_err_and(Error::is_version_fault);
                    if let Some((watch, side)) = routed.canary.as_ref().filter(|_| !busy)
                        && let Some(why) = watch.record(*side, fault, started.elapsed())
                    {
                        let version = &routed.plugin.info().version;
                        self.auto_rollback(target, watch, version, why);
                    }
                    return result;
                }
                Err(back) => {
                    // Unloaded but still registered: nothing else will take it.
                    if self
                        .registry
                        .list()
                        .iter()
                        .any(|p| p.same_build(&routed.plugin))
                    {
                        return Err(routed.plugin.unloaded_error());
                    }
                    call = back;
                }
            }
        }
    }

    /// Unloads `old`, no longer registered, after the grace period in
    /// which callers that looked it up just before may still use it.
    pub(crate) async fn retire_later(&self, old: Plugin) {
        finish(self.detach(old)).await;
    }

    /// Like [`Warden::retire_later`], in a task of its own that the caller
    /// may await or leave running (dropping the caller's future must not
    /// leave the old build running).
    pub(crate) fn detach(&self, old: Plugin) -> tokio::task::JoinHandle<()> {
        self.forget_unused(&old);
        tokio::spawn(async move {
            tokio::time::sleep(GRACE).await;
            old.unload().await;
        })
    }

    /// Blocking form of [`Warden::reload`].
    pub fn reload_blocking(&self, name: &str) -> Result<Reloaded> {
        self.core.block_on("reload_blocking", self.reload(name))
    }

    /// Blocking form of [`Warden::process`].
    pub fn process_blocking(&self, name: &str, request: ProcessRequest) -> Result<ProcessResponse> {
        self.core
            .block_on("process_blocking", self.process(name, request))
    }
}

/// Waits for a task retiring an old build.
async fn finish(retiring: tokio::task::JoinHandle<()>) {
    if let Err(e) = retiring.await {
        tracing::error!(error = %e, "retiring an old build failed");
    }
}

/// The first line of an error message, for one-line records.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
