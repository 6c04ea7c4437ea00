//! The store data of one plugin instance: its WASI context and resource
//! table, its resource limiter, its call scope and host budget, and the
//! state of every capability. This module knows no capability by type:
//! each finds its own state through the accessor it was linked with, so
//! the capabilities depend on it and not the other way round.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::budget::HostBudget;
use crate::error::Error;
use crate::firewall::Firewall;
use crate::limits::Limits;
use crate::scope::CallScope;

/// The WASI version whose functions Warden interposes on (the one
/// wasmtime-wasi links; guests built against older 0.2 releases resolve to it).
pub(crate) const WASI_VERSION: &str = "0.2.12";

/// Everything a plugin instance's `Store` holds: its sandbox, the state of
/// every capability, built-in or the embedder's (each capability's
/// functions reach theirs through the accessor they are linked with).
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    capabilities: CapabilityStates,
    pub(crate) firewall: Firewall,
    scope: Arc<CallScope>,
    /// What the host may hold for this instance beside its handles.
    pub(crate) budget: Arc<HostBudget>,
    /// When the call in progress must end; checked at every epoch tick.
    pub(crate) deadline: Instant,
    /// Why a call this instance made through a link failed: set by the
    /// forwarding function, taken by the call that it cut short.
    pub(crate) link_failure: Option<Error>,
}

/// The sandbox of one new instance, ready to become its store data.
pub(crate) struct Sandbox {
    pub(crate) wasi: WasiCtx,
    pub(crate) firewall: Firewall,
    pub(crate) capabilities: CapabilityStates,
    pub(crate) scope: Arc<CallScope>,
    pub(crate) budget: Arc<HostBudget>,
}

impl PluginState {
    /// The store data of an instance with `sandbox`, whose resource table
    /// holds at most `limits.max_resources` handles and whose memory is
    /// capped at `limits.memory_bytes` and added to `held`.
    pub(crate) fn new(sandbox: Sandbox, limits: &Limits, held: Arc<AtomicU64>) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources as usize);
        PluginState {
            wasi: sandbox.wasi,
            table,
            limiter: Limiter::new(limits.memory_bytes, Some(held)),
            capabilities: sandbox.capabilities,
            firewall: sandbox.firewall,
            scope: sandbox.scope,
            budget: sandbox.budget,
            deadline: Instant::now(),
            link_failure: None,
        }
    }

    /// The name of the plugin this instance runs.
    pub fn plugin(&self) -> &str {
        &self.scope.plugin
    }

    /// This instance's state of the embedder's capability or extension
    /// whose state type is `E`: the accessor each of them is linked with,
    /// so the embedder never names the type twice.
    ///
    /// # Panics
    ///
    /// When no capability with state `E` is registered, which cannot
    /// happen: it is only handed to a capability registered with state
    /// `E`, whose state every instance is built with.
    pub(crate) fn extension<E: 'static>(&mut self) -> &mut E {
        match self.capabilities.embedded::<E>() {
            Some(state) => state,
            None => panic!(
                "no Warden capability with state `{}` is registered",
                std::any::type_name::<E>()
            ),
        }
    }

    /// Attribution of the call in progress.
    pub(crate) fn scope(&self) -> &CallScope {
        &self.scope
    }

    /// The instance's resource table.
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The capabilities' states and the resource table, borrowed together
    /// for a capability whose functions need both.
    pub(crate) fn capabilities_and_table(&mut self) -> (&mut CapabilityStates, &mut ResourceTable) {
        (&mut self.capabilities, &mut self.table)
    }

    /// The capabilities' states.
    pub(crate) fn capabilities(&mut self) -> &mut CapabilityStates {
        &mut self.capabilities
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The state of every capability of one instance, each in the slot its
/// capability was registered in: the built-in ones first, then the
/// embedder's (from `embedded_from` on).
pub(crate) struct CapabilityStates {
    states: Vec<Box<dyn Any + Send>>,
    embedded_from: usize,
    /// Calls into each slot's capability, shared by every instance of the
    /// plugin version.
    calls: Arc<[AtomicU64]>,
}

impl CapabilityStates {
    pub(crate) fn new(
        states: Vec<Box<dyn Any + Send>>,
        embedded_from: usize,
        calls: Arc<[AtomicU64]>,
    ) -> Self {
        CapabilityStates {
            states,
            embedded_from,
            calls,
        }
    }

    /// The state in slot `slot`.
    ///
    /// # Panics
    ///
    /// When that slot does not hold an `S`: the slots are laid out by the
    /// same list that links each capability with its slot's accessor, so
    /// nothing a plugin does can make them disagree.
    pub(crate) fn at<S: 'static>(&mut self, slot: usize) -> &mut S {
        match self
            .states
            .get_mut(slot)
            .and_then(|s| s.downcast_mut::<S>())
        {
            Some(state) => state,
            None => panic!(
                "capability slot {slot} does not hold a `{}`",
                std::any::type_name::<S>()
            ),
        }
    }

    /// The state in slot `slot`, for a call of the guest into its
    /// capability, which is counted.
    pub(crate) fn called<S: 'static>(&mut self, slot: usize) -> &mut S {
        self.count(slot);
        self.at(slot)
    }

    /// Counts a call into the capability of slot `slot`.
    pub(crate) fn count(&self, slot: usize) {
        if let Some(calls) = self.calls.get(slot) {
            calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The state of type `S` among the embedder's capabilities (never a
    /// built-in one's), for a call of the guest into its capability.
    pub(crate) fn embedded<S: 'static>(&mut self) -> Option<&mut S> {
        let from = self.embedded_from;
        let found = self.states.get(from..)?.iter().position(|s| s.is::<S>())?;
        self.count(from + found);
        self.states[from + found].downcast_mut::<S>()
    }
}

/// Caps the instance's linear memory, summed over every memory it has (a
/// component may have several), and its table elements, summed likewise;
/// remembers whether the memory cap was hit, so that the trap that follows a
/// failed allocation is reported as out-of-memory. A growth the engine fails
/// after it was allowed stays counted: erring high keeps the cap hard.
pub(crate) struct Limiter {
    memory_limit: usize,
    /// Bytes of every linear memory of the instance together.
    memory_total: usize,
    /// The same bytes added to its plugin's total, if it keeps one: the
    /// memory all its live instances hold (given back on drop).
    held: Option<Arc<AtomicU64>>,
    table_total: usize,
    peak_memory: usize,
    pub(crate) memory_denied: bool,
}

/// Table elements one instance may have across its tables; real plugins
/// stay far below it.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    pub(crate) fn new(memory_limit: usize, held: Option<Arc<AtomicU64>>) -> Self {
        Limiter {
            memory_limit,
            memory_total: 0,
            held,
            table_total: 0,
            peak_memory: 0,
            memory_denied: false,
        }
    }

    /// The most linear memory this instance has had, all memories together,
    /// in bytes.
    pub(crate) fn peak_memory(&self) -> usize {
        self.peak_memory
    }
}

/// Adds the growth `current` -> `desired` to `total` if it stays within
/// `limit`.
fn grow(total: &mut usize, current: usize, desired: usize, limit: usize) -> bool {
    let grown = total.saturating_add(desired.saturating_sub(current));
    if grown > limit {
        return false;
    }
    *total = grown;
    true
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = maximum.is_none_or(|m| desired <= m)
            && grow(&mut self.memory_total, current, desired, self.memory_limit);
        if allowed {
            self.peak_memory = self.peak_memory.max(self.memory_total);
            if let Some(held) = &self.held {
                held.fetch_add(desired.saturating_sub(current) as u64, Ordering::Relaxed);
            }
        } else {
            self.memory_denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m)
            && grow(&mut self.table_total, current, desired, MAX_TABLE_ELEMENTS))
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        if let Some(held) = &self.held {
            held.fetch_sub(self.memory_total as u64, Ordering::Relaxed);
        }
    }
}
