//! Plugin logs (the logging service, stdout and stderr) reach `tracing`,
//! tagged with plugin, version and call id, and stop at the per-call cap.

use warden_testkit as common;

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use warden::ProcessRequest;

/// One captured event, for the other modules' log checks too.
#[derive(Debug, Default, Clone)]
pub(crate) struct Record {
    pub(crate) level: String,
    pub(crate) message: String,
    pub(crate) plugin: String,
    pub(crate) version: String,
    pub(crate) call_id: String,
    pub(crate) stream: String,
    pub(crate) context: String,
}

impl Visit for Record {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, text.trim_matches('"'));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "message" => &mut self.message,
            "plugin" => &mut self.plugin,
            "version" => &mut self.version,
            "call_id" => &mut self.call_id,
            "stream" => &mut self.stream,
            "context" => &mut self.context,
            _ => return,
        };
        *slot = value.to_string();
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Record>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        // The bindings trace each import's arguments: not log lines.
        if event.metadata().target().starts_with("warden::contract") {
            return;
        }
        let mut record = Record {
            level: event.metadata().level().to_string(),
            ..Default::default()
        };
        event.record(&mut record);
        self.0.lock().expect("lock").push(record);
    }
}

/// Runs `f` with a subscriber that records every event on this thread (the
/// blocking API runs guest code on the calling thread).
pub(crate) fn captured(f: impl FnOnce()) -> Vec<Record> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, f);
    capture.0.lock().expect("lock").clone()
}

fn misbehave(limits: &str) -> (warden::Warden, warden::Plugin) {
    let host = common::host();
    let manifest = common::manifest_from(&format!(
        "name = \"misbehave\"\nversion = \"0.3.0\"\nworld = \"processor\"\n[limits]\n{limits}\n"
    ));
    let plugin = host
        .load_bytes_blocking(manifest, common::wasm("misbehave"))
        .expect("load");
    (host, plugin)
}

fn run(plugin: &warden::Plugin, op: &str, text: &str, call_id: &str) {
    plugin
        .process_blocking(
            ProcessRequest::new("")
                .option("op", op)
                .option("text", text)
                .call_id(call_id),
        )
        .expect("call");
}

#[test]
fn log_lines_carry_plugin_version_and_call_id() {
    let (_host, plugin) = misbehave("");
    let records = captured(|| run(&plugin, "log", "hello from the guest", "req-42"));
    let line = records
        .iter()
        .find(|r| r.message == "hello from the guest")
        .unwrap_or_else(|| panic!("log line missing: {records:?}"));
    assert_eq!(line.level, "INFO");
    assert_eq!(line.plugin, "misbehave");
    assert_eq!(line.version, "0.3.0");
    assert_eq!(line.call_id, "req-42");
    assert_eq!(line.stream, "log");
}

#[test]
fn stdout_and_stderr_become_log_lines() {
    let (_host, plugin) = misbehave("");
    let records = captured(|| run(&plugin, "stdout", "printed text", "req-7"));
    let streams: Vec<&str> = records
        .iter()
        .filter(|r| r.message == "printed text" && r.call_id == "req-7")
        .map(|r| r.stream.as_str())
        .collect();
    assert!(streams.contains(&"stdout"), "{records:?}");
    assert!(streams.contains(&"stderr"), "{records:?}");
}

#[test]
fn a_call_cannot_log_past_its_cap() {
    let (_host, plugin) = misbehave("max-log-bytes = 100");
    let long = "x".repeat(60);
    let records = captured(|| {
        run(&plugin, "log", &long, "first");
        run(&plugin, "log", &long, "first");
        run(&plugin, "stdout", &long, "second");
    });
    let logged = |id: &str| {
        records
            .iter()
            .filter(|r| r.call_id == id && r.message == long)
            .count()
    };
    assert_eq!(
        logged("first"),
        2,
        "each call gets its own budget: {records:?}"
    );
    assert_eq!(
        logged("second"),
        1,
        "stdout + stderr share the 100-byte budget: {records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.level == "WARN" && r.message.contains("log-cap") && r.call_id == "second"),
        "the drop is reported once: {records:?}"
    );
}

#[test]
fn empty_lines_count_against_the_cap() {
    let (_host, plugin) = misbehave("max-log-bytes = 50");
    let newlines = "\n".repeat(5000);
    let records = captured(|| run(&plugin, "stdout", &newlines, "flood"));
    let lines = records
        .iter()
        .filter(|r| r.call_id == "flood" && r.level != "WARN")
        .count();
    assert!(
        lines > 0 && lines <= 50,
        "{lines} records for a 50-byte budget"
    );
}
