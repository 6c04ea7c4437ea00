//! What a host and every plugin it loaded share: the engine, the linker with
//! every host service, the compiled-artifact cache, the event bus, the
//! default limits, and the executor behind the blocking facade.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use wasmtime::component::Linker;

use crate::audit::AuditLog;
use crate::breaker::BreakerSettings;
use crate::cache::ArtifactCache;
use crate::capabilities::ServiceSettings;
use crate::engine::{Allocator, EngineConfig, start_epoch_ticker};
use crate::error::{Error, Result};
use crate::events::{EventBus, EventSettings};
use crate::grants::Grants;
use crate::lane::{Lane, OwnedRuntime};
use crate::limits::{HostLimits, Limits};
use crate::locks::lock;
use crate::signature::PublicKey;
use crate::state::PluginState;

/// The blocking pool of the blocking facade's runtime: tokio's default.
const BLOCKING_POOL: usize = 512;

pub(crate) struct Core {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) linker: Linker<PluginState>,
    pub(crate) cache: ArtifactCache,
    pub(crate) bus: Arc<EventBus>,
    pub(crate) defaults: Limits,
    pub(crate) caps: Limits,
    pub(crate) host_limits: HostLimits,
    pub(crate) grants: Grants,
    pub(crate) services: ServiceSettings,
    pub(crate) audit: Arc<AuditLog>,
    /// When a version's circuit breaker opens.
    pub(crate) breaker: BreakerSettings,
    /// The keys a plugin must be signed with (`None`: no signature asked).
    pub(crate) trusted_keys: Option<Arc<[PublicKey]>>,
    /// Instances the pooling allocator holds (`None`: no fixed pool).
    instance_capacity: Option<u32>,
    /// Instances promised to loaded plugins (the sum of their `max-instances`).
    instances_reserved: Mutex<u32>,
    executor: OnceLock<std::result::Result<OwnedRuntime, String>>,
    /// Where the calls of plugins that map directories run.
    pub(crate) files: Lane,
}

/// How the host's event bus and circuit breakers behave.
pub(crate) struct Tuning {
    pub(crate) events: EventSettings,
    pub(crate) breaker: BreakerSettings,
    pub(crate) trusted_keys: Option<Arc<[PublicKey]>>,
}

/// Instances reserved for one plugin in the host's pool; released on drop.
pub(crate) struct Reservation {
    core: Arc<Core>,
    count: u32,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut reserved = lock(&self.core.instances_reserved);
        *reserved = reserved.saturating_sub(self.count);
    }
}

impl Core {
    pub(crate) fn new(
        config: &EngineConfig,
        defaults: Limits,
        caps: Limits,
        grants: Grants,
        services: ServiceSettings,
        audit: Arc<AuditLog>,
        tuning: Tuning,
    ) -> Result<Arc<Self>> {
        config.validate()?;
        defaults.validate("default")?;
        caps.validate("cap")?;
        if defaults.fuel.is_some() && !config.fuel {
            return Err(Error::Host(
                "default limits set a fuel budget, but the engine does not meter fuel \
                 (set `EngineConfig::fuel`)"
                    .into(),
            ));
        }
        let engine = config.build_engine()?;
        start_epoch_ticker(&engine, config.epoch_tick)?;
        let mut linker = Linker::new(&engine);
        crate::sandbox::add_to_linker(&mut linker)
            .map_err(|e| Error::host("linking host services", e))?;
        for capability in services.capabilities.iter() {
            capability.link(&mut linker).map_err(|e| {
                Error::host(&format!("linking capability `{}`", capability.name()), e)
            })?;
        }
        let cache = ArtifactCache::new(
            &engine,
            config.compiler_config(),
            config.cache_dir.clone(),
            config.cache_max_bytes,
        )?;
        Ok(Arc::new(Core {
            engine,
            linker,
            cache,
            bus: Arc::new(EventBus::new(tuning.events)),
            defaults,
            caps,
            host_limits: HostLimits {
                memory_ceiling: config.memory_ceiling(),
                max_wasm_stack: config.max_wasm_stack,
                fuel_metering: config.fuel,
            },
            grants,
            services,
            audit,
            breaker: tuning.breaker,
            trusted_keys: tuning.trusted_keys,
            instance_capacity: match &config.allocator {
                Allocator::Pooling(p) => Some(p.total_instances),
                Allocator::OnDemand => None,
            },
            instances_reserved: Mutex::new(0),
            executor: OnceLock::new(),
            files: Lane::default(),
        }))
    }

    /// Reserves `count` instances of the pool for plugin `plugin`, so that a
    /// loaded plugin can always create the instances its manifest allows.
    pub(crate) fn reserve(self: &Arc<Self>, plugin: &str, count: u32) -> Result<Reservation> {
        let mut reserved = lock(&self.instances_reserved);
        if let Some(capacity) = self.instance_capacity {
            let free = capacity.saturating_sub(*reserved);
            if count > free {
                return Err(Error::Host(format!(
                    "plugin `{plugin}` needs {count} instances (`limits.max-instances`), but only {free} of \
                     this host's {capacity} are free; lower it or raise the pool size"
                )));
            }
        }
        *reserved += count;
        Ok(Reservation {
            core: self.clone(),
            count,
        })
    }

    /// Where a call of a plugin that maps directories runs: the file lane
    /// ([`crate::lane`]), for a call made on an async runtime. A call
    /// through the blocking facade stays on its caller's thread, which
    /// waits for nothing else.
    pub(crate) fn file_lane(&self) -> Option<tokio::runtime::Handle> {
        let here = tokio::runtime::Handle::try_current().ok()?;
        let facade = self.executor.get().and_then(|e| e.as_ref().ok());
        if facade.is_some_and(|rt| rt.owns(&here)) {
            return None;
        }
        self.files.handle(&here)
    }

    /// Runs `fut` to completion on the calling thread, for the blocking
    /// facade. Refuses inside an async runtime, where blocking would stall
    /// that runtime's worker.
    pub(crate) fn block_on<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::BlockingInAsync { method });
        }
        // Calls run on the calling thread; the one worker only drives timers
        // and I/O, so every caller thread makes progress in parallel.
        let executor = self
            .executor
            .get_or_init(|| OwnedRuntime::new("warden-io", 1, BLOCKING_POOL));
        match executor.as_ref().map(OwnedRuntime::runtime) {
            Ok(Some(rt)) => {
                let mut fut = std::pin::pin!(fut);
                // Most calls never wait on a timer or I/O: polled once in the
                // runtime's context, they finish without `block_on`'s parking
                // and without moving the (large) future again.
                let first = {
                    let _context = rt.enter();
                    fut.as_mut()
                        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
                };
                match first {
                    std::task::Poll::Ready(out) => out,
                    std::task::Poll::Pending => rt.block_on(fut),
                }
            }
            Ok(None) => Err(Error::Host("the blocking executor is shut down".into())),
            Err(e) => Err(Error::host("starting the blocking executor", e.clone())),
        }
    }
}
