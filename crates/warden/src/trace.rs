//! Spans that follow a request through the host and into a plugin: a load,
//! the creation and `initialize` of an instance, every call, every linked
//! call and every outbound HTTP request get a DEBUG span under the target
//! [`SPAN_TARGET`]; each import of Warden's own interfaces (key-value,
//! config, logging, events...) gets the TRACE span wasmtime's bindings
//! make (target `warden::contract`). An embedder exports them by adding a
//! subscriber layer for those targets (OpenTelemetry, say); without one
//! each costs a disabled-callsite check.
//!
//! Carrying the trace on to the servers a plugin calls is the embedder's
//! choice of format: a [`TracePropagator`] writes the current span's
//! context into each outbound request's headers.

/// The target of Warden's spans.
pub const SPAN_TARGET: &str = "warden::span";

/// Writes the trace context of the current span into the headers of a
/// plugin's outbound HTTP request (W3C `traceparent`, say), so that the
/// server it calls continues the trace. Called inside that request's span.
pub trait TracePropagator: Send + Sync + 'static {
    /// Adds the current span's context to `headers`.
    fn inject(&self, headers: &mut http::HeaderMap);
}
