//! Lifecycle and health: states and their transitions, per-version
//! metrics, the circuit breaker, restarts of a failing plugin and
//! quarantine with exponential backoff of a crash-looping one.

use warden_testkit as common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use warden::{
    AuditKind, BreakerSettings, BreakerState, DeployAction, Error, HealthSettings, Plugin,
    ProcessRequest, State, Unavailability, Warden,
};

fn op(name: &str) -> ProcessRequest {
    ProcessRequest::new("x").option("op", name)
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// misbehave with one instance, so every call and check meets the same one.
fn one_instance_misbehave(root: &std::path::Path) -> std::path::PathBuf {
    let dir = common::stage(root, "misbehave", "0.1.0");
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("manifest");
    assert!(manifest.contains("max-instances = 4"), "{manifest}");
    let manifest = manifest.replace("max-instances = 4", "max-instances = 1");
    std::fs::write(dir.join("plugin.toml"), manifest).expect("write");
    dir
}

#[test]
fn states_and_transitions_follow_the_lifecycle() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("load");
    assert_eq!(plugin.state(), State::Ready);
    host.unload_blocking("text-transform").expect("unload");
    assert_eq!(plugin.state(), State::Unloaded);
    let path: Vec<_> = plugin.transitions().iter().map(|t| t.to).collect();
    assert_eq!(
        path,
        [
            State::Initializing,
            State::Ready,
            State::Draining,
            State::Unloaded
        ]
    );
    assert!(plugin.transitions().iter().all(|t| !t.reason.is_empty()));
}

#[test]
fn metrics_count_calls_errors_latency_and_fuel() {
    let host = Warden::builder().fuel(true).build().expect("host");
    let plugin = host
        .load_blocking(common::plugin_dir("misbehave"))
        .expect("load");
    for _ in 0..5 {
        plugin.process_blocking(op("echo")).expect("echo");
    }
    assert!(plugin.process_blocking(op("nonsense")).is_err());
    assert!(plugin.process_blocking(op("panic")).is_err());
    plugin
        .process_blocking(op("echo"))
        .expect("a fresh instance");
    let m = plugin.metrics();
    assert_eq!(m.calls, 8);
    assert_eq!(m.errors.get("plugin"), Some(&1), "{:?}", m.errors);
    assert_eq!(m.errors.get("trap:guest-panic"), Some(&1), "{:?}", m.errors);
    assert_eq!(m.latency.count, 8);
    assert!(m.latency.quantile(0.5) > Duration::ZERO);
    assert!(m.peak_memory > 0);
    assert!(m.fuel_used.is_some_and(|f| f > 0), "{:?}", m.fuel_used);
    assert_eq!(m.instances_busy, 0);
    assert!(m.instances_created >= 2, "the panic discarded an instance");
    assert_eq!(m.state, State::Ready);
}

#[test]
fn the_breaker_opens_rejects_fast_and_closes_after_a_good_trial() {
    let host = Warden::builder()
        .breaker(BreakerSettings {
            consecutive_failures: 3,
            cool_down: Duration::from_millis(300),
            ..BreakerSettings::default()
        })
        .build()
        .expect("host");
    let plugin = host
        .load_blocking(common::plugin_dir("misbehave"))
        .expect("load");
    for _ in 0..3 {
        assert!(matches!(
            plugin.process_blocking(op("panic")),
            Err(Error::Trap { .. })
        ));
    }
    assert_eq!(plugin.metrics().breaker, BreakerState::Open);
    let calls_before = plugin.metrics().calls;
    match plugin.process_blocking(op("echo")) {
        Err(Error::Unavailable {
            reason: Unavailability::CircuitOpen,
            retry_after,
            ..
        }) => assert!(retry_after <= Duration::from_millis(300)),
        other => panic!("{other:?}"),
    }
    let m = plugin.metrics();
    assert_eq!(m.calls, calls_before, "a refused call does not run");
    assert_eq!(m.errors.get("unavailable"), Some(&1));
    std::thread::sleep(Duration::from_millis(350));
    plugin.process_blocking(op("echo")).expect("trial call");
    assert_eq!(plugin.metrics().breaker, BreakerState::Closed);
    // Errors the plugin returns on purpose are not faults.
    for _ in 0..5 {
        assert!(plugin.process_blocking(op("nonsense")).is_err());
    }
    assert_eq!(plugin.metrics().breaker, BreakerState::Closed);
}

/// A host whose misbehave traps in every health check.
fn crash_looping_host() -> Arc<Warden> {
    Arc::new(
        Warden::builder()
            .config(Some("misbehave"), "health", "trap")
            .build()
            .expect("host"),
    )
}

fn fast_checks() -> HealthSettings {
    HealthSettings {
        interval: Duration::from_millis(30),
        timeout: Duration::from_secs(1),
        failures_to_restart: 2,
        max_restarts: 2,
        restart_window: Duration::from_secs(60),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
    }
}

#[test]
fn a_plugin_failing_its_health_checks_is_restarted() {
    let root = tempfile::tempdir().expect("tmp");
    let host = Arc::new(common::host());
    let sick = host
        .load_blocking(one_instance_misbehave(root.path()))
        .expect("load");
    let monitor = host.monitor(fast_checks()).expect("monitor");
    sick.process_blocking(op("sick")).expect("fall sick");
    wait_until("a restart", Duration::from_secs(10), || {
        monitor.stats().restarts >= 1
    });
    let stats = monitor.stats();
    assert!(stats.failed_checks >= 2, "{stats:?}");
    assert_eq!(stats.quarantines, 0, "{stats:?}");
    let fresh: Plugin = host.get("misbehave").expect("restarted");
    assert_eq!(fresh.state(), State::Ready);
    assert_eq!(
        fresh.status_blocking().expect("status"),
        warden::PluginStatus::Ready
    );
    wait_until("the sick build retired", Duration::from_secs(5), || {
        sick.state() == State::Unloaded
    });
    let went: Vec<_> = sick.transitions().iter().map(|t| t.to).collect();
    assert!(went.contains(&State::Errored), "{went:?}");
    let last = host.history("misbehave", 1).expect("history");
    assert_eq!(last[0].action, DeployAction::Restart);
    // It stays healthy: no more restarts.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(monitor.stats().restarts, 1);
}

#[test]
fn a_crash_looping_plugin_is_quarantined_with_backoff() {
    let root = tempfile::tempdir().expect("tmp");
    let host = crash_looping_host();
    host.load_blocking(one_instance_misbehave(root.path()))
        .expect("load");
    let monitor = host.monitor(fast_checks()).expect("monitor");
    wait_until("four quarantines", Duration::from_secs(15), || {
        monitor.stats().quarantines >= 4
    });
    drop(monitor);
    let plugin = host.get("misbehave").expect("still loaded");
    assert_eq!(plugin.state(), State::Quarantined);
    match plugin.process_blocking(op("echo")) {
        Err(Error::Unavailable {
            reason: Unavailability::Quarantined,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let history = host.history("misbehave", 50).expect("history");
    let restarts = history
        .iter()
        .filter(|h| h.action == DeployAction::Restart)
        .count();
    let waits: Vec<&str> = history
        .iter()
        .filter(|h| h.action == DeployAction::Quarantine)
        .filter_map(|h| h.detail.split_once("next restart attempt in "))
        .map(|(_, wait)| wait)
        .collect();
    // Two restarts, then quarantine; each restart attempt from quarantine
    // is one more restart, and the waits double up to the cap.
    assert!(restarts >= 2, "{history:#?}");
    assert_eq!(
        &waits[..4],
        ["100ms", "200ms", "400ms", "400ms"],
        "{history:#?}"
    );
    assert!(!common::audited(&host, Some("misbehave"), AuditKind::Quarantined).is_empty());
}

#[test]
fn an_operator_quarantine_holds_until_released_whatever_the_health_monitor_does() {
    let root = tempfile::tempdir().expect("tmp");
    let host = crash_looping_host();
    let healthy = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("load");
    match host.release("text-transform") {
        Err(Error::Deploy { message, .. }) => assert!(message.contains("not quarantined")),
        other => panic!("released a plugin that was not quarantined: {other:?}"),
    }
    assert!(!healthy.held());

    host.load_blocking(one_instance_misbehave(root.path()))
        .expect("load");
    let monitor = host.monitor(fast_checks()).expect("monitor");
    wait_until("a quarantine", Duration::from_secs(10), || {
        monitor.stats().quarantines >= 1
    });
    // Held by the operator: the monitor's restart attempts (every 100 to
    // 400 ms from here) stop, and calls say why they are refused.
    let version = host
        .quarantine("misbehave", "investigating")
        .expect("quarantine");
    assert_eq!(version.to_string(), "0.1.0");
    assert!(host.get("misbehave").expect("loaded").held());
    // A restart already under way when the hold came may finish (keeping
    // the hold); none starts after it.
    std::thread::sleep(Duration::from_millis(500));
    let restarts = monitor.stats().restarts;
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(monitor.stats().restarts, restarts, "held, yet restarted");
    let held = host.get("misbehave").expect("loaded");
    assert!(held.held());
    match held.process_blocking(op("echo")) {
        Err(Error::Unavailable {
            reason: Unavailability::Held,
            retry_after,
            ..
        }) => assert_eq!(retry_after, Duration::from_secs(30)),
        other => panic!("{other:?}"),
    }
    let audited = common::audited(&host, Some("misbehave"), AuditKind::Quarantined);
    assert!(
        audited
            .iter()
            .any(|e| e.action.contains("by an operator: investigating")),
        "{audited:#?}"
    );

    // Released, it takes calls again; still failing, the monitor
    // quarantines it again on its own.
    host.release("misbehave").expect("release");
    assert!(!held.held());
    let quarantines = monitor.stats().quarantines;
    wait_until(
        "the monitor's next quarantine",
        Duration::from_secs(10),
        || monitor.stats().quarantines > quarantines,
    );
    let actions: Vec<DeployAction> = host
        .history("misbehave", 50)
        .expect("history")
        .iter()
        .map(|h| h.action)
        .collect();
    assert!(actions.contains(&DeployAction::Release), "{actions:?}");
}
