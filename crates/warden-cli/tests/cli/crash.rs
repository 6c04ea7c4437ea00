//! Crash safety of a serving host: `kill -9` in the middle of key-value
//! writes, and in the middle of deploys and canary changes. After a restart
//! on the same data directory nothing acknowledged is lost, and the
//! deployment state is one that was acknowledged or the one after it, never
//! a mix.

use super::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into()
}

/// A `warden serve` of the counter example with its data in `tmp/data`.
fn serve(tmp: &Path) -> Serving {
    let plugins = tmp.join("plugins/counter");
    if !plugins.exists() {
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        for file in ["counter.wasm", "plugin.toml"] {
            std::fs::copy(dist().join("counter").join(file), plugins.join(file)).expect("copy");
        }
    }
    let file = tmp.join("warden.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\ndata-dir = \"data\"\n\
         admin-token-file = \"data/token\"\n[plugins]\ndirs = [\"plugins\"]\nsources = []\n",
    )
    .expect("config");
    Serving::start("serve", &file)
}

fn kill_9(server: &mut Serving) {
    let killed = Command::new("kill")
        .args(["-KILL", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = server.child.wait();
}

fn counter_value(agent: &ureq::Agent, url: &str, key: &str) -> u64 {
    let mut r = agent
        .post(format!("{url}/v1/plugins/counter/process?op=get&key={key}"))
        .send("")
        .expect("get");
    assert_eq!(r.status(), 200);
    let text = r.body_mut().read_to_string().expect("body");
    match text.as_str() {
        "<none>" => 0,
        n => n.parse().unwrap_or_else(|_| panic!("not a count: {text}")),
    }
}

#[test]
fn kill_9_during_key_value_writes_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = serve(tmp.path());
    let url = server.url.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Vec<Arc<AtomicU64>> = (0..4).map(|_| Arc::default()).collect();
    let clients: Vec<_> = acknowledged
        .iter()
        .enumerate()
        .map(|(i, acked)| {
            let (url, stop, acked) = (url.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let agent = agent();
                while !stop.load(Ordering::SeqCst) {
                    let sent = agent
                        .post(format!("{url}/v1/plugins/counter/process?op=incr&key=c{i}"))
                        .send("");
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        // The server is gone: what was not answered may or
                        // may not have been written.
                        _ => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    kill_9(&mut server);
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("client");
    }

    let server = serve(tmp.path());
    let agent = agent();
    let mut total = 0;
    for (i, acked) in acknowledged.iter().enumerate() {
        let acked = acked.load(Ordering::SeqCst);
        let stored = counter_value(&agent, &server.url, &format!("c{i}"));
        // At most the one increment in flight when the server died may have
        // been written without its answer arriving.
        assert!(
            stored == acked || stored == acked + 1,
            "client {i}: {acked} acknowledged, {stored} stored"
        );
        total += acked;
    }
    assert!(total > 100, "only {total} increments acknowledged");
}

#[test]
fn kill_9_during_deploys_leaves_a_state_that_was_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = serve(tmp.path());
    let token = std::fs::read_to_string(tmp.path().join("data/token"))
        .expect("token")
        .trim()
        .to_string();
    // Versions 0.1.1 .. 0.1.40 of counter, deployed one after another with a
    // canary share each, until the server is killed in the middle.
    let versions: Vec<PathBuf> = (1..=40)
        .map(|n| {
            let dir = tmp.path().join(format!("counter-0.1.{n}"));
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::copy(
                dist().join("counter/counter.wasm"),
                dir.join("counter.wasm"),
            )
            .expect("component");
            let manifest = std::fs::read_to_string(dist().join("counter/plugin.toml"))
                .expect("manifest")
                .replace("version = \"0.1.0\"", &format!("version = \"0.1.{n}\""));
            std::fs::write(dir.join("plugin.toml"), manifest).expect("manifest");
            dir
        })
        .collect();
    let url = server.url.clone();
    let last_acknowledged = Arc::new(AtomicU64::new(0));
    let deployer = {
        let last = last_acknowledged.clone();
        let admin = move |url: &str, path: &str, body: String| {
            agent()
                .post(format!("{url}/v1/admin/{path}"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .send(body)
        };
        std::thread::spawn(move || {
            for (n, dir) in versions.iter().enumerate() {
                let n = n as u64 + 1;
                let deployed = admin(&url, "deploy", format!("{{\"path\":{dir:?}}}"));
                if !matches!(deployed, Ok(ref r) if r.status() == 201) {
                    return;
                }
                let canary = admin(
                    &url,
                    "plugins/counter/canary",
                    format!("{{\"version\":\"0.1.{n}\",\"percent\":25}}"),
                );
                if !matches!(canary, Ok(ref r) if r.status() == 200) {
                    return;
                }
                last.store(n, Ordering::SeqCst);
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(800));
    kill_9(&mut server);
    deployer.join().expect("deployer");
    let acked = last_acknowledged.load(Ordering::SeqCst);
    assert!(acked > 0, "no deploy finished before the kill");

    let server = serve(tmp.path());
    let mut r = agent()
        .get(format!("{}/v1/plugins/counter", server.url))
        .call()
        .expect("deployment");
    assert_eq!(r.status(), 200);
    let deployment: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
    let text = deployment.to_string();
    let canary = find(&deployment, "canary").unwrap_or_else(|| panic!("no canary: {text}"));
    let canary_version = canary["version"].as_str().unwrap_or_default().to_string();
    // The canary after the restart is the last acknowledged one, or the
    // change in flight, whole: its version with its share.
    assert!(
        [format!("0.1.{acked}"), format!("0.1.{}", acked + 1)].contains(&canary_version),
        "canary {canary_version} after 0.1.{acked} was acknowledged: {text}"
    );
    assert_eq!(canary["percent"].as_f64(), Some(25.0), "{text}");
    let stable = find(&deployment, "stable").and_then(|v| v.as_str().map(str::to_string));
    assert_eq!(stable.as_deref(), Some("0.1.0"), "{text}");
    let newest = (1..=40u64)
        .filter(|n| text.contains(&format!("\"0.1.{n}\"")))
        .max()
        .unwrap_or(0);
    assert!(
        newest <= acked + 1,
        "0.1.{newest} was never deployed: {text}"
    );
}

/// The first value under `key` anywhere in `value`.
fn find<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map
            .get(key)
            .filter(|v| !v.is_null())
            .or_else(|| map.values().find_map(|v| find(v, key))),
        serde_json::Value::Array(items) => items.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}
