//! What a host and every plugin it loaded share: the engine, the linker with
//! every host service, the compiled-artifact cache, the event bus, the
//! default limits, and the executor behind the blocking facade.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::Linker;

use crate::cache::ArtifactCache;
use crate::engine::{EngineConfig, start_epoch_ticker};
use crate::error::{Error, Result};
use crate::events::EventBus;
use crate::limits::Limits;
use crate::sandbox::HostState;
use crate::services::Services;

pub(crate) struct Core {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) cache: ArtifactCache,
    pub(crate) bus: Arc<EventBus>,
    pub(crate) defaults: Limits,
    pub(crate) memory_ceiling: usize,
    pub(crate) epoch_tick: Duration,
    executor: OnceLock<std::result::Result<tokio::runtime::Runtime, String>>,
}

impl Core {
    pub(crate) fn new(config: &EngineConfig, defaults: Limits) -> Result<Arc<Self>> {
        let engine = config.build_engine()?;
        start_epoch_ticker(&engine, config.epoch_tick)?;
        let mut linker = Linker::new(&engine);
        Services::add_to_linker(&mut linker).map_err(|e| Error::host("linking host services", e))?;
        let cache = ArtifactCache::new(&engine, config.cache_dir.clone())?;
        Ok(Arc::new(Core {
            engine,
            linker,
            cache,
            bus: Arc::new(EventBus::default()),
            defaults,
            memory_ceiling: config.memory_ceiling(),
            epoch_tick: config.epoch_tick,
            executor: OnceLock::new(),
        }))
    }

    /// Runs `fut` to completion on the calling thread, for the blocking
    /// facade. Refuses inside an async runtime, where blocking would stall
    /// that runtime's worker.
    pub(crate) fn block_on<T>(&self, method: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::BlockingInAsync { method });
        }
        let executor = self.executor.get_or_init(|| {
            // Calls run on the calling thread; the one worker only drives
            // timers and I/O, so every caller thread makes progress in parallel.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("warden-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        });
        match executor {
            Ok(rt) => rt.block_on(fut),
            Err(e) => Err(Error::host("starting the blocking executor", e)),
        }
    }
}
