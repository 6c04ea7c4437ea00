//! Traces across the host's edges: an incoming request's `traceparent`
//! parents its span, a plugin's outbound requests carry the context of the
//! span they are sent in, and the spans a plugin makes itself join the
//! call's trace. All go through OpenTelemetry's global propagator and
//! tracer provider, which the application sets when it exports traces;
//! until then nothing is read, written or exported.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks, SpanProcessor};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Incoming<'a>(&'a HeaderMap);

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct Outgoing<'a>(&'a mut HeaderMap);

impl Injector for Outgoing<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The header that carries a span's context (W3C trace context).
pub(crate) const TRACEPARENT: &str = "traceparent";

/// The `traceparent` of the current span, for a call that leaves this
/// process by another transport than HTTP; `None` while nothing is traced
/// (no exporter, so every span is disabled).
pub(crate) fn current_traceparent() -> Option<String> {
    let span = Span::current();
    if span.is_disabled() {
        return None;
    }
    let mut headers = HeaderMap::new();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&span.context(), &mut Outgoing(&mut headers))
    });
    headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The span of one request, a child of the trace its headers name.
pub(crate) fn request_span(headers: &HeaderMap, method: &str, route: &str, id: &str) -> Span {
    let span = tracing::debug_span!(
        target: warden::SPAN_TARGET,
        "warden.request",
        http.request.method = %method,
        http.route = %route,
        call_id = %id,
    );
    if !span.is_disabled() {
        let parent =
            opentelemetry::global::get_text_map_propagator(|p| p.extract(&Incoming(headers)));
        let ids = parent.span().span_context().clone();
        if ids.is_valid() {
            // The caller's ids, not its `tracestate`: kilobytes a client
            // chooses would ride along on every span and outbound request
            // of the trace.
            let ids = SpanContext::new(
                ids.trace_id(),
                ids.span_id(),
                ids.trace_flags(),
                true,
                TraceState::default(),
            );
            let parent = opentelemetry::Context::new().with_remote_span_context(ids);
            // Refused only once the span has started, which it has not.
            let _ = span.set_parent(parent);
        }
    }
    span
}

/// Warden's trace hooks in OpenTelemetry: outbound requests carry the
/// current span's context in the format of OpenTelemetry's global
/// propagator (W3C `traceparent` with the usual one), and plugins' own
/// spans go to the span processor given to [`OpenTelemetryHooks::new`]
/// (the one the application's tracer provider exports through), with the
/// plugin's name and version as `warden.plugin` and
/// `warden.plugin.version`. Give them to
/// [`warden::WardenBuilder::trace_hooks`].
#[derive(Debug, Clone, Default)]
pub struct OpenTelemetryHooks {
    guest_spans: Option<Arc<dyn SpanProcessor>>,
}

impl OpenTelemetryHooks {
    /// Hooks that export plugins' own spans through `processor`.
    pub fn new(processor: Arc<dyn SpanProcessor>) -> Self {
        OpenTelemetryHooks {
            guest_spans: Some(processor),
        }
    }
}

impl warden::TraceHooks for OpenTelemetryHooks {
    fn inject(&self, headers: &mut HeaderMap) {
        let context = Span::current().context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&context, &mut Outgoing(headers))
        });
    }

    fn ids_of(&self, span: &Span) -> Option<warden::SpanIds> {
        let context = span.context();
        let ids = context.span().span_context().clone();
        ids.is_valid().then(|| warden::SpanIds {
            trace_id: ids.trace_id().to_bytes(),
            span_id: ids.span_id().to_bytes(),
            sampled: ids.is_sampled(),
        })
    }

    fn export(&self, span: warden::GuestSpan) {
        let Some(processor) = &self.guest_spans else {
            return;
        };
        let mut attributes = vec![
            KeyValue::new("warden.plugin", span.plugin),
            KeyValue::new("warden.plugin.version", span.version),
        ];
        attributes.extend(attributes_of(span.attributes));
        let mut events = SpanEvents::default();
        events.events = span
            .events
            .into_iter()
            .map(|(name, at, attrs)| Event::new(name, at, attributes_of(attrs), 0))
            .collect();
        processor.on_end(SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(span.trace_id),
                SpanId::from_bytes(span.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from_bytes(span.parent_span_id),
            parent_span_is_remote: false,
            span_kind: match span.kind {
                warden::GuestSpanKind::Client => SpanKind::Client,
                warden::GuestSpanKind::Server => SpanKind::Server,
                warden::GuestSpanKind::Producer => SpanKind::Producer,
                warden::GuestSpanKind::Consumer => SpanKind::Consumer,
                warden::GuestSpanKind::Internal => SpanKind::Internal,
            },
            name: span.name.into(),
            start_time: span.start,
            end_time: span.end,
            attributes,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: match span.status {
                None => Status::Unset,
                Some(Ok(())) => Status::Ok,
                Some(Err(why)) => Status::error(why),
            },
            instrumentation_scope: InstrumentationScope::builder("wasi:otel").build(),
        });
    }
}

/// Attributes whose values are the JSON `wasi:otel` sends: strings,
/// numbers and booleans become values of their own type; anything else
/// stays its JSON text.
fn attributes_of(attributes: Vec<(String, String)>) -> Vec<KeyValue> {
    use serde_json::Value as Json;
    attributes
        .into_iter()
        .map(|(key, json)| {
            let value = match serde_json::from_str::<Json>(&json) {
                Ok(Json::String(s)) => opentelemetry::Value::from(s),
                Ok(Json::Bool(b)) => opentelemetry::Value::from(b),
                Ok(Json::Number(n)) => match n.as_i64() {
                    Some(i) => opentelemetry::Value::from(i),
                    None => opentelemetry::Value::from(n.as_f64().unwrap_or_default()),
                },
                _ => opentelemetry::Value::from(json),
            };
            KeyValue::new(key, value)
        })
        .collect()
}
