//! A real `warden serve` on 127.0.0.1 under the attacks an HTTP client
//! without the admin token can make, each bounded in count and time:
//! slowloris, many connections, a slow body, huge headers, 200,000 option
//! keys, huge batches and batch outputs. Throughout, `/healthz` answers
//! within a second; afterwards the server exits within 5 s of SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Serving, repo};

/// Limits small enough for the attacks to pass them quickly.
const CONFIG: &str = r#"[server]
listen = "127.0.0.1:0"
data-dir = "data"
max-connections = 64
header-read-timeout-ms = 1500
idle-timeout-ms = 3000
body-read-timeout-ms = 1500
max-body-bytes = 4194304
max-batch = 64
max-options = 256
max-batch-output-bytes = 1048576
shutdown-grace-ms = 3000

[plugins]
sources = []
dirs = ["dist"]
"#;

fn start(dir: &Path) -> Serving {
    let built = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["build", "plugins/text-transform", "--out"])
        .arg(dir.join("dist"))
        .current_dir(repo())
        .env(
            "WARDEN_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .output()
        .expect("warden build");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let file = dir.join("warden.toml");
    std::fs::write(&file, CONFIG).expect("config");
    Serving::start("serve", &file)
}

fn address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().expect("address")
}

/// Polls `/healthz` every 100 ms on a connection of its own each time, until
/// dropped; keeps the slowest answer and counts failures.
struct Health {
    stop: Arc<AtomicBool>,
    slowest_ms: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Health {
    fn watch(addr: SocketAddr) -> Health {
        let stop = Arc::new(AtomicBool::new(false));
        let slowest_ms = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (s, slow, fail) = (stop.clone(), slowest_ms.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let started = Instant::now();
                match get(addr, "/healthz", Duration::from_secs(1)) {
                    Some(status) if status.starts_with("HTTP/1.1 200") => {}
                    _ => {
                        fail.fetch_add(1, Ordering::Relaxed);
                    }
                }
                slow.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Health {
            stop,
            slowest_ms,
            failed,
            thread: Some(thread),
        }
    }

    /// Stops watching; the slowest answer in ms and the failures.
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("health thread");
        }
        (
            self.slowest_ms.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// One request on a fresh connection; the status line, or `None` when no
/// answer came within `timeout`.
fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Option<String> {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        timeout,
    )
}

fn request(addr: SocketAddr, raw: &str, timeout: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream.write_all(raw.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    (!text.is_empty()).then_some(text)
}

/// A POST of `body` (JSON) to `path`; the whole answer.
fn post(addr: SocketAddr, path: &str, body: &str) -> String {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    request(addr, &raw, Duration::from_secs(10)).unwrap_or_default()
}

/// Whether the server closed `stream` (a read ends) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let until = Instant::now() + within;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn the_server_stays_up_and_stops_under_http_attacks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut server = start(tmp.path());
    let addr = address(&server.url);
    let health = Health::watch(addr);

    // Slowloris: 40 connections sending their headers a byte at a time.
    let mut slow: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    for s in &mut slow {
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ");
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1200) {
        for s in &mut slow {
            let _ = s.write_all(b"a");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let closed = slow
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_secs(3)))
        .filter(|closed| *closed)
        .count();
    assert_eq!(closed, slow.len(), "slowloris connections held open");

    // Many connections: twice the server's limit, opened and left idle.
    let idle: Vec<TcpStream> = (0..128)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let answer = get(addr, "/healthz", Duration::from_secs(1)).unwrap_or_default();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a client with a request is served: {answer}"
    );
    drop(idle);

    // A slow body is refused before it holds a slot; a huge declared one at once.
    let mut body = TcpStream::connect(addr).expect("connect");
    body.write_all(
        b"POST /v1/plugins/text-transform/process?op=upper HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nab",
    )
    .expect("head");
    let mut answer = String::new();
    body.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = body.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let huge = request(
        addr,
        "POST /v1/batch HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n",
        Duration::from_secs(2),
    )
    .unwrap_or_default();
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");

    // Huge headers: 431, or the connection closed.
    let header = format!(
        "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(200_000)
    );
    let answer = request(addr, &header, Duration::from_secs(2)).unwrap_or_default();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );

    // 200,000 option keys in one batch call: refused by count, at once.
    let options: Vec<String> = (0..200_000).map(|i| format!("\"k{i}\":\"v\"")).collect();
    let batch = format!(
        "{{\"calls\":[{{\"plugin\":\"text-transform\",\"input\":\"x\",\"options\":{{{}}}}}]}}",
        options.join(",")
    );
    let started = Instant::now();
    let answer = post(addr, "/v1/batch", &batch);
    assert!(
        answer.contains("too-many-options"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let query: Vec<String> = (0..2000).map(|i| format!("k{i}=v")).collect();
    let answer = post(
        addr,
        &format!("/v1/plugins/text-transform/process?{}", query.join("&")),
        "",
    );
    assert!(
        answer.contains("too-many-options"),
        "{}",
        &answer[..answer.len().min(300)]
    );

    // A batch of 10,000 calls, and one whose outputs pass the output cap.
    let calls = vec!["{\"plugin\":\"text-transform\",\"input\":\"x\"}"; 10_000];
    let answer = post(
        addr,
        "/v1/batch",
        &format!("{{\"calls\":[{}]}}", calls.join(",")),
    );
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    let big = format!(
        "{{\"plugin\":\"text-transform\",\"input\":\"{}\",\"options\":{{\"op\":\"upper\"}}}}",
        "y".repeat(200_000)
    );
    let answer = post(
        addr,
        "/v1/batch",
        &format!("{{\"calls\":[{}]}}", vec![big; 8].join(",")),
    );
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(300)]
    );
    assert!(
        answer.contains("batch-output-too-large"),
        "the output cap held"
    );
    // 200,000 control characters are 200 KB of output and 1.2 MB as sent
    // (each one escaped as `\u0001`): the cap counts what is sent.
    let escaped = format!(
        "{{\"calls\":[{{\"plugin\":\"text-transform\",\"input\":\"{}\",\"options\":{{\"op\":\"upper\"}}}}]}}",
        "\\u0001".repeat(200_000)
    );
    let answer = post(addr, "/v1/batch", &escaped);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("batch-output-too-large"),
        "the cap counts escapes: {}",
        &answer[..answer.len().min(300)]
    );

    let (slowest, failed) = health.finish();
    eprintln!("/healthz during the attacks: slowest {slowest} ms, {failed} failed");
    assert_eq!(failed, 0, "/healthz failed {failed} times");
    assert!(slowest < 1000, "/healthz took {slowest} ms");

    let stopping = Instant::now();
    let status = server.terminate();
    let took = stopping.elapsed();
    eprintln!("exit after SIGTERM: {} ms", took.as_millis());
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(5),
        "the server took {took:?} to exit"
    );
}
