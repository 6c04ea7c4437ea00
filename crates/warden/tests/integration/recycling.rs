//! Instance recycling: a reused instance that has served
//! `recycle-after-calls` calls, or whose memory passed
//! `recycle-at-memory-percent` of its limit, is retired between calls and
//! replaced off the caller's path, so a runtime that grows call after call
//! never fails a call; the replacement keeps every limit.

use warden_testkit as common;

use warden::{Error, ProcessRequest, TrapKind, Warden};

fn misbehave(host: &Warden, limits: &str) -> warden::Plugin {
    let manifest = common::manifest_from(&format!(
        "name = \"misbehave\"\nversion = \"0.1.0\"\nworld = \"processor\"\n[limits]\n{limits}\n"
    ));
    host.load_bytes_blocking(manifest, common::wasm("misbehave"))
        .expect("load misbehave")
}

fn call(plugin: &warden::Plugin, options: &[(&str, &str)]) -> warden::Result<String> {
    let request = options
        .iter()
        .fold(ProcessRequest::new("ping"), |r, (k, v)| r.option(*k, *v));
    plugin
        .process_blocking(request)
        .map(|r| String::from_utf8_lossy(&r.output).into_owned())
}

const LEAK: [(&str, &str); 2] = [("op", "leak"), ("kb", "256")];

#[test]
fn a_leaking_plugin_serves_ten_thousand_calls_because_it_is_recycled_first() {
    let host = common::host();
    // 256 KiB kept per call in 16 MiB: about 60 calls per instance before
    // the limit, 48 before the default high-water mark of 75%.
    let plugin = misbehave(&host, "memory-mb = 16\nmax-instances = 2");
    for i in 0..10_000 {
        if let Err(e) = call(&plugin, &LEAK) {
            panic!("call {i} failed: {e}");
        }
    }
    let stats = plugin.stats();
    assert_eq!(stats.traps, 0, "{stats:?}");
    assert!(
        stats.instances_recycled >= 150,
        "recycled only {} instances: {stats:?}",
        stats.instances_recycled
    );
    assert!(stats.peak_memory <= 16 << 20, "{stats:?}");
    // What the live instances hold, together: at most both of them at
    // their limit, and never the sum of every instance there ever was.
    assert!(
        stats.memory_bytes > 0 && stats.memory_bytes <= 2 * (16 << 20),
        "{stats:?}"
    );
}

#[test]
fn without_recycling_the_same_leak_fails_a_call() {
    let host = common::host();
    let plugin = misbehave(
        &host,
        "memory-mb = 16\nmax-instances = 1\nrecycle-at-memory-percent = 100",
    );
    let failed = (0..200)
        .map(|_| call(&plugin, &LEAK))
        .find_map(Result::err)
        .expect("a call runs out of memory");
    assert!(
        matches!(
            failed,
            Error::Trap {
                kind: TrapKind::OutOfMemory,
                ..
            }
        ),
        "{failed}"
    );
    assert_eq!(plugin.stats().instances_recycled, 0);
}

#[test]
fn recycle_after_calls_gives_a_fresh_instance_that_keeps_every_limit() {
    let host = common::host();
    let plugin = misbehave(
        &host,
        "max-instances = 1\nrecycle-after-calls = 3\nmemory-mb = 16\ntimeout-ms = 300",
    );
    let counts: Vec<String> = (0..7)
        .map(|_| call(&plugin, &[("op", "count")]).expect("count"))
        .collect();
    // The per-instance counter starts again at 1 on each new instance.
    assert_eq!(counts, ["1", "2", "3", "1", "2", "3", "1"]);
    assert!(
        plugin.stats().instances_recycled >= 2,
        "{:?}",
        plugin.stats()
    );

    // The instance made to replace a recycled one has the same deadline
    // and memory limit.
    let err = call(&plugin, &[("op", "loop")]).expect_err("loops");
    assert!(
        matches!(
            err,
            Error::Trap {
                kind: TrapKind::Timeout,
                ..
            }
        ),
        "{err}"
    );
    let err = call(&plugin, &[("op", "alloc")]).expect_err("allocates without end");
    assert!(
        matches!(
            err,
            Error::Trap {
                kind: TrapKind::OutOfMemory,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("16 MiB"), "{err}");
    assert_eq!(call(&plugin, &[("op", "echo")]).expect("echo"), "ping");
}

#[test]
fn idle_instances_beyond_the_first_are_released_after_a_while() {
    let host = common::host();
    let plugin = misbehave(&host, "max-instances = 4\nidle-instance-ms = 100");
    // Four calls at once: four instances, all idle afterwards.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| call(&plugin, &[("op", "sleep"), ("ms", "300")]).expect("sleep"));
        }
    });
    let before = plugin.stats();
    assert_eq!(before.instances_idle, 4);
    std::thread::sleep(std::time::Duration::from_millis(250));
    // The next call's return finds three of them idle for too long; the
    // warmest one stays, and the memory of the others is given back.
    call(&plugin, &[("op", "echo")]).expect("echo");
    assert_eq!(plugin.stats().instances_idle, 1);
    // The released ones shut down on a task of their own: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while plugin.stats().memory_bytes > before.memory_bytes / 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let after = plugin.stats();
    assert!(
        after.memory_bytes > 0 && after.memory_bytes <= before.memory_bytes / 2,
        "{} bytes held by 4 instances, {} by 1",
        before.memory_bytes,
        after.memory_bytes
    );
}
