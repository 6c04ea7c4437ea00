//! Deployments: versions side by side, the canary split (within ±2% over
//! 10,000 keys, sticky per key), promotion and rollback under load with no
//! failed call, automatic rollback of a failing candidate, and the
//! deployment restored by a restarted host.

use warden_testkit as common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use warden::{AuditKind, DeployAction, Error, ProcessRequest, Role, RollbackPolicy, State, Warden};

const PLUGIN: &str = "text-transform";

fn upper(key: &str) -> ProcessRequest {
    ProcessRequest::new("hi")
        .option("op", "upper")
        .routing_key(key)
}

/// The version that answered a call with routing key `key`.
fn answered(host: &Warden, key: &str) -> String {
    let response = host.process_blocking(PLUGIN, upper(key)).expect("call");
    assert_eq!(response.output, b"HI");
    response.version
}

/// The plugin's deployment history, as actions, oldest first.
fn actions(host: &Warden) -> Vec<DeployAction> {
    host.history(PLUGIN, 50)
        .expect("history")
        .iter()
        .map(|h| h.action)
        .collect()
}

fn deploy_versions(host: &Warden, root: &Path, versions: &[&str]) {
    for v in versions {
        host.deploy_blocking(common::stage(root, PLUGIN, v))
            .expect("deploy");
    }
}

#[test]
fn versions_side_by_side_are_addressable() {
    let root = tempfile::tempdir().expect("tmp");
    let host = common::host();
    for v in ["1.0.0", "1.2.0", "2.0.0"] {
        host.deploy_blocking(common::stage(root.path(), PLUGIN, v))
            .expect("deploy");
    }
    let version = |target: &str| host.get(target).map(|p| p.info().version.to_string());
    assert_eq!(
        version(PLUGIN).expect("stable"),
        "1.0.0",
        "the first loaded serves"
    );
    assert_eq!(version("text-transform@^1").expect("range"), "1.2.0");
    assert_eq!(version("text-transform@1.0.0").expect("exact"), "1.0.0");
    assert_eq!(version("text-transform@*").expect("any"), "2.0.0");
    match host.get("text-transform@^3") {
        Err(Error::NotFound { loaded, .. }) => assert_eq!(loaded.len(), 3, "{loaded:?}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        host.get("text-transform@x.y"),
        Err(Error::Deploy { .. })
    ));
    let pinned = host
        .process_blocking("text-transform@2.0.0", upper("k"))
        .expect("pinned call");
    assert_eq!(pinned.version, "2.0.0");
    assert_eq!(answered(&host, "k"), "1.0.0");
    // The same version twice is refused; the stable one stays while others are loaded.
    let again = host
        .load_blocking(common::stage(root.path(), PLUGIN, "1.2.0"))
        .expect_err("loaded twice");
    assert!(again.to_string().contains("already loaded"), "{again}");
    assert!(matches!(
        host.unload_blocking("text-transform@1.0.0"),
        Err(Error::Deploy { .. })
    ));
    host.unload_blocking("text-transform@1.2.0")
        .expect("unload one");
    let left: Vec<_> = host
        .plugins()
        .iter()
        .map(|p| p.info().version.to_string())
        .collect();
    assert_eq!(left, ["1.0.0", "2.0.0"]);
}

#[test]
fn canary_share_is_within_two_percent_and_sticky() {
    let root = tempfile::tempdir().expect("tmp");
    let host = common::host();
    deploy_versions(&host, root.path(), &["1.0.0", "2.0.0"]);
    let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let mut on_candidate_at = Vec::new();
    for percent in [10.0, 30.0] {
        host.canary(PLUGIN, "2.0.0", percent).expect("canary");
        let candidate: BTreeSet<&str> = keys
            .iter()
            .filter(|k| answered(&host, k) == "2.0.0")
            .map(String::as_str)
            .collect();
        let share = candidate.len() as f64 / keys.len() as f64 * 100.0;
        assert!((share - percent).abs() <= 2.0, "{share}% for {percent}%");
        // Sticky: every key answers the same again.
        for k in keys.iter().step_by(7) {
            let expected = if candidate.contains(k.as_str()) {
                "2.0.0"
            } else {
                "1.0.0"
            };
            assert_eq!(answered(&host, k), expected, "key {k}");
        }
        on_candidate_at.push(
            candidate
                .into_iter()
                .map(str::to_string)
                .collect::<BTreeSet<_>>(),
        );
    }
    assert!(
        on_candidate_at[0].is_subset(&on_candidate_at[1]),
        "raising the share only moves keys from stable to candidate"
    );
    let status = host.deployment(PLUGIN).expect("status");
    let canary = status.canary.expect("canary");
    assert_eq!(
        (canary.version.to_string(), canary.percent),
        ("2.0.0".into(), 30.0)
    );
    let roles: Vec<_> = status.versions.iter().map(|v| v.role).collect();
    assert_eq!(roles, [Role::Stable, Role::Candidate]);
    assert!(
        host.canary(PLUGIN, "1.0.0", 5.0).is_err(),
        "the stable version"
    );
    assert!(host.canary(PLUGIN, "3.0.0", 5.0).is_err(), "not loaded");
    assert!(host.canary(PLUGIN, "2.0.0", 150.0).is_err(), "over 100%");
}

#[test]
fn promote_and_rollback_under_load_fail_no_call() {
    let root = tempfile::tempdir().expect("tmp");
    let host = common::host();
    deploy_versions(&host, root.path(), &["1.0.0", "2.0.0"]);
    let stop = AtomicBool::new(false);
    let calls = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    let seen = Mutex::new(BTreeSet::new());
    let wait_for_calls = |n: u64| {
        let until = Instant::now() + Duration::from_secs(10);
        let from = calls.load(Ordering::SeqCst);
        while calls.load(Ordering::SeqCst) < from + n && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(calls.load(Ordering::SeqCst) >= from + n, "calls stalled");
    };
    std::thread::scope(|s| {
        for t in 0..4 {
            let (stop, calls, failures, seen) = (&stop, &calls, &failures, &seen);
            let host = &host;
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    match host.process_blocking(PLUGIN, upper(&format!("{t}-{i}"))) {
                        Ok(r) if r.output == b"HI" => {
                            seen.lock().expect("seen").insert(r.version);
                        }
                        other => failures
                            .lock()
                            .expect("failures")
                            .push(format!("{other:?}")),
                    }
                    calls.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        wait_for_calls(200);
        host.canary(PLUGIN, "2.0.0", 50.0).expect("canary");
        wait_for_calls(200);
        assert_eq!(
            host.promote_blocking(PLUGIN).expect("promote").to_string(),
            "2.0.0"
        );
        wait_for_calls(200);
        host.deploy_blocking(common::stage(root.path(), PLUGIN, "3.0.0"))
            .expect("deploy 3");
        host.canary(PLUGIN, "3.0.0", 50.0).expect("canary 3");
        wait_for_calls(200);
        assert_eq!(
            host.rollback_blocking(PLUGIN)
                .expect("rollback")
                .to_string(),
            "3.0.0"
        );
        wait_for_calls(200);
        stop.store(true, Ordering::SeqCst);
    });
    let failures = failures.into_inner().expect("failures");
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let seen = seen.into_inner().expect("seen");
    assert_eq!(
        seen,
        BTreeSet::from(["1.0.0".into(), "2.0.0".into(), "3.0.0".into()])
    );
    // Only the promoted version is left; every call goes to it.
    let status = host.deployment(PLUGIN).expect("status");
    assert_eq!(status.stable.to_string(), "2.0.0");
    assert!(status.canary.is_none());
    assert_eq!(status.versions.len(), 1);
    for i in 0..50 {
        assert_eq!(answered(&host, &format!("after-{i}")), "2.0.0");
    }
    assert_eq!(
        actions(&host),
        [
            DeployAction::Deploy,
            DeployAction::Deploy,
            DeployAction::Canary,
            DeployAction::Promote,
            DeployAction::Deploy,
            DeployAction::Canary,
            DeployAction::Rollback,
        ]
    );
}

/// A candidate that fails every call: misbehave under text-transform's name
/// (it refuses `op=upper`).
fn failing_candidate(root: &Path) -> std::path::PathBuf {
    let dir = root.join("failing");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("misbehave.wasm"), common::wasm("misbehave")).expect("wasm");
    std::fs::write(
        dir.join("plugin.toml"),
        "name = \"text-transform\"\nversion = \"9.0.0\"\nworld = \"processor\"\n\
         component = \"misbehave.wasm\"\nconfig = { process = \"panic\" }\n",
    )
    .expect("manifest");
    dir
}

/// A host whose canaries are judged after 20 candidate calls, with 1.0.0
/// deployed as the stable version.
fn quick_to_roll_back(root: &Path) -> Warden {
    let host = Warden::builder()
        .rollback_policy(RollbackPolicy {
            min_calls: 20,
            ..RollbackPolicy::default()
        })
        .build()
        .expect("host");
    host.deploy_blocking(common::stage(root, PLUGIN, "1.0.0"))
        .expect("stable");
    host
}

#[test]
fn a_failing_candidate_is_rolled_back_automatically() {
    let root = tempfile::tempdir().expect("tmp");
    let host = quick_to_roll_back(root.path());
    let candidate = host
        .deploy_blocking(failing_candidate(root.path()))
        .expect("candidate");
    host.canary(PLUGIN, "9.0.0", 50.0).expect("canary");
    let mut failed = 0;
    for i in 0..400 {
        if host
            .process_blocking(PLUGIN, upper(&format!("k{i}")))
            .is_err()
        {
            failed += 1;
        }
    }
    // It went by itself after about 20 candidate calls, not 200.
    assert!((20..=40).contains(&failed), "{failed} calls failed");
    let status = host.deployment(PLUGIN).expect("status");
    assert!(status.canary.is_none(), "canary still running");
    assert_eq!(status.versions.len(), 1);
    let entries = common::audited(&host, Some(PLUGIN), AuditKind::AutoRollback);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].action.contains("error rate 100.0%"),
        "{:?}",
        entries[0]
    );
    let last = host.history(PLUGIN, 1).expect("history");
    assert_eq!(last[0].action, DeployAction::AutoRollback);
    assert_eq!(last[0].version, "9.0.0");
    // The candidate drains and is unloaded.
    let until = Instant::now() + Duration::from_secs(5);
    while candidate.state() != State::Unloaded && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(candidate.state(), State::Unloaded);
}

/// A client cannot roll back a good candidate by sending it input it
/// refuses: only the candidate's own faults (traps, limits) count.
#[test]
fn bad_input_sent_on_purpose_never_rolls_a_candidate_back() {
    let root = tempfile::tempdir().expect("tmp");
    let host = quick_to_roll_back(root.path());
    // misbehave refuses `op=upper` as unsupported input, every time.
    let dir = failing_candidate(root.path());
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("manifest");
    std::fs::write(
        dir.join("plugin.toml"),
        manifest.replace("config = { process = \"panic\" }\n", ""),
    )
    .expect("manifest");
    host.deploy_blocking(&dir).expect("candidate");
    host.canary(PLUGIN, "9.0.0", 50.0).expect("canary");
    let refused = (0..400)
        .filter(|i| {
            matches!(
                host.process_blocking(PLUGIN, upper(&format!("k{i}"))),
                Err(Error::Plugin { .. })
            )
        })
        .count();
    assert!(refused > 100, "the candidate refused only {refused} calls");
    let status = host.deployment(PLUGIN).expect("status");
    assert!(status.canary.is_some(), "the candidate was rolled back");
    assert!(common::audited(&host, Some(PLUGIN), AuditKind::AutoRollback).is_empty());
}

#[test]
fn the_deployment_is_restored_after_a_restart() {
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    let builder = || Warden::builder().data_dir(&data);
    {
        let host = builder().build().expect("host");
        deploy_versions(&host, root.path(), &["1.0.0", "2.0.0"]);
        host.canary(PLUGIN, "2.0.0", 25.0).expect("canary");
        // Loaded, not deployed: not restored.
        host.load_blocking(common::plugin_dir("json-transform"))
            .expect("load");
        host.shutdown_blocking().expect("shutdown");
    }
    let host = builder().build().expect("restarted host");
    let restored = host.restore_blocking().expect("restore");
    assert_eq!(restored.len(), 1);
    assert!(restored[0].1.is_ok(), "{restored:?}");
    let status = host.deployment(PLUGIN).expect("status");
    assert!(status.persisted);
    assert_eq!(status.stable.to_string(), "1.0.0");
    let canary = status.canary.expect("canary restored");
    assert_eq!(
        (canary.version.to_string(), canary.percent),
        ("2.0.0".into(), 25.0)
    );
    assert!(host.get("json-transform").is_err());
    let on_candidate = (0..2_000)
        .filter(|i| answered(&host, &format!("u{i}")) == "2.0.0")
        .count();
    assert!(
        (400..=600).contains(&on_candidate),
        "{on_candidate} of 2000"
    );
    assert_eq!(
        actions(&host),
        [
            DeployAction::Deploy,
            DeployAction::Deploy,
            DeployAction::Canary,
        ]
    );
    // Unloading forgets the deployment: the next start restores nothing.
    host.unload_blocking(PLUGIN).expect("unload");
    drop(host);
    let host = builder().build().expect("third host");
    assert!(host.restore_blocking().expect("restore").is_empty());
}

#[test]
fn a_version_missing_at_restore_stays_stored() {
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    let builder = || Warden::builder().data_dir(&data);
    {
        let host = builder().build().expect("host");
        deploy_versions(&host, root.path(), &["1.0.0", "2.0.0"]);
    }
    let v2 = root.path().join("text-transform-2.0.0/text-transform.wasm");
    let hidden = v2.with_extension("away");
    std::fs::rename(&v2, &hidden).expect("hide v2");
    {
        let host = builder().build().expect("host");
        let restored = host.restore_blocking().expect("restore");
        let err = restored[0]
            .1
            .as_ref()
            .expect_err("v2 is missing")
            .to_string();
        assert!(err.contains("2.0.0"), "{err}");
        let versions: Vec<_> = host
            .plugins()
            .iter()
            .map(|p| p.info().version.to_string())
            .collect();
        assert_eq!(versions, ["1.0.0"]);
        // A change stores the deployment again; 2.0.0 must not be dropped.
        host.deploy_blocking(common::stage(root.path(), PLUGIN, "3.0.0"))
            .expect("deploy 3");
    }
    std::fs::rename(&hidden, &v2).expect("bring v2 back");
    let host = builder().build().expect("host");
    let restored = host.restore_blocking().expect("restore");
    assert!(restored[0].1.is_ok(), "{restored:?}");
    let versions: Vec<_> = host
        .plugins()
        .iter()
        .map(|p| p.info().version.to_string())
        .collect();
    assert_eq!(versions, ["1.0.0", "2.0.0", "3.0.0"]);
}
