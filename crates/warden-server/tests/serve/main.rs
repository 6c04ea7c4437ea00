//! Serve mode over real HTTP on 127.0.0.1: every endpoint, every error
//! mapping, the admin API's token, the server's own limits, graceful
//! shutdown with calls in flight, and a reload through the admin API while
//! a client keeps calling.

use warden_testkit as common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use warden::{Limits, Warden};
use warden_server::{ServeSettings, Server};

const TOKEN: &str = "test-admin-token-0123456789";

/// A server on a free loopback port, running on a thread of its own.
struct TestServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<warden_server::Result<()>>>,
}

impl TestServer {
    fn start(host: Arc<Warden>, settings: ServeSettings) -> TestServer {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server = Server::bind(host, settings).await?;
                addr_tx.send(server.local_addr()?).expect("send address");
                server
                    .run(async move {
                        let _ = stopped.await;
                    })
                    .await
            })
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server started");
        TestServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and waits until it has shut everything down.
    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread").expect("server run");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shutdown();
        }
    }
}

fn settings() -> ServeSettings {
    ServeSettings {
        listen: "127.0.0.1:0".parse().expect("address"),
        ..ServeSettings::default()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Status, headers and body of a response.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The problem body of an error, checked to be one.
    fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let p = self.json();
        assert_eq!(p["type"], format!("urn:warden:problem:{code}"), "{p}");
        assert_eq!(p["status"], status);
        p
    }
}

fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut response = response.expect("HTTP exchange");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.body_mut().read_to_vec().expect("body"),
    }
}

fn post(url: &str, body: &str) -> Reply {
    reply(agent().post(url).send(body))
}

fn get(url: &str) -> Reply {
    reply(agent().get(url).call())
}

fn admin_post(url: &str, token: &str, body: Value) -> Reply {
    reply(
        agent()
            .post(url)
            .header("authorization", &format!("Bearer {token}"))
            .send_json(body),
    )
}

fn admin_get(url: &str) -> Reply {
    reply(
        agent()
            .get(url)
            .header("authorization", &format!("Bearer {TOKEN}"))
            .call(),
    )
}

/// Waits until `n` instances of misbehave are running a call (read from
/// `/metrics`), instead of guessing how long requests take to get there.
fn wait_busy(server: &TestServer, n: usize) {
    let line =
        format!("warden_plugin_instances_busy{{plugin=\"misbehave\",version=\"0.1.0\"}} {n}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !get(&server.url("/metrics"))
        .text()
        .lines()
        .any(|l| l == line)
    {
        assert!(std::time::Instant::now() < deadline, "never saw `{line}`");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// misbehave with `limits` (TOML lines of `[limits]`).
fn load_misbehave(host: &Warden, limits: &str) {
    let manifest = common::manifest_from(&format!(
        "name = \"misbehave\"\nversion = \"0.1.0\"\nworld = \"processor\"\n[config]\ngreeting = \"hello\"\n[limits]\n{limits}\n"
    ));
    host.load_bytes_blocking(manifest, common::wasm("misbehave"))
        .expect("load misbehave");
}

fn host_with(plugins: &[&str]) -> Arc<Warden> {
    let host = Warden::builder()
        .default_limits(Limits {
            max_wait: Duration::from_millis(200),
            ..Limits::default()
        })
        .build()
        .expect("host");
    for p in plugins {
        host.load_blocking(common::plugin_dir(p)).expect("load");
    }
    Arc::new(host)
}

#[test]
fn process_answers_with_the_output_and_its_headers() {
    let server = TestServer::start(host_with(&["text-transform", "json-transform"]), settings());
    let r = reply(
        agent()
            .post(&server.url("/v1/plugins/text-transform/process?op=upper"))
            .header("x-request-id", "req-abc-123")
            .header("content-type", "text/plain")
            .send("hello warden"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "HELLO WARDEN");
    assert_eq!(r.header("x-warden-version").as_deref(), Some("0.1.0"));
    assert_eq!(r.header("x-warden-items").as_deref(), Some("12"));
    assert_eq!(r.header("x-request-id").as_deref(), Some("req-abc-123"));
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    let ms: f64 = r
        .header("x-warden-duration-ms")
        .and_then(|v| v.parse().ok())
        .expect("duration header");
    assert!(ms > 0.0 && ms < 5000.0, "{ms}");
    // Without a request id the server makes one up.
    let r = post(
        &server.url("/v1/plugins/text-transform/process?op=lower"),
        "ABC",
    );
    assert_eq!(r.text(), "abc");
    assert_eq!(r.header("x-request-id").map(|id| id.len()), Some(32));
    // A versioned target, and the content type going through.
    let r = reply(
        agent()
            .post(&server.url("/v1/plugins/json-transform@%5E0.1/process?op=pretty"))
            .header("content-type", "application/json")
            .send("{\"a\":1}"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"a": 1}));

    let r = post(&server.url("/v1/plugins/text-transform/validate"), "fine");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"valid": true, "version": "0.1.0"}));
    let r = reply(
        agent()
            .post(&server.url("/v1/plugins/text-transform/validate"))
            .send(&[0xff_u8, 0xfe][..]),
    );
    assert_eq!(r.json()["valid"], false);
}

#[test]
fn every_error_maps_to_its_status() {
    let host = host_with(&["text-transform"]);
    load_misbehave(
        &host,
        "timeout-ms = 1000\nmax-instances = 1\nmax-input-bytes = 64",
    );
    let server = TestServer::start(
        host,
        ServeSettings {
            max_body_bytes: 4096,
            max_header_bytes: 2048,
            ..settings()
        },
    );
    let call = |query: &str, body: &str| post(&server.url(&format!("/v1/plugins/{query}")), body);

    let p = call("text-transform/process?op=shout", "x").problem(422, "plugin-error");
    assert_eq!(p["plugin"], "text-transform");
    assert_eq!(p["error"], "unsupported");
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("shout"),
        "{p}"
    );

    let p = call("nope/process", "x").problem(404, "plugin-not-found");
    assert!(
        p["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("text-transform"),
        "{p}"
    );

    let p = call("misbehave/process?op=panic", "x").problem(500, "plugin-trap");
    assert_eq!(p["trap"], "guest-panic");

    let p = call("misbehave/process?op=loop", "x").problem(504, "plugin-timeout");
    assert_eq!(p["trap"], "timeout");

    // The plugin's own input limit, then the server's body limit.
    let p = call("misbehave/process?op=echo", &"x".repeat(100)).problem(413, "input-too-large");
    assert_eq!(p["plugin"], "misbehave");
    call("misbehave/process?op=echo", &"x".repeat(5000)).problem(413, "body-too-large");

    // Oversized headers.
    let r = reply(
        agent()
            .post(&server.url("/v1/plugins/text-transform/process?op=upper"))
            .header("x-padding", &"p".repeat(3000))
            .send("x"),
    );
    r.problem(431, "headers-too-large");

    // Busy: the only instance is held by a slow call.
    std::thread::scope(|s| {
        let slow = s.spawn(|| call("misbehave/process?op=sleep&ms=700", "x"));
        wait_busy(&server, 1);
        let busy = call("misbehave/process?op=echo", "x");
        let p = busy.problem(503, "plugin-busy");
        assert_eq!(busy.header("retry-after").as_deref(), Some("1"));
        assert_eq!(p["retry_after"], 1);
        assert_eq!(slow.join().expect("slow call").status, 200);
    });

    // An unknown route is a problem too.
    get(&server.url("/v2/nothing")).problem(404, "no-such-route");
}

#[test]
fn the_server_queue_and_deadline_hold() {
    let host = host_with(&[]);
    load_misbehave(&host, "timeout-ms = 5000\nmax-instances = 4");
    let server = TestServer::start(
        host,
        ServeSettings {
            max_concurrency: 1,
            max_queue: 0,
            request_timeout: Duration::from_millis(400),
            ..settings()
        },
    );
    let url = |q: &str| server.url(&format!("/v1/plugins/misbehave/process?{q}"));
    std::thread::scope(|s| {
        let slow = s.spawn(|| post(&url("op=sleep&ms=250"), "x"));
        wait_busy(&server, 1);
        let refused = post(&url("op=echo"), "x");
        refused.problem(503, "server-busy");
        assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
        assert_eq!(slow.join().expect("slow").status, 200);
    });
    // Probes are not queued behind the API.
    assert_eq!(get(&server.url("/healthz")).status, 200);
    post(&url("op=sleep&ms=1500"), "x").problem(504, "request-timeout");
}

#[test]
fn events_batches_and_descriptions() {
    let server = TestServer::start(
        host_with(&["text-transform", "text-stats", "audit-logger"]),
        settings(),
    );
    // Delivered and answered, then queued.
    let r = reply(
        agent()
            .post(&server.url("/v1/events?wait=true"))
            .send_json(json!({"type": "order.created", "payload": {"id": 7}})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"delivered": {"audit-logger": "ok"}}));
    let r = reply(
        agent()
            .post(&server.url("/v1/events"))
            .send_json(json!({"type": "user.created", "payload": "ada"})),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["queued"], 1);
    let r = reply(
        agent()
            .post(&server.url("/v1/events"))
            .send_json(json!({"type": "", "payload": 1})),
    );
    r.problem(400, "bad-event");

    // A batch: results in order, one failure does not fail the others.
    let r = reply(
        agent()
            .post(&server.url("/v1/batch"))
            .header("x-request-id", "batch-1")
            .send_json(json!({"calls": [
                {"plugin": "text-transform", "input": "one", "options": {"op": "upper"}},
                {"plugin": "text-transform", "input": "two", "options": {"op": "shout"}},
                {"plugin": "missing", "input": "three"},
                {"plugin": "text-stats", "input_base64": "YSBiIGE=", "options": {"top": "1"}},
                {"plugin": "text-transform", "input_base64": "!!", "options": {"op": "upper"}},
            ]})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let results = r.json()["results"].as_array().expect("results").clone();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, [200, 422, 404, 200, 400]);
    assert_eq!(results[0]["output"], "ONE");
    assert_eq!(results[1]["error"]["error"], "unsupported");
    let stats: Value =
        serde_json::from_str(results[3]["output"].as_str().expect("text")).expect("json");
    assert_eq!(
        stats["call_id"], "batch-1.3",
        "the call id is the request id and index"
    );
    assert_eq!(stats["stats"]["top"], json!([["a", 2]]));

    let too_many: Vec<Value> = (0..300)
        .map(|_| json!({"plugin": "text-transform"}))
        .collect();
    let r = reply(
        agent()
            .post(&server.url("/v1/batch"))
            .send_json(json!({"calls": too_many})),
    );
    r.problem(413, "batch-too-large");

    // Descriptions.
    let list = get(&server.url("/v1/plugins")).json();
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["audit-logger", "text-stats", "text-transform"]);
    let stats = get(&server.url("/v1/plugins/text-stats")).json();
    assert_eq!(stats["deployment"]["stable"], "0.1.0");
    assert_eq!(stats["versions"][0]["contract"], "0.2.0");
    assert_eq!(stats["options"][0]["name"], "top");
    assert!(stats["deployment"]["versions"][0]["metrics"]["calls"].as_u64() >= Some(1));
    // Where the plugin lives on the host is not the public's to know.
    let described = stats.to_string();
    let root = warden_testkit::repo();
    for root in [root.clone(), root.canonicalize().expect("repo")] {
        let root = root.display().to_string();
        assert!(!described.contains(&root), "{root} in {described}");
    }
    get(&server.url("/v1/plugins/nope")).problem(404, "plugin-not-found");
}

#[test]
fn metrics_probes_and_the_api_document() {
    let server = TestServer::start(host_with(&["text-transform"]), settings());
    for _ in 0..3 {
        post(
            &server.url("/v1/plugins/text-transform/process?op=upper"),
            "x",
        );
    }
    post(
        &server.url("/v1/plugins/text-transform/process?op=shout"),
        "x",
    );
    let r = get(&server.url("/metrics"));
    assert_eq!(r.status, 200);
    let text = r.text();
    for line in [
        "warden_plugin_calls_total{plugin=\"text-transform\",version=\"0.1.0\"} 4",
        "warden_plugin_errors_total{plugin=\"text-transform\",version=\"0.1.0\",kind=\"plugin\"} 1",
        "warden_plugin_call_duration_seconds_count{plugin=\"text-transform\",version=\"0.1.0\"} 4",
        "warden_http_requests_total{method=\"POST\",route=\"/v1/plugins/{name}/process\",status=\"200\"} 3",
        "warden_http_requests_total{method=\"POST\",route=\"/v1/plugins/{name}/process\",status=\"422\"} 1",
        "warden_plugin_up{plugin=\"text-transform\",version=\"0.1.0\",state=\"ready\",role=\"stable\"} 1",
        "warden_plugin_canary_share_ratio{plugin=\"text-transform\"} 0.0",
        "warden_plugin_capability_calls_total{plugin=\"text-transform\",version=\"0.1.0\",capability=\"logging\"} 4",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert_eq!(get(&server.url("/healthz")).json(), json!({"status": "ok"}));
    assert_eq!(
        get(&server.url("/readyz")).json()["plugins"],
        json!(["text-transform"])
    );

    let doc = get(&server.url("/v1/openapi.json")).json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        "/v1/plugins/{name}/process",
        "/v1/batch",
        "/v1/events",
        "/metrics",
        "/readyz",
    ] {
        assert!(paths.contains(&path), "{path} in {paths:?}");
    }
    assert!(
        !paths.iter().any(|p| p.starts_with("/v1/admin")),
        "no admin API without a token"
    );
    // Without a token the admin API does not exist.
    get(&server.url("/v1/admin/audit")).problem(404, "no-such-route");

    let empty = TestServer::start(host_with(&[]), settings());
    get(&empty.url("/readyz")).problem(503, "no-plugins");
}

mod admin;
