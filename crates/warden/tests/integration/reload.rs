//! Hot reload: a plugin's files are replaced 20 times, alternating good
//! builds and broken ones, while six threads keep calling it (queueing for
//! its one instance). No call may
//! fail, every answer must come from a good build, and a broken build must
//! leave the loaded one serving (and an audit entry).

use warden_testkit as common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use warden::{AuditKind, Error, Grants, ProcessRequest, Reloaded, Warden};

/// A copy of the built text-transform in a directory of its own.
fn staged(root: &Path) -> std::path::PathBuf {
    common::stage(root, "text-transform", "0.1.0")
}

/// Replaces `path` the way a deploy should: write a temporary file, rename.
fn deploy(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn with_version(manifest: &str, version: &str) -> String {
    manifest.replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
}

#[test]
fn twenty_replacements_under_load_fail_no_call() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = staged(root.path());
    // One instance: callers queue for it, and a swap finds some of them waiting.
    let manifest = std::fs::read_to_string(dir.join("plugin.toml"))
        .expect("manifest")
        .replace("max-instances = 4", "max-instances = 1");
    deploy(&dir.join("plugin.toml"), manifest.as_bytes());
    let good = std::fs::read(dir.join("text-transform.wasm")).expect("wasm");
    let host = common::host();
    host.load_blocking(&dir).expect("load");

    let valid = Mutex::new(BTreeSet::from(["0.1.0".to_string()]));
    let seen = Mutex::new(BTreeSet::new());
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let mut latencies = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let request = ProcessRequest::new("hello").option("op", "upper");
                    match host.process_blocking("text-transform", request) {
                        Ok(r) if r.output == b"HELLO" => {
                            seen.lock().expect("seen").insert(r.version);
                        }
                        other => failures
                            .lock()
                            .expect("failures")
                            .push(format!("{other:?}")),
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for i in 1..=20u32 {
            let before = calls.load(Ordering::Relaxed);
            if i % 2 == 0 {
                // A broken build: half a component.
                deploy(&dir.join("text-transform.wasm"), &good[..good.len() / 2]);
                let err = host
                    .reload_blocking("text-transform")
                    .expect_err("broken build");
                assert!(matches!(err, Error::InvalidComponent { .. }), "{err:?}");
            } else {
                let version = format!("0.1.{i}");
                valid.lock().expect("valid").insert(version.clone());
                deploy(&dir.join("text-transform.wasm"), &good);
                deploy(
                    &dir.join("plugin.toml"),
                    with_version(&manifest, &version).as_bytes(),
                );
                let started = Instant::now();
                let outcome = host.reload_blocking("text-transform").expect("good build");
                match &outcome {
                    Reloaded::Replaced {
                        to, serving_after, ..
                    } if to.to_string() == version => {
                        latencies.push((*serving_after, started.elapsed()));
                    }
                    other => panic!("{other:?}"),
                }
                assert_eq!(serving_version(&host, "text-transform"), version);
            }
            // Calls kept flowing through every replacement.
            let until = Instant::now() + Duration::from_secs(10);
            while calls.load(Ordering::Relaxed) < before + 20 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(
                calls.load(Ordering::Relaxed) >= before + 20,
                "calls stalled"
            );
        }
        stop.store(true, Ordering::SeqCst);
    });

    let failures = failures.into_inner().expect("failures");
    assert!(
        failures.is_empty(),
        "{} failed calls, first: {}",
        failures.len(),
        failures[0]
    );
    let calls = calls.into_inner();
    assert!(calls > 400, "only {calls} calls");
    let seen = seen.into_inner().expect("seen");
    let valid = valid.into_inner().expect("valid");
    assert!(
        seen.is_subset(&valid),
        "answers from {seen:?}, valid {valid:?}"
    );
    assert!(seen.len() >= 5, "answers came from only {seen:?}");
    assert_eq!(
        common::audited(&host, Some("text-transform"), AuditKind::ReloadFailed).len(),
        10
    );
    latencies.sort();
    let (serving, done) = latencies[latencies.len() / 2];
    eprintln!(
        "{calls} calls, 0 failed; reload median: new build serving after {serving:?} \
         (read, compile, initialize, swap), old one retired after {done:?}; slowest {:?}",
        latencies[latencies.len() - 1]
    );
}

#[test]
fn callers_queued_longer_than_the_grace_period_move_to_the_new_build() {
    // misbehave with one instance and 150 ms calls: four callers queue
    // for up to 600 ms, longer than the old build's 200 ms grace period.
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("misbehave");
    std::fs::create_dir_all(&dir).expect("dir");
    let built = common::plugin_dir("misbehave");
    let manifest = std::fs::read_to_string(built.join("plugin.toml"))
        .expect("manifest")
        .replace("max-instances = 4", "max-instances = 1");
    std::fs::write(dir.join("plugin.toml"), &manifest).expect("manifest");
    std::fs::copy(built.join("misbehave.wasm"), dir.join("misbehave.wasm")).expect("wasm");
    let host = common::host();
    host.load_blocking(&dir).expect("load");

    let versions = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3 {
                    let request = ProcessRequest::new("x")
                        .option("op", "sleep")
                        .option("ms", "150");
                    let answer = host
                        .process_blocking("misbehave", request)
                        .expect("no call fails");
                    versions.lock().expect("versions").push(answer.version);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(100));
        deploy(
            &dir.join("plugin.toml"),
            with_version(&manifest, "0.2.0").as_bytes(),
        );
        let outcome = host.reload_blocking("misbehave").expect("reload");
        assert!(matches!(outcome, Reloaded::Replaced { .. }), "{outcome:?}");
    });
    let versions = versions.into_inner().expect("versions");
    assert_eq!(versions.len(), 12);
    assert!(versions.iter().any(|v| v == "0.2.0"), "{versions:?}");
}

#[test]
fn unchanged_files_and_rejected_manifests_keep_the_loaded_build() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = staged(root.path());
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("manifest");
    let host = Warden::builder()
        .grants(Grants::new())
        .build()
        .expect("host");
    let first = host.load_blocking(&dir).expect("load");

    // Rewritten with the same bytes: nothing to do.
    let wasm = std::fs::read(dir.join("text-transform.wasm")).expect("wasm");
    deploy(&dir.join("text-transform.wasm"), &wasm);
    assert_eq!(
        host.reload_blocking("text-transform").expect("reload"),
        Reloaded::Unchanged
    );

    // A manifest that asks for what the host does not grant is refused.
    let greedy = format!(
        "{}\n[permissions]\nnet = [\"*:*\"]\n",
        with_version(&manifest, "0.2.0")
    );
    deploy(&dir.join("plugin.toml"), greedy.as_bytes());
    let err = host
        .reload_blocking("text-transform")
        .expect_err("ungranted");
    assert!(matches!(err, Error::PermissionDenied { .. }), "{err:?}");
    let serving = host.get("text-transform").expect("loaded");
    assert_eq!(serving.info().version.to_string(), "0.1.0");
    assert!(!first.is_unloaded());

    // A manifest with another name is refused too.
    deploy(
        &dir.join("plugin.toml"),
        manifest
            .replace(
                "name = \"text-transform\"",
                "name = \"other\"\ncomponent = \"text-transform.wasm\"",
            )
            .as_bytes(),
    );
    let err = host.reload_blocking("text-transform").expect_err("renamed");
    assert!(err.to_string().contains("keeps the name"), "{err}");

    // A limits change is a new build: the old one is drained and unloaded.
    let slower = format!(
        "{}\n",
        with_version(&manifest, "0.1.1").replace("timeout-ms = 5000", "timeout-ms = 2000")
    );
    deploy(&dir.join("plugin.toml"), slower.as_bytes());
    let outcome = host.reload_blocking("text-transform").expect("reload");
    assert!(matches!(outcome, Reloaded::Replaced { .. }), "{outcome:?}");
    assert!(first.is_unloaded());
    let now = host.get("text-transform").expect("loaded");
    assert_eq!(now.info().limits.timeout, Duration::from_millis(2000));
}

/// The version of plugin `name` that serves now.
fn serving_version(host: &Warden, name: &str) -> String {
    host.get(name).expect("loaded").info().version.to_string()
}

/// Waits until `done` holds, for at most 20 s.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_watcher_reloads_changed_builds_ignores_touches_and_loads_new_plugins() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = staged(root.path());
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("manifest");
    let wasm = std::fs::read(dir.join("text-transform.wasm")).expect("wasm");
    let host = std::sync::Arc::new(common::host());
    let first = host.load_blocking(&dir).expect("load");
    let watcher = host
        .watch(root.path(), Duration::from_millis(100))
        .expect("watch");

    // Rewritten with the same bytes: looked at, nothing reloaded.
    deploy(&dir.join("text-transform.wasm"), &wasm);
    wait_for("the touch to be checked", || watcher.stats().checked >= 1);
    let stats = watcher.stats();
    assert_eq!((stats.unchanged, stats.reloaded), (1, 0), "{stats:?}");
    assert!(!first.is_unloaded());

    // A new version: served without anyone calling reload.
    let written = Instant::now();
    deploy(
        &dir.join("plugin.toml"),
        with_version(&manifest, "0.3.0").as_bytes(),
    );
    wait_for("0.3.0 to serve", || {
        host.get("text-transform")
            .is_ok_and(|p| p.info().version.to_string() == "0.3.0")
    });
    eprintln!(
        "file written -> new version serving: {:?} (100 ms debounce included)",
        written.elapsed()
    );
    // Counted once the old build is retired (after the grace period).
    wait_for("the reload to be counted", || watcher.stats().reloaded == 1);

    // A new plugin directory is loaded.
    let second = root.path().join("second");
    std::fs::create_dir(&second).expect("dir");
    std::fs::copy(
        dir.join("text-transform.wasm"),
        second.join("text-transform.wasm"),
    )
    .expect("wasm");
    let renamed = manifest.replace(
        "name = \"text-transform\"",
        "name = \"second\"\ncomponent = \"text-transform.wasm\"",
    );
    deploy(&second.join("plugin.toml"), renamed.as_bytes());
    wait_for("the new plugin", || host.get("second").is_ok());
    let answer = host
        .process_blocking("second", ProcessRequest::new("hi").option("op", "upper"))
        .expect("call");
    assert_eq!(answer.output, b"HI");

    // Dropped, it stops: a further change is not applied.
    drop(watcher);
    deploy(
        &dir.join("plugin.toml"),
        with_version(&manifest, "0.4.0").as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(serving_version(&host, "text-transform"), "0.3.0");
}
