//! Host service `warden:plugin/logging`: plugin log lines into `tracing`,
//! attributed to plugin, version and call, and capped per call.

use wasmtime::component::{HasSelf, Linker};

use super::{Capability, InstanceContext};
use crate::contract::bindings::logging;
use crate::contract::bindings::types::LogLevel;
use crate::contract::standard::logging as wasi_logging;
use crate::scope::{CallScope, prefix, write_log};
use crate::state::PluginState;

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

/// The longest `wasi:logging` context kept, in bytes.
pub(crate) const MAX_LOG_CONTEXT: usize = 256;
