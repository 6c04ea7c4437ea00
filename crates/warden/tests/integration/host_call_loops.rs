//! Plugins that do nothing but call the host: the key-value store (whose
//! one-key calls run at once on the plugin call's thread when they need
//! not wait) and files (on tokio's blocking pool). Each still ends at its
//! deadline, audited, and another plugin's calls are answered meanwhile
//! on the caller's one runtime worker (the key-value loop shares it; the
//! file loop runs on the host's file lane); on the blocking API as well. A
//! file call on the lane ends there when its caller gives up on it.

use warden_testkit as common;

use warden::{AuditKind, Error, ProcessRequest, TrapKind, Warden};

/// Whether `err` is the call deadline's trap.
fn timed_out(err: &Error) -> bool {
    matches!(
        err,
        Error::Trap {
            kind: TrapKind::Timeout,
            ..
        }
    )
}

/// A host keeping its data in `data`.
fn host(data: &tempfile::TempDir) -> Warden {
    Warden::builder()
        .data_dir(data.path())
        .build()
        .expect("host")
}

/// Calls the hostile `attack` on a task while text-transform is called
/// again and again on others, on the same runtime; checks that the attack
/// ended at its deadline (audited) and that text-transform answered while
/// it ran.
async fn ends_at_its_deadline_beside_a_neighbour(attack: &str) {
    let data = tempfile::tempdir().expect("data dir");
    let host = host(&data);
    let looping = host
        .load(common::hostile_suite().join(attack))
        .await
        .unwrap_or_else(|e| panic!("load {attack}: {e}"));
    let neighbour = host
        .load(common::plugin_dir("text-transform"))
        .await
        .expect("load text-transform");
    let call = tokio::spawn(async move { looping.process(ProcessRequest::new("")).await });
    let mut answered_meanwhile = 0;
    while !call.is_finished() {
        let neighbour = neighbour.clone();
        let out = tokio::spawn(async move {
            neighbour
                .process(ProcessRequest::new("hello").option("op", "upper"))
                .await
        })
        .await
        .expect("join")
        .expect("the neighbour answers");
        assert_eq!(out.output, b"HELLO");
        answered_meanwhile += u32::from(!call.is_finished());
    }
    let err = call.await.expect("join").unwrap_err();
    assert!(timed_out(&err), "{attack}: {err:?}");
    assert!(
        answered_meanwhile > 0,
        "{attack}: no call was answered while it ran"
    );
    let plugin = format!("hostile-{attack}");
    let audited = common::audited(&host, Some(&plugin), AuditKind::Timeout);
    assert_eq!(audited.len(), 1, "{audited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_plugin_looping_on_the_store_ends_at_its_deadline_and_holds_up_no_one() {
    ends_at_its_deadline_beside_a_neighbour("kv-loop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_plugin_looping_on_file_writes_ends_at_its_deadline_and_holds_up_no_one() {
    ends_at_its_deadline_beside_a_neighbour("file-loop").await;
}

#[test]
fn on_the_blocking_api_both_end_at_their_deadline() {
    let data = tempfile::tempdir().expect("data dir");
    let host = host(&data);
    for attack in ["kv-loop", "file-loop"] {
        let looping = host
            .load_blocking(common::hostile_suite().join(attack))
            .unwrap_or_else(|e| panic!("load {attack}: {e}"));
        let err = looping
            .process_blocking(ProcessRequest::new(""))
            .unwrap_err();
        assert!(timed_out(&err), "{attack}: {err:?}");
        assert_eq!(looping.stats().traps, 1, "{attack}");
    }
}

/// A file plugin's call runs on the file lane, not on its caller's task:
/// when the caller stops waiting, the call must stop too, not run on to its
/// deadline (which would be audited as a timeout and counted as a trap).
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_file_call_whose_caller_gives_up_stops_there() {
    let data = tempfile::tempdir().expect("data dir");
    let host = host(&data);
    let looping = host
        .load(common::hostile_suite().join("file-loop"))
        .await
        .expect("load file-loop");
    let call = looping.process(ProcessRequest::new(""));
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(100), call).await;
    assert!(gave_up.is_err(), "the loop cannot have ended by itself");
    // Well past the call's 500-ms deadline: a call left running has timed
    // out by now.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let audited = common::audited(&host, Some("hostile-file-loop"), AuditKind::Timeout);
    assert!(audited.is_empty(), "the call ran on: {audited:?}");
    assert_eq!(looping.stats().traps, 0);
}
