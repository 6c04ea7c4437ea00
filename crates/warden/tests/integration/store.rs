//! The key-value store service end to end through the `counter` plugin:
//! atomic increments under concurrency, isolation, shared stores by grant,
//! paging, limits, and persistence across a host restart.

use warden_testkit as common;

use warden::{AuditKind, Error, Grants, KvLimits, Limits, PluginError, ProcessRequest, Warden};

/// counter loaded under `name`, with extra `[permissions]` text.
fn counter(host: &Warden, name: &str, permissions: &str) -> warden::Plugin {
    let text = std::fs::read_to_string(common::plugin_dir("counter").join("plugin.toml"))
        .expect("manifest")
        .replace("name = \"counter\"", &format!("name = \"{name}\""));
    let text = format!("{text}\n[permissions]\n{permissions}\n");
    host.load_bytes_blocking(common::manifest_from(&text), common::wasm("counter"))
        .expect("load counter")
}

fn run(plugin: &warden::Plugin, input: &str, options: &[(&str, &str)]) -> warden::Result<String> {
    let mut request = ProcessRequest::new(input);
    for (k, v) in options {
        request = request.option(*k, *v);
    }
    plugin
        .process_blocking(request)
        .map(|r| String::from_utf8(r.output).expect("utf-8"))
}

#[test]
fn eight_concurrent_callers_lose_no_increment() {
    let host = common::host();
    let plugin = counter(&host, "counter", "");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    run(&plugin, "", &[("op", "incr"), ("key", "hits")]).expect("incr");
                }
            });
        }
    });
    assert_eq!(
        run(&plugin, "", &[("op", "get"), ("key", "hits")]).expect("get"),
        "400"
    );
    assert!(
        plugin.stats().instances_created > 1,
        "callers really ran in parallel"
    );
}

#[test]
fn plugins_are_isolated_unless_they_share_a_granted_store() {
    let host = Warden::builder()
        .grants(Grants::new().grant("kv:sessions").expect("grant"))
        .build()
        .expect("host");
    let alpha = counter(&host, "alpha", "kv = [\"sessions\"]");
    let beta = counter(
        &host,
        "beta",
        "kv = [{ name = \"sessions\", reason = \"reads sessions\" }]",
    );
    run(&alpha, "mine", &[("op", "set"), ("key", "secret")]).expect("set");
    assert_eq!(
        run(&beta, "", &[("op", "get"), ("key", "secret")]).expect("get"),
        "<none>"
    );
    run(
        &alpha,
        "s1",
        &[("op", "set"), ("key", "sid"), ("store", "sessions")],
    )
    .expect("set");
    assert_eq!(
        run(
            &beta,
            "",
            &[("op", "get"), ("key", "sid"), ("store", "sessions")]
        )
        .expect("get"),
        "s1"
    );
    let err = run(
        &beta,
        "",
        &[("op", "get"), ("key", "k"), ("store", "billing")],
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Plugin { error: PluginError::Unsupported(m), .. } if m.contains("billing")),
        "{err}"
    );
    let denied = common::audited(&host, None, AuditKind::StoreDenied);
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].plugin, "beta");

    // Without the grant, asking for the shared store refuses the load.
    let err = Warden::new()
        .expect("host")
        .load_bytes_blocking(
            common::manifest_from(
                &std::fs::read_to_string(common::plugin_dir("counter").join("plugin.toml"))
                    .expect("manifest")
                    .replace("[limits]", "[permissions]\nkv = [\"sessions\"]\n[limits]"),
            ),
            common::wasm("counter"),
        )
        .unwrap_err();
    assert!(err.to_string().contains("--grant kv:sessions"), "{err}");
}

#[test]
fn keys_page_and_compare_and_swap() {
    let host = common::host();
    let plugin = counter(&host, "counter", "");
    for i in 0..5 {
        run(
            &plugin,
            "x",
            &[("op", "set"), ("key", &format!("user:{i}"))],
        )
        .expect("set");
    }
    run(&plugin, "x", &[("op", "set"), ("key", "zzz")]).expect("set");
    let first = run(
        &plugin,
        "",
        &[("op", "list"), ("prefix", "user:"), ("limit", "3")],
    )
    .expect("list");
    assert_eq!(first, "user:0\nuser:1\nuser:2\nnext: user:2");
    let rest = run(
        &plugin,
        "",
        &[
            ("op", "list"),
            ("prefix", "user:"),
            ("limit", "3"),
            ("cursor", "user:2"),
        ],
    )
    .expect("list");
    assert_eq!(rest, "user:3\nuser:4");
    assert_eq!(
        run(&plugin, "v1", &[("op", "cas"), ("key", "lock")]).expect("cas"),
        "swapped"
    );
    assert_eq!(
        run(&plugin, "v2", &[("op", "cas"), ("key", "lock")]).expect("cas"),
        "unchanged"
    );
    assert_eq!(
        run(
            &plugin,
            "v2",
            &[("op", "cas"), ("key", "lock"), ("expected", "v1")]
        )
        .expect("cas"),
        "swapped"
    );
    assert_eq!(
        run(&plugin, "", &[("op", "delete"), ("key", "lock")]).expect("del"),
        "true"
    );
    assert_eq!(
        run(&plugin, "", &[("op", "get"), ("key", "lock")]).expect("get"),
        "<none>"
    );
}

#[test]
fn size_limits_and_quota_give_clear_errors() {
    let host = Warden::builder()
        .kv_limits(KvLimits {
            max_key_bytes: 16,
            max_value_bytes: 100,
            ..KvLimits::default()
        })
        .default_limits(Limits {
            kv_bytes: 250,
            ..Limits::default()
        })
        .build()
        .expect("host");
    let plugin = counter(&host, "counter", "");
    let long_key = "k".repeat(17);
    let err = run(&plugin, "", &[("op", "get"), ("key", &long_key)]).unwrap_err();
    assert!(err.to_string().contains("keys are 1 to 16 bytes"), "{err}");
    let err = run(&plugin, &"v".repeat(101), &[("op", "set"), ("key", "k")]).unwrap_err();
    assert!(err.to_string().contains("at most 100 bytes"), "{err}");
    run(&plugin, "", &[("op", "incr"), ("key", "n")]).expect("incr");
    let err = run(&plugin, "", &[("op", "incr"), ("key", "n"), ("delta", "x")]).unwrap_err();
    assert!(err.to_string().contains("`delta`"), "{err}");
    for i in 0..2 {
        run(
            &plugin,
            &"v".repeat(100),
            &[("op", "set"), ("key", &format!("k{i}"))],
        )
        .expect("fits");
    }
    let err = run(&plugin, &"v".repeat(100), &[("op", "set"), ("key", "k2")]).unwrap_err();
    assert!(err.to_string().contains("quota exceeded"), "{err}");
    let quota = common::audited(&host, None, AuditKind::StoreQuota);
    assert_eq!(quota.len(), 1);
}

#[test]
fn data_survives_a_host_restart() {
    let data = tempfile::tempdir().expect("data dir");
    {
        let host = Warden::builder()
            .data_dir(data.path())
            .build()
            .expect("host");
        let plugin = counter(&host, "counter", "");
        run(
            &plugin,
            "",
            &[("op", "incr"), ("key", "boots"), ("delta", "41")],
        )
        .expect("incr");
        run(&plugin, "kept", &[("op", "set"), ("key", "note")]).expect("set");
    }
    assert!(data.path().join(warden::STORE_FILE).is_file());
    let host = Warden::builder()
        .data_dir(data.path())
        .build()
        .expect("host");
    let plugin = counter(&host, "counter", "");
    assert_eq!(
        run(&plugin, "", &[("op", "incr"), ("key", "boots")]).expect("incr"),
        "42"
    );
    assert_eq!(
        run(&plugin, "", &[("op", "get"), ("key", "note")]).expect("get"),
        "kept"
    );
}

#[test]
fn risk_rules_remembers_customers_and_scores_repeat_offenders_higher() {
    let host = Warden::builder()
        .config(Some("risk-rules"), "repeat-offender-after", "2")
        .build()
        .expect("host");
    let risk = host
        .load_blocking(common::plugin_dir("risk-rules"))
        .expect("risk-rules");
    let assess = |customer: &str| -> serde_json::Value {
        let tx = format!(
            r#"{{"id":"t","amount":25000,"country":"KP","hour":3,"customer_id":"{customer}"}}"#
        );
        let out = risk
            .process_blocking(ProcessRequest::new(tx))
            .expect("assess");
        serde_json::from_slice(&out.output).expect("json")
    };
    let first = assess("c1");
    assert_eq!(first["level"], "high");
    assess("c1");
    let third = assess("c1");
    let reasons = third["reasons"].to_string();
    assert!(reasons.contains("2 earlier high-risk"), "{reasons}");
    let other = assess("c2");
    assert!(!other["reasons"].to_string().contains("earlier"), "{other}");
}
