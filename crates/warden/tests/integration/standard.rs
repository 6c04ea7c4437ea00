//! Conformance of the standard WASI interfaces, through the
//! `standard-interfaces` plugin, which imports nothing of Warden's own
//! host services: `wasi:keyvalue` (store, atomics, batch) over the same
//! store, grants and quotas as `warden:plugin/store`; `wasi:config/store`
//! with the same values as `warden:plugin/config`; `wasi:logging` into the
//! same attributed, capped log.

use warden_testkit as common;

use warden::{AuditKind, Grants, ProcessRequest, Warden};

use crate::logging::captured;

const NAME: &str = "standard-interfaces";

/// The plugin loaded under `name` with extra (or replaced) `[limits]` keys
/// and extra manifest text.
fn standard(host: &Warden, name: &str, limits: &str, extra: &str) -> warden::Plugin {
    let replaced: Vec<&str> = limits.lines().filter_map(|l| l.split('=').next()).collect();
    let text: String = std::fs::read_to_string(common::plugin_dir(NAME).join("plugin.toml"))
        .expect("manifest")
        .lines()
        .filter(|l| !replaced.iter().any(|k| l.split('=').next() == Some(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = text
        .replace(&format!("name = \"{NAME}\""), &format!("name = \"{name}\""))
        .replace("[limits]\n", &format!("[limits]\n{limits}\n"));
    host.load_bytes_blocking(
        common::manifest_from(&format!("{text}\n{extra}\n")),
        common::wasm(NAME),
    )
    .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn call(plugin: &warden::Plugin, input: &str, options: &[(&str, &str)]) -> warden::Result<String> {
    let request = options
        .iter()
        .fold(ProcessRequest::new(input), |r, (k, v)| r.option(*k, *v));
    plugin
        .process_blocking(request)
        .map(|r| String::from_utf8(r.output).expect("utf-8"))
}

fn ok(plugin: &warden::Plugin, input: &str, options: &[(&str, &str)]) -> String {
    call(plugin, input, options).unwrap_or_else(|e| panic!("{options:?}: {e}"))
}

fn host() -> Warden {
    Warden::builder()
        .grants(Grants::new().grant("kv:sessions").expect("grant"))
        .build()
        .expect("host")
}

#[test]
fn the_plugin_imports_only_standard_interfaces() {
    let inspected = warden::inspect::inspect(&common::wasm(NAME), NAME).expect("inspect");
    let functions: Vec<&String> = inspected
        .imports
        .iter()
        .filter(|i| !i.starts_with("warden:plugin/types@"))
        .collect();
    assert!(
        functions.iter().all(|i| i.starts_with("wasi:")),
        "{functions:?}"
    );
    for wanted in [
        "wasi:keyvalue/store",
        "wasi:keyvalue/atomics",
        "wasi:keyvalue/batch",
    ] {
        assert!(
            functions.iter().any(|i| i.starts_with(wanted)),
            "{wanted} missing: {functions:?}"
        );
    }
}

#[test]
fn keyvalue_store_reads_writes_and_pages_like_the_warden_store() {
    let host = host();
    let plugin = standard(&host, "std-kv", "", "");
    assert_eq!(ok(&plugin, "", &[("op", "get"), ("key", "a")]), "<none>");
    assert_eq!(ok(&plugin, "one", &[("op", "set"), ("key", "a")]), "ok");
    assert_eq!(ok(&plugin, "", &[("op", "get"), ("key", "a")]), "one");
    assert_eq!(ok(&plugin, "", &[("op", "exists"), ("key", "a")]), "true");
    assert_eq!(ok(&plugin, "", &[("op", "delete"), ("key", "a")]), "ok");
    assert_eq!(ok(&plugin, "", &[("op", "exists"), ("key", "a")]), "false");

    // 2,500 keys: three pages of at most 1,000, walked with the cursor.
    ok(
        &plugin,
        "v",
        &[("op", "fill"), ("key", "k"), ("count", "1000")],
    );
    ok(
        &plugin,
        "v",
        &[("op", "fill"), ("key", "l"), ("count", "1000")],
    );
    ok(
        &plugin,
        "v",
        &[("op", "fill"), ("key", "m"), ("count", "500")],
    );
    assert_eq!(ok(&plugin, "", &[("op", "count")]), "2500 keys in 3 pages");

    // `default` is the plugin's own namespace: another plugin's own
    // namespace (the counter example's, through `warden:plugin/store`) is
    // not it.
    let counter_text = std::fs::read_to_string(common::plugin_dir("counter").join("plugin.toml"))
        .expect("manifest")
        .replace("name = \"counter\"", "name = \"std-kv-twin\"");
    let twin = host
        .load_bytes_blocking(
            common::manifest_from(&counter_text),
            common::wasm("counter"),
        )
        .expect("counter");
    ok(&plugin, "shared bytes", &[("op", "set"), ("key", "x")]);
    assert_eq!(
        ok(&twin, "", &[("op", "get"), ("key", "x")]),
        "<none>",
        "another plugin's own namespace is not this one's"
    );

    // Identifiers that try to name another namespace are only names of
    // shared stores, and none is granted.
    for hostile in [
        "plugin:std-kv-twin",
        "std-kv-twin",
        "shared:sessions",
        "a/../b",
        "sessions",
    ] {
        let err = call(
            &plugin,
            "",
            &[("op", "get"), ("bucket", hostile), ("key", "x")],
        )
        .expect_err(hostile);
        assert!(
            err.to_string().contains("access denied"),
            "{hostile}: {err}"
        );
    }

    // A key past the limit is the store's own error, as `other`.
    let long = "k".repeat(600);
    let err = call(&plugin, "", &[("op", "set"), ("key", &long)]).expect_err("long key");
    assert!(err.to_string().contains("keys are 1 to 512 bytes"), "{err}");
}

#[test]
fn keyvalue_buckets_follow_grants_and_share_with_the_warden_store() {
    let host = host();
    let plugin = standard(
        &host,
        "std-shared",
        "",
        "[permissions]\nkv = [\"sessions\"]",
    );
    ok(
        &plugin,
        "from wasi",
        &[("op", "set"), ("bucket", "sessions"), ("key", "s1")],
    );
    // The counter example reads the same shared store through
    // `warden:plugin/store`.
    let counter_text = std::fs::read_to_string(common::plugin_dir("counter").join("plugin.toml"))
        .expect("manifest");
    let counter = host
        .load_bytes_blocking(
            common::manifest_from(&format!(
                "{counter_text}\n[permissions]\nkv = [\"sessions\"]\n"
            )),
            common::wasm("counter"),
        )
        .expect("counter");
    assert_eq!(
        ok(
            &counter,
            "",
            &[("op", "get"), ("store", "sessions"), ("key", "s1")]
        ),
        "from wasi"
    );

    // A store not granted: `access-denied`, audited, nothing opened.
    let err = call(
        &plugin,
        "",
        &[("op", "get"), ("bucket", "billing"), ("key", "k")],
    )
    .expect_err("billing is not granted");
    assert!(err.to_string().contains("access denied"), "{err}");
    let denied = common::audited(&host, Some("std-shared"), AuditKind::StoreDenied);
    assert!(
        denied.iter().any(|e| e.resource.contains("billing")),
        "{denied:?}"
    );
}

#[test]
fn keyvalue_atomics_and_batches_keep_the_limits() {
    let host = host();
    let plugin = standard(&host, "std-atomics", "kv-mb = 1", "");
    assert_eq!(ok(&plugin, "", &[("op", "incr"), ("key", "n")]), "1");
    assert_eq!(
        ok(
            &plugin,
            "",
            &[("op", "incr"), ("key", "n"), ("delta", "41")]
        ),
        "42"
    );
    let too_big = u64::MAX.to_string();
    let err = call(
        &plugin,
        "",
        &[("op", "incr"), ("key", "n"), ("delta", &too_big)],
    )
    .expect_err("delta past i64");
    assert!(err.to_string().contains("a delta is at most"), "{err}");

    ok(
        &plugin,
        "v",
        &[("op", "fill"), ("key", "b"), ("count", "3")],
    );
    assert_eq!(
        ok(&plugin, "", &[("op", "get-many"), ("keys", "b0,b2,zz")]),
        "b0=v\nb2=v\nzz=<none>\n"
    );
    ok(&plugin, "", &[("op", "delete-many"), ("keys", "b0,b1")]);
    assert_eq!(
        ok(&plugin, "", &[("op", "get-many"), ("keys", "b0,b1,b2")]),
        "b0=<none>\nb1=<none>\nb2=v\n"
    );

    // More keys in one batch than a page: refused before the store is touched.
    let err = call(
        &plugin,
        "v",
        &[("op", "fill"), ("key", "c"), ("count", "1001")],
    )
    .expect_err("batch past 1000 keys");
    assert!(err.to_string().contains("at most 1000 keys"), "{err}");
    assert_eq!(
        ok(&plugin, "", &[("op", "get"), ("key", "c0")]),
        "<none>",
        "nothing of the refused batch was written"
    );

    // The namespace quota (`kv-mb = 1`) holds for batches: 1.2 MB refused
    // and audited.
    let value = "x".repeat(1200);
    let err = call(
        &plugin,
        &value,
        &[("op", "fill"), ("key", "q"), ("count", "1000")],
    )
    .expect_err("past the quota");
    assert!(err.to_string().contains("quota exceeded"), "{err}");
    assert!(!common::audited(&host, Some("std-atomics"), AuditKind::StoreQuota).is_empty());
}

#[test]
fn an_instance_holds_a_bounded_number_of_open_buckets() {
    let host = host();
    // One instance, reused: the calls below all meet the same one.
    let plugin = standard(&host, "std-buckets", "max-instances = 1", "");
    assert_eq!(
        ok(&plugin, "", &[("op", "open"), ("count", "64")]),
        "64 open"
    );
    let err = call(&plugin, "", &[("op", "open"), ("count", "65")]).expect_err("a 65th bucket");
    assert!(err.to_string().contains("at most 64 open buckets"), "{err}");
    // Dropped handles are given back: the same instance opens 64 again.
    for _ in 0..3 {
        assert_eq!(
            ok(&plugin, "", &[("op", "open"), ("count", "64")]),
            "64 open"
        );
    }
}

#[test]
fn config_store_answers_the_plugins_effective_config() {
    let host = Warden::builder()
        .config(Some("std-config"), "region", "eu-north")
        .build()
        .expect("host");
    let plugin = standard(&host, "std-config", "", "");
    assert_eq!(
        ok(&plugin, "", &[("op", "config"), ("key", "greeting")]),
        "hello from wasi:config"
    );
    assert_eq!(
        ok(&plugin, "", &[("op", "config"), ("key", "region")]),
        "eu-north"
    );
    assert_eq!(
        ok(&plugin, "", &[("op", "config"), ("key", "absent")]),
        "<none>"
    );
    assert_eq!(
        ok(&plugin, "", &[("op", "config")]),
        "greeting=hello from wasi:config\nregion=eu-north\n"
    );
}

#[test]
fn logging_lines_are_attributed_levelled_and_capped() {
    let host = host();
    let plugin = standard(&host, "std-log", "max-log-bytes = 100", "");
    let records = captured(|| {
        ok(
            &plugin,
            "disk almost full",
            &[("op", "log"), ("level", "critical"), ("context", "storage")],
        );
        ok(&plugin, "plain", &[("op", "log"), ("level", "debug")]);
        // The context counts against the call's 100-byte budget: 90 bytes of
        // context and a 20-byte message do not fit.
        ok(
            &plugin,
            &"y".repeat(20),
            &[("op", "log"), ("context", &"c".repeat(90))],
        );
    });
    let line = records
        .iter()
        .find(|r| r.message == "disk almost full")
        .unwrap_or_else(|| panic!("log line missing: {records:?}"));
    assert_eq!(line.context, "storage");
    assert_eq!(line.level, "ERROR", "critical is logged as an error");
    assert_eq!(line.plugin, "std-log");
    assert_eq!(line.stream, "log");
    let plain = records
        .iter()
        .find(|r| r.message == "plain")
        .unwrap_or_else(|| panic!("debug line missing: {records:?}"));
    assert_eq!(plain.level, "DEBUG");
    assert!(
        !records.iter().any(|r| r.message.starts_with("yyyy")),
        "a line past the call's log budget was written: {records:?}"
    );
}

#[test]
fn a_keyvalue_batch_answer_is_charged_to_the_instances_host_memory() {
    let host = host();
    // 2 MiB less 64 KiB for each of 16 handles: 1 MiB for transfers, room
    // for two 400 kB values, not three.
    let plugin = standard(
        &host,
        "std-budget",
        "max-resources = 16\nhost-memory-mb = 2",
        "",
    );
    let value = "v".repeat(400_000);
    ok(&plugin, &value, &[("op", "set"), ("key", "big")]);
    let two = ok(&plugin, "", &[("op", "get-many"), ("keys", "big,big")]);
    assert_eq!(two.len(), 2 * ("big=".len() + 400_000 + 1));
    let err = call(&plugin, "", &[("op", "get-many"), ("keys", "big,big,big")])
        .expect_err("three values do not fit the budget");
    assert!(err.to_string().contains("host memory"), "{err}");
}
