//! Host service `wasi:otel/tracing`: a plugin's own spans (made with an
//! OpenTelemetry SDK for WASI), children of the host's span of the call.
//!
//! A plugin is hostile, and its spans go to the operator's collector: a
//! span is passed on only when the host exports the call's span, only in
//! that call's trace (a plugin cannot write into another trace), only if
//! the plugin started it in this call (at most
//! [`crate::scope::MAX_GUEST_SPANS`]) under the call's span or another of
//! its own, never as the host's (no `warden.` names, none of the keys the
//! host's spans use), with its name, attributes and events cut to fixed
//! sizes, its times within the call, and attributed to the plugin. Without
//! the embedder's [`TraceHooks`] every span is dropped at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;

use super::{Capability, InstanceContext};
use crate::contract::standard::otel::{self, SpanContext, SpanData, SpanKind, Status, TraceFlags};
use crate::contract::standard::otel_types::{self, KeyValue};
use crate::scope::{CallScope, prefix};
use crate::state::PluginState;
use crate::trace::{GuestSpan, GuestSpanKind, SpanIds, TraceHooks};

/// The longest span or event name kept, in bytes.
const MAX_NAME: usize = 128;
/// The most attributes kept of a span.
const MAX_ATTRIBUTES: usize = 16;
/// The most events kept of a span.
const MAX_EVENTS: usize = 8;
/// The most attributes kept of an event.
const MAX_EVENT_ATTRIBUTES: usize = 4;
/// The longest attribute key kept, in bytes.
const MAX_KEY: usize = 64;
/// The longest attribute value (its JSON) kept, in bytes.
const MAX_VALUE: usize = 256;
/// The attribute keys of the host's own spans, which a plugin's may not
/// carry (nor any `warden.` key).
const HOST_KEYS: [&str; 5] = ["plugin", "version", "call_id", "provider", "function"];

/// An instance's side of `wasi:otel/tracing`.
pub(crate) struct Otel {
    scope: Arc<CallScope>,
    hooks: Option<Arc<dyn TraceHooks>>,
    /// The spans the plugin started in the call in progress (their ids, and
    /// whether each has ended), each taken from the call's budget.
    started: (u64, Vec<([u8; 8], bool)>),
    /// When the call in progress began, as far as the plugin's spans go.
    began: SystemTime,
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
            started: (0, Vec::new()),
            began: SystemTime::UNIX_EPOCH,
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
    /// The ids of the call's span, if the host exports and samples it.
    fn call(&self) -> Option<SpanIds> {
        let ids = self.hooks.as_ref()?.ids_of(&self.scope.span())?;
        ids.sampled.then_some(ids)
    }

    /// The spans the plugin started in this call; a new call starts none.
    fn started(&mut self) -> &mut Vec<([u8; 8], bool)> {
        let call = self.scope.generation();
        if self.started.0 != call {
            self.started = (call, Vec::new());
            self.began = SystemTime::now();
        }
        &mut self.started.1
    }
}

impl otel_types::Host for Otel {}

impl otel::Host for Otel {
    async fn on_start(&mut self, context: SpanContext) {
        let Some(call) = self.call() else {
            return;
        };
        let Some(id) = unhex::<8>(&context.span_id) else {
            return;
        };
        let fresh =
            id != [0; 8] && id != call.span_id && !self.started().iter().any(|(s, _)| *s == id);
        let in_trace = unhex::<16>(&context.trace_id) == Some(call.trace_id);
        if fresh && in_trace && self.scope.take_span() {
            self.started().push((id, false));
        }
    }

    async fn on_end(&mut self, span: SpanData) {
        let (Some(hooks), Some(call)) = (self.hooks.clone(), self.call()) else {
            return;
        };
        let ids = span.span_context;
        let Some(span_id) = unhex::<8>(&ids.span_id) else {
            return;
        };
        let parent_span_id = match span.parent_span_id.as_str() {
            "" => call.span_id,
            parent => match unhex::<8>(parent) {
                Some(id) => id,
                None => return,
            },
        };
        // Only a span it started in this call, in the call's own trace,
        // under the call or another of its spans; each ends once.
        let started = self.started();
        let Some(at) = started.iter().position(|s| *s == (span_id, false)) else {
            return;
        };
        let parent_known =
            parent_span_id == call.span_id || started.iter().any(|(s, _)| *s == parent_span_id);
        if unhex::<16>(&ids.trace_id) != Some(call.trace_id)
            || !parent_known
            || span.name.starts_with("warden.")
        {
            return;
        }
        // Ended: its id stays a parent its children may name.
        started[at].1 = true;
        let now = SystemTime::now();
        let began = self.began;
        // Not `clamp`: a clock set back makes `began` later than `now`.
        let within = |t: SystemTime| t.max(began).min(now);
        let (start, end) = (within(time(&span.start_time)), within(time(&span.end_time)));
        hooks.export(GuestSpan {
            plugin: self.scope.plugin.to_string(),
            version: self.scope.version.to_string(),
            trace_id: call.trace_id,
            span_id,
            parent_span_id,
            name: prefix(&span.name, MAX_NAME).to_string(),
            kind: kind_of(span.span_kind),
            start: start.min(end),
            end,
            attributes: bounded(span.attributes, MAX_ATTRIBUTES),
            events: span
                .events
                .into_iter()
                .take(MAX_EVENTS)
                .map(|e| {
                    let attributes = bounded(e.attributes, MAX_EVENT_ATTRIBUTES);
                    let at = within(time(&e.time));
                    (prefix(&e.name, MAX_NAME).to_string(), at, attributes)
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

/// The first `max` attributes, cut to size; the host's keys (the
/// `warden.` ones and those of its own spans) are dropped.
fn bounded(attributes: Vec<KeyValue>, max: usize) -> Vec<(String, String)> {
    attributes
        .into_iter()
        .filter(|kv| !kv.key.starts_with("warden.") && !HOST_KEYS.contains(&kv.key.as_str()))
        .take(max)
        .map(|kv| {
            (
                prefix(&kv.key, MAX_KEY).to_string(),
                prefix(&kv.value, MAX_VALUE).to_string(),
            )
        })
        .collect()
}

fn kind_of(kind: SpanKind) -> GuestSpanKind {
    match kind {
        SpanKind::Client => GuestSpanKind::Client,
        SpanKind::Server => GuestSpanKind::Server,
        SpanKind::Producer => GuestSpanKind::Producer,
        SpanKind::Consumer => GuestSpanKind::Consumer,
        SpanKind::Internal => GuestSpanKind::Internal,
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
