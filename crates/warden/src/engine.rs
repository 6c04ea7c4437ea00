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
    /// The most disk space the cache directory may take; past it, the
    /// entries used longest ago are removed.
    pub cache_max_bytes: u64,
    /// Meter fuel, so that plugins can be given a deterministic CPU budget
    /// per call (`limits.fuel`). Off by default: metering slows every call.
    pub fuel: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            epoch_tick: Duration::from_millis(10),
            max_wasm_stack: 1 << 20,
            allocator: Allocator::Pooling(PoolingConfig::default()),
            cache_dir: None,
            cache_max_bytes: 1 << 30,
            fuel: false,
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
        PoolingConfig {
            total_instances: 256,
            max_memory_bytes: 1 << 30,
        }
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

    /// Rejects settings that would make the engine misbehave.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Host(format!("invalid engine configuration: {what}")));
        if self.epoch_tick < Duration::from_millis(1) || self.epoch_tick > Duration::from_secs(1) {
            return bad("`epoch_tick` must be between 1 ms and 1 s");
        }
        if self.max_wasm_stack < (64 << 10) || self.max_wasm_stack > (64 << 20) {
            return bad("`max_wasm_stack` must be between 64 KiB and 64 MiB");
        }
        if let Allocator::Pooling(p) = &self.allocator
            && (p.total_instances == 0
                || p.total_instances > 100_000
                || p.max_memory_bytes < (1 << 20))
        {
            return bad("the pool needs 1 to 100000 instances and at least 1 MiB of memory each");
        }
        Ok(())
    }

    /// The engine plugins run in.
    pub(crate) fn build_engine(&self) -> Result<wasmtime::Engine> {
        let mut config = self.compiler_config();
        if let Allocator::Pooling(p) = &self.allocator {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling(p)));
        }
        wasmtime::Engine::new(&config).map_err(|e| Error::host("creating the wasm engine", e))
    }

    /// What an engine needs to compile code the one of [`Self::build_engine`]
    /// runs: everything but the instance allocator, which compiled code does
    /// not depend on.
    pub(crate) fn compiler_config(&self) -> wasmtime::Config {
        let mut config = wasmtime::Config::new();
        config
            .strategy(wasmtime::Strategy::Cranelift)
            .wasm_component_model(true)
            .epoch_interruption(true)
            // No plugin uses the component model's async ABI (no host
            // function is `*_concurrent`): without it, a call enters and
            // leaves the guest without a task record of its own.
            .concurrency_support(false)
            .consume_fuel(self.fuel)
            .max_wasm_stack(self.max_wasm_stack)
            // The fiber a call runs on must hold the wasm stack plus the host
            // functions it calls.
            .async_stack_size(self.max_wasm_stack + (1 << 20));
        config
    }
}

/// The pooling allocator for `p`.
fn pooling(p: &PoolingConfig) -> PoolingAllocationConfig {
    let n = p.total_instances;
    let mut pool = PoolingAllocationConfig::new();
    // A component built by wit-bindgen holds a handful of core
    // instances, memories and tables; one from componentize-py
    // holds 14 core instances (libc, libpython, shims, adapter).
    // Size the pool for that.
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(16))
        .total_memories(n.saturating_mul(4))
        .total_tables(n.saturating_mul(8))
        .total_stacks(n)
        // Cap each component at its share, so one large component
        // cannot use up what the reservations promised to others.
        .max_core_instances_per_component(16)
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_memory_size(p.max_memory_bytes)
        // Resetting the first pages of a reused slot with memset is
        // cheaper than returning them to the kernel and faulting them
        // back in; measured ~10% faster fresh instances (1 MiB was slower).
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10)
        // Resets only the pages an instance dirtied (Linux 6.7+) instead of
        // unmapping the slot: a fresh instance no longer pays page faults
        // and TLB shootdowns for its memory image (measured 24.8 -> 12.1 us).
        .pagemap_scan(wasmtime::Enabled::Auto)
        .async_stack_keep_resident(64 << 10);
    pool
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
