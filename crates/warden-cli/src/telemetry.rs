//! What the `warden` command reports about itself: its log on stderr
//! (text, or JSON for a server whose config asks for it) and, when
//! `[telemetry] otlp` is set for `up` or `serve`, the spans of every
//! request, call, instance, link and outbound request exported over OTLP.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter as _, SpanProcessor,
};
use tracing::Level;
use tracing_subscriber::filter::{FilterExt as _, Targets, dynamic_filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::args::Command;
use crate::config::{AppConfig, LogFormat, TelemetrySection};

/// How long the exporter waits for the collector on each batch.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps the exporter alive; dropping it sends the spans not yet sent.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// The batches the host's spans go out in, which plugins' own spans
    /// join.
    batches: Option<Arc<BatchSpanProcessor>>,
}

impl Telemetry {
    /// The host's trace hooks, when spans are exported.
    pub fn hooks(&self) -> Option<warden_server::OpenTelemetryHooks> {
        let batches: Arc<dyn SpanProcessor> = self.batches.clone()?;
        Some(warden_server::OpenTelemetryHooks::new(batches))
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: the last spans were not exported: {e}");
        }
    }
}

/// Sets up the log and, for a server with `[telemetry] otlp`, the span
/// exporter. A bad endpoint is reported here and the command runs
/// without tracing; an unreadable config is reported by the command.
pub fn init(verbose: bool, command: &Command) -> Telemetry {
    // A server logs its requests; the other commands only what goes wrong.
    let serving = match command {
        Command::Up(a) => Some(&a.serve),
        Command::Serve(a) => Some(a),
        _ => None,
    };
    let default = match (verbose, serving.is_some()) {
        (true, _) => "info,warden::plugin=trace",
        (false, true) => "info",
        (false, false) => "warn,warden::plugin=warn",
    };
    // The bindings' events carry imports' arguments, secrets among them:
    // never a log line. A directive, not a filter function, so that every
    // other call site stays cached as enabled or disabled.
    let mut filter =
        EnvFilter::try_from_env("WARDEN_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    if let Ok(off) = "warden::contract=off".parse() {
        filter = filter.add_directive(off);
    }
    let config = serving.and_then(|a| AppConfig::load_or_default(&a.file).ok());
    let json = config
        .as_ref()
        .is_some_and(|c| c.server.log_format == LogFormat::Json);
    let log = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let log = match json {
        true => log.json().with_current_span(false).boxed(),
        false => log
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .boxed(),
    };
    let (exporting, problem) = match config.as_ref().map(|c| &c.telemetry) {
        Some(section @ TelemetrySection { otlp: Some(_), .. }) => match exporter(section) {
            Ok(exporting) => (Some(exporting), None),
            Err(e) => (None, Some(e)),
        },
        _ => (None, None),
    };
    let (provider, batches) = exporting.unzip();
    let spans = provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("warden"))
            // Warden's spans only (the targets decide, cached per call
            // site); of those, spans only, not events: the bindings' events
            // carry the imports' arguments and results (config values,
            // secrets, stored values), which are the plugin's, not the
            // collector's. And at most `MAX_IMPORT_SPANS` import spans per
            // call: a plugin in a loop of host calls must not flood the
            // batches everyone shares.
            .with_filter(
                Targets::new()
                    .with_target(warden::SPAN_TARGET, Level::DEBUG)
                    .with_target("warden::contract", Level::TRACE)
                    .and(dynamic_filter_fn(|metadata, cx| {
                        metadata.is_span() && within_import_budget(metadata, cx)
                    })),
            )
    });
    Registry::default()
        .with(log.with_filter(filter))
        .with(spans)
        .init();
    if let Some(e) = problem {
        tracing::error!("`telemetry.otlp`: cannot export spans ({e}); serving without tracing");
    }
    Telemetry { provider, batches }
}

/// The most host-service import spans exported per call.
const MAX_IMPORT_SPANS: u32 = 64;

/// How many import spans a call has had.
struct ImportSpans(u32);

/// Whether a span may be exported: an import span only while its call
/// (the nearest `warden.call` above it) has had fewer than
/// [`MAX_IMPORT_SPANS`].
fn within_import_budget<S>(
    metadata: &tracing::Metadata<'_>,
    cx: &tracing_subscriber::layer::Context<'_, S>,
) -> bool
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if !metadata.target().starts_with("warden::contract") {
        return true;
    }
    let Some(current) = cx.lookup_current() else {
        return false;
    };
    let Some(call) = current.scope().find(|s| s.name() == "warden.call") else {
        return false;
    };
    let mut extensions = call.extensions_mut();
    match extensions.get_mut::<ImportSpans>() {
        Some(ImportSpans(n)) if *n >= MAX_IMPORT_SPANS => false,
        Some(ImportSpans(n)) => {
            *n += 1;
            true
        }
        None => {
            extensions.insert(ImportSpans(1));
            true
        }
    }
}

/// The tracer provider, and the batch processor it exports through.
fn exporter(
    section: &TelemetrySection,
) -> Result<(SdkTracerProvider, Arc<BatchSpanProcessor>), String> {
    let base = section.otlp.as_deref().unwrap_or_default();
    let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let resource = Resource::builder()
        .with_service_name(section.service_name.clone())
        .build();
    // Set here, not through the provider: the processor is shared with the
    // plugins' own spans, which do not pass through the provider.
    exporter.set_resource(&resource);
    let processor = Arc::new(BatchSpanProcessor::builder(exporter).build());
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Shared(processor.clone()))
        .with_resource(resource)
        // Whoever calls decides nothing: a client's `traceparent` saying
        // "not sampled" must not switch tracing off for its request.
        .with_sampler(Sampler::AlwaysOn)
        .build();
    Ok((provider, processor))
}

/// The batch processor, shared by the tracer provider and the hooks.
#[derive(Debug)]
struct Shared(Arc<BatchSpanProcessor>);

impl SpanProcessor for Shared {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}
