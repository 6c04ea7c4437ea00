//! Warden nodes as one cluster on a real `nats-server -js` on 127.0.0.1:
//! calls through any node reach a plugin only one node has, with the
//! serving node named and its own errors; a deploy through one node's
//! admin API reaches the others (and a node that joins late); events reach
//! every node; a node killed under load drops out and its traffic goes to
//! the others.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::Serving;
use super::common::services::Service;
use super::{agent, dist, stderr, warden};

const TOKEN: &str = "cluster-admin-token-0123456789";

/// A `warden serve` node named `name` with the built examples `plugins`.
fn node(root: &Path, name: &str, nats: &Service, plugins: &[&str]) -> Serving {
    node_with(root, name, nats, plugins, "")
}

/// [`node`] with `server` appended to its `[server]` table.
fn node_with(root: &Path, name: &str, nats: &Service, plugins: &[&str], server: &str) -> Serving {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("plugins")).expect("node dir");
    for plugin in plugins {
        let to = dir.join("plugins").join(plugin);
        std::fs::create_dir_all(&to).expect("plugin dir");
        for entry in std::fs::read_dir(dist().join(plugin)).expect("built example") {
            let from = entry.expect("entry").path();
            std::fs::copy(&from, to.join(from.file_name().expect("name"))).expect("copy");
        }
    }
    let file = dir.join("warden.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata-dir = \"data\"\nadmin-token = \"{TOKEN}\"\n\
             request-timeout-ms = 3000\n{server}\n[plugins]\ndirs = [\"plugins\"]\nsources = []\n\
             [cluster]\nnats = \"nats://127.0.0.1:{}\"\nname = \"{name}\"\n",
            nats.port
        ),
    )
    .expect("warden.toml");
    Serving::start("serve", &file)
}

/// POSTs `body` to `url`: status, the serving node's header, the body.
fn post(url: &str, body: &str) -> (u16, Option<String>, String) {
    let mut response = agent().post(url).send(body).expect("post");
    let node = response
        .headers()
        .get("x-warden-node")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (response.status().as_u16(), node, text)
}

fn get_json(url: &str) -> (u16, Value) {
    let mut response = agent().get(url).call().expect("get");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_json().unwrap_or(Value::Null),
    )
}

/// Polls `check` every 20 ms for up to `limit`; how long it took to hold.
fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn node_names(url: &str) -> Vec<String> {
    let (_, cluster) = get_json(&format!("{url}/v1/cluster"));
    cluster["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| n["node"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn calls_of(url: &str, plugin: &str) -> u64 {
    let text = agent()
        .get(format!("{url}/metrics"))
        .call()
        .expect("metrics")
        .body_mut()
        .read_to_string()
        .expect("text");
    text.lines()
        .filter(|l| l.starts_with(&format!("warden_plugin_calls_total{{plugin=\"{plugin}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn nats_or_skip(tmp: &Path) -> Option<Service> {
    Service::nats(&tmp.join("nats"))
}

#[test]
fn nodes_serve_each_others_plugins_follow_deploys_and_share_events() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(nats) = nats_or_skip(tmp.path()) else {
        return;
    };
    // node-a takes fewer options than the others: its own limit holds for
    // the calls they forward to it.
    let a = node_with(
        tmp.path(),
        "node-a",
        &nats,
        &["text-transform"],
        "max-options = 2",
    );
    let b = node(tmp.path(), "node-b", &nats, &["counter"]);
    let c = node(tmp.path(), "node-c", &nats, &["audit-logger"]);

    // Every node is listed, with its plugins, once its first heartbeat is in.
    let all = |url: &str| node_names(url) == ["node-a", "node-b", "node-c"];
    assert!(
        within(Duration::from_secs(5), || all(&c.url)).is_some(),
        "{:?}",
        node_names(&c.url)
    );
    let (_, cluster) = get_json(&format!("{}/v1/cluster", b.url));
    assert_eq!(cluster["node"], "node-b");
    assert_eq!(
        cluster["nodes"][0]["plugins"][0]["name"], "text-transform",
        "{cluster}"
    );
    let listed = warden(
        &[
            "cluster",
            "--nats",
            &format!("nats://127.0.0.1:{}", nats.port),
            "--json",
        ],
        None,
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");

    // A call through any node reaches the one plugin only node-a has.
    let upper = |url: &str| {
        post(
            &format!("{url}/v1/plugins/text-transform/process?op=upper"),
            "hello",
        )
    };
    assert_eq!(
        upper(&a.url),
        (200, None, "HELLO".to_string()),
        "served where it is"
    );
    for other in [&b.url, &c.url] {
        assert_eq!(
            upper(other),
            (200, Some("node-a".to_string()), "HELLO".to_string())
        );
    }
    // With node-a's own errors and limits.
    let bad = |url: &str| {
        post(
            &format!("{url}/v1/plugins/text-transform/process?op=nope"),
            "x",
        )
    };
    let (here, _, here_body) = bad(&a.url);
    let (there, served_by, there_body) = bad(&b.url);
    assert_eq!((there, served_by.as_deref()), (here, Some("node-a")));
    let kind = |body: &str| serde_json::from_str::<Value>(body).expect("problem")["type"].clone();
    assert_eq!(kind(&there_body), kind(&here_body));
    let (status, served_by, body) = post(
        &format!(
            "{}/v1/plugins/text-transform/process?op=upper&x=1&y=2",
            b.url
        ),
        "hello",
    );
    assert_eq!(
        (status, served_by.as_deref()),
        (400, Some("node-a")),
        "{body}"
    );
    assert!(body.contains("too-many-options"), "{body}");
    // A plugin no node has: this node's own 404.
    let (status, served_by, _) = post(&format!("{}/v1/plugins/nowhere/process", b.url), "x");
    assert_eq!((status, served_by), (404, None));

    // A deploy through node-a's admin API: node-c serves it within 2 s.
    let staged = tmp.path().join("staged/word-count");
    std::fs::create_dir_all(&staged).expect("dir");
    for entry in std::fs::read_dir(dist().join("word-count")).expect("built") {
        let from = entry.expect("entry").path();
        std::fs::copy(&from, staged.join(from.file_name().expect("name"))).expect("copy");
    }
    let deployed = agent()
        .post(format!("{}/v1/admin/deploy", a.url))
        .header("authorization", &format!("Bearer {TOKEN}"))
        .send_json(serde_json::json!({ "path": staged }))
        .expect("deploy");
    assert_eq!(deployed.status(), 201);
    let has = |url: &str| {
        let (status, node, _) = post(&format!("{url}/v1/plugins/word-count/process"), "a b c");
        status == 200 && node.is_none()
    };
    let took = within(Duration::from_secs(2), || has(&c.url));
    assert!(took.is_some(), "node-c did not serve word-count within 2 s");
    eprintln!("deploy on node-a served by node-c after {took:?}");
    // The copy node-c fetched is in its data directory, by digest.
    let fetched: Vec<PathBuf> = std::fs::read_dir(tmp.path().join("node-c/data/cluster"))
        .expect("fetched plugins")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(fetched.len(), 1, "{fetched:?}");

    // A version an operator holds on node-c is refused there, not sent to
    // the nodes that still serve it.
    let admin = |url: &str, path: &str| {
        agent()
            .post(format!("{url}/v1/admin/plugins/{path}"))
            .header("authorization", &format!("Bearer {TOKEN}"))
            .send_empty()
            .expect("admin")
            .status()
            .as_u16()
    };
    assert_eq!(admin(&c.url, "word-count/quarantine"), 200);
    let (status, served_by, _) = post(&format!("{}/v1/plugins/word-count/process", c.url), "a b");
    assert_eq!((status, served_by), (503, None), "held, and not forwarded");
    assert_eq!(admin(&c.url, "word-count/release"), 200);

    // A name no plugin can have never becomes a NATS subject: a long one
    // would make the NATS server drop the node's connection.
    let long = "a".repeat(5000);
    let (status, served_by, _) = post(&format!("{}/v1/plugins/{long}/process", b.url), "x");
    assert_eq!((status, served_by), (404, None));
    assert_eq!(upper(&b.url).0, 200, "node-b still forwards");

    // An input larger than a NATS message may carry (1 MiB by default),
    // within node-b's own body limit: refused by node-b with 413, and node-b
    // keeps its connection; so is one just under it, whose headers tip it
    // over.
    for size in [2 << 20, (1 << 20) - 64] {
        let (status, served_by, body) = post(
            &format!("{}/v1/plugins/text-transform/process?op=upper", b.url),
            &"a".repeat(size),
        );
        assert_eq!(
            (status, served_by.as_deref()),
            (413, Some("node-b")),
            "{size} bytes: {body}"
        );
        assert!(body.contains("too-large-to-forward"), "{body}");
    }
    assert_eq!(upper(&b.url).0, 200, "node-b still forwards");

    // A node that joins late catches up.
    let d = node(tmp.path(), "node-d", &nats, &[]);
    assert!(
        within(Duration::from_secs(2), || has(&d.url)).is_some(),
        "node-d did not catch up"
    );

    // `warden deploy --cluster` from a machine that is no node: every node
    // serves the new plugin.
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let json_transform = dist().join("json-transform");
    let pushed = warden(
        &[
            "deploy",
            json_transform.to_str().expect("utf-8"),
            "--cluster",
            &nats_url,
        ],
        None,
    );
    assert!(pushed.status.success(), "{}", stderr(&pushed));
    let serves_json = |url: &str| {
        let (status, node, _) = post(&format!("{url}/v1/plugins/json-transform/process"), "{}");
        node.is_none() && status != 404
    };
    for url in [&a.url, &b.url, &c.url, &d.url] {
        assert!(
            within(Duration::from_secs(2), || serves_json(url)).is_some(),
            "{url} does not serve json-transform"
        );
    }
    let again = warden(
        &[
            "deploy",
            json_transform.to_str().expect("utf-8"),
            "--cluster",
            &nats_url,
        ],
        None,
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("deployed already"),
        "{}",
        stderr(&again)
    );

    // An event published on node-b reaches the event handler on node-c.
    let before = calls_of(&c.url, "audit-logger");
    let status = agent()
        .post(format!("{}/v1/events", b.url))
        .send_json(serde_json::json!({ "type": "order.created", "payload": { "id": 7 } }))
        .expect("publish")
        .status();
    assert_eq!(status, 202);
    assert!(
        within(Duration::from_secs(2), || calls_of(&c.url, "audit-logger")
            > before)
        .is_some(),
        "the event did not reach node-c"
    );

    // An unauthenticated flood of events on node-b: every event crosses to
    // every node through bounded queues; no node freezes, and calls across
    // nodes still succeed at once.
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("{}/v1/events", b.url);
            std::thread::spawn(move || {
                (0..250)
                    .filter(|_| {
                        agent()
                            .post(&url)
                            .send_json(serde_json::json!({ "type": "order.flood", "payload": "x".repeat(4096) }))
                            .is_ok_and(|r| r.status().is_success() || r.status() == 503)
                    })
                    .count()
            })
        })
        .collect();
    let answered: usize = flood.into_iter().map(|t| t.join().expect("flood")).sum();
    assert_eq!(answered, 2000, "every event request was answered");
    let started = Instant::now();
    assert_eq!(
        upper(&b.url),
        (200, Some("node-a".to_string()), "HELLO".to_string())
    );
    assert_eq!(upper(&c.url).0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "calls slowed: {:?}",
        started.elapsed()
    );

    // A node that stops leaves the list at once.
    let mut d = d;
    d.terminate();
    assert!(
        within(Duration::from_secs(5), || !node_names(&a.url)
            .contains(&"node-d".to_string()))
        .is_some(),
        "node-d is still listed"
    );
}

#[test]
fn a_node_killed_under_load_drops_out_and_its_calls_go_to_the_others() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(nats) = nats_or_skip(tmp.path()) else {
        return;
    };
    let mut a = node(tmp.path(), "node-a", &nats, &["text-transform"]);
    let b = node(tmp.path(), "node-b", &nats, &["counter"]);
    let _c = node(tmp.path(), "node-c", &nats, &["text-transform"]);
    let all = |url: &str| node_names(url) == ["node-a", "node-b", "node-c"];
    assert!(within(Duration::from_secs(5), || all(&b.url)).is_some());

    let url = format!("{}/v1/plugins/text-transform/process?op=upper", b.url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killed_at = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop, killed_at) = (url.clone(), stop.clone(), killed_at.clone());
            std::thread::spawn(move || {
                let (mut ok, mut failed, mut after) = (0u32, 0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    let (status, node, _) = post(&url, "hello");
                    match status {
                        200 => ok += 1,
                        _ => failed += 1,
                    }
                    if killed_at
                        .get()
                        .is_some_and(|k| started > *k + Duration::from_millis(100))
                    {
                        after.push((status, node));
                    }
                }
                (ok, failed, after)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    a.child.kill().expect("kill -9 node-a");
    killed_at.set(Instant::now()).expect("once");
    // Calls in flight at node-a wait out their 3-s deadline; the rest go on.
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed, mut after) = (0, 0, Vec::new());
    for client in clients {
        let (o, f, a) = client.join().expect("client");
        ok += o;
        failed += f;
        after.extend(a);
    }
    eprintln!("kill -9 under load: {ok} calls succeeded, {failed} failed");
    assert!(
        failed <= 4,
        "at most the calls in flight at node-a fail: {failed}"
    );
    assert!(!after.is_empty() && ok > 100, "{ok} calls succeeded");
    assert!(
        after
            .iter()
            .all(|(status, node)| *status == 200 && node.as_deref() == Some("node-c")),
        "after the kill every call is served by node-c: {:?}",
        after
            .iter()
            .filter(|(s, _)| *s != 200)
            .take(5)
            .collect::<Vec<_>>()
    );
    assert!(
        within(Duration::from_secs(5), || !node_names(&b.url)
            .contains(&"node-a".to_string()))
        .is_some(),
        "node-a is still listed"
    );
}

/// The grant-refused entries of `plugin` in a node's audit log: each
/// entry's action.
fn refusals(url: &str, plugin: &str) -> Vec<String> {
    let mut response = agent()
        .get(format!(
            "{url}/v1/admin/audit?plugin={plugin}&kind=grant-refused"
        ))
        .header("authorization", format!("Bearer {TOKEN}"))
        .call()
        .expect("audit");
    let entries: Value = response.body_mut().read_json().expect("json");
    entries
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["action"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A copy of the built url-fetcher (which asks for `https://example.com`)
/// as `version`, under `root`, asking for `more` permissions too (lines of
/// its `[permissions]` table).
fn url_fetcher(root: &Path, version: &str, more: &str) -> PathBuf {
    let dir = root.join(format!("url-fetcher-{version}"));
    std::fs::create_dir_all(&dir).expect("dir");
    for entry in std::fs::read_dir(dist().join("url-fetcher")).expect("built example") {
        let from = entry.expect("entry").path();
        std::fs::copy(&from, dir.join(from.file_name().expect("name"))).expect("copy");
    }
    let manifest = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let text = text
        .replacen(
            &format!("version = \"{}\"", manifest_version(&text)),
            &format!("version = \"{version}\""),
            1,
        )
        .replacen("[permissions]\n", &format!("[permissions]\n{more}"), 1);
    std::fs::write(&manifest, text).expect("manifest");
    dir
}

fn manifest_version(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("a version line")
        .to_string()
}

#[test]
fn the_clusters_grants_narrow_what_each_node_grants_and_never_widen_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(nats) = nats_or_skip(tmp.path()) else {
        return;
    };
    let granting = "[grants]\nallow = [\"http:https://example.com\", \"env:WARDEN_TEST_*\"]";
    let a = node_with(tmp.path(), "node-a", &nats, &[], granting);
    let b = node(tmp.path(), "node-b", &nats, &[]);
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let deploy = |dir: &Path, grant: Option<&str>| {
        let mut args = vec![
            "deploy",
            dir.to_str().expect("utf-8"),
            "--cluster",
            &nats_url,
        ];
        args.extend(grant.iter().flat_map(|g| ["--grant", *g]));
        let out = warden(&args, None);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let loaded = |url: &str| {
        agent()
            .get(format!("{url}/v1/plugins/url-fetcher"))
            .call()
            .is_ok_and(|r| r.status() == 200)
    };
    let versions = |url: &str| {
        let (_, plugin) = get_json(&format!("{url}/v1/plugins/url-fetcher"));
        plugin["versions"].as_array().map_or(0, Vec::len)
    };
    let cluster_refused = |url: &str| {
        refusals(url, "url-fetcher")
            .iter()
            .filter(|a| a.contains("cluster's grants"))
            .count()
    };

    // Node-a grants example.com; the cluster grants url-fetcher less, so
    // no node runs it and each says why in its audit log.
    deploy(
        &url_fetcher(tmp.path(), "1.0.0", ""),
        Some("http:https://other.example.org"),
    );
    for url in [&a.url, &b.url] {
        assert!(
            within(Duration::from_secs(3), || cluster_refused(url) > 0).is_some(),
            "{url} did not refuse url-fetcher under the cluster's grants"
        );
    }
    assert!(!loaded(&a.url) && !loaded(&b.url));

    // The cluster grants what it asks for: node-a loads both versions;
    // node-b, whose own grants give nothing, still refuses it.
    deploy(
        &url_fetcher(tmp.path(), "1.1.0", ""),
        Some("http:https://example.com"),
    );
    assert!(
        within(Duration::from_secs(3), || versions(&a.url) == 2).is_some(),
        "node-a did not load both versions once the cluster granted them"
    );
    assert!(
        within(Duration::from_secs(3), || refusals(&b.url, "url-fetcher")
            .iter()
            .any(|a| a == "load refused"))
        .is_some(),
        "node-b's own grants did not refuse it"
    );
    assert!(!loaded(&b.url), "a record widened node-b's grants");

    // A version asking for more than the record grants (which node-a alone
    // would grant) is refused beside the two that run; they stay.
    let before = cluster_refused(&a.url);
    deploy(
        &url_fetcher(tmp.path(), "1.2.0", "env = [\"WARDEN_TEST_MODE\"]\n"),
        None,
    );
    assert!(
        within(Duration::from_secs(3), || cluster_refused(&a.url) > before).is_some(),
        "node-a did not refuse 1.2.0"
    );
    assert_eq!(versions(&a.url), 2, "1.0.0 and 1.1.0 still run");

    // Narrowed again: node-a unloads what it runs.
    deploy(&url_fetcher(tmp.path(), "1.3.0", ""), Some("kv:cache"));
    assert!(
        within(Duration::from_secs(3), || !loaded(&a.url)).is_some(),
        "node-a still runs url-fetcher outside the cluster's grants"
    );

    // The record's grants taken away: node-a's own grants alone decide,
    // and it runs the plugin again; node-b's still refuse it.
    let cleared = url_fetcher(tmp.path(), "1.4.0", "");
    let out = warden(
        &[
            "deploy",
            cleared.to_str().expect("utf-8"),
            "--cluster",
            &nats_url,
            "--clear-grants",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        within(Duration::from_secs(3), || loaded(&a.url)).is_some(),
        "node-a does not run url-fetcher once the cluster's grants are gone"
    );
    assert!(!loaded(&b.url));
}

#[test]
fn a_forwarded_call_continues_the_callers_trace_on_the_serving_node() {
    use super::tracing::{CALLER_SPAN, TRACE_ID, attribute, exported_spans, hex_id, tree};
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(nats) = nats_or_skip(tmp.path()) else {
        return;
    };
    let (port, seen) = super::tracing::receiver();
    let telemetry = format!(
        "[telemetry]\notlp = \"http://127.0.0.1:{port}\"\nservice-name = \"warden-cluster\""
    );
    let mut a = node_with(tmp.path(), "node-a", &nats, &["text-transform"], &telemetry);
    let mut b = node_with(tmp.path(), "node-b", &nats, &[], &telemetry);
    let both = |url: &str| node_names(url) == ["node-a", "node-b"];
    assert!(within(Duration::from_secs(5), || both(&b.url)).is_some());
    let response = agent()
        .post(format!(
            "{}/v1/plugins/text-transform/process?op=upper",
            b.url
        ))
        .header("traceparent", &format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .send("hello")
        .expect("call");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-warden-node")
            .and_then(|v| v.to_str().ok()),
        Some("node-a")
    );
    // Stopping flushes the spans not yet exported.
    b.stop_cleanly();
    a.stop_cleanly();

    let spans = exported_spans(&seen);
    let all = tree(&spans);
    let request = |route: &str| {
        spans
            .iter()
            .find(|s| {
                s.name == "warden.request" && attribute(s, "http.route").as_deref() == Some(route)
            })
            .unwrap_or_else(|| panic!("no request span for {route}: {all}"))
    };
    let taken = request("/v1/plugins/{name}/process");
    let served = request("/v1/plugins/{name}/process (forwarded)");
    assert_eq!(hex_id(&taken.trace_id), TRACE_ID, "{all}");
    assert_eq!(hex_id(&taken.parent_span_id), CALLER_SPAN, "{all}");
    assert_eq!(
        hex_id(&served.trace_id),
        TRACE_ID,
        "node-a's span is in the caller's trace: {all}"
    );
    assert_eq!(
        served.parent_span_id, taken.span_id,
        "node-a's span is a child of node-b's: {all}"
    );
    assert!(
        spans.iter().any(|s| s.name == "warden.call"
            && s.parent_span_id == served.span_id
            && attribute(s, "plugin").as_deref() == Some("text-transform")),
        "the call runs under the forwarded request: {all}"
    );
}

#[test]
fn a_node_stops_when_its_nats_server_is_gone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(nats) = nats_or_skip(tmp.path()) else {
        return;
    };
    let mut a = node(tmp.path(), "node-a", &nats, &["text-transform"]);
    drop(nats);
    std::thread::sleep(Duration::from_secs(1));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Without a bound on leaving, the node waited for NATS for ever.
    assert!(
        within(Duration::from_secs(15), || a
            .child
            .try_wait()
            .ok()
            .flatten()
            .is_some())
        .is_some(),
        "node-a did not stop within 15 s of SIGTERM with its NATS server gone"
    );
}
