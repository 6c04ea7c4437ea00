//! The scope of the call in progress in one instance: which plugin, version
//! and call a log line, an event or an audit entry belongs to, and how much
//! of its per-call log and event budget is left. Every capability that
//! writes on a plugin's behalf attributes and charges through it.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::audit::{AuditEntry, AuditKind, AuditLog};
use crate::contract::bindings::types::LogLevel;
use crate::locks::lock;

/// Who is calling right now, and how much that call may still log. Shared by
/// an instance's logging service and its stdout/stderr.
pub(crate) struct CallScope {
    pub(crate) plugin: Arc<str>,
    pub(crate) version: Arc<str>,
    audit: Arc<AuditLog>,
    call_id: Mutex<CallId>,
    log: PerCall,
    events: PerCall,
    /// The spans the plugin may still make itself in this call.
    spans: PerCall,
    /// The host's span of the call in progress (the parent of the
    /// plugin's own spans).
    span: Mutex<tracing::Span>,
    /// Calls begun so far: tells one call from the next, whatever ids
    /// their callers gave them.
    calls: AtomicU64,
    /// The hop count of events emitted in the call in progress.
    emit_hops: AtomicU32,
    /// Unfinished lines of stdout and stderr, flushed at the end of each call
    /// so that they are attributed to the call that wrote them.
    pending: Mutex<[Vec<u8>; 2]>,
    last_stderr: Mutex<String>,
}

/// A budget that each call starts with in full: what is left of it, and
/// whether this call was already told it ran out.
struct PerCall {
    cap: u64,
    left: AtomicU64,
    spent: AtomicBool,
}

impl PerCall {
    fn new(cap: u64) -> Self {
        PerCall {
            cap,
            left: AtomicU64::new(cap),
            spent: AtomicBool::new(false),
        }
    }

    fn refill(&self) {
        self.left.store(self.cap, Ordering::Relaxed);
        self.spent.store(false, Ordering::Relaxed);
    }

    /// Takes `n`; false when not that much is left, and then runs
    /// `first_refusal` once per call.
    fn take(&self, n: u64, first_refusal: impl FnOnce()) -> bool {
        let granted = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(n)
            })
            .is_ok();
        if !granted && !self.spent.swap(true, Ordering::Relaxed) {
            first_refusal();
        }
        granted
    }
}

/// The most spans a plugin may make itself (`wasi:otel`) in one call.
pub(crate) const MAX_GUEST_SPANS: u64 = 64;

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
            log: PerCall::new(log_cap),
            events: PerCall::new(u64::from(events_cap)),
            spans: PerCall::new(MAX_GUEST_SPANS),
            span: Mutex::new(tracing::Span::none()),
            calls: AtomicU64::new(0),
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
        self.log.refill();
        self.events.refill();
        self.spans.refill();
        self.calls.fetch_add(1, Ordering::Relaxed);
        // The span a call runs in (its `warden.call`), or the load's.
        *lock(&self.span) = tracing::Span::current();
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
        // A pooled instance must not keep its last call's span (and the
        // request's above it) open, unexported, until its next call.
        *lock(&self.span) = tracing::Span::none();
    }

    /// The hop count of events emitted in this call.
    pub(crate) fn emit_hops(&self) -> u32 {
        self.emit_hops.load(Ordering::Relaxed)
    }

    /// Takes one event from the call's budget; false when it is spent.
    pub(crate) fn charge_event(&self) -> bool {
        self.events.take(1, || {
            self.audit(
                AuditKind::EventCap,
                format!("{} events per call", self.events.cap),
                "further events of this call dropped",
            )
        })
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

    /// Which call this is, of those the instance began.
    pub(crate) fn generation(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The host's span of the call in progress.
    pub(crate) fn span(&self) -> tracing::Span {
        lock(&self.span).clone()
    }

    /// Whether the plugin may make one more span of its own in this call;
    /// the first refusal is logged.
    pub(crate) fn take_span(&self) -> bool {
        self.spans.take(1, || {
            tracing::warn!(
                plugin = %self.plugin,
                call_id = %self.call_id(),
                "the plugin made more than {MAX_GUEST_SPANS} spans in one call; the rest are dropped"
            );
        })
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
        self.log.take(bytes as u64, || {
            self.audit(
                AuditKind::LogCap,
                format!("{} log bytes per call", self.log.cap),
                "further output of this call dropped",
            )
        })
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

/// The longest log line a plugin may write, in bytes; the rest of a
/// longer one is cut off (and said to be).
pub(crate) const MAX_LOG_LINE: usize = 8 << 10;

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Writes one plugin log line (from the logging services or from stdout or
/// stderr, named by `stream`), if the call's log budget allows it.
pub(crate) fn write_log(
    scope: &CallScope,
    level: LogLevel,
    stream: &'static str,
    context: Option<&str>,
    message: &str,
) {
    let cut;
    let message = match message.len() > MAX_LOG_LINE {
        true => {
            let kept = prefix(message, MAX_LOG_LINE);
            cut = format!(
                "{kept}… [{} more bytes cut: log lines are at most {MAX_LOG_LINE} bytes]",
                message.len() - kept.len()
            );
            cut.as_str()
        }
        false => message,
    };
    // Every record costs at least a byte, so empty lines cannot flood the log.
    if !scope.charge_log(message.len() + context.map_or(0, str::len) + 1) {
        return;
    }
    macro_rules! emit {
        ($level:expr) => {
            match context {
                Some(context) => tracing::event!(
                    target: "warden::plugin",
                    $level,
                    plugin = %scope.plugin,
                    version = %scope.version,
                    call_id = %scope.call_id(),
                    stream,
                    context,
                    "{message}"
                ),
                None => tracing::event!(
                    target: "warden::plugin",
                    $level,
                    plugin = %scope.plugin,
                    version = %scope.version,
                    call_id = %scope.call_id(),
                    stream,
                    "{message}"
                ),
            }
        };
    }
    match level {
        LogLevel::Trace => emit!(tracing::Level::TRACE),
        LogLevel::Debug => emit!(tracing::Level::DEBUG),
        LogLevel::Info => emit!(tracing::Level::INFO),
        LogLevel::Warn => emit!(tracing::Level::WARN),
        LogLevel::Error => emit!(tracing::Level::ERROR),
    }
}
