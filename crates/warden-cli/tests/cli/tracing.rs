//! Tracing end to end: `warden serve` with `[telemetry] otlp` pointed at a
//! receiver on 127.0.0.1 exports the span tree of a call — the incoming
//! request (a child of the caller's `traceparent`), the call, the plugin's
//! host-service imports and its outbound HTTP request, which carries the
//! trace on to the server it reaches — and the spans a plugin makes itself
//! through `wasi:otel`, children of its call, bounded, in no other trace.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::{agent, serve_examples_with};

pub(super) const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub(super) const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// What the receiver saw: OTLP export bodies, and the `traceparent` of
/// each request to `/page`.
#[derive(Default)]
pub(super) struct Seen {
    exports: Vec<Vec<u8>>,
    traceparents: Vec<Option<String>>,
    tracestates: Vec<Option<String>>,
}

/// An HTTP/1.1 server on 127.0.0.1 that takes OTLP exports on
/// `/v1/traces` and answers `/page` with a short body; one request per
/// connection.
pub(super) fn receiver() -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut headers = HashMap::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let length: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let mut seen = shared.lock().expect("lock");
            let reply: &[u8] = if request_line.contains("/v1/traces") {
                seen.exports.push(body);
                b""
            } else {
                seen.traceparents.push(headers.get("traceparent").cloned());
                seen.tracestates.push(headers.get("tracestate").cloned());
                b"hello from the page"
            };
            drop(seen);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                reply.len()
            );
            let _ = stream.write_all(reply);
        }
    });
    (port, seen)
}

/// Every span the receiver was sent.
pub(super) fn exported_spans(seen: &Mutex<Seen>) -> Vec<Span> {
    seen.lock()
        .expect("lock")
        .exports
        .iter()
        .map(|body| ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf"))
        .flat_map(|r| r.resource_spans)
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

pub(super) fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

pub(super) fn tree(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} {} parent={} trace={} {:?}\n",
                s.name,
                hex_id(&s.span_id),
                hex_id(&s.parent_span_id),
                hex_id(&s.trace_id),
                s.attributes.iter().map(|a| &a.key).collect::<Vec<_>>()
            )
        })
        .collect()
}

#[test]
fn a_call_exports_its_span_tree_and_carries_the_trace_to_outbound_requests() {
    let (port, seen) = receiver();
    let tmp = tempfile::tempdir().expect("tempdir");
    // url-fetcher may reach only the receiver's origin.
    let origin = format!("http://127.0.0.1:{port}");
    let more = format!(
        "[grants]\nallow = [\"http:{origin}\"]\n\
         [telemetry]\notlp = \"{origin}\"\nservice-name = \"warden-under-test\"\n"
    );
    // notes maps its data directory: its calls run on the file lane.
    let examples = ["url-fetcher", "counter", "notes"];
    // The fetcher's manifest asks for the receiver's origin.
    let staged = tmp.path().join("plugins/url-fetcher");
    for example in examples {
        let to = tmp.path().join("plugins").join(example);
        std::fs::create_dir_all(&to).expect("dir");
        for entry in std::fs::read_dir(super::dist().join(example)).expect("built") {
            let from = entry.expect("entry").path();
            std::fs::copy(&from, to.join(from.file_name().expect("name"))).expect("copy");
        }
    }
    // A fixture that makes spans of its own.
    let maker = tmp.path().join("plugins/span-maker");
    let built = super::warden(
        &[
            "build",
            "plugins/testing/span-maker",
            "--out",
            tmp.path().join("plugins").to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(built.status.success(), "{}", super::stderr(&built));
    assert!(maker.join("plugin.toml").is_file());
    let manifest = staged.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("https://example.com", &origin)).expect("manifest");
    let mut server = serve_examples_with(tmp.path(), &examples, &more);

    let agent = agent();
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    // Each call continues the caller's trace; the answer must be a 200.
    let traced = |path: &str, input: &str| -> String {
        let response = agent
            .post(format!("{}/v1/plugins/{path}", server.url))
            .header("traceparent", &traceparent)
            // A client's tracestate must not ride along on the trace.
            .header("tracestate", &format!("client={}", "z".repeat(200)))
            .send(input)
            .expect("call");
        let status = response.status();
        let body = response.into_body().read_to_string().unwrap_or_default();
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    traced("url-fetcher/process", &format!("{origin}/page"));
    traced("counter/process?op=incr&key=traced", "");
    traced("notes/process?op=write&name=traced", "a traced note");
    for options in ["spans=70", "spans=1&forge=true"] {
        let given = traced(&format!("span-maker/process?{options}"), "");
        assert_eq!(given, TRACE_ID, "the plugin is given its call's trace");
    }
    // Stopping flushes the spans not yet exported.
    server.stop_cleanly();

    let spans = exported_spans(&seen);
    let seen = seen.lock().expect("lock");
    let all = tree(&spans);
    let children = |parent: &Span, name: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.parent_span_id == parent.span_id && s.name == name)
            .collect()
    };
    let requests: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "warden.request")
        .collect();
    assert_eq!(requests.len(), 5, "{all}");
    for request in &requests {
        assert_eq!(hex_id(&request.trace_id), TRACE_ID, "{all}");
        assert_eq!(hex_id(&request.parent_span_id), CALLER_SPAN, "{all}");
    }
    let plugin_call = |plugin: &str| -> &Span {
        requests
            .iter()
            .flat_map(|r| children(r, "warden.call"))
            .find(|c| attribute(c, "plugin").as_deref() == Some(plugin))
            .unwrap_or_else(|| panic!("no warden.call of {plugin} under a request: {all}"))
    };

    // The outbound request: a span under the fetcher's call, whose id the
    // page received as the parent in its `traceparent`.
    let fetch = plugin_call("url-fetcher");
    let sent = children(fetch, "warden.http");
    assert_eq!(sent.len(), 1, "{all}");
    assert_eq!(attribute(sent[0], "server.port"), Some(port.to_string()));
    let expected = format!("00-{TRACE_ID}-{}-01", hex_id(&sent[0].span_id));
    assert_eq!(seen.traceparents, vec![Some(expected)], "{all}");
    assert!(
        seen.tracestates
            .iter()
            .all(|t| t.as_deref().unwrap_or_default().is_empty()),
        "the client's tracestate went on: {:?}",
        seen.tracestates
    );

    // notes' call ran on the file lane, the counter's did not; the lane's
    // call is still its request's child.
    let thread = |plugin: &str| attribute(plugin_call(plugin), "thread.name");
    assert_eq!(thread("notes").as_deref(), Some("warden-files"), "{all}");
    assert_ne!(thread("counter").as_deref(), Some("warden-files"), "{all}");

    // The counter's key-value calls: import spans under its call.
    let count = plugin_call("counter");
    let imports: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == count.span_id && attribute(s, "function").is_some())
        .collect();
    assert!(
        imports
            .iter()
            .any(|s| attribute(s, "module").is_some_and(|m| m.contains("store"))),
        "no key-value import span under the counter's call: {all}"
    );
    // The bindings' events carry arguments and results (config values,
    // secrets): they stay in the host.
    let with_events: Vec<&Span> = spans
        .iter()
        .filter(|s| !s.events.is_empty() && s.name != "plugin-work")
        .collect();
    assert!(with_events.is_empty(), "{:#?}", with_events);

    // The plugin's own spans: children of its call, in its trace, at most
    // 64 of the 70 it made, attributed by the host whatever the plugin
    // wrote; the one in a trace of its choosing is dropped (1, not 2).
    let makers: Vec<&Span> = requests
        .iter()
        .flat_map(|r| children(r, "warden.call"))
        .filter(|c| attribute(c, "plugin").as_deref() == Some("span-maker"))
        .collect();
    // 141 host calls in the call that made 70 spans: 64 import spans.
    let imports = makers
        .iter()
        .map(|m| {
            spans
                .iter()
                .filter(|s| s.parent_span_id == m.span_id && attribute(s, "function").is_some())
                .count()
        })
        .max();
    assert_eq!(imports, Some(64), "{all}");
    let mut own: Vec<Vec<&Span>> = makers.iter().map(|c| children(c, "plugin-work")).collect();
    own.sort_by_key(Vec::len);
    let counts: Vec<usize> = own.iter().map(Vec::len).collect();
    assert_eq!(counts, [1, 64], "{all}");
    for span in own.concat() {
        assert_eq!(hex_id(&span.trace_id), TRACE_ID);
        let claimed = span
            .attributes
            .iter()
            .filter(|a| a.key == "warden.plugin")
            .count();
        assert_eq!(
            claimed, 1,
            "the plugin's own `warden.plugin` is dropped: {span:?}"
        );
        assert_eq!(
            attribute(span, "warden.plugin").as_deref(),
            Some("span-maker")
        );
        assert!(attribute(span, "work.item").is_some(), "{span:?}");
        assert_eq!(span.events.len(), 1, "{span:?}");
    }
    assert!(
        spans
            .iter()
            .all(|s| hex_id(&s.trace_id) != "0123456789abcdef0123456789abcdef"),
        "a span in a trace the plugin chose was exported: {all}"
    );

    // Loading: the first instance's creation and `initialize`.
    let load = spans
        .iter()
        .find(|s| s.name == "warden.load" && attribute(s, "plugin").as_deref() == Some("counter"))
        .unwrap_or_else(|| panic!("no warden.load of counter: {all}"));
    assert_eq!(children(load, "warden.instantiate").len(), 1, "{all}");
    assert_eq!(children(load, "warden.init").len(), 1, "{all}");
}
