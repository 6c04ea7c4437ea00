//! Host service `warden:plugin/logging`: plugin log lines into `tracing`,
//! attributed to plugin, version and call, and capped per call.

use wasmtime::component::{HasSelf, Linker};

use crate::capability::{Capability, InstanceContext};
use crate::contract::bindings::logging;
use crate::contract::bindings::types::LogLevel;
use crate::contract::standard::logging as wasi_logging;
use crate::sandbox::{CallScope, PluginState};

pub(crate) struct Logging {
    scope: std::sync::Arc<CallScope>,
}

/// The capability: plugin log lines (`warden:plugin/logging`, `wasi:logging`).
pub(crate) struct LoggingCapability;

impl Capability for LoggingCapability {
    type State = Logging;

    fn name(&self) -> &'static str {
        "logging"
    }

    fn instance_state(&self, cx: &InstanceContext<'_>) -> Logging {
        let ctx = cx.inner;
        Logging {
            scope: ctx.scope.clone(),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Logging,
    ) -> wasmtime::Result<()> {
        logging::add_to_linker::<_, HasSelf<Logging>>(linker, get)?;
        wasi_logging::add_to_linker::<_, HasSelf<Logging>>(linker, get)
    }
}

impl logging::Host for Logging {
    async fn log(&mut self, level: LogLevel, message: String) {
        write_log(&self.scope, level, "log", None, &message);
    }
}

/// `wasi:logging/logging`: the same log, budget and attribution; a
/// non-empty context is the line's `context` field (its first
/// [`MAX_LOG_CONTEXT`] bytes, charged to the budget), and `critical` is
/// logged as an error.
impl wasi_logging::Host for Logging {
    async fn log(&mut self, level: wasi_logging::Level, context: String, message: String) {
        use wasi_logging::Level;
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error | Level::Critical => LogLevel::Error,
        };
        let context = (!context.is_empty()).then(|| prefix(&context, MAX_LOG_CONTEXT));
        write_log(&self.scope, level, "log", context, &message);
    }
}

/// The longest log line a plugin may write, in bytes; the rest of a
/// longer one is cut off (and said to be).
pub(crate) const MAX_LOG_LINE: usize = 8 << 10;

/// The longest `wasi:logging` context kept, in bytes.
pub(crate) const MAX_LOG_CONTEXT: usize = 256;

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn prefix(text: &str, max: usize) -> &str {
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
