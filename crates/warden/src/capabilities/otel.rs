//! Host service `wasi:otel/tracing`: a plugin's own spans (made with an
//! OpenTelemetry SDK for WASI), children of the host's span of the call.
//!
//! A plugin is hostile, and its spans go to the operator's collector: a
//! span is passed on only when the host exports the call's span, only in
//! that call's trace (a plugin cannot write into another trace), at most
//! [`crate::scope::MAX_GUEST_SPANS`] per call, with its name, attributes and events cut
//! to fixed sizes, and attributed to the plugin. Without the embedder's
//! [`TraceHooks`] every span is dropped at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;

use super::{Capability, InstanceContext};
use crate::contract::standard::otel::{self, SpanContext, SpanData, SpanKind, Status, TraceFlags};
use crate::contract::standard::otel_types::{self, KeyValue};
use crate::scope::{CallScope, prefix};
use crate::state::PluginState;
use crate::trace::{GuestSpan, SpanIds, TraceHooks};

/// The longest span or event name kept, in bytes.
const MAX_NAME: usize = 128;
/// The most attributes kept of a span.
const MAX_ATTRIBUTES: usize = 16;
/// The most events kept of a span, and attributes of each.
const MAX_EVENTS: usize = 8;
const MAX_EVENT_ATTRIBUTES: usize = 4;
/// The longest attribute key and value kept, in bytes.
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 256;

pub(crate) struct Otel {
    scope: Arc<CallScope>,
    hooks: Option<Arc<dyn TraceHooks>>,
}

/// The capability: a plugin's own spans (`wasi:otel/tracing`).
pub(crate) struct OtelCapability;

impl Capability for OtelCapability {
    type State = Otel;

    fn name(&self) -> &'static str {
        "otel"
    }

    fn instance_state(&self, cx: &InstanceContext<'_>) -> Otel {
        let ctx = cx.inner;
        Otel {
            scope: ctx.scope.clone(),
            hooks: ctx.settings.trace.clone(),
        }
    }

    fn add_to_linker(
        linker: &mut Linker<PluginState>,
        get: fn(&mut PluginState) -> &mut Otel,
    ) -> wasmtime::Result<()> {
        otel_types::add_to_linker::<_, HasSelf<Otel>>(linker, get)?;
        otel::add_to_linker::<_, HasSelf<Otel>>(linker, get)
    }
}

impl Otel {
    /// The ids of the call's span, if the host exports it.
    fn call(&self) -> Option<SpanIds> {
        self.hooks.as_ref()?.ids_of(&self.scope.span())
    }
}

impl otel_types::Host for Otel {}

impl otel::Host for Otel {
    async fn on_start(&mut self, _context: SpanContext) {}

    async fn on_end(&mut self, span: SpanData) {
        let (Some(hooks), Some(call)) = (self.hooks.clone(), self.call()) else {
            return;
        };
        let ids = span.span_context;
        let span_id = match unhex::<8>(&ids.span_id) {
            Some(id) if id != [0; 8] => id,
            _ => return,
        };
        let parent_span_id = match span.parent_span_id.as_str() {
            "" => call.span_id,
            parent => match unhex::<8>(parent) {
                Some(id) => id,
                None => return,
            },
        };
        // Only into the call's own trace, and only when it is sampled.
        if !call.sampled
            || unhex::<16>(&ids.trace_id) != Some(call.trace_id)
            || !self.scope.take_span()
        {
            return;
        }
        hooks.export(GuestSpan {
            plugin: self.scope.plugin.to_string(),
            version: self.scope.version.to_string(),
            trace_id: call.trace_id,
            span_id,
            parent_span_id,
            name: prefix(&span.name, MAX_NAME).to_string(),
            kind: kind_name(span.span_kind),
            start: time(&span.start_time),
            end: time(&span.end_time),
            attributes: bounded(span.attributes, MAX_ATTRIBUTES),
            events: span
                .events
                .into_iter()
                .take(MAX_EVENTS)
                .map(|e| {
                    let attributes = bounded(e.attributes, MAX_EVENT_ATTRIBUTES);
                    (
                        prefix(&e.name, MAX_NAME).to_string(),
                        time(&e.time),
                        attributes,
                    )
                })
                .collect(),
            status: match span.status {
                Status::Unset => None,
                Status::Ok => Some(Ok(())),
                Status::Error(why) => Some(Err(prefix(&why, MAX_VALUE).to_string())),
            },
        });
    }

    async fn current_span_context(&mut self) -> SpanContext {
        let call = self.call();
        SpanContext {
            trace_id: hex(&call.map_or([0; 16], |c| c.trace_id)),
            span_id: hex(&call.map_or([0; 8], |c| c.span_id)),
            trace_flags: match call.is_some_and(|c| c.sampled) {
                true => TraceFlags::SAMPLED,
                false => TraceFlags::empty(),
            },
            is_remote: false,
            trace_state: Vec::new(),
        }
    }
}

/// The first `max` attributes, cut to size; the `warden.` keys are the
/// host's (the plugin's name and version), so a plugin's own are dropped.
fn bounded(attributes: Vec<KeyValue>, max: usize) -> Vec<(String, String)> {
    attributes
        .into_iter()
        .filter(|kv| !kv.key.starts_with("warden."))
        .take(max)
        .map(|kv| {
            (
                prefix(&kv.key, MAX_KEY).to_string(),
                prefix(&kv.value, MAX_VALUE).to_string(),
            )
        })
        .collect()
}

fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Internal => "internal",
    }
}

fn time(at: &Datetime) -> SystemTime {
    let since = Duration::new(at.seconds, at.nanoseconds.min(999_999_999));
    SystemTime::UNIX_EPOCH
        .checked_add(since)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `N` bytes from `2 * N` hexadecimal digits.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_bad_hex_is_refused() {
        let id = [0xab, 0x01, 0, 0xff, 1, 2, 3, 4];
        assert_eq!(unhex::<8>(&hex(&id)), Some(id));
        for bad in [
            "",
            "abc",
            "zz01000000000000",
            "ab0100ff010203040",
            "é101000000000000",
        ] {
            assert_eq!(unhex::<8>(bad), None, "{bad}");
        }
    }
}
