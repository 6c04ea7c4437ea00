//! Host service `warden:plugin/logging`: plugin log lines into `tracing`,
//! attributed to plugin, version and call, and capped per call.

use wasmtime::component::{HasSelf, Linker};

use super::{HostService, ServiceContext};
use crate::contract::bindings::logging;
use crate::contract::bindings::types::LogLevel;
use crate::sandbox::{CallScope, PluginState};

pub(crate) struct Logging {
    scope: std::sync::Arc<CallScope>,
}

impl HostService for Logging {
    fn new(ctx: &ServiceContext) -> Self {
        Logging {
            scope: ctx.scope.clone(),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Self,
    ) -> wasmtime::Result<()> {
        logging::add_to_linker::<_, HasSelf<Self>>(linker, get)
    }
}

impl logging::Host for Logging {
    async fn log(&mut self, level: LogLevel, message: String) {
        write_log(&self.scope, level, "log", &message);
    }
}

/// The longest log line a plugin may write, in bytes; the rest of a
/// longer one is cut off (and said to be).
pub(crate) const MAX_LOG_LINE: usize = 8 << 10;

/// Writes one plugin log line (from the logging service or from stdout or
/// stderr, named by `stream`), if the call's log budget allows it.
pub(crate) fn write_log(scope: &CallScope, level: LogLevel, stream: &'static str, message: &str) {
    let cut;
    let message = match message.len() > MAX_LOG_LINE {
        true => {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            cut = format!(
                "{}… [{} more bytes cut: log lines are at most {MAX_LOG_LINE} bytes]",
                &message[..end],
                message.len() - end
            );
            cut.as_str()
        }
        false => message,
    };
    // Every record costs at least a byte, so empty lines cannot flood the log.
    if !scope.charge_log(message.len() + 1) {
        return;
    }
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                target: "warden::plugin",
                $level,
                plugin = %scope.plugin,
                version = %scope.version,
                call_id = %scope.call_id(),
                stream,
                "{message}"
            )
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
