//! The event bus end to end: an event chain across plugins (order-events →
//! audit-logger → the application), the hop limit against plugins that
//! answer each other forever, subscribers that are slow or gone, and the
//! manifest's `subscribe`.

use warden_testkit as common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warden::{AuditKind, Error, Event, EventSettings, ProcessRequest, SubscriberStats, Warden};

const SETTLE: Duration = Duration::from_secs(20);

fn order(id: &str, amount: u32) -> ProcessRequest {
    ProcessRequest::new(format!(
        r#"{{"id":"{id}","customer":"c-1","amount":{amount}}}"#
    ))
}

fn stats_of(host: &Warden, subscriber: &str) -> SubscriberStats {
    host.event_stats()
        .into_iter()
        .find(|s| s.subscriber == subscriber)
        .unwrap_or_else(|| panic!("no subscriber {subscriber}"))
}

/// Collects the events matching `patterns` that reach the application.
fn collect(host: &Warden, patterns: &[&str]) -> Arc<Mutex<Vec<Event>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    host.subscribe_to(patterns, move |e| {
        sink.lock().expect("lock").push(e.clone())
    })
    .expect("subscribe");
    seen
}

#[test]
fn an_order_travels_from_plugin_to_plugin_to_the_application() {
    let host = common::host();
    let orders = host
        .load_blocking(common::plugin_dir("order-events"))
        .expect("order-events");
    let mut auditor = common::manifest("audit-logger");
    auditor.config.insert("summary-every".into(), "3".into());
    host.load_bytes_blocking(auditor, common::wasm("audit-logger"))
        .expect("audit-logger");
    let summaries = collect(&host, &["audit.*"]);
    let all = collect(&host, &["*"]);

    let out = orders
        .process_blocking(order("o-1", 20))
        .expect("small order");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.output).expect("json"),
        serde_json::json!({"id": "o-1", "events": ["order.created"]})
    );
    orders
        .process_blocking(order("o-2", 5000))
        .expect("large order");
    assert!(host.settle_events_blocking(SETTLE).expect("settle"));

    let summaries = summaries.lock().expect("lock");
    assert_eq!(summaries.len(), 1, "one summary after three order events");
    let summary = &summaries[0];
    assert_eq!((summary.source.as_str(), summary.hops), ("audit-logger", 1));
    let body: serde_json::Value = serde_json::from_slice(&summary.payload).expect("summary");
    assert_eq!(body["total"], 3);
    assert_eq!(body["by_type"]["order.created"], 2);
    assert_eq!(body["by_type"]["order.large"], 1);

    let types: Vec<(String, u32)> = all
        .lock()
        .expect("lock")
        .iter()
        .map(|e| (e.event_type.clone(), e.hops))
        .collect();
    assert_eq!(types.len(), 4, "{types:?}");
    assert!(types.contains(&("order.large".into(), 0)));
    let audit = stats_of(&host, "plugin:audit-logger");
    assert_eq!(audit.patterns, ["order.*", "user.*"]);
    assert_eq!((audit.delivered, audit.failed, audit.dropped), (3, 0, 0));
}

#[test]
fn the_hop_limit_ends_an_event_loop() {
    let host = Warden::builder()
        .events(EventSettings {
            max_hops: 4,
            ..EventSettings::default()
        })
        .build()
        .expect("host");
    host.load_blocking(common::plugin_dir("event-echo"))
        .expect("event-echo");
    let pings = collect(&host, &["ping.*"]);
    assert_eq!(host.publish(Event::new("ping.x", b"1".to_vec(), "host")), 2);
    assert!(host.settle_events_blocking(SETTLE).expect("settle"));

    let hops: Vec<u32> = pings.lock().expect("lock").iter().map(|e| e.hops).collect();
    assert_eq!(hops, [0, 1, 2, 3, 4]);
    assert_eq!(stats_of(&host, "plugin:event-echo").delivered, 5);
    let cut = common::audited(&host, None, AuditKind::EventHops);
    assert_eq!(cut.len(), 1);
    assert_eq!(cut[0].plugin, "event-echo");
    assert_eq!(cut[0].resource, "event `ping.x` at hop 5");
}

#[test]
fn a_slow_subscriber_never_holds_up_the_emitter_or_the_others() {
    let host = Warden::builder()
        .events(EventSettings {
            queue_capacity: 4,
            ..EventSettings::default()
        })
        .build()
        .expect("host");
    let orders = host
        .load_blocking(common::plugin_dir("order-events"))
        .expect("order-events");
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    host.subscribe_to(&["order.*"], move |_| {
        let _ = gate.lock().expect("gate").recv();
    })
    .expect("slow subscriber");
    let fast = Arc::new(AtomicU64::new(0));
    let counter = fast.clone();
    host.subscribe_to(&["order.*"], move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    })
    .expect("fast subscriber");

    // The slow subscriber is stuck until released; every call still returns,
    // and the fast one keeps up (checked batch by batch, each batch within
    // the share of its queue one source may hold: three of four).
    for batch in 0..5 {
        for i in 0..3 {
            orders
                .process_blocking(order(&format!("o-{batch}-{i}"), 10))
                .expect("order");
        }
        let until = std::time::Instant::now() + SETTLE;
        while fast.load(Ordering::SeqCst) < (batch + 1) * 3 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(fast.load(Ordering::SeqCst), (batch + 1) * 3);
    }
    drop(release);
    assert!(host.settle_events_blocking(SETTLE).expect("settle"));
    assert_eq!(fast.load(Ordering::SeqCst), 15);
    let slow = stats_of(&host, "host#1");
    assert_eq!(slow.delivered + slow.dropped, 15);
    assert!(slow.dropped >= 11, "{slow:?}");
    assert_eq!(stats_of(&host, "host#2").dropped, 0);
}

#[test]
fn an_unloaded_plugin_stops_receiving_events() {
    let host = common::host();
    host.load_blocking(common::plugin_dir("audit-logger"))
        .expect("audit-logger");
    assert_eq!(
        host.publish(Event::new("order.created", b"{}".to_vec(), "host")),
        1
    );
    assert_eq!(
        host.publish(Event::new("billing.done", b"{}".to_vec(), "host")),
        0
    );
    host.unload_blocking("audit-logger").expect("unload");
    assert!(host.event_stats().is_empty());
    assert_eq!(
        host.publish(Event::new("order.created", b"{}".to_vec(), "host")),
        0
    );
}

#[test]
fn manifests_subscribe_only_as_event_handlers_with_valid_patterns() {
    let base = "name = \"x\"\nversion = \"0.1.0\"\n";
    for (text, wanted) in [
        (
            format!("{base}world = \"processor\"\nsubscribe = [\"order.*\"]\n"),
            "only event-handler plugins receive events",
        ),
        (
            format!("{base}world = \"event-handler\"\nsubscribe = [\"order.\"]\n"),
            "not an event pattern",
        ),
    ] {
        match warden::Manifest::parse(&text, std::path::Path::new("plugin.toml")) {
            Err(Error::Manifest { message, .. }) => {
                assert!(message.contains(wanted), "{message}")
            }
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }
}
