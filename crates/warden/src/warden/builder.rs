//! [`WardenBuilder`]: everything a host is configured with before it starts.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::audit::AuditLog;
use crate::breaker::BreakerSettings;
use crate::capabilities::data::DataRoot;
use crate::capabilities::http::HttpLimits;
use crate::capabilities::store::{KvBackend, KvLimits, SqliteBackend};
use crate::capabilities::{Capability, Registry};
use crate::capabilities::{ConfigSettings, ServiceSettings};
use crate::claims::{Claim, NameClaims};
use crate::core::{Core, Tuning};
use crate::deploy::RollbackPolicy;
use crate::deploy::state::DeployStore;
use crate::engine::{Allocator, EngineConfig};
use crate::error::{Error, Result};
use crate::events::EventSettings;
use crate::extension::Extension;
use crate::grants::Grants;
use crate::limits::Limits;

use super::Warden;

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
    trace: Option<Arc<dyn crate::TraceHooks>>,
    trusted_keys: Option<Vec<crate::PublicKey>>,
    events: EventSettings,
    capabilities: Registry,
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
            trace: None,
            trusted_keys: None,
            events: EventSettings::default(),
            capabilities: Registry::default(),
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

    /// Loads only plugins whose component and manifest a key in `keys`
    /// signed ([`crate::SigningKey::sign`], `warden sign`): any other is
    /// refused with [`crate::Error::Signature`] before it is compiled, and
    /// audited. Plugins the application loads from bytes
    /// ([`crate::Warden::load_bytes`]) are its own and are not asked.
    pub fn require_signatures(mut self, keys: Vec<crate::PublicKey>) -> Self {
        self.trusted_keys = Some(keys);
        self
    }

    /// Ties plugins into the embedder's traces: `hooks` write the current
    /// span's context into each outbound HTTP request and export the
    /// spans plugins make themselves (see [`crate::TraceHooks`]).
    pub fn trace_hooks(mut self, hooks: Arc<dyn crate::TraceHooks>) -> Self {
        self.trace = Some(hooks);
        self
    }

    /// Offers plugins one of the application's own WIT interfaces (see
    /// [`Extension`]).
    pub fn extension(mut self, extension: Extension) -> Self {
        self.capabilities.push(Arc::new(extension));
        self
    }

    /// Adds one of the application's own capabilities (see [`Capability`]):
    /// its functions are linked, every plugin is checked by it at load, and
    /// every instance gets its state.
    pub fn capability(mut self, capability: impl Capability) -> Self {
        self.capabilities.push(Arc::new(capability));
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
        self.capabilities.check_distinct()?;
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
                    trace: self.trace,
                    data_root: DataRoot::new(self.data_dir.as_deref()),
                    capabilities: self.capabilities,
                },
                Arc::new(audit),
                Tuning {
                    events: self.events,
                    breaker: self.breaker,
                    trusted_keys: self.trusted_keys.map(Arc::from),
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
