//! The one wasmtime engine of a host: compiler settings, the instance
//! allocator, and the epoch ticker that gives every call a hard deadline.

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::{Error, Result};

/// How the engine is set up. The defaults suit a server: pooled instances,
/// a 10 ms epoch tick, a 1 MiB wasm stack.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How often the epoch advances; deadlines are rounded up to this.
    pub epoch_tick: Duration,
    /// The most stack a plugin's wasm code may use.
    pub max_wasm_stack: usize,
    /// How instance memory is allocated.
    pub allocator: Allocator,
    /// Where compiled plugins are cached between runs. `None` keeps the
    /// cache in memory only. The directory must belong to this host alone:
    /// Warden loads native code from it.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            epoch_tick: Duration::from_millis(10),
            max_wasm_stack: 1 << 20,
            allocator: Allocator::Pooling(PoolingConfig::default()),
            cache_dir: None,
        }
    }
}

/// The instance allocation strategy.
#[derive(Debug, Clone)]
pub enum Allocator {
    /// Memory reserved up front for a fixed number of instances: the fastest
    /// way to create instances, and a hard cap on how many can be alive.
    Pooling(PoolingConfig),
    /// Memory mapped per instance on demand: no up-front reservation, slower
    /// instantiation.
    OnDemand,
}

/// Sizes of the pooling allocator.
#[derive(Debug, Clone)]
pub struct PoolingConfig {
    /// Component instances alive at once, across all plugins.
    pub total_instances: u32,
    /// The largest linear memory any plugin may have, in bytes. Plugins ask
    /// for less in their manifest; this is the ceiling.
    pub max_memory_bytes: usize,
}

impl Default for PoolingConfig {
    fn default() -> Self {
        PoolingConfig { total_instances: 256, max_memory_bytes: 1 << 30 }
    }
}

impl EngineConfig {
    /// The largest memory a plugin may be granted under this configuration.
    pub fn memory_ceiling(&self) -> usize {
        match &self.allocator {
            Allocator::Pooling(p) => p.max_memory_bytes,
            Allocator::OnDemand => 4 << 30,
        }
    }

    pub(crate) fn build_engine(&self) -> Result<wasmtime::Engine> {
        let mut config = wasmtime::Config::new();
        config
            .strategy(wasmtime::Strategy::Cranelift)
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(self.max_wasm_stack)
            // The fiber a call runs on must hold the wasm stack plus the host
            // functions it calls.
            .async_stack_size(self.max_wasm_stack + (1 << 20));
        if let Allocator::Pooling(p) = &self.allocator {
            let n = p.total_instances.max(1);
            let mut pool = PoolingAllocationConfig::new();
            // A component built by wit-bindgen holds a handful of core
            // instances, memories and tables; size the pool for that.
            pool.total_component_instances(n)
                .total_core_instances(n.saturating_mul(8))
                .total_memories(n.saturating_mul(4))
                .total_tables(n.saturating_mul(8))
                .total_stacks(n)
                .max_memory_size(p.max_memory_bytes);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        wasmtime::Engine::new(&config).map_err(|e| Error::host("creating the wasm engine", e))
    }
}

/// Advances the engine's epoch every `tick` until the engine is dropped.
pub(crate) fn start_epoch_ticker(engine: &wasmtime::Engine, tick: Duration) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("warden-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .map(drop)
        .map_err(|e| Error::host("starting the epoch ticker thread", e))
}

/// The number of epoch ticks that covers `timeout`, plus one so a deadline
/// is never shorter than asked.
pub(crate) fn ticks_for(timeout: Duration, tick: Duration) -> u64 {
    let tick = tick.as_nanos().max(1);
    u64::try_from(timeout.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_up() {
        let tick = Duration::from_millis(10);
        assert_eq!(ticks_for(Duration::from_millis(100), tick), 11);
        assert_eq!(ticks_for(Duration::from_millis(101), tick), 12);
        assert_eq!(ticks_for(Duration::ZERO, tick), 1);
    }
}
