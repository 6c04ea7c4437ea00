//! `span-maker`: a test fixture for plugins' own spans. Through
//! `wasi:otel/tracing` it asks for the host's span of the call and reports
//! `spans` spans (option, default 1) named `plugin-work` as its children,
//! each with an attribute, an event, and an attribute that claims to be
//! the host's (`warden.plugin`). With `forge=true` it also reports a span
//! in a trace of its own choosing, which the host must drop. It answers
//! with the trace id it was given.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: ["../../../wit", "../../../wit/standard/otel"],
        inline: "
            package example:span-maker;
            world span-maker {
                import wasi:otel/tracing@0.2.0-rc.2;
                export warden:plugin/plugin@0.1.0;
                export warden:plugin/processing@0.1.0;
            }
        ",
        world: "example:span-maker/span-maker",
        generate_all,
    });

    use exports::warden::plugin::processing::Guest as ProcessorGuest;
    use warden::plugin::types::{PluginError, ProcessRequest, ProcessResponse};
    use wasi::clocks::wall_clock;
    use wasi::otel::tracing::{self, SpanContext, SpanData, SpanKind, Status};
    use wasi::otel::types::{InstrumentationScope, KeyValue};

    struct SpanMaker;

    warden_guest::plugin_lifecycle!(SpanMaker);

    fn report(parent: &SpanContext, trace_id: &str, n: u64) {
        let context = SpanContext {
            trace_id: trace_id.to_string(),
            span_id: format!("{:016x}", 0x5000 + n),
            trace_flags: parent.trace_flags,
            is_remote: false,
            trace_state: Vec::new(),
        };
        tracing::on_start(&context);
        let kv = |key: &str, value: &str| KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        };
        let now = wall_clock::now();
        tracing::on_end(&SpanData {
            span_context: context,
            parent_span_id: parent.span_id.clone(),
            span_kind: SpanKind::Internal,
            name: "plugin-work".to_string(),
            start_time: now,
            end_time: now,
            attributes: vec![kv("work.item", &n.to_string()), kv("warden.plugin", "\"spoofed\"")],
            events: vec![tracing::Event {
                name: "halfway".to_string(),
                time: now,
                attributes: Vec::new(),
            }],
            links: Vec::new(),
            status: Status::Ok,
            instrumentation_scope: InstrumentationScope {
                name: "span-maker".to_string(),
                version: None,
                schema_url: None,
                attributes: Vec::new(),
            },
            dropped_attributes: 0,
            dropped_events: 0,
            dropped_links: 0,
        });
    }

    impl ProcessorGuest for SpanMaker {
        fn process(request: ProcessRequest) -> Result<ProcessResponse, PluginError> {
            let option = warden_guest::option_lookup!(request);
            let spans: u64 = option("spans")
                .unwrap_or_else(|| "1".into())
                .parse()
                .map_err(|_| PluginError::InvalidInput("`spans` is not a number".into()))?;
            let parent = tracing::current_span_context();
            for n in 1..=spans {
                report(&parent, &parent.trace_id, n);
            }
            if option("forge").as_deref() == Some("true") {
                report(&parent, "0123456789abcdef0123456789abcdef", 0);
            }
            Ok(ProcessResponse {
                output: parent.trace_id.into_bytes(),
                content_type: "text/plain; charset=utf-8".into(),
                items_processed: spans,
            })
        }

        fn validate(_input: Vec<u8>) -> bool {
            true
        }
    }

    export!(SpanMaker);
}
