//! Outbound HTTP (`wasi:http`) end to end through the `url-fetcher` plugin
//! against a real HTTP server on 127.0.0.1 started by the test: allowed
//! origins work, every other origin (directly or through a redirect) is
//! denied before a connection is made and audited, and the response size
//! cap and timeouts hold; a call cut short closes its connection at once.
//! Against a keep-alive server: a plugin's requests share one connection,
//! which no other plugin uses, which a cut-off response does not leave
//! open, which is replaced when the server closed it while idle, and which
//! closes once idle for the pool's time; a build keeps no more idle
//! connections than its share.

use warden_testkit as common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use warden::{AuditKind, Error, Grants, HttpLimits, PluginError, ProcessRequest, TrapKind, Warden};

/// A small HTTP/1.1 server on 127.0.0.1 that counts the requests it serves.
struct Server {
    port: u16,
    requests: Arc<AtomicUsize>,
}

const BIG: usize = 2 << 20;

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counted = counted.clone();
                std::thread::spawn(move || serve(stream, port, &counted));
            }
        });
        Server { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn served(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads one request's head (the requests have no body) and gives its
/// path; `None` when the peer closed the connection first.
fn read_head(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
        return None;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return None,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    Some(line.split_whitespace().nth(1).unwrap_or("/").to_string())
}

fn serve(stream: TcpStream, port: u16, requests: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let Some(path) = read_head(&mut reader) else {
        return;
    };
    requests.fetch_add(1, Ordering::SeqCst);
    let mut out = stream;
    let head = |status: &str, extra: &str| {
        format!("HTTP/1.1 {status}\r\nconnection: close\r\n{extra}\r\n")
    };
    let reply = match path.as_str() {
        "/hello" => {
            let body = "hello from loopback";
            format!(
                "{}{body}",
                head(
                    "200 OK",
                    &format!(
                        "content-type: text/plain\r\ncontent-length: {}\r\n",
                        body.len()
                    )
                )
            )
        }
        "/redirect-in" => head("302 Found", "location: /hello\r\ncontent-length: 0\r\n"),
        "/redirect-out" => head(
            "302 Found",
            &format!("location: http://localhost:{port}/hello\r\ncontent-length: 0\r\n"),
        ),
        "/big" => {
            let _ = out.write_all(head("200 OK", &format!("content-length: {BIG}\r\n")).as_bytes());
            let _ = out.write_all(&vec![b'x'; BIG]);
            return;
        }
        "/big-chunked" => {
            let _ = out.write_all(head("200 OK", "transfer-encoding: chunked\r\n").as_bytes());
            let chunk = vec![b'y'; 64 * 1024];
            for _ in 0..(BIG / chunk.len()) {
                let _ = out.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
                let _ = out.write_all(&chunk);
                if out.write_all(b"\r\n").is_err() {
                    return;
                }
            }
            let _ = out.write_all(b"0\r\n\r\n");
            return;
        }
        "/slow" => {
            std::thread::sleep(Duration::from_secs(10));
            head("200 OK", "content-length: 0\r\n")
        }
        _ => head("404 Not Found", "content-length: 0\r\n"),
    };
    let _ = out.write_all(reply.as_bytes());
}

/// A host granting `origins`, with `limits`.
fn host(origins: &[String], limits: HttpLimits) -> Warden {
    let mut grants = Grants::new();
    for origin in origins {
        grants = grants.grant(&format!("http:{origin}")).expect("grant");
    }
    Warden::builder()
        .grants(grants)
        .http_limits(limits)
        .build()
        .expect("host")
}

/// url-fetcher loaded as `name`, asking for `origins`.
fn fetcher(host: &Warden, name: &str, origins: &[String]) -> warden::Plugin {
    fetcher_with(host, name, origins, "")
}

/// url-fetcher loaded as `name`, asking for `origins`, its manifest ending
/// with `more`.
fn fetcher_with(host: &Warden, name: &str, origins: &[String], more: &str) -> warden::Plugin {
    let list: Vec<String> = origins.iter().map(|o| format!("\"{o}\"")).collect();
    let text = format!(
        "name = \"{name}\"\nversion = \"0.1.0\"\nworld = \"processor\"\n\
         [permissions]\nhttp = [{}]\n{more}",
        list.join(", ")
    );
    host.load_bytes_blocking(common::manifest_from(&text), common::wasm("url-fetcher"))
        .expect("load url-fetcher")
}

fn fetch(plugin: &warden::Plugin, url: &str) -> warden::Result<warden::ProcessResponse> {
    plugin.process_blocking(ProcessRequest::new(url))
}

fn plugin_message(result: warden::Result<warden::ProcessResponse>) -> String {
    match result {
        Err(Error::Plugin { error, .. }) => match error {
            PluginError::Unsupported(m)
            | PluginError::Internal(m)
            | PluginError::InvalidInput(m) => m,
        },
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

fn audited(host: &Warden, plugin: &str, kind: AuditKind) -> Vec<String> {
    common::audited(host, Some(plugin), kind)
        .into_iter()
        .map(|e| e.resource)
        .collect()
}

#[test]
fn allowed_origin_is_fetched_and_others_are_denied_and_audited() {
    let server = Server::start();
    let host = host(&[server.origin()], HttpLimits::default());
    let plugin = fetcher(&host, "url-fetcher", &[server.origin()]);

    let response = fetch(&plugin, &server.url("/hello")).expect("allowed fetch");
    assert_eq!(response.output, b"hello from loopback");
    assert_eq!(response.content_type, "text/plain");
    assert_eq!(server.served(), 1);
    let calls = plugin.metrics().capability_calls;
    assert!(
        calls.get("http").is_some_and(|n| *n >= 5),
        "the request, its headers, body and response are wasi:http calls: {calls:?}"
    );

    // Same server, another name: a different origin, refused before connecting.
    let other = format!("http://localhost:{}/hello", server.port);
    let message = plugin_message(fetch(&plugin, &other));
    assert!(message.contains("denied"), "{message}");
    assert_eq!(
        server.served(),
        1,
        "a denied request never reaches the network"
    );
    assert_eq!(
        audited(&host, "url-fetcher", AuditKind::HttpDenied),
        [format!("http://localhost:{}", server.port)]
    );
}

#[test]
fn a_plugin_without_the_permission_reaches_nothing() {
    let server = Server::start();
    // The origin is granted to the host, but this plugin never asked for it.
    let host = host(&[server.origin()], HttpLimits::default());
    let asked = fetcher(&host, "asked", &[server.origin()]);
    let silent = fetcher(&host, "silent", &[]);
    assert!(fetch(&asked, &server.url("/hello")).is_ok());
    // Without the permission there is no wasi:http at all: the first call
    // into it (making a header map) traps, naming what is missing.
    match fetch(&silent, &server.url("/hello")) {
        Err(Error::Trap {
            kind: TrapKind::NotGranted,
            message,
            ..
        }) => assert!(
            message.starts_with("plugin `silent` called `wasi:http/")
                && message.contains("has no `http` permission"),
            "{message}"
        ),
        other => panic!("expected a not-granted trap, got {other:?}"),
    }
    assert_eq!(server.served(), 1);
    assert_eq!(audited(&host, "silent", AuditKind::NotGranted).len(), 1);
    assert!(audited(&host, "asked", AuditKind::HttpDenied).is_empty());
}

/// A granted origin named by host name whose name resolves to loopback is
/// refused before a connection is made (DNS cannot point a granted name at
/// the host's own services); the same server granted by address is reached.
#[test]
fn a_granted_name_never_reaches_an_internal_address() {
    let server = Server::start();
    let by_name = format!("http://localhost:{}", server.port);
    let host = host(&[by_name.clone(), server.origin()], HttpLimits::default());
    let named = fetcher(&host, "named", std::slice::from_ref(&by_name));
    let message = plugin_message(fetch(&named, &format!("{by_name}/hello")));
    assert!(message.contains("denied"), "{message}");
    assert_eq!(server.served(), 0, "no request may reach the server");
    let denied = audited(&host, "named", AuditKind::HttpDenied);
    assert_eq!(denied.len(), 1, "{denied:?}");
    let entry = &common::audited(&host, Some("named"), AuditKind::HttpDenied)[0];
    assert!(entry.action.contains("internal addresses"), "{entry:?}");
    let addressed = fetcher(&host, "addressed", &[server.origin()]);
    let ok = fetch(&addressed, &server.url("/hello")).expect("granted by address");
    assert_eq!(ok.output, b"hello from loopback");
}

#[test]
fn redirects_are_checked_hop_by_hop() {
    let server = Server::start();
    let host = host(&[server.origin()], HttpLimits::default());
    let plugin = fetcher(&host, "url-fetcher", &[server.origin()]);

    let response = fetch(&plugin, &server.url("/redirect-in")).expect("same-origin redirect");
    assert_eq!(response.output, b"hello from loopback");
    assert_eq!(server.served(), 2);

    let message = plugin_message(fetch(&plugin, &server.url("/redirect-out")));
    assert!(message.contains("denied"), "{message}");
    assert_eq!(
        server.served(),
        3,
        "the redirect target was never requested"
    );
    assert_eq!(
        audited(&host, "url-fetcher", AuditKind::HttpDenied),
        [format!("http://localhost:{}", server.port)]
    );
}

#[test]
fn oversized_responses_are_cut_off() {
    let server = Server::start();
    let limits = HttpLimits {
        max_response_bytes: 1 << 20,
        ..HttpLimits::default()
    };
    let host = host(&[server.origin()], limits);
    let plugin = fetcher(&host, "url-fetcher", &[server.origin()]);
    for path in ["/big", "/big-chunked"] {
        let message = plugin_message(fetch(&plugin, &server.url(path)));
        assert!(message.contains("exceeds"), "{path}: {message}");
    }
    assert_eq!(
        audited(&host, "url-fetcher", AuditKind::HttpResponseLimit).len(),
        2
    );
    // The plugin keeps working after refused responses.
    assert!(fetch(&plugin, &server.url("/hello")).is_ok());
}

#[test]
fn a_silent_server_hits_the_first_byte_timeout() {
    let server = Server::start();
    let limits = HttpLimits {
        first_byte_timeout: Duration::from_millis(300),
        ..HttpLimits::default()
    };
    let host = host(&[server.origin()], limits);
    let plugin = fetcher(&host, "url-fetcher", &[server.origin()]);
    let started = Instant::now();
    let message = plugin_message(fetch(&plugin, &server.url("/slow")));
    assert!(message.contains("Timeout"), "{message}");
    // The server answers after 10 s; the host gave up long before.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_call_cut_short_closes_its_outbound_connection() {
    // A server that takes the request and never answers, and reports when
    // the host closes the connection.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let origin = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let (closed, closing) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut &stream, &mut rest);
        let _ = closed.send(Instant::now());
    });
    let host = host(std::slice::from_ref(&origin), HttpLimits::default());
    let text = format!(
        "name = \"fetch-briefly\"\nversion = \"0.1.0\"\nworld = \"processor\"\n\
         [permissions]\nhttp = [\"{origin}\"]\n[limits]\ntimeout-ms = 500\n"
    );
    let plugin = host
        .load_bytes_blocking(common::manifest_from(&text), common::wasm("url-fetcher"))
        .expect("load");
    assert!(fetch(&plugin, &format!("{origin}/never")).is_err());
    let cut = Instant::now();
    // The first-byte timeout is 30 s: only dropping the request with the
    // instance whose call was cut short closes the connection this soon.
    let closed_at = closing
        .recv_timeout(Duration::from_secs(5))
        .expect("the host closed the connection of the cut call");
    assert!(closed_at.duration_since(cut) < Duration::from_secs(5));
}

/// A keep-alive HTTP/1.1 server on 127.0.0.1: answers `/hello` (19 bytes),
/// `/together/N` (the same, once N such requests have arrived) and
/// `/big-chunked` (2 MiB, chunked) on each connection until the client closes it or
/// `per_connection` requests were served, and records each connection and
/// when it closed.
struct KeepAlive {
    origin: String,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    closed: std::sync::mpsc::Receiver<Instant>,
}

impl KeepAlive {
    fn start(per_connection: usize) -> KeepAlive {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let origin = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let (connections, requests) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (closing, closed) = std::sync::mpsc::channel();
        let (accepted, served) = (connections.clone(), requests.clone());
        let gate = Arc::new(Gate::default());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (served, closing, gate) = (served.clone(), closing.clone(), gate.clone());
                std::thread::spawn(move || {
                    serve_keep_alive(stream, per_connection, &served, &gate);
                    let _ = closing.send(Instant::now());
                });
            }
        });
        KeepAlive {
            origin,
            connections,
            requests,
            closed,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The requests to `/together/N` that have arrived, for each to wait for
/// the others.
#[derive(Default)]
struct Gate {
    arrived: std::sync::Mutex<usize>,
    all_in: std::sync::Condvar,
}

impl Gate {
    /// Counts this request in and waits until `n` have arrived (at most 5 s).
    fn wait_for(&self, n: usize) {
        let mut arrived = self.arrived.lock().expect("gate");
        *arrived += 1;
        self.all_in.notify_all();
        let _ = self
            .all_in
            .wait_timeout_while(arrived, Duration::from_secs(5), |arrived| *arrived < n);
    }
}

/// Serves requests on `stream` until the peer closes it (then returns) or
/// `limit` were served (then closes it without a word).
fn serve_keep_alive(stream: TcpStream, limit: usize, served: &AtomicUsize, gate: &Gate) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    for _ in 0..limit {
        let Some(path) = read_head(&mut reader) else {
            return;
        };
        served.fetch_add(1, Ordering::SeqCst);
        if let Some(n) = path.strip_prefix("/together/") {
            gate.wait_for(n.parse().unwrap_or(1));
        }
        let (head, body) = match path.as_str() {
            // Declares no length: the cap can only cut it off as it streams.
            "/big-chunked" => (
                "transfer-encoding: chunked".to_string(),
                format!("{BIG:x}\r\n{}\r\n0\r\n\r\n", "x".repeat(BIG)).into_bytes(),
            ),
            _ => (
                "content-length: 19".to_string(),
                b"hello from loopback".to_vec(),
            ),
        };
        let head = format!("HTTP/1.1 200 OK\r\n{head}\r\n\r\n");
        if out
            .write_all(head.as_bytes())
            .and_then(|()| out.write_all(&body))
            .is_err()
        {
            return;
        }
    }
    let _ = out.shutdown(std::net::Shutdown::Both);
}

#[test]
fn a_plugin_reuses_its_own_connections_and_no_other_plugin_does() {
    let server = KeepAlive::start(usize::MAX);
    let origins = [server.origin.clone()];
    let host = host(&origins, HttpLimits::default());
    let first = fetcher(&host, "fetch-first", &origins);
    let second = fetcher(&host, "fetch-second", &origins);
    let hello = format!("{}/hello", server.origin);
    for _ in 0..5 {
        let out = fetch(&first, &hello).expect("fetch");
        assert_eq!(out.output, b"hello from loopback");
    }
    assert_eq!(
        server.connections(),
        1,
        "five requests of one plugin, one connection"
    );
    fetch(&second, &hello).expect("fetch");
    assert_eq!(
        server.connections(),
        2,
        "another plugin never uses the first one's connection"
    );
    fetch(&first, &hello).expect("fetch");
    assert_eq!(server.connections(), 2);
    assert_eq!(server.requests.load(Ordering::SeqCst), 7);
}

#[test]
fn a_cut_off_response_leaves_no_connection_behind() {
    let server = KeepAlive::start(usize::MAX);
    let origins = [server.origin.clone()];
    let limits = HttpLimits {
        max_response_bytes: 1 << 20,
        ..HttpLimits::default()
    };
    let host = host(&origins, limits);
    let plugin = fetcher(&host, "fetch-capped", &origins);
    assert!(fetch(&plugin, &format!("{}/big-chunked", server.origin)).is_err());
    // Well before an idle connection would expire.
    server
        .closed
        .recv_timeout(Duration::from_secs(1))
        .expect("the cut-off response's connection is closed at once");
    fetch(&plugin, &format!("{}/hello", server.origin)).expect("fetch");
    assert_eq!(server.connections(), 2);
}

#[test]
fn a_connection_the_server_closed_while_idle_is_replaced() {
    // The server closes each connection after two requests, saying nothing.
    let server = KeepAlive::start(2);
    let origins = [server.origin.clone()];
    let host = host(&origins, HttpLimits::default());
    let plugin = fetcher(&host, "fetch-again", &origins);
    let hello = format!("{}/hello", server.origin);
    for _ in 0..5 {
        let out = fetch(&plugin, &hello).expect("every request is answered");
        assert_eq!(out.output, b"hello from loopback");
        // Time for the host to see the close of an idle connection.
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(server.connections(), 3);
}

#[test]
fn an_idle_connection_closes_after_the_pools_time() {
    let server = KeepAlive::start(usize::MAX);
    let origins = [server.origin.clone()];
    let host = host(&origins, HttpLimits::default());
    let plugin = fetcher(&host, "fetch-idle", &origins);
    fetch(&plugin, &format!("{}/hello", server.origin)).expect("fetch");
    let answered = Instant::now();
    let closed = server
        .closed
        .recv_timeout(warden::HTTP_IDLE_FOR + Duration::from_millis(1500))
        .expect("the idle connection is closed by the host once it expired");
    let idle = closed.duration_since(answered);
    assert!(
        idle >= warden::HTTP_IDLE_FOR - Duration::from_millis(500),
        "{idle:?}"
    );
    drop(plugin);
}

#[test]
fn unloading_a_plugin_closes_its_idle_connections() {
    let server = KeepAlive::start(usize::MAX);
    let origins = [server.origin.clone()];
    let host = host(&origins, HttpLimits::default());
    let plugin = fetcher(&host, "fetch-unloaded", &origins);
    fetch(&plugin, &format!("{}/hello", server.origin)).expect("fetch");
    host.unload_blocking("fetch-unloaded").expect("unload");
    // The plugin handle is still held: only the unload can have closed it.
    server
        .closed
        .recv_timeout(Duration::from_secs(1))
        .expect("the unloaded build's connection is closed at once");
    drop(plugin);
}

#[test]
fn a_build_keeps_at_most_its_share_of_idle_connections() {
    let server = KeepAlive::start(usize::MAX);
    let origins = [server.origin.clone()];
    let host = host(&origins, HttpLimits::default());
    let calls = warden::HTTP_MAX_IDLE + 2;
    let plugin = fetcher_with(
        &host,
        "fetch-many",
        &origins,
        &format!("[limits]\nmax-instances = {calls}\n"),
    );
    let together = format!("{}/together/{calls}", server.origin);
    std::thread::scope(|threads| {
        for _ in 0..calls {
            threads.spawn(|| fetch(&plugin, &together).expect("fetch"));
        }
    });
    assert_eq!(
        server.connections(),
        calls,
        "each call in flight opened a connection of its own"
    );
    for _ in 0..calls - warden::HTTP_MAX_IDLE {
        server
            .closed
            .recv_timeout(Duration::from_secs(1))
            .expect("the oldest idle connection makes room, closed at once");
    }
    assert!(
        server
            .closed
            .recv_timeout(Duration::from_millis(500))
            .is_err(),
        "the build's share stays open"
    );
    fetch(&plugin, &format!("{}/hello", server.origin)).expect("fetch");
    assert_eq!(server.connections(), calls, "an idle one served it");
}
