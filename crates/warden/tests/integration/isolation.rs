//! A plugin that panics, loops or eats memory gets a trap error of the right
//! kind, loses its instance, and the next call works. Instances are reused
//! (or not) as the manifest says, and many threads can call at once.

use warden_testkit as common;

use std::time::{Duration, Instant};

use warden::{Error, ProcessRequest, TrapKind, Warden};

fn misbehave(host: &Warden, limits: &str) -> warden::Plugin {
    misbehave_named(host, "misbehave", limits)
}

fn misbehave_named(host: &Warden, name: &str, limits: &str) -> warden::Plugin {
    let manifest = common::manifest_from(&format!(
        "name = \"{name}\"\nversion = \"0.1.0\"\nworld = \"processor\"\n[config]\ngreeting = \"hello\"\n[limits]\n{limits}\n"
    ));
    host.load_bytes_blocking(manifest, common::wasm("misbehave"))
        .expect("load misbehave")
}

/// A host whose instance pool holds `total_instances`.
fn pooled_host(total_instances: u32) -> Warden {
    Warden::builder()
        .allocator(warden::Allocator::Pooling(warden::PoolingConfig {
            total_instances,
            max_memory_bytes: 256 << 20,
        }))
        .build()
        .expect("host")
}

fn op(plugin: &warden::Plugin, op: &str) -> warden::Result<String> {
    plugin
        .process_blocking(ProcessRequest::new("ping").option("op", op))
        .map(|r| String::from_utf8_lossy(&r.output).into_owned())
}

fn trap_kind(err: &Error) -> Option<TrapKind> {
    match err {
        Error::Trap { kind, .. } => Some(*kind),
        _ => None,
    }
}

#[test]
fn a_guest_panic_is_a_trap_and_the_next_call_succeeds() {
    let host = common::host();
    let plugin = misbehave(&host, "max-instances = 1");
    assert_eq!(op(&plugin, "echo").expect("echo"), "ping");
    let err = op(&plugin, "panic").unwrap_err();
    assert_eq!(trap_kind(&err), Some(TrapKind::GuestPanic), "{err:?}");
    assert!(
        err.to_string().contains("panicked"),
        "panic message kept: {err}"
    );
    assert!(err.is_plugin_failure());
    assert_eq!(op(&plugin, "echo").expect("echo after panic"), "ping");
    assert_eq!(plugin.stats().traps, 1);
}

#[test]
fn an_endless_loop_is_interrupted_at_the_deadline() {
    let host = common::host();
    let plugin = misbehave(&host, "timeout-ms = 200");
    let started = Instant::now();
    let err = op(&plugin, "loop").unwrap_err();
    let took = started.elapsed();
    assert_eq!(trap_kind(&err), Some(TrapKind::Timeout), "{err:?}");
    assert!(
        took >= Duration::from_millis(200),
        "interrupted early: {took:?}"
    );
    // The epoch deadline, not the host's last-resort timer (a second later),
    // ended the call.
    assert!(
        took < Duration::from_millis(900),
        "interrupted late: {took:?}"
    );
    assert_eq!(op(&plugin, "echo").expect("echo after timeout"), "ping");
}

#[test]
fn running_out_of_memory_is_reported_as_such() {
    let host = common::host();
    let plugin = misbehave(&host, "memory-mb = 16");
    let err = op(&plugin, "alloc").unwrap_err();
    assert_eq!(trap_kind(&err), Some(TrapKind::OutOfMemory), "{err:?}");
    assert!(err.to_string().contains("16 MiB"), "{err}");
    assert_eq!(op(&plugin, "echo").expect("echo after OOM"), "ping");
    let peak = plugin.stats().peak_memory;
    assert!(
        peak > 8 << 20 && peak <= 16 << 20,
        "grew up to the limit, not past it: {peak}"
    );
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    let host = common::host();
    let plugin = misbehave(&host, "");
    let err = op(&plugin, "recurse").unwrap_err();
    assert_eq!(trap_kind(&err), Some(TrapKind::StackOverflow), "{err:?}");
    assert_eq!(op(&plugin, "echo").expect("echo after overflow"), "ping");
}

#[test]
fn nothing_of_the_host_is_visible() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr").to_string();
    let host = common::host();
    let plugin = misbehave(&host, "");
    let out = plugin
        .process_blocking(
            ProcessRequest::new("")
                .option("op", "probe")
                .option("addr", &addr),
        )
        .expect("probe");
    let report = String::from_utf8(out.output).expect("utf-8");
    let line = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing: {report}"))
    };
    assert!(line("file").starts_with("denied"), "{report}");
    assert!(line("dir").starts_with("denied"), "{report}");
    assert_eq!(line("env"), "0", "{report}");
    assert!(line("connect").starts_with("denied"), "{report}");
    assert!(listener.accept().is_err(), "no connection reached the host");
}

#[test]
fn instances_are_reused_unless_the_manifest_says_otherwise() {
    let host = common::host();
    let reused = misbehave(&host, "max-instances = 1");
    let counts: Vec<String> = (0..3)
        .map(|_| op(&reused, "count").expect("count"))
        .collect();
    assert_eq!(counts, ["1", "2", "3"], "state kept in one reused instance");

    let other = Warden::new().expect("host");
    let fresh = misbehave(&other, "max-instances = 1\ninstance-reuse = false");
    let counts: Vec<String> = (0..3)
        .map(|_| op(&fresh, "count").expect("count"))
        .collect();
    assert_eq!(counts, ["1", "1", "1"], "a fresh instance per call");
}

/// Instances take their memory from the pool's slots, which are reset for
/// the next instance, of the same plugin or of another, without being
/// unmapped: nothing an instance left there may show through.
#[test]
fn a_fresh_instance_never_sees_what_an_earlier_instance_left_in_memory() {
    let host = common::host();
    let stainer = misbehave(&host, "instance-reuse = false");
    let other = misbehave_named(&host, "misbehave-other", "instance-reuse = false");
    let stains = |plugin: &warden::Plugin| op(plugin, "stains").expect("stains");
    // The scan does find a stain in the instance that made it.
    let reused = misbehave_named(&host, "misbehave-reused", "max-instances = 1");
    assert_eq!(op(&reused, "stain").expect("stain"), "stained");
    let found: usize = stains(&reused).parse().expect("a count");
    assert!(
        found >= 1024 * 64 - 1,
        "a 1 MiB stain, found {found} blocks"
    );
    for _ in 0..3 {
        assert_eq!(op(&stainer, "stain").expect("stain"), "stained");
        assert_eq!(stains(&stainer), "0", "the same plugin's next instance");
        assert_eq!(stains(&other), "0", "another plugin's instance");
    }
}

#[test]
fn a_trap_discards_only_the_instance_that_trapped() {
    let host = common::host();
    let plugin = misbehave(&host, "max-instances = 1");
    assert_eq!(op(&plugin, "count").expect("count"), "1");
    op(&plugin, "panic").unwrap_err();
    assert_eq!(
        op(&plugin, "count").expect("count"),
        "1",
        "a new instance after the trap"
    );
    assert_eq!(plugin.stats().instances_created, 2);
}

#[test]
fn config_and_stdout_reach_the_host() {
    let host = common::host();
    let plugin = misbehave(&host, "");
    let out = plugin
        .process_blocking(
            ProcessRequest::new("")
                .option("op", "config")
                .option("key", "greeting"),
        )
        .expect("config");
    assert_eq!(out.output, b"hello");
    let out = plugin
        .process_blocking(
            ProcessRequest::new("")
                .option("op", "config")
                .option("key", "nope"),
        )
        .expect("config");
    assert_eq!(out.output, b"<none>");
    let out = plugin
        .process_blocking(
            ProcessRequest::new("")
                .option("op", "stdout")
                .option("text", "to the log"),
        )
        .expect("stdout does not break the call");
    assert_eq!(out.output, b"ok");
}

#[test]
fn a_full_pool_makes_callers_wait_then_fail_as_busy() {
    let host = Warden::builder()
        .default_limits(warden::Limits {
            max_wait: Duration::from_millis(100),
            ..Default::default()
        })
        .build()
        .expect("host");
    let plugin = misbehave(&host, "max-instances = 1\ntimeout-ms = 1000");
    let looping = plugin.clone();
    let busy_thread = std::thread::spawn(move || op(&looping, "loop"));
    std::thread::sleep(Duration::from_millis(200));
    let err = op(&plugin, "echo").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Busy {
                max_instances: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_plugin_failure());
    let looped = busy_thread.join().expect("thread");
    assert_eq!(trap_kind(&looped.unwrap_err()), Some(TrapKind::Timeout));
    assert_eq!(op(&plugin, "echo").expect("free again"), "ping");
}

#[test]
fn eight_threads_make_a_thousand_calls_each() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("load");
    std::thread::scope(|s| {
        for t in 0..8 {
            let plugin = plugin.clone();
            s.spawn(move || {
                for i in 0..1000 {
                    let input = format!("thread {t} call {i}");
                    let out = plugin
                        .process_blocking(ProcessRequest::new(input.clone()).option("op", "upper"))
                        .expect("call");
                    assert_eq!(out.output, input.to_uppercase().into_bytes());
                }
            });
        }
    });
    let stats = plugin.stats();
    assert_eq!(stats.calls, 8000);
    assert_eq!(stats.traps + stats.plugin_errors + stats.busy, 0);
    assert!(stats.instances_created <= u64::from(plugin.info().limits.max_instances));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_api_runs_inside_tokio_and_blocking_calls_are_refused_there() {
    let host = common::host();
    let plugin = host
        .load(common::plugin_dir("text-transform"))
        .await
        .expect("load");
    let calls = (0..16).map(|i| {
        let plugin = plugin.clone();
        tokio::spawn(async move {
            plugin
                .process(ProcessRequest::new(format!("x{i}")).option("op", "upper"))
                .await
        })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(
            call.await.expect("join").expect("call").output,
            format!("X{i}").into_bytes()
        );
    }
    let err = plugin
        .process_blocking(ProcessRequest::new("x").option("op", "upper"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BlockingInAsync {
                method: "process_blocking"
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unloading_waits_for_a_running_call() {
    let host = common::host();
    let plugin = misbehave(&host, "timeout-ms = 300");
    let running = plugin.clone();
    let call = std::thread::spawn(move || op(&running, "loop"));
    std::thread::sleep(Duration::from_millis(50));
    host.unload_blocking("misbehave").expect("unload");
    let looped = call.join().expect("thread");
    assert_eq!(
        trap_kind(&looped.unwrap_err()),
        Some(TrapKind::Timeout),
        "the running call ended on its own terms"
    );
    assert!(matches!(
        op(&plugin, "echo").unwrap_err(),
        Error::NotFound { .. }
    ));
    assert_eq!(
        plugin.stats().instances_idle,
        0,
        "no instance parked after unload"
    );
}

#[test]
fn the_pool_is_never_promised_twice() {
    let host = pooled_host(4);
    let manifest = |name: &str, n: u32| {
        common::manifest_from(&format!(
            "name = \"{name}\"\nversion = \"0.1.0\"\nworld = \"processor\"\n[limits]\nmax-instances = {n}\nmemory-mb = 64\n"
        ))
    };
    host.load_bytes_blocking(manifest("first", 3), common::wasm("misbehave"))
        .expect("3 of 4");
    let err = host
        .load_bytes_blocking(manifest("second", 2), common::wasm("misbehave"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Host(m) if m.contains("max-instances") && m.contains("only 1")),
        "{err:?}"
    );
    host.load_bytes_blocking(manifest("third", 1), common::wasm("misbehave"))
        .expect("the last one");
    host.unload_blocking("first").expect("unload");
    host.load_bytes_blocking(manifest("second", 2), common::wasm("misbehave"))
        .expect("room again after unload");
}

/// A per-call instance gives its pool slot back before its permit: on a
/// pool that holds exactly the plugin's instances, calls from more
/// threads than that, back to back, never find every slot taken.
#[test]
fn a_per_call_instance_keeps_its_pool_slot_until_it_is_dropped() {
    let host = pooled_host(2);
    let manifest = common::manifest_from(
        "name = \"fresh\"\nversion = \"0.1.0\"\nworld = \"processor\"\n\
         [limits]\nmax-instances = 2\ninstance-reuse = false\nmemory-mb = 64\n",
    );
    let plugin = host
        .load_bytes_blocking(manifest, common::wasm("misbehave"))
        .expect("load");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..150 {
                    assert_eq!(op(&plugin, "count").expect("count"), "1");
                }
            });
        }
    });
    assert_eq!(plugin.stats().calls, 600);
}

#[test]
fn unloading_refuses_later_calls_and_allows_a_reload() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("load");
    host.unload_blocking("text-transform").expect("unload");
    assert!(host.get("text-transform").is_err());
    let err = plugin
        .process_blocking(ProcessRequest::new("x").option("op", "upper"))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    host.load_blocking(common::plugin_dir("text-transform"))
        .expect("load again after unload");
}
