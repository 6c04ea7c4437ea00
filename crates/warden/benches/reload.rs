//! Reload under load, as a script: four threads call text-transform while
//! its files are replaced 20 times (alternating good builds and broken
//! ones) through the directory watcher, then 20 more times through
//! `Warden::reload`. Prints the calls made and failed, throughput during
//! the reloads against a quiet second before, and the time from file write
//! to the new version serving.
//!
//! `cargo bench -p warden --bench reload`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use warden::{ProcessRequest, Reloaded, Warden};

const NAME: &str = "text-transform";

fn built_plugin(root: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = repo.join("target/bench-plugins");
    let built = warden_build::build_plugin(&repo.join("plugins/text-transform"), &out)
        .expect("build text-transform");
    let dir = root.join("plugins").join(NAME);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(&built.component, dir.join("text-transform.wasm")).expect("wasm");
    std::fs::copy(out.join(NAME).join("plugin.toml"), dir.join("plugin.toml")).expect("manifest");
    dir
}

/// Writes `bytes` to `path` the way a deploy should: a temporary file, renamed.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn serving(host: &Warden) -> String {
    host.get(NAME)
        .map(|p| p.info().version.to_string())
        .unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() {
    // `cargo bench` passes harness flags such as `--bench`; nothing to parse.
    let root = tempfile::tempdir().expect("tmp");
    let dir = built_plugin(root.path());
    let wasm = std::fs::read(dir.join("text-transform.wasm")).expect("wasm");
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("manifest");
    let host = Arc::new(Warden::new().expect("host"));
    host.load_blocking(&dir).expect("load");
    let watcher = host
        .watch(root.path().join("plugins"), Duration::from_millis(50))
        .expect("watch");

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (host, stop, calls, failures) =
                (host.clone(), stop.clone(), calls.clone(), failures.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let request = ProcessRequest::new("hello").option("op", "upper");
                    match host.process_blocking(NAME, request) {
                        Ok(r) if r.output == b"HELLO" => {}
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let quiet_from = calls.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    let quiet_rate = (calls.load(Ordering::Relaxed) - quiet_from) as f64;

    let busy_from = (Instant::now(), calls.load(Ordering::Relaxed));
    let mut write_to_serving = Vec::new();
    let mut version = 0;
    for i in 0..20 {
        if i % 2 == 1 {
            replace(&dir.join("text-transform.wasm"), &wasm[..wasm.len() / 2]);
            std::thread::sleep(Duration::from_millis(150));
            continue;
        }
        version += 1;
        let next = format!("0.2.{version}");
        replace(&dir.join("text-transform.wasm"), &wasm);
        let written = Instant::now();
        replace(
            &dir.join("plugin.toml"),
            manifest
                .replace("version = \"0.1.0\"", &format!("version = \"{next}\""))
                .as_bytes(),
        );
        while serving(&host) != next {
            assert!(
                written.elapsed() < Duration::from_secs(10),
                "the watcher never reloaded {next}"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        write_to_serving.push(written.elapsed());
    }
    drop(watcher);

    let mut api_serving = Vec::new();
    for i in 0..20 {
        if i % 2 == 1 {
            replace(&dir.join("text-transform.wasm"), &wasm[..wasm.len() / 2]);
            assert!(
                host.reload_blocking(NAME).is_err(),
                "a broken build was accepted"
            );
            continue;
        }
        version += 1;
        replace(&dir.join("text-transform.wasm"), &wasm);
        replace(
            &dir.join("plugin.toml"),
            manifest
                .replace(
                    "version = \"0.1.0\"",
                    &format!("version = \"0.2.{version}\""),
                )
                .as_bytes(),
        );
        match host.reload_blocking(NAME).expect("reload") {
            Reloaded::Replaced { serving_after, .. } => api_serving.push(serving_after),
            Reloaded::Unchanged => panic!("a changed build was not reloaded"),
        }
    }
    let (busy_start, busy_calls) = busy_from;
    let busy_rate =
        (calls.load(Ordering::Relaxed) - busy_calls) as f64 / busy_start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("caller");
    }

    write_to_serving.sort();
    api_serving.sort();
    println!("reload under load (4 calling threads, text-transform, 64-byte calls)");
    println!("  calls made            {}", calls.load(Ordering::Relaxed));
    println!(
        "  calls failed          {}",
        failures.load(Ordering::Relaxed)
    );
    println!("  calls/s quiet         {quiet_rate:.0}");
    println!(
        "  calls/s while reloading {busy_rate:.0} ({:.2} of quiet)",
        busy_rate / quiet_rate
    );
    println!(
        "  file write -> serving (watcher, 50 ms debounce): median {:?}, p90 {:?}, max {:?}",
        percentile(&write_to_serving, 0.5),
        percentile(&write_to_serving, 0.9),
        percentile(&write_to_serving, 1.0)
    );
    println!(
        "  reload() start -> serving: median {:?}, p90 {:?}, max {:?}",
        percentile(&api_serving, 0.5),
        percentile(&api_serving, 0.9),
        percentile(&api_serving, 1.0)
    );
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "calls failed during reloads"
    );
}
