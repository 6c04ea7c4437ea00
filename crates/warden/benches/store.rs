//! The key-value store through a plugin: `counter`'s `incr` (one read and
//! one write transaction in the plugin's namespace) with the in-memory
//! backend and with one on disk (SQLite, WAL), against the same
//! transaction made with SQLite directly, on disk: what the plugin call
//! and the host's store layer add to the database's own work.
//!
//! `cargo bench -p warden --bench store` — builds the counter plugin first
//! if needed.

use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use warden::{ProcessRequest, Warden};

mod support;

/// One increment of `key` as the host's backend makes it: read the
/// value, write the new one and the namespace's usage, in one immediate
/// transaction.
fn direct_increment(conn: &mut Connection, key: &str) -> i64 {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .expect("begin");
    let old: Option<Vec<u8>> = tx
        .prepare_cached("SELECT value FROM kv WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
        .expect("read");
    let value = old.as_deref().map_or(0, |v| {
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    }) + 1;
    tx.prepare_cached(
        "INSERT INTO kv (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![key, value.to_string().as_bytes()]))
    .expect("write");
    tx.prepare_cached(
        "INSERT INTO usage (id, bytes) VALUES (0, ?1)
         ON CONFLICT (id) DO UPDATE SET bytes = bytes + ?1",
    )
    .and_then(|mut s| s.execute(params![0]))
    .expect("usage");
    tx.commit().expect("commit");
    value
}

fn benches(c: &mut Criterion) {
    let dir = support::built_plugin("counter");
    let data = tempfile::tempdir().expect("temporary directory");
    let in_memory = Warden::new().expect("host");
    let on_disk = Warden::builder()
        .data_dir(data.path().join("host"))
        .build()
        .expect("host");
    let plugins = [
        (
            "warden-in-memory",
            in_memory.load_blocking(&dir).expect("load"),
        ),
        ("warden-on-disk", on_disk.load_blocking(&dir).expect("load")),
    ];
    let mut conn = Connection::open(data.path().join("direct.sqlite")).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE usage (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);",
    )
    .expect("schema");

    let mut group = c.benchmark_group("store-increment");
    group.bench_function("sqlite-direct-on-disk", |b| {
        b.iter(|| direct_increment(&mut conn, "hits"))
    });
    for (name, plugin) in &plugins {
        group.bench_function(*name, |b| {
            b.iter(|| {
                plugin
                    .process_blocking(
                        ProcessRequest::new(Vec::new())
                            .option("op", "incr")
                            .option("key", "hits"),
                    )
                    .expect("incr")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = store;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(store);
