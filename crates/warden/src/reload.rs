//! Hot reload: a loaded plugin's source is read again and, when it changed,
//! the new build is compiled, linked and initialized beside the old one and
//! then swapped in, in one step. Calls already running finish on the old
//! build, which is shut down once drained. When anything fails, the old
//! build keeps serving and the failure is logged and audited.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::audit::{AuditEntry, AuditKind};
use crate::cache::sha256_hex;
use crate::call::{ProcessRequest, ProcessResponse};
use crate::error::{Error, Result};
use crate::loader::{Source, fingerprint};
use crate::plugin::Plugin;
use crate::sandbox::CallId;
use crate::warden::Warden;

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
    /// serving. Reloads and unloads of one plugin take turns.
    pub async fn reload(&self, name: &str) -> Result<Reloaded> {
        let turn = self.turn(name);
        let _turn = turn.lock().await;
        let current = self.registry.get(name)?;
        let Some(origin) = current.info().source.clone() else {
            return Err(Error::Host(format!(
                "plugin `{name}` was loaded from bytes, not from a path; load the new build \
                 under another name, or unload and load it"
            )));
        };
        let outcome = self.replace_from(&current, &origin).await;
        if let Err(e) = &outcome {
            tracing::error!(plugin = %name, error = %e, "reload failed; the loaded build keeps serving");
            self.core.audit.record(AuditEntry::now(
                name,
                &current.info().version.to_string(),
                None,
                AuditKind::ReloadFailed,
                origin.display().to_string(),
                &format!("kept the loaded build: {}", first_line(&e.to_string())),
            ));
        }
        outcome
    }

    async fn replace_from(&self, current: &Plugin, origin: &Path) -> Result<Reloaded> {
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
        if fingerprint(&sha256_hex(&source.bytes), &source.manifest) == current.fingerprint() {
            return Ok(Reloaded::Unchanged);
        }
        let (next, patterns) = self.start(source).await?;
        if let Err(e) = self.registry.replace(current, next.clone()) {
            self.retire(&next).await;
            return Err(e);
        }
        let serving_after = started.elapsed();
        let old = current.clone();
        if let Err(e) = self.retarget_events(&next, patterns) {
            tracing::error!(plugin = %next.name(), error = %e, "the reloaded plugin receives no events");
        }
        let (from, to) = (old.info().version.clone(), next.info().version.clone());
        tracing::info!(plugin = %next.name(), %from, %to, "reloaded");
        // A task of its own: dropping this future must not leave the old
        // build running.
        let retiring = old.clone();
        let drained = tokio::spawn(async move {
            tokio::time::sleep(GRACE).await;
            retiring.unload().await;
        })
        .await;
        if let Err(e) = drained {
            tracing::error!(plugin = %next.name(), error = %e, "retiring the old build failed");
        }
        self.forget_unused(&old);
        Ok(Reloaded::Replaced {
            from,
            to,
            serving_after,
        })
    }

    /// Runs `process` on the build of plugin `name` that serves now: the
    /// way to call a plugin that may be reloaded meanwhile. A call that was
    /// waiting for an instance of a build that got replaced goes to the new
    /// build instead of failing.
    pub async fn process(&self, name: &str, request: ProcessRequest) -> Result<ProcessResponse> {
        let (mut request, call_id) = request.into_wit();
        let call_id = call_id.map_or_else(CallId::next, |id| CallId::Given(id.into()));
        loop {
            let plugin = self.registry.get(name)?;
            match plugin.process_wit(request, &call_id).await {
                Ok(result) => return result,
                Err(back) => {
                    // Unloaded, not replaced: nothing else can take it.
                    if self.registry.get(name).is_ok_and(|p| p.same_build(&plugin)) {
                        return Err(plugin.unloaded_error());
                    }
                    request = back;
                }
            }
        }
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

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
