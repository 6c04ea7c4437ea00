//! The admin API end to end: the token, uploads and deployments, shutdown
//! with calls in flight, and a reload that loses no request.

use super::*;

fn multipart(manifest: &str, component: &[u8], signature: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "warden-test-boundary-7d1f";
    let mut body = Vec::new();
    if let Some(signature) = signature {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"signature\"; filename=\"plugin.sig\"\r\n\r\n{signature}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"; filename=\"plugin.toml\"\r\n\r\n{manifest}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"component\"; filename=\"c.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(component);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads text-transform's component with `manifest` (and `signature`)
/// to the admin API.
fn upload(server: &TestServer, manifest: &str, signature: Option<&str>) -> Reply {
    let (content_type, body) = multipart(manifest, &common::wasm("text-transform"), signature);
    reply(
        agent()
            .post(&server.url("/v1/admin/upload"))
            .header("authorization", &format!("Bearer {TOKEN}"))
            .header("content-type", &content_type)
            .send(&body[..]),
    )
}

/// A host with a data directory (deployments are kept there) and its
/// server with an admin token.
fn admin_server(data: &Path) -> (Arc<Warden>, TestServer) {
    admin_server_with(data, Warden::builder())
}

fn admin_server_with(data: &Path, builder: warden::WardenBuilder) -> (Arc<Warden>, TestServer) {
    let host = Arc::new(builder.data_dir(data).build().expect("host"));
    let server = TestServer::start(
        host.clone(),
        ServeSettings {
            admin_token: Some(TOKEN.into()),
            upload_dir: Some(data.join("uploads")),
            ..settings()
        },
    );
    (host, server)
}

#[test]
fn the_admin_api_needs_the_token_and_steers_deployments() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (host, server) = admin_server(&tmp.path().join("data"));
    let v1 = common::stage(tmp.path(), "text-transform", "1.0.0");

    // No token, a wrong one: refused, and nothing deployed.
    let r = reply(
        agent()
            .post(&server.url("/v1/admin/deploy"))
            .send_json(json!({"path": v1})),
    );
    r.problem(401, "unauthorized");
    assert!(r.header("www-authenticate").is_some());
    admin_post(
        &server.url("/v1/admin/deploy"),
        "wrong-token-000000000000",
        json!({"path": v1}),
    )
    .problem(401, "unauthorized");
    assert!(host.plugins().is_empty());
    for (method, path) in [
        ("POST", "/v1/admin/upload"),
        ("POST", "/v1/admin/plugins/x/reload"),
        ("DELETE", "/v1/admin/plugins/x"),
        ("POST", "/v1/admin/plugins/x/canary"),
        ("POST", "/v1/admin/plugins/x/promote"),
        ("POST", "/v1/admin/plugins/x/rollback"),
        ("POST", "/v1/admin/plugins/x/quarantine"),
        ("POST", "/v1/admin/plugins/x/release"),
        ("GET", "/v1/admin/plugins/x/history"),
        ("GET", "/v1/admin/audit"),
    ] {
        let good = format!("Bearer {TOKEN}");
        for auth in [
            None,
            Some("Bearer wrong-token-000000000000"),
            Some(good.as_str()),
        ] {
            let url = server.url(path);
            let agent = agent();
            let mut request = match method {
                "GET" => agent.get(&url).force_send_body(),
                "DELETE" => agent.delete(&url).force_send_body(),
                _ => agent.post(&url),
            };
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let r = reply(request.send_empty());
            // Without the token every route refuses; with it, none does.
            if auth == Some(good.as_str()) {
                assert_ne!(r.status, 401, "{method} {path}");
            } else {
                r.problem(401, "unauthorized");
            }
        }
    }

    let r = admin_post(&server.url("/v1/admin/deploy"), TOKEN, json!({"path": v1}));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["stable"], "1.0.0");
    admin_post(&server.url("/v1/admin/deploy"), TOKEN, json!({"path": v1}))
        .problem(409, "deploy-conflict");
    admin_post(
        &server.url("/v1/admin/deploy"),
        TOKEN,
        json!({"path": tmp.path().join("none")}),
    )
    .problem(400, "invalid-plugin");

    // Upload 1.1.0: manifest and component as multipart parts.
    let manifest = std::fs::read_to_string(v1.join("plugin.toml"))
        .expect("manifest")
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"");
    let r = upload(&server, &manifest, None);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        tmp.path()
            .join("data/uploads/text-transform/1.1.0/plugin.toml")
            .is_file()
    );
    assert!(
        tmp.path()
            .join("data/uploads/text-transform/1.1.0/text-transform.wasm")
            .is_file()
    );

    // Canary at 100%: every unkeyed call goes to 1.1.0; then promote.
    let canary = server.url("/v1/admin/plugins/text-transform/canary");
    let r = admin_post(&canary, TOKEN, json!({"version": "1.1.0", "percent": 100}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["canary"]["percent"], 100.0);
    let call = || {
        post(
            &server.url("/v1/plugins/text-transform/process?op=upper"),
            "x",
        )
    };
    assert_eq!(call().header("x-warden-version").as_deref(), Some("1.1.0"));
    admin_post(&canary, TOKEN, json!({"version": "9.9.9", "percent": 5}))
        .problem(409, "deploy-conflict");
    let r = admin_post(
        &server.url("/v1/admin/plugins/text-transform/promote"),
        TOKEN,
        json!({}),
    );
    assert_eq!(r.json(), json!({"stable": "1.1.0"}));
    admin_post(
        &server.url("/v1/admin/plugins/text-transform/rollback"),
        TOKEN,
        json!({}),
    )
    .problem(409, "deploy-conflict");

    let r = admin_post(
        &server.url("/v1/admin/plugins/text-transform/reload"),
        TOKEN,
        json!({}),
    );
    assert_eq!(r.json()["outcome"], "unchanged");

    // A canary rolled back: the answer names the version serving now and
    // the one removed.
    let next = manifest.replace("version = \"1.1.0\"", "version = \"1.2.0\"");
    let r = upload(&server, &next, None);
    assert_eq!(r.status, 201, "{}", r.text());
    let r = admin_post(&canary, TOKEN, json!({"version": "1.2.0", "percent": 10}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = admin_post(
        &server.url("/v1/admin/plugins/text-transform/rollback"),
        TOKEN,
        json!({}),
    );
    assert_eq!(r.json(), json!({"stable": "1.1.0", "rolled_back": "1.2.0"}));

    // Quarantined by hand: calls are refused until it is released.
    let quarantine = server.url("/v1/admin/plugins/text-transform/quarantine");
    let release = server.url("/v1/admin/plugins/text-transform/release");
    let r = admin_post(&quarantine, TOKEN, json!({"reason": "investigating"}));
    assert_eq!(
        r.json(),
        json!({"plugin": "text-transform", "version": "1.1.0", "quarantined": true})
    );
    let refused = call();
    refused.problem(503, "plugin-unavailable");
    assert_eq!(refused.header("retry-after").as_deref(), Some("30"));
    let r = admin_post(&release, TOKEN, json!({}));
    assert_eq!(r.json()["quarantined"], false);
    admin_post(&release, TOKEN, json!({})).problem(409, "deploy-conflict");
    assert_eq!(call().status, 200);

    let history = admin_get(&server.url("/v1/admin/plugins/text-transform/history")).json();
    let actions: Vec<&str> = history
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "deploy",
            "deploy",
            "canary",
            "promote",
            "deploy",
            "canary",
            "rollback",
            "quarantine",
            "release"
        ]
    );

    // The audit log, filtered; a bad filter names itself.
    let audit = admin_get(&server.url("/v1/admin/audit?kind=grant-refused&since=1h")).json();
    assert!(audit.as_array().is_some_and(Vec::is_empty), "{audit}");
    admin_get(&server.url("/v1/admin/audit?kind=nonsense")).problem(400, "bad-query");

    // Unload: gone from the API.
    let r = reply(
        agent()
            .delete(&server.url("/v1/admin/plugins/text-transform"))
            .header("authorization", &format!("Bearer {TOKEN}"))
            .call(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    call().problem(404, "plugin-not-found");

    let doc = get(&server.url("/v1/openapi.json")).json();
    assert!(doc["paths"]["/v1/admin/upload"].is_object());
    assert!(doc["components"]["securitySchemes"]["admin_token"].is_object());
}

#[test]
fn shutdown_lets_calls_in_flight_finish() {
    let host = host_with(&[]);
    load_misbehave(&host, "timeout-ms = 5000\nmax-instances = 4");
    let server = TestServer::start(host.clone(), settings());
    let url = server.url("/v1/plugins/misbehave/process?op=sleep&ms=1500");
    let health = server.url("/healthz");
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..4).map(|_| s.spawn(|| post(&url, "x"))).collect();
        wait_busy(&server, 4);
        let started = std::time::Instant::now();
        server.stop();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "stop waited for the calls"
        );
        for call in calls {
            let r = call.join().expect("call");
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.text(), "x");
        }
    });
    assert!(host.plugins().is_empty(), "plugins shut down");
    assert!(agent().get(&health).call().is_err(), "no longer listening");
}

#[test]
fn a_reload_through_the_admin_api_loses_no_request() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_host, server) = admin_server(&tmp.path().join("data"));
    let dir = common::stage(tmp.path(), "text-transform", "1.0.0");
    let r = admin_post(&server.url("/v1/admin/deploy"), TOKEN, json!({"path": dir}));
    assert_eq!(r.status, 201, "{}", r.text());

    let running = AtomicBool::new(true);
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let agent = agent();
                let url = server.url("/v1/plugins/text-transform/process?op=upper");
                while running.load(Ordering::SeqCst) {
                    let r = reply(agent.post(&url).send("abc"));
                    if r.status == 200 && r.text() == "ABC" {
                        ok.fetch_add(1, Ordering::SeqCst);
                        if let Some(v) = r.header("x-warden-version") {
                            seen.lock().expect("seen").insert(v);
                        }
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        let manifest = std::fs::read_to_string(dir.join("plugin.toml")).expect("manifest");
        for minor in 1..=5 {
            std::thread::sleep(Duration::from_millis(100));
            let next =
                manifest.replace("version = \"1.0.0\"", &format!("version = \"1.0.{minor}\""));
            let tmp_file = dir.join("plugin.toml.new");
            std::fs::write(&tmp_file, next).expect("write");
            std::fs::rename(&tmp_file, dir.join("plugin.toml")).expect("rename");
            let r = admin_post(
                &server.url("/v1/admin/plugins/text-transform/reload"),
                TOKEN,
                json!({}),
            );
            assert_eq!(r.json()["to"], format!("1.0.{minor}"), "{}", r.text());
        }
        std::thread::sleep(Duration::from_millis(100));
        running.store(false, Ordering::SeqCst);
    });
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no request failed");
    assert!(ok.load(Ordering::SeqCst) > 10, "the clients kept calling");
    let seen = seen.into_inner().expect("seen");
    assert!(seen.contains("1.0.0") && seen.contains("1.0.5"), "{seen:?}");
}

#[test]
fn a_server_that_requires_signatures_deploys_only_signed_uploads() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = warden::SigningKey::generate().expect("key");
    let (host, server) = admin_server_with(
        tmp.path(),
        Warden::builder().require_signatures(vec![key.public_key()]),
    );
    let manifest =
        std::fs::read_to_string(common::plugin_dir("text-transform").join("plugin.toml"))
            .expect("manifest");
    upload(&server, &manifest, None).problem(403, "signature-refused");
    let forged = key.sign(&common::wasm("text-transform"), b"another manifest");
    upload(&server, &manifest, Some(&forged)).problem(403, "signature-refused");
    assert!(host.plugins().is_empty());
    let signature = key.sign(&common::wasm("text-transform"), manifest.as_bytes());
    let r = upload(&server, &manifest, Some(&signature));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(host.plugins().len(), 1);
}

#[test]
fn a_quarantine_reason_is_kept_to_its_bound() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (_host, server) = admin_server(tmp.path());
    let v1 = common::stage(tmp.path(), "text-transform", "1.0.0");
    let r = admin_post(&server.url("/v1/admin/deploy"), TOKEN, json!({"path": v1}));
    assert_eq!(r.status, 201, "{}", r.text());
    let huge = "x".repeat(100_000);
    let r = admin_post(
        &server.url("/v1/admin/plugins/text-transform/quarantine"),
        TOKEN,
        json!({ "reason": huge }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let audit = admin_get(&server.url("/v1/admin/audit?kind=quarantined")).json();
    let action = audit[0]["action"].as_str().expect("action");
    assert!(action.len() < 300, "{} bytes kept", action.len());
}
