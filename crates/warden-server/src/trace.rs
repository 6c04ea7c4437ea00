//! The trace context over HTTP: an incoming request's `traceparent`
//! parents its span, and a plugin's outbound requests carry the context of
//! the span they are sent in. Both go through OpenTelemetry's global
//! propagator, which the application sets when it exports traces; until
//! then nothing is read or written.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
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
        // Refused only once the span has started, which it has not.
        let _ = span.set_parent(parent);
    }
    span
}

/// Writes the current span's context into a plugin's outbound HTTP
/// requests in the format of OpenTelemetry's global propagator (W3C
/// `traceparent` and `tracestate` with the usual one). Give it to
/// [`warden::WardenBuilder::trace_propagator`].
#[derive(Debug, Clone, Copy, Default)]
pub struct W3cPropagator;

impl warden::TracePropagator for W3cPropagator {
    fn inject(&self, headers: &mut HeaderMap) {
        let context = Span::current().context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&context, &mut Outgoing(headers))
        });
    }
}
