//! [`Warden`], the host: configure it with [`WardenBuilder`], then load,
//! find, call and unload plugins.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::AuditLog;
use crate::breaker::BreakerSettings;
use crate::cache::CacheStats;
use crate::claims::{Claim, NameClaims, home_of};
use crate::core::{Core, Tuning};
use crate::deploy::RollbackPolicy;
use crate::deploy::state::DeployStore;
use crate::engine::{Allocator, EngineConfig};
use crate::error::{Error, Result};
use crate::events::{Event, EventSettings, SubscriberStats};
use crate::extension::Extension;
use crate::limits::Limits;
use crate::loader::{Source, prepare};
use crate::locks::lock;
use crate::manifest::Manifest;
use crate::permissions::Grants;
use crate::plugin::Plugin;
use crate::registry::{Inserted, Registry, discover};
use crate::services::data::DataRoot;
use crate::services::http::HttpLimits;
use crate::services::store::{KvBackend, KvLimits, SqliteBackend};
use crate::services::{ConfigSettings, ServiceSettings};

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

/// Configures a [`Warden`].
#[derive(Clone)]
pub struct WardenBuilder {
    engine: EngineConfig,
    limits: Limits,
    caps: Limits,
    grants: Grants,
    config: ConfigSettings,
    data_dir: Option<PathBuf>,
    audit_max_bytes: u64,
    kv: Option<Arc<dyn KvBackend>>,
    kv_limits: KvLimits,
    http_limits: HttpLimits,
    events: EventSettings,
    extensions: Vec<Extension>,
    breaker: BreakerSettings,
    rollback: RollbackPolicy,
    trust_loaded_dirs: bool,
}

impl std::fmt::Debug for WardenBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WardenBuilder")
            .field("engine", &self.engine)
            .field("limits", &self.limits)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Default for WardenBuilder {
    fn default() -> Self {
        WardenBuilder {
            engine: EngineConfig::default(),
            limits: Limits::default(),
            caps: Limits::default_caps(),
            grants: Grants::new(),
            config: ConfigSettings::default(),
            data_dir: None,
            audit_max_bytes: 4 << 20,
            kv: None,
            kv_limits: KvLimits::default(),
            http_limits: HttpLimits::default(),
            events: EventSettings::default(),
            extensions: Vec::new(),
            breaker: BreakerSettings::default(),
            rollback: RollbackPolicy::default(),
            trust_loaded_dirs: false,
        }
    }
}

impl WardenBuilder {
    /// Caches compiled plugins in `dir` (created with owner-only access), so
    /// later runs skip compilation. The directory must be this host's alone.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.engine.cache_dir = Some(dir.into());
        self
    }

    /// The most disk space the compiled-plugin cache may take (1 GiB by
    /// default); the entries used longest ago go first.
    pub fn cache_max_bytes(mut self, bytes: u64) -> Self {
        self.engine.cache_max_bytes = bytes;
        self
    }

    /// The limits for plugins whose manifest leaves one unset.
    pub fn default_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The most any manifest may ask for; a manifest asking for more is
    /// refused at load, naming the key and the cap.
    pub fn limit_caps(mut self, caps: Limits) -> Self {
        self.caps = caps;
        self
    }

    /// What plugins may be given (nothing by default). A plugin gets what its
    /// manifest asks for and these grants allow.
    pub fn grants(mut self, grants: Grants) -> Self {
        self.grants = grants;
        self
    }

    /// Sets config `key` for `plugin` (`None`: every plugin), over the
    /// manifest's `[config]`. The value may reference `${env:NAME}` (the
    /// host's environment) and `${secret:NAME}` (see
    /// [`WardenBuilder::secrets_file`]); `$$` is a literal `$`.
    pub fn config(mut self, plugin: Option<&str>, key: &str, value: &str) -> Self {
        self.config.set(plugin, key, value);
        self
    }

    /// The TOML file (`name = "value"` lines, readable by this user only)
    /// that `${secret:NAME}` in config values reads.
    pub fn secrets_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.secrets_file(path);
        self
    }

    /// The host's data directory: the audit log, the key-value store and
    /// the plugins' data directories (`plugins/<name>/data`) are persisted
    /// there. Without one, the log and the store are kept in memory and the
    /// plugins' directories in a temporary directory removed with the host.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The key-value store plugins use (default: SQLite in the data
    /// directory, or in memory without one).
    pub fn kv_backend(mut self, backend: Arc<dyn KvBackend>) -> Self {
        self.kv = Some(backend);
        self
    }

    /// Key and value sizes and the per-namespace quota of the key-value store.
    pub fn kv_limits(mut self, limits: KvLimits) -> Self {
        self.kv_limits = limits;
        self
    }

    /// Timeouts and the response size cap of plugins' outbound HTTP.
    pub fn http_limits(mut self, limits: HttpLimits) -> Self {
        self.http_limits = limits;
        self
    }

    /// Offers plugins one of the application's own WIT interfaces (see
    /// [`Extension`]).
    pub fn extension(mut self, extension: Extension) -> Self {
        self.extensions.push(extension);
        self
    }

    /// Queue size per event subscriber and the hop limit of the event bus.
    pub fn events(mut self, settings: EventSettings) -> Self {
        self.events = settings;
        self
    }

    /// When a plugin version's circuit breaker opens and for how long
    /// (see [`BreakerSettings`]; [`BreakerSettings::disabled`] turns it off).
    pub fn breaker(mut self, settings: BreakerSettings) -> Self {
        self.breaker = settings;
        self
    }

    /// When a canary candidate that does worse than the stable version is
    /// rolled back by itself ([`RollbackPolicy::disabled`]: never).
    pub fn rollback_policy(mut self, policy: RollbackPolicy) -> Self {
        self.rollback = policy;
        self
    }

    /// Makes [`Warden::load`] trust the directory it is given, as an
    /// operator naming a directory on a command line does: the name claims
    /// are neither checked nor changed. For tools driven by hand; a server
    /// that loads what it finds in directories keeps the default (`false`),
    /// under which a plugin from another directory cannot take a loaded
    /// plugin's name (see [`Warden::load`]).
    pub fn trust_loaded_dirs(mut self, trust: bool) -> Self {
        self.trust_loaded_dirs = trust;
        self
    }

    /// The most disk space one plugin's audit entries may use (4 MiB by
    /// default). Every plugin has a share of its own, so no plugin's
    /// traffic can push another's entries out of the log.
    pub fn audit_max_bytes(mut self, bytes: u64) -> Self {
        self.audit_max_bytes = bytes;
        self
    }

    /// Meters fuel so that plugins can have a deterministic CPU budget per
    /// call (`limits.fuel`). Off by default: metering slows every call.
    pub fn fuel(mut self, enabled: bool) -> Self {
        self.engine.fuel = enabled;
        self
    }

    /// The instance allocator (pooling by default).
    pub fn allocator(mut self, allocator: Allocator) -> Self {
        self.engine.allocator = allocator;
        self
    }

    /// Replaces the whole engine configuration.
    pub fn engine_config(mut self, config: EngineConfig) -> Self {
        self.engine = config;
        self
    }

    /// Creates the host: builds the engine and starts its epoch ticker.
    pub fn build(self) -> Result<Warden> {
        Extension::check_distinct(&self.extensions)?;
        let kv = match self.kv {
            Some(kv) => kv,
            None => Arc::new(SqliteBackend::open(self.data_dir.as_deref()).map_err(Error::Host)?),
        };
        let audit = match &self.data_dir {
            Some(dir) => AuditLog::open(dir, self.audit_max_bytes)?,
            None => AuditLog::in_memory(),
        };
        Ok(Warden {
            core: Core::new(
                &self.engine,
                self.limits,
                self.caps,
                self.grants,
                ServiceSettings {
                    config: self.config,
                    kv,
                    kv_limits: self.kv_limits,
                    http: self.http_limits,
                    data_root: DataRoot::new(self.data_dir.as_deref()),
                    extensions: self.extensions,
                },
                Arc::new(audit),
                Tuning {
                    events: self.events,
                    breaker: self.breaker,
                },
            )?,
            registry: Arc::default(),
            turns: Mutex::default(),
            event_targets: Mutex::default(),
            deploys: DeployStore::open(self.data_dir.as_deref())?,
            claims: NameClaims::open(self.data_dir.as_deref())?,
            load_claim: (!self.trust_loaded_dirs).then_some(Claim::Check),
            rollback_policy: self.rollback,
            reloads: Mutex::default(),
        })
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
    /// the plugin and is trusted to: no name claim is checked or made.
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
        let started = self.start(source).await;
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
        // Compiling is CPU-bound; keep it off the async runtime's workers.
        let prepared = match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::spawn_blocking(move || prepare(&core, source, plugins))
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

    /// Puts `event` on the event bus: every subscriber whose patterns match
    /// (event-handler plugins and the application's callbacks) gets it
    /// through its own queue. Returns how many took it (0 when the event is
    /// refused: hop count or payload over the bus's limits); never waits.
    pub fn publish(&self, event: Event) -> usize {
        self.core.bus.publish(event).unwrap_or(0)
    }

    /// Delivers `event` straight to every event-handler plugin subscribed
    /// to its type and waits for each one's outcome, bypassing the bus
    /// queues (for tools and tests; the application's callbacks are not
    /// called). Events the plugins emit meanwhile go onto the bus.
    pub async fn dispatch_event(&self, event: &Event) -> Vec<(String, Result<()>)> {
        let mut outcomes = Vec::new();
        for plugin in self.registry.stables() {
            if plugin.info().world != crate::World::EventHandler {
                continue;
            }
            let wanted = match plugin.subscriptions().await {
                Ok(patterns) => patterns.iter().any(|p| event.matches(p)),
                Err(e) => {
                    outcomes.push((plugin.name().to_string(), Err(e)));
                    continue;
                }
            };
            if wanted {
                outcomes.push((plugin.name().to_string(), plugin.on_event(event).await));
            }
        }
        outcomes
    }

    /// Calls `f` with every event on the bus, on a thread of this
    /// subscription's own (see [`Warden::subscribe_to`]).
    pub fn subscribe(&self, f: impl Fn(&Event) + Send + Sync + 'static) -> Result<()> {
        self.subscribe_to(&["*"], f)
    }

    /// Calls `f` with every event on the bus whose type matches one of
    /// `patterns` (`order.created`, `order.*`, `*`). Calls happen in order
    /// on a thread of this subscription's own, fed by a bounded queue: a
    /// slow `f` only delays (and, once its queue is full, drops) its own
    /// events. A panic in `f` counts as a failed delivery.
    pub fn subscribe_to(
        &self,
        patterns: &[&str],
        f: impl Fn(&Event) + Send + Sync + 'static,
    ) -> Result<()> {
        for p in patterns {
            crate::events::validate_pattern(p).map_err(Error::Host)?;
        }
        let bus = &self.core.bus;
        bus.subscribe(
            bus.host_subscriber_name(),
            patterns.iter().map(|p| p.to_string()).collect(),
            Box::new(move |e| {
                f(e);
                Ok(())
            }),
        )
    }

    /// Subscribes an event-handler plugin to the bus.
    pub(crate) fn subscribe_plugin(&self, plugin: &Plugin, patterns: Vec<String>) -> Result<()> {
        let core = self.core.clone();
        let target = Arc::new(Mutex::new(plugin.clone()));
        let slot = target.clone();
        self.core.bus.subscribe(
            plugin_subscriber(plugin.name()),
            patterns,
            Box::new(move |event| {
                // The build that serves now; if a reload retires it before
                // the delivery begins, the event goes to its successor.
                let mut outcome = None;
                for _ in 0..3 {
                    let current = lock(&slot).clone();
                    outcome = core
                        .block_on("event delivery", async { Ok(current.deliver(event).await) })
                        .unwrap_or_else(|e| Some(Err(e)));
                    if outcome.is_some() {
                        break;
                    }
                }
                match outcome {
                    Some(result) => result.map_err(|e| e.to_string()),
                    None => Err("the plugin was unloaded".into()),
                }
            }),
        )?;
        lock(&self.event_targets).insert(plugin.name().to_string(), target);
        Ok(())
    }

    /// Ends the event subscription of plugin `name`, if it has one.
    pub(crate) fn unsubscribe_plugin(&self, name: &str) {
        lock(&self.event_targets).remove(name);
        self.core.bus.unsubscribe(&plugin_subscriber(name));
    }

    /// Points plugin `next`'s event subscription (if any) at it, with its
    /// patterns: events already queued go to the new build.
    pub(crate) fn retarget_events(
        &self,
        next: &Plugin,
        patterns: Option<Vec<String>>,
    ) -> Result<()> {
        let slot = lock(&self.event_targets).get(next.name()).cloned();
        match (slot, patterns) {
            (Some(slot), Some(patterns)) => {
                *lock(&slot) = next.clone();
                self.core
                    .bus
                    .set_patterns(&plugin_subscriber(next.name()), patterns);
                Ok(())
            }
            (Some(_), None) => {
                self.unsubscribe_plugin(next.name());
                Ok(())
            }
            (None, Some(patterns)) => self.subscribe_plugin(next, patterns),
            (None, None) => Ok(()),
        }
    }

    /// Delivery counts of every subscriber of the event bus.
    pub fn event_stats(&self) -> Vec<SubscriberStats> {
        self.core.bus.stats()
    }

    /// Waits until the event bus is idle: every queued event delivered,
    /// including events emitted by those deliveries. Gives up after
    /// `timeout`; returns whether it became idle.
    pub async fn settle_events(&self, timeout: Duration) -> bool {
        self.core.bus.settle(timeout).await
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

    /// Blocking form of [`Warden::load`].
    pub fn load_blocking(&self, path: impl AsRef<Path>) -> Result<Plugin> {
        self.core.block_on("load_blocking", self.load(path))
    }

    /// Blocking form of [`Warden::load_bytes`].
    pub fn load_bytes_blocking(
        &self,
        manifest: Manifest,
        bytes: impl Into<Vec<u8>>,
    ) -> Result<Plugin> {
        self.core
            .block_on("load_bytes_blocking", self.load_bytes(manifest, bytes))
    }

    /// Blocking form of [`Warden::load_dir`].
    pub fn load_dir_blocking(&self, dir: impl AsRef<Path>) -> Result<Vec<Plugin>> {
        self.core.block_on("load_dir_blocking", self.load_dir(dir))
    }

    /// Blocking form of [`Warden::unload`].
    pub fn unload_blocking(&self, name: &str) -> Result<()> {
        self.core.block_on("unload_blocking", self.unload(name))
    }

    /// Blocking form of [`Warden::shutdown`].
    pub fn shutdown_blocking(&self) -> Result<()> {
        self.core.block_on("shutdown_blocking", async {
            self.shutdown().await;
            Ok(())
        })
    }

    /// Blocking form of [`Warden::settle_events`].
    pub fn settle_events_blocking(&self, timeout: Duration) -> Result<bool> {
        self.core.block_on("settle_events_blocking", async {
            Ok(self.settle_events(timeout).await)
        })
    }

    /// Blocking form of [`Warden::dispatch_event`].
    pub fn dispatch_event_blocking(&self, event: &Event) -> Result<Vec<(String, Result<()>)>> {
        self.core.block_on("dispatch_event_blocking", async {
            Ok(self.dispatch_event(event).await)
        })
    }
}

impl Drop for Warden {
    /// Ends the event bus's threads: a subscribed plugin's thread holds the
    /// plugin, which holds the host's core, which holds the bus.
    fn drop(&mut self) {
        self.core.bus.close();
    }
}

/// The event-bus subscriber name of plugin `name`.
fn plugin_subscriber(name: &str) -> String {
    format!("plugin:{name}")
}
