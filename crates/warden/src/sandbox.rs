//! The per-instance sandbox: the store data every plugin instance owns (WASI
//! context, resource limiter, host-service state) and the per-call scope that
//! attributes logs to a call and caps them.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::audit::{AuditEntry, AuditKind, AuditLog};
use crate::budget::HostBudget;
use crate::contract::bindings::types::LogLevel;
use crate::error::{Error, Result};
use crate::firewall::Firewall;
use crate::limits::Limits;
use crate::locks::lock;
use crate::permissions::{EffectivePermissions, FsMode};
use crate::services::{DATA_GUEST_PATH, GuestOutput, Services, write_log};

/// The WASI version whose functions Warden interposes on (the one
/// wasmtime-wasi links; guests built against older 0.2 releases resolve to it).
pub(crate) const WASI_VERSION: &str = "0.2.12";

/// Everything a plugin instance's `Store` holds: its sandbox, its host
/// services' state, and the state of the embedder's extensions
/// ([`PluginState::extension`]).
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) services: Services,
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

impl PluginState {
    /// A sandbox that shows the guest exactly its effective permissions:
    /// the mapped directories, the granted environment, sockets only if a
    /// `net` rule allows some (each use checked by the firewall), no
    /// arguments, no stdin. Clocks and randomness are available; stdout and
    /// stderr go to the host log through `scope`. Its resource table holds
    /// at most `limits.max_resources` handles.
    pub(crate) fn new(
        scope: Arc<CallScope>,
        services: Services,
        budget: Arc<HostBudget>,
        limits: &Limits,
        permissions: &EffectivePermissions,
    ) -> Result<Self> {
        let firewall = Firewall::new(permissions, scope.clone());
        let mut wasi = sandbox_wasi(&scope, permissions, services.data_mount())?;
        wasi.allow_tcp(firewall.any_sockets())
            .allow_udp(firewall.any_sockets())
            .allow_ip_name_lookup(firewall.any_sockets())
            .socket_addr_check(firewall.socket_check());
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources as usize);
        Ok(PluginState {
            wasi: wasi.build(),
            table,
            limiter: Limiter::new(limits.memory_bytes),
            services,
            firewall,
            scope,
            budget,
            deadline: Instant::now(),
            link_failure: None,
        })
    }

    /// The name of the plugin this instance runs.
    pub fn plugin(&self) -> &str {
        &self.scope.plugin
    }

    /// This instance's state of the embedder's capability or extension
    /// whose state type is `E` (see [`crate::Capability`],
    /// [`crate::Extension`]).
    ///
    /// # Panics
    ///
    /// When no capability with state `E` is registered: that is a mistake
    /// in the embedding application's code, not something a plugin can
    /// cause (a registered capability's functions always find their state).
    pub fn extension<E: 'static>(&mut self) -> &mut E {
        match self.services.embedded::<E>() {
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

    /// The HTTP service's state and the resource table it shares with WASI.
    pub(crate) fn http_parts(&mut self) -> (&mut crate::services::http::Http, &mut ResourceTable) {
        (self.services.http(), &mut self.table)
    }

    /// The instance's resource table.
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
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

/// The WASI context every guest gets, component or core module: stdout and
/// stderr to the host log through `scope`, exactly the mapped directories
/// of `permissions` (plus the plugin's data directory at `/data`), the
/// granted environment, no arguments, no stdin, no sockets, and at most
/// [`MAX_RANDOM_BYTES`](crate::trap::MAX_RANDOM_BYTES) random bytes per call.
pub(crate) fn sandbox_wasi(
    scope: &Arc<CallScope>,
    permissions: &EffectivePermissions,
    data_mount: Option<&crate::fsutil::HeldDir>,
) -> Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(GuestOutput::stdout(scope.clone()))
        .stderr(GuestOutput::stderr(scope.clone()))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .max_random_size(crate::trap::MAX_RANDOM_BYTES);
    for mount in &permissions.fs {
        let perms = match mount.mode {
            FsMode::ReadOnly => FsPerms::ReadOnly,
            FsMode::ReadWrite => FsPerms::ReadWrite,
        };
        wasi.preopened_dir(mount.dir.path(), &mount.guest, perms)
            .map_err(|e| {
                Error::Host(format!(
                    "plugin `{}`: cannot map {} into the sandbox: {e:#}",
                    scope.plugin,
                    mount.host.display()
                ))
            })?;
    }
    if let Some(dir) = data_mount {
        wasi.preopened_dir(dir.path(), DATA_GUEST_PATH, FsPerms::ReadWrite)
            .map_err(|e| {
                Error::Host(format!(
                    "plugin `{}`: cannot map its data directory {}: {e:#}",
                    scope.plugin,
                    dir.host().display()
                ))
            })?;
    }
    for var in &permissions.env {
        wasi.env(&var.name, &var.value);
    }
    Ok(wasi)
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
    table_total: usize,
    peak_memory: usize,
    pub(crate) memory_denied: bool,
}

/// Table elements one instance may have across its tables; real plugins
/// stay far below it.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl Limiter {
    pub(crate) fn new(memory_limit: usize) -> Self {
        Limiter {
            memory_limit,
            memory_total: 0,
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

/// Who is calling right now, and how much that call may still log. Shared by
/// an instance's logging service and its stdout/stderr.
pub(crate) struct CallScope {
    pub(crate) plugin: Arc<str>,
    pub(crate) version: Arc<str>,
    audit: Arc<AuditLog>,
    call_id: Mutex<CallId>,
    log_cap: u64,
    log_left: AtomicU64,
    log_dropped: AtomicBool,
    events_cap: u32,
    events_left: AtomicU32,
    events_dropped: AtomicBool,
    /// The hop count of events emitted in the call in progress.
    emit_hops: AtomicU32,
    /// Unfinished lines of stdout and stderr, flushed at the end of each call
    /// so that they are attributed to the call that wrote them.
    pending: Mutex<[Vec<u8>; 2]>,
    last_stderr: Mutex<String>,
}

/// A partial output line longer than this is logged without waiting for
/// its newline.
const MAX_LINE: usize = 4096;

/// Which of a plugin's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout = 0,
    Stderr = 1,
}

/// How much of a call's stderr is kept to explain a trap.
const LAST_STDERR_MAX: usize = 1024;

impl CallScope {
    pub(crate) fn new(
        plugin: &str,
        version: &str,
        audit: Arc<AuditLog>,
        log_cap: u64,
        events_cap: u32,
    ) -> Arc<Self> {
        Arc::new(CallScope {
            plugin: plugin.into(),
            version: version.into(),
            audit,
            call_id: Mutex::new(CallId::Seq(0)),
            log_cap,
            log_left: AtomicU64::new(log_cap),
            log_dropped: AtomicBool::new(false),
            events_cap,
            events_left: AtomicU32::new(events_cap),
            events_dropped: AtomicBool::new(false),
            emit_hops: AtomicU32::new(0),
            pending: Mutex::new([Vec::new(), Vec::new()]),
            last_stderr: Mutex::new(String::new()),
        })
    }

    /// Starts a new call: new id, a full log budget, no stderr remembered;
    /// events it emits get hop count `emit_hops`.
    pub(crate) fn begin(&self, call_id: CallId, emit_hops: u32) {
        *lock(&self.call_id) = call_id;
        self.emit_hops.store(emit_hops, Ordering::Relaxed);
        self.log_left.store(self.log_cap, Ordering::Relaxed);
        self.log_dropped.store(false, Ordering::Relaxed);
        self.events_left.store(self.events_cap, Ordering::Relaxed);
        self.events_dropped.store(false, Ordering::Relaxed);
        lock(&self.last_stderr).clear();
    }

    /// Ends a call: logs what is left of unfinished output lines.
    pub(crate) fn finish(&self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut lock(&self.pending)[stream as usize]);
            if !rest.is_empty() {
                self.emit_output(stream, &rest);
            }
        }
    }

    /// The hop count of events emitted in this call.
    pub(crate) fn emit_hops(&self) -> u32 {
        self.emit_hops.load(Ordering::Relaxed)
    }

    /// Takes one event from the call's budget; false when it is spent.
    pub(crate) fn charge_event(&self) -> bool {
        let granted = self
            .events_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if !granted && !self.events_dropped.swap(true, Ordering::Relaxed) {
            self.audit(
                AuditKind::EventCap,
                format!("{} events per call", self.events_cap),
                "further events of this call dropped",
            );
        }
        granted
    }

    /// Buffers guest output and logs every complete line.
    pub(crate) fn write_output(&self, stream: Stream, bytes: &[u8]) {
        let complete = {
            let mut pending = lock(&self.pending);
            let buf = &mut pending[stream as usize];
            buf.extend_from_slice(bytes);
            match buf.iter().rposition(|b| *b == b'\n') {
                // Split once at the last newline: splitting line by line in
                // the buffer would move the rest of it for every line.
                Some(last) => {
                    let rest = buf.split_off(last + 1);
                    std::mem::replace(buf, rest)
                }
                None if buf.len() > MAX_LINE => std::mem::take(buf),
                None => return,
            }
        };
        let complete = complete.strip_suffix(b"\n").unwrap_or(&complete);
        for line in complete.split(|b| *b == b'\n') {
            self.emit_output(stream, line);
        }
    }

    fn emit_output(&self, stream: Stream, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\n', '\r']);
        match stream {
            Stream::Stdout => write_log(self, LogLevel::Info, "stdout", None, text),
            Stream::Stderr => {
                self.remember_stderr(text);
                write_log(self, LogLevel::Warn, "stderr", None, text);
            }
        }
    }

    pub(crate) fn call_id(&self) -> CallId {
        lock(&self.call_id).clone()
    }

    /// Records an audit entry attributed to this plugin and call.
    pub(crate) fn audit(&self, kind: AuditKind, resource: impl Into<String>, action: &str) {
        self.audit.record(AuditEntry::now(
            &self.plugin,
            &self.version,
            Some(self.call_id().to_string()),
            kind,
            resource,
            action,
        ));
    }

    /// Takes `bytes` from the call's log budget. Returns false (and warns
    /// once per call) when the budget is spent.
    pub(crate) fn charge_log(&self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        let granted = self
            .log_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            })
            .is_ok();
        if !granted && !self.log_dropped.swap(true, Ordering::Relaxed) {
            self.audit(
                AuditKind::LogCap,
                format!("{} log bytes per call", self.log_cap),
                "further output of this call dropped",
            );
        }
        granted
    }

    /// Keeps the end of the call's stderr (without the Rust runtime's hint
    /// about `RUST_BACKTRACE`), to explain a trap that follows.
    fn remember_stderr(&self, line: &str) {
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
