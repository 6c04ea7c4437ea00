//! Spans that follow a request through the host and into a plugin: a load,
//! the creation and `initialize` of an instance, every call, every linked
//! call and every outbound HTTP request get a DEBUG span under the target
//! [`SPAN_TARGET`]; each import of Warden's own interfaces (key-value,
//! config, logging, events...) gets the TRACE span wasmtime's bindings
//! make (target `warden::contract`). An embedder exports them by adding a
//! subscriber layer for those targets (OpenTelemetry, say); without one
//! each costs a disabled-callsite check.
//!
//! What needs the embedder's trace format goes through its
//! [`TraceHooks`]: carrying the trace on to the servers a plugin calls,
//! and the spans a plugin makes itself (`wasi:otel/tracing`), which the
//! host checks and bounds before it hands them over.

use std::time::SystemTime;

/// The target of Warden's spans.
pub const SPAN_TARGET: &str = "warden::span";

/// The embedder's side of tracing, in its trace format (W3C trace context
/// and OpenTelemetry, say).
pub trait TraceHooks: Send + Sync + 'static {
    /// Writes the current span's context into the headers of a plugin's
    /// outbound HTTP request (W3C `traceparent`, say), so that the server
    /// it calls continues the trace. Called inside that request's span.
    fn inject(&self, headers: &mut http::HeaderMap);

    /// The trace and span ids of `span` (a call's span), when it is
    /// exported; plugins' own spans become its children.
    fn ids_of(&self, span: &tracing::Span) -> Option<SpanIds>;

    /// Exports a span a plugin made. The host has checked that it belongs
    /// to the trace of the call that made it and bounded its size.
    fn export(&self, span: GuestSpan);
}

/// What a plugin's span describes, as `wasi:otel` (and OpenTelemetry) name
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestSpanKind {
    /// A request to a remote service.
    Client,
    /// The handling of a remote request.
    Server,
    /// The start of an asynchronous request.
    Producer,
    /// The handling of an asynchronous request.
    Consumer,
    /// Work inside the plugin.
    Internal,
}

/// Where a span is in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanIds {
    /// The trace's id.
    pub trace_id: [u8; 16],
    /// The span's id.
    pub span_id: [u8; 8],
    /// Whether the trace is sampled.
    pub sampled: bool,
}

/// An event a guest recorded in its span: its name, its time and its
/// attributes (keys and JSON-encoded values).
pub type GuestSpanEvent = (String, SystemTime, Vec<(String, String)>);

/// A span a plugin made through `wasi:otel/tracing`, as the host passes it
/// on: in the trace of the call that made it, with its attribute values in
/// the JSON the interface defines, and within the host's bounds.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GuestSpan {
    /// The plugin that made it.
    pub plugin: String,
    /// The plugin's version.
    pub version: String,
    /// The trace (the call's).
    pub trace_id: [u8; 16],
    /// The span's own id.
    pub span_id: [u8; 8],
    /// Its parent: the call's span or another of the plugin's spans.
    pub parent_span_id: [u8; 8],
    /// Its name.
    pub name: String,
    /// What the span describes.
    pub kind: GuestSpanKind,
    /// When it started.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Attributes: keys and JSON-encoded values.
    pub attributes: Vec<(String, String)>,
    /// Events: name, time and attributes.
    pub events: Vec<GuestSpanEvent>,
    /// `None`: unset; `Some(Ok)`: ok; `Some(Err(description))`: error.
    pub status: Option<Result<(), String>>,
}
