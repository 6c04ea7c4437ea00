//! Crash safety of a serving host: `kill -9` in the middle of key-value
//! writes, and in the middle of deploys and canary changes. After a restart
//! on the same data directory nothing acknowledged is lost, and the
//! deployment state is one that was acknowledged or the one after it, never
//! a mix. And a full disk under the data directory: writes fail with a
//! clear error, nothing stored is lost, and the server keeps serving.

use super::*;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A `warden serve` of the counter example with its data in `tmp/data`.
fn serve(tmp: &Path) -> Serving {
    serve_examples(tmp, &["counter"])
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

/// A small tmpfs mounted at a directory for as long as it lives: a disk
/// that fills up.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts `bytes` of tmpfs at `dir`. Where this process may not mount
    /// (only root with `CAP_SYS_ADMIN` may), `None`, saying so; with
    /// `WARDEN_TEST_REQUIRE_MOUNT=1` (as CI sets) that is a failure instead.
    fn mount(dir: &Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output();
        let why = match mounted {
            Ok(out) if out.status.success() => return Some(SmallDisk(dir.to_path_buf())),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => format!("cannot run mount: {e}"),
        };
        let required = std::env::var("WARDEN_TEST_REQUIRE_MOUNT").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "a small disk is required but cannot be mounted: {why}"
        );
        eprintln!("skipped: cannot mount a small disk ({why}); CI runs this test as root");
        None
    }

    /// Writes a file that takes every byte left; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        // What is left is smaller than a chunk: take it a byte at a time.
        while file.write_all(&[0]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg("-l").arg(&self.0).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            eprintln!("could not unmount the small disk at {}", self.0.display());
        }
    }
}

fn post(agent: &ureq::Agent, url: &str, body: &str) -> (u16, String) {
    let mut r = agent.post(url).send(body).expect("request");
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), text)
}

#[test]
fn a_full_disk_fails_writes_clearly_and_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(disk) = SmallDisk::mount(&tmp.path().join("data"), 16 << 20) else {
        return;
    };
    let mut server = serve_examples(tmp.path(), &["counter", "text-transform"]);
    let agent = agent();
    let incr = format!("{}/v1/plugins/counter/process?op=incr&key=k", server.url);
    let upper = format!("{}/v1/plugins/text-transform/process?op=upper", server.url);
    let mut acked = 0;
    for _ in 0..20 {
        assert_eq!(post(&agent, &incr, "").0, 200);
        acked += 1;
    }

    let filler = disk.fill();
    // SQLite may still have room in pages it holds; the disk refuses a
    // write within a few hundred.
    let mut refusal = None;
    for _ in 0..500 {
        match post(&agent, &incr, "") {
            (200, _) => acked += 1,
            failed => {
                refusal = Some(failed);
                break;
            }
        }
    }
    let (status, text) = refusal.expect("a write on a full disk was refused");
    assert!(
        status >= 400 && text.contains("the host's disk is full"),
        "{status}: {text}"
    );
    assert!(
        !text.contains(&tmp.path().display().to_string()),
        "a host path reached the client: {text}"
    );
    // The server keeps serving: reads, plugins that do not write, health.
    assert_eq!(
        counter_value(&agent, &server.url, "k"),
        acked,
        "what was stored before the disk filled"
    );
    assert_eq!(
        post(&agent, &upper, "still here"),
        (200, "STILL HERE".into())
    );
    let health = agent
        .get(format!("{}/healthz", server.url))
        .call()
        .expect("health");
    assert_eq!(health.status(), 200);

    // Space again: writes resume without a restart.
    std::fs::remove_file(filler).expect("free the disk");
    assert_eq!(post(&agent, &incr, ""), (200, (acked + 1).to_string()));
    acked += 1;

    kill_9(&mut server);
    let server = serve_examples(tmp.path(), &["counter", "text-transform"]);
    assert_eq!(counter_value(&agent, &server.url, "k"), acked);
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
