//! [`Warden`], the host: configure it with [`WardenBuilder`], then load,
//! find, call and unload plugins.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Instrument;

use crate::audit::AuditLog;
use crate::cache::CacheStats;
use crate::claims::{Claim, NameClaims, home_of};
use crate::core::Core;
use crate::deploy::RollbackPolicy;
use crate::deploy::state::DeployStore;
use crate::error::{Error, Result};
use crate::grants::Grants;
use crate::loader::{Signed, Source, prepare};
use crate::locks::lock;
use crate::manifest::Manifest;
use crate::plugin::Plugin;
use crate::registry::{Inserted, Registry, discover};

mod batch;
mod blocking;
mod builder;
mod deploy;
mod hold;
mod subscriptions;

pub use batch::BatchLimits;
pub use builder::WardenBuilder;

/// A plugin host: one engine, any number of loaded plugins.
///
/// Every method that runs guest code is `async`; each has a `_blocking`
/// twin for programs that do not use an async runtime.
pub struct Warden {
    pub(crate) core: Arc<Core>,
    pub(crate) registry: Arc<Registry>,
    /// One lock per plugin name: its reloads and unloads take turns.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The build each subscribed plugin's events go to; a reload swaps it.
    event_targets: Mutex<HashMap<String, Arc<Mutex<Plugin>>>>,
    /// Deployment state and history.
    pub(crate) deploys: DeployStore,
    /// Which directory each plugin name belongs to.
    claims: NameClaims,
    /// How [`Warden::load`] claims a name; `None`: it does not (see
    /// [`WardenBuilder::trust_loaded_dirs`]).
    load_claim: Option<Claim>,
    /// When a canary candidate is rolled back by itself.
    pub(crate) rollback_policy: RollbackPolicy,
    /// Reloads (and restarts) per plugin name since the host started.
    pub(crate) reloads: Mutex<BTreeMap<String, ReloadStats>>,
}

/// How a plugin's reloads (by hand, by the watcher, or restarts by the
/// health monitor) went since the host started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadStats {
    /// Reloads that swapped in a new build.
    pub replaced: u64,
    /// Reloads that failed, leaving the loaded build serving.
    pub failed: u64,
}

impl std::fmt::Debug for Warden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warden")
            .field("plugins", &self.registry.list())
            .finish_non_exhaustive()
    }
}

impl Warden {
    /// A builder with the default settings.
    pub fn builder() -> WardenBuilder {
        WardenBuilder::default()
    }

    /// A host with the default settings.
    pub fn new() -> Result<Warden> {
        Self::builder().build()
    }

    /// Loads the plugin at `path`: a directory with a `plugin.toml`, a
    /// `plugin.toml`, or a `.wasm` file. The component is checked, compiled
    /// (or taken from the cache), linked, and one instance is initialized
    /// before the plugin is registered. If another version of the plugin
    /// is loaded, this one is loaded beside it: calls that name it
    /// (`name@1.2.0`) reach it, unqualified calls still go to the loaded
    /// one (see [`Warden::canary`] to shift them).
    ///
    /// The plugin's name must be free or belong to the plugin's directory:
    /// the first plugin loaded under a name binds it to its directory, and
    /// a plugin from another directory is refused with
    /// [`Error::NameClaimed`] (see [`Warden::deploy`] and
    /// [`Warden::release_name`]).
    pub async fn load(&self, path: impl AsRef<Path>) -> Result<Plugin> {
        let source = Source::from_path(path.as_ref())?;
        Ok(self.register(source, self.load_claim).await?.0)
    }

    /// Loads a plugin from bytes with the given manifest. The caller names
    /// the plugin and vouches for it: no name claim is checked or made, and
    /// no signature is asked for.
    pub async fn load_bytes(
        &self,
        manifest: Manifest,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<Plugin> {
        let name = manifest.name.clone();
        let source = Source {
            manifest,
            manifest_file: PathBuf::from(format!("<manifest of {name}>")),
            component_file: None,
            bytes: bytes.into(),
            implicit: false,
            origin: None,
            signed: Signed::Application,
        };
        Ok(self.register(source, None).await?.0)
    }

    /// Loads every plugin found in `dir` (see [`discover`]), the providers
    /// of links before the plugins that link to them
    /// ([`crate::providers_first`]). Stops at the first plugin that fails,
    /// naming it.
    pub async fn load_dir(&self, dir: impl AsRef<Path>) -> Result<Vec<Plugin>> {
        let mut loaded = Vec::new();
        for path in crate::providers_first(&discover(dir.as_ref())?) {
            loaded.push(self.load(&path).await?);
        }
        Ok(loaded)
    }

    /// Forgets which directories plugin name `name` belongs to: the next
    /// plugin loaded under it binds it anew. Returns the directories it
    /// belonged to. For an operator moving a plugin; a loaded plugin keeps
    /// serving.
    pub fn release_name(&self, name: &str) -> Result<Vec<PathBuf>> {
        self.claims.release(name)
    }

    /// Lets `source` have its name (see [`crate::claims`]); a refusal is
    /// audited. Returns the home bound anew, if any.
    fn claim_name(&self, source: &Source, how: Option<Claim>) -> Result<Option<PathBuf>> {
        // Bytes the embedder loads itself come with a name it chose.
        let Some(how) = how.filter(|_| source.origin.is_some()) else {
            return Ok(None);
        };
        let name = &source.manifest.name;
        let home = home_of(&source.manifest_file)?;
        match self.claims.claim(name, &home, how) {
            Ok(true) => Ok(Some(home)),
            Ok(false) => Ok(None),
            Err(e) => {
                self.core.audit.record(crate::AuditEntry::now(
                    name,
                    &source.manifest.version.to_string(),
                    None,
                    crate::AuditKind::NameClaimed,
                    home.display().to_string(),
                    "load refused: the name belongs to a plugin from another directory",
                ));
                Err(e)
            }
        }
    }

    /// Starts a plugin and registers it (beside its loaded versions, if
    /// any); the first version of a name is subscribed to its events.
    /// `how` claims its name (`None`: trusted, no claim).
    pub(crate) async fn register(
        &self,
        source: Source,
        how: Option<Claim>,
    ) -> Result<(Plugin, Inserted)> {
        self.registry
            .ensure_free(&source.manifest.name, &source.manifest.version)?;
        let name = source.manifest.name.clone();
        let bound = self.claim_name(&source, how)?;
        let span = tracing::debug_span!(
            target: crate::SPAN_TARGET,
            "warden.load",
            plugin = %name,
            version = %source.manifest.version,
        );
        let started = self.start(source).instrument(span).await;
        let (plugin, patterns) = match started {
            Ok(started) => started,
            Err(e) => {
                // Unless a load from the same directory succeeded meanwhile.
                if let Some(home) = bound
                    && self.registry.get(&name).is_err()
                {
                    self.claims.unbind(&name, &home);
                }
                return Err(e);
            }
        };
        let inserted = match self.registry.insert(plugin.clone()) {
            Ok(inserted) => inserted,
            Err(e) => {
                self.retire(&plugin).await;
                return Err(e);
            }
        };
        if inserted == Inserted::Stable
            && let Some(patterns) = patterns
            && let Err(e) = self.subscribe_plugin(&plugin, patterns)
        {
            let _ = self.registry.remove(plugin.name());
            self.retire(&plugin).await;
            return Err(e);
        }
        tracing::info!(plugin = %plugin.name(), version = %plugin.info().version, cache = ?plugin.info().cache, ?inserted, "loaded");
        Ok((plugin, inserted))
    }

    /// Compiles, links and warms up a plugin (its first instance runs
    /// `initialize`), without registering it; returns it with the event
    /// patterns to subscribe it to. On failure nothing is left behind.
    pub(crate) async fn start(&self, source: Source) -> Result<(Plugin, Option<Vec<String>>)> {
        let core = self.core.clone();
        let plugins = Arc::downgrade(&self.registry);
        let span = tracing::debug_span!(
            target: crate::SPAN_TARGET,
            "warden.compile",
            plugin = %source.manifest.name,
        );
        // Compiling is CPU-bound; keep it off the async runtime's workers.
        let prepared = match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::spawn_blocking(move || {
                span.in_scope(|| prepare(&core, source, plugins))
            })
            .await
            .map_err(|e| Error::host("compiling the plugin", e))??,
            Err(_) => prepare(&core, source, plugins)?,
        };
        let reservation = self
            .core
            .reserve(&prepared.manifest.name, prepared.limits.max_instances)?;
        let plugin = Plugin::new(self.core.clone(), prepared, reservation);
        if let Err(e) = plugin.warm_up().await {
            self.retire(&plugin).await;
            return Err(e);
        }
        // Asked before it is registered: a plugin that cannot say what it
        // subscribes to never serves.
        let patterns = match plugin.info().world {
            crate::World::EventHandler => match plugin.subscriptions().await {
                Ok(patterns) => Some(patterns),
                Err(e) => {
                    self.retire(&plugin).await;
                    return Err(e);
                }
            },
            _ => None,
        };
        Ok((plugin, patterns))
    }

    /// The loaded build `target` names: `name` is the stable version,
    /// `name@1.2.0` that version, `name@^1.2` the highest loaded match.
    pub fn get(&self, target: &str) -> Result<Plugin> {
        self.registry.get(target)
    }

    /// Every loaded build, sorted by name, then version.
    pub fn plugins(&self) -> Vec<Plugin> {
        self.registry.list()
    }

    /// Unloads `target`: `name` unloads every version of the plugin (and
    /// forgets its deployment), `name@1.2.0` only that version (not the
    /// stable one while others are loaded: promote another first). New
    /// calls are refused, running calls finish, then every instance gets
    /// `shutdown`.
    pub async fn unload(&self, target: &str) -> Result<()> {
        let (name, spec) = crate::deploy::routing::parse_target(target)?;
        let turn = self.turn(name);
        let _turn = turn.lock().await;
        let managed = self.registry.inspect(name, |d| d.managed)?;
        let removed = match spec {
            None => {
                let removed = self.registry.remove(name)?;
                self.unsubscribe_plugin(name);
                removed
            }
            Some(_) => vec![self.remove_version(target)?],
        };
        if managed {
            self.persist_logged(name);
            for plugin in &removed {
                let version = plugin.info().version.to_string();
                self.deploys
                    .record(name, crate::DeployAction::Unload, &version, "");
            }
        }
        for plugin in removed {
            self.retire(&plugin).await;
        }
        Ok(())
    }

    /// Takes the version `target` names out of its deployment; the last
    /// version goes with the whole deployment (and its events).
    fn remove_version(&self, target: &str) -> Result<Plugin> {
        let plugin = self.registry.get(target)?;
        let last = self.registry.remove_version(&plugin)?;
        if last {
            self.unsubscribe_plugin(plugin.name());
        }
        Ok(plugin)
    }

    /// The lock that orders reloads and unloads of plugin `name`.
    pub(crate) fn turn(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.turns)
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Unloads a plugin that is no longer registered, and drops its compiled
    /// code from memory unless another loaded plugin shares it.
    pub(crate) async fn retire(&self, plugin: &Plugin) {
        plugin.unload().await;
        self.forget_unused(plugin);
    }

    /// Drops `plugin`'s compiled code from the memory cache unless a loaded
    /// plugin uses the same component.
    pub(crate) fn forget_unused(&self, plugin: &Plugin) {
        let sha = &plugin.info().sha256;
        if !self.registry.list().iter().any(|p| &p.info().sha256 == sha) {
            self.core.cache.forget(sha);
        }
    }

    /// Unloads every plugin (each gets `shutdown`), after letting the
    /// event bus deliver what is queued (for up to 5 seconds).
    pub async fn shutdown(&self) {
        self.settle_events(Duration::from_secs(5)).await;
        for name in self.registry.names() {
            // Another task may have unloaded it meanwhile; that is fine.
            if let Ok(removed) = self.registry.remove(&name) {
                self.unsubscribe_plugin(&name);
                for plugin in removed {
                    self.retire(&plugin).await;
                }
            }
        }
    }

    /// The audit log: every denial and limit hit of every plugin.
    pub fn audit(&self) -> &AuditLog {
        &self.core.audit
    }

    /// What this host grants plugins.
    pub fn grants(&self) -> &Grants {
        &self.core.grants
    }

    /// Counters of the compiled-plugin cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.core.cache.stats()
    }
}

impl Drop for Warden {
    /// Ends the event bus's threads: a subscribed plugin's thread holds the
    /// plugin, which holds the host's core, which holds the bus.
    fn drop(&mut self) {
        self.core.bus.close();
    }
}
