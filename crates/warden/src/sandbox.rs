//! The per-instance sandbox: the store data every plugin instance owns (WASI
//! context, resource limiter, host-service state) and the per-call scope that
//! attributes logs to a call and caps them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::services::{GuestOutput, Services};

/// Everything a plugin instance's `Store` holds.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) services: Services,
}

impl HostState {
    /// A sandbox with nothing of the host visible: no files, no sockets, no
    /// environment, no arguments. Clocks and randomness are available;
    /// stdout and stderr go to the host log through `scope`.
    pub(crate) fn new(scope: Arc<CallScope>, services: Services, memory_limit: usize) -> Self {
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestOutput::stdout(scope.clone()))
            .stderr(GuestOutput::stderr(scope))
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(memory_limit),
            services,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Caps linear memory and remembers whether the cap was hit, so that the
/// trap that follows a failed allocation is reported as out-of-memory.
pub(crate) struct Limiter {
    memory_limit: usize,
    peak_memory: usize,
    pub(crate) memory_denied: bool,
}

/// Table growth beyond this is refused; real plugins stay far below it.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    fn new(memory_limit: usize) -> Self {
        Limiter { memory_limit, peak_memory: 0, memory_denied: false }
    }

    /// The largest linear memory this instance has had, in bytes.
    pub(crate) fn peak_memory(&self) -> usize {
        self.peak_memory
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_limit && maximum.is_none_or(|m| desired <= m);
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        } else {
            self.memory_denied = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|m| desired <= m))
    }
}

/// Who is calling right now, and how much that call may still log. Shared by
/// an instance's logging service and its stdout/stderr.
pub(crate) struct CallScope {
    pub(crate) plugin: Arc<str>,
    pub(crate) version: Arc<str>,
    call_id: Mutex<CallId>,
    log_cap: u64,
    log_left: AtomicU64,
    log_dropped: AtomicBool,
    last_stderr: Mutex<String>,
}

/// How much of a call's stderr is kept to explain a trap.
const LAST_STDERR_MAX: usize = 1024;

impl CallScope {
    pub(crate) fn new(plugin: &str, version: &str, log_cap: u64) -> Arc<Self> {
        Arc::new(CallScope {
            plugin: plugin.into(),
            version: version.into(),
            call_id: Mutex::new(CallId::Seq(0)),
            log_cap,
            log_left: AtomicU64::new(log_cap),
            log_dropped: AtomicBool::new(false),
            last_stderr: Mutex::new(String::new()),
        })
    }

    /// Starts a new call: new id, a full log budget, no stderr remembered.
    pub(crate) fn begin(&self, call_id: CallId) {
        *lock(&self.call_id) = call_id;
        self.log_left.store(self.log_cap, Ordering::Relaxed);
        self.log_dropped.store(false, Ordering::Relaxed);
        lock(&self.last_stderr).clear();
    }

    pub(crate) fn call_id(&self) -> CallId {
        lock(&self.call_id).clone()
    }

    /// Takes `bytes` from the call's log budget. Returns false (and warns
    /// once per call) when the budget is spent.
    pub(crate) fn charge_log(&self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        let granted = self
            .log_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(bytes))
            .is_ok();
        if !granted {
            if !self.log_dropped.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    plugin = %self.plugin,
                    version = %self.version,
                    call_id = %self.call_id(),
                    cap = self.log_cap,
                    "plugin reached its log cap for this call; further output is dropped"
                );
            }
        }
        granted
    }

    /// Keeps the end of the call's stderr (without the Rust runtime's hint
    /// about `RUST_BACKTRACE`), to explain a trap that follows.
    pub(crate) fn remember_stderr(&self, line: &str) {
        if line.starts_with("note: run with `RUST_BACKTRACE") {
            return;
        }
        let mut kept = lock(&self.last_stderr);
        if !kept.is_empty() {
            kept.push(' ');
        }
        kept.push_str(line);
        if kept.len() > LAST_STDERR_MAX {
            let mut cut = kept.len() - LAST_STDERR_MAX;
            while !kept.is_char_boundary(cut) {
                cut += 1;
            }
            kept.drain(..cut);
        }
    }

    /// The end of what the plugin wrote to stderr in this call, on one line
    /// (a panic message, typically), or an empty string.
    pub(crate) fn last_stderr(&self) -> String {
        lock(&self.last_stderr).clone()
    }
}

/// The id logs of a call carry: the caller's (an HTTP request id, say) or
/// a sequence number, which is only formatted when something is logged.
#[derive(Clone, Debug)]
pub(crate) enum CallId {
    Seq(u64),
    Given(Arc<str>),
}

impl CallId {
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        CallId::Seq(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallId::Seq(n) => write!(f, "c{n:x}"),
            CallId::Given(id) => f.write_str(id),
        }
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
