//! Deployments between commands, `warden up` building and serving, the
//! watcher rebuilding a changed source, and a bad app config.

use super::*;

#[test]
fn deploy_canary_promote_and_history_persist_between_commands() {
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    let data = data.to_str().expect("utf-8");
    let staged = |version: &str| {
        let dir = root.path().join(version);
        std::fs::create_dir_all(&dir).expect("dir");
        let built = dist().join("text-transform");
        std::fs::copy(
            built.join("text-transform.wasm"),
            dir.join("text-transform.wasm"),
        )
        .expect("wasm");
        let manifest = std::fs::read_to_string(built.join("plugin.toml")).expect("manifest");
        let manifest = manifest.replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
        std::fs::write(dir.join("plugin.toml"), manifest).expect("manifest");
        dir.to_str().expect("utf-8").to_string()
    };
    let run = |args: &[&str]| {
        let mut full = vec!["--data-dir", data];
        full.extend_from_slice(args);
        warden(&full, None)
    };
    let (v1, v2) = (staged("1.0.0"), staged("2.0.0"));
    for dir in [&v1, &v2] {
        let out = run(&["deploy", dir]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let again = run(&["deploy", &v2]);
    assert_eq!(again.status.code(), Some(2), "the same version twice");
    assert!(
        stderr(&again).contains("already loaded"),
        "{}",
        stderr(&again)
    );
    let out = run(&["canary", "text-transform", "2.0.0", "--percent", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(status[0]["stable"], "1.0.0");
    assert_eq!(status[0]["canary"]["version"], "2.0.0");
    assert_eq!(status[0]["canary"]["percent"], 20.0);
    assert_eq!(status[0]["versions"][1]["state"], "ready");
    let table = stdout(&run(&["status"]));
    assert!(
        table.contains("candidate") && table.contains("20%"),
        "{table}"
    );

    let out = run(&["promote", "text-transform"]);
    assert!(
        stdout(&out).contains("2.0.0 is now stable"),
        "{}",
        stderr(&out)
    );
    let out = run(&["rollback", "text-transform"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no canary runs"), "{}", stderr(&out));

    let out = run(&["history", "text-transform", "--json"]);
    let actions: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["action"].as_str().expect("action").to_string()
        })
        .collect();
    assert_eq!(actions, ["deploy", "deploy", "canary", "promote"]);
    let table = stdout(&run(&["status"]));
    assert!(!table.contains("1.0.0"), "the old stable is gone: {table}");
}

#[test]
fn up_builds_what_is_stale_and_serves_until_terminated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("warden.toml");
    let source = repo().join("plugins/text-transform");
    // A source that cannot be built (no toolchain knows it) is reported and
    // left out; the others are still served.
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).expect("broken source");
    std::fs::write(
        broken.join("plugin.toml"),
        "name = \"broken\"\nversion = \"0.1.0\"\nworld = \"processor\"\n",
    )
    .expect("manifest");
    std::fs::write(broken.join("main.zig"), "").expect("source");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata-dir = \"data\"\nadmin-token-file = \"data/token\"\n\
             [plugins]\nsources = [{source:?}, {broken:?}]\nout = \"out\"\n"
        ),
    )
    .expect("config");
    let mut server = Serving::start("up", &file);
    assert!(
        tmp.path().join("out/text-transform/plugin.toml").is_file(),
        "built into out"
    );
    let token = std::fs::read_to_string(tmp.path().join("data/token")).expect("token made");
    assert_eq!(token.len(), 64);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(format!(
            "{}/v1/plugins/text-transform/process?op=upper",
            server.url
        ))
        .send("served")
        .expect("call");
    assert_eq!(r.status(), 200);
    assert_eq!(r.body_mut().read_to_string().expect("body"), "SERVED");
    let r = agent
        .get(format!("{}/v1/admin/audit", server.url))
        .header("authorization", format!("Bearer {}", token.trim()))
        .call()
        .expect("admin call");
    assert_eq!(r.status(), 200);
    server.stop_cleanly();

    // `serve` serves what `up` built, without building.
    let built = std::fs::metadata(tmp.path().join("out/text-transform/text-transform.wasm"))
        .and_then(|m| m.modified())
        .expect("built");
    let mut server = Serving::start("serve", &file);
    let mut r = agent
        .post(format!(
            "{}/v1/plugins/text-transform/process?op=reverse",
            server.url
        ))
        .send("abc")
        .expect("call");
    assert_eq!(r.body_mut().read_to_string().expect("body"), "cba");
    server.stop_cleanly();
    let after = std::fs::metadata(tmp.path().join("out/text-transform/text-transform.wasm"))
        .and_then(|m| m.modified())
        .expect("still there");
    assert_eq!(built, after, "serve does not rebuild");
}

/// The banner says the server is up; a SIGTERM from then on (here before
/// it has even begun to answer, while `up` still sets up its watchers) is
/// a graceful stop, not the signal's default death.
#[test]
fn a_sigterm_right_after_the_banner_stops_the_server_cleanly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("warden.toml");
    let source = repo().join("plugins/text-transform");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata-dir = \"data\"\n\
             [plugins]\nsources = [{source:?}]\nout = \"out\"\n"
        ),
    )
    .expect("config");
    for _ in 0..20 {
        Serving::start("up", &file).stop_cleanly();
    }
}

#[test]
fn up_watch_rebuilds_a_changed_source_with_its_own_command_and_reloads_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A "source" whose build command copies a prebuilt component.
    let source = tmp.path().join("src/tt");
    std::fs::create_dir_all(&source).expect("source dir");
    std::fs::copy(
        dist().join("text-transform/text-transform.wasm"),
        source.join("prebuilt.wasm"),
    )
    .expect("component");
    let manifest =
        std::fs::read_to_string(dist().join("text-transform/plugin.toml")).expect("manifest");
    std::fs::write(source.join("plugin.toml"), &manifest).expect("write manifest");
    let file = tmp.path().join("warden.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\ndata-dir = \"data\"\n\
         [plugins]\nsources = []\nout = \"out\"\n\
         [[plugins.build]]\nsource = \"src/tt\"\ncommand = [\"cp\", \"prebuilt.wasm\", \"text-transform.wasm\"]\n",
    )
    .expect("config");
    let mut server = Serving::start_with("up", &file, &["--watch"]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let version = || {
        let r = agent
            .post(format!(
                "{}/v1/plugins/text-transform/process?op=upper",
                server.url
            ))
            .send("x")
            .expect("call");
        assert_eq!(r.status(), 200);
        r.headers()
            .get("x-warden-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(version().as_deref(), Some("0.1.0"));
    // Change the source: a new version. The watcher rebuilds, then reloads.
    std::fs::write(
        source.join("plugin.toml"),
        manifest.replace("version = \"0.1.0\"", "version = \"0.2.0\""),
    )
    .expect("change source");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while version().as_deref() != Some("0.2.0") {
        assert!(
            std::time::Instant::now() < deadline,
            "the change was not served"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.stop_cleanly();
}

#[test]
fn a_bad_app_config_is_one_line_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("warden.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\nmax-queue = \"lots\"\n",
    )
    .expect("config");
    let o = warden(&["serve", "-f", file.to_str().expect("utf-8")], None);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("warden.toml: line 3") && err.contains("max-queue"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn status_of_a_running_server_shows_instances_memory_and_recycling() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = serve_examples(tmp.path(), &["counter", "word-count-js"]);
    let agent = agent();
    for _ in 0..50 {
        let r = agent
            .post(format!("{}/v1/plugins/word-count-js/process", server.url))
            .send("the quick brown fox")
            .expect("call");
        assert_eq!(r.status(), 200);
    }
    let out = warden(&["status", "--server", &server.url], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let row = table
        .lines()
        .find(|l| l.starts_with("word-count-js "))
        .unwrap_or_else(|| panic!("no word-count-js row: {table}"));
    let fields: Vec<&str> = row.split_whitespace().collect();
    // PLUGIN VERSION ROLE SHARE STATE INST MEMORY CODE RECYCLED
    assert_eq!(
        &fields[..5],
        ["word-count-js", "0.1.0", "stable", "100%", "ready"],
        "{row}"
    );
    assert!(fields[5].parse::<u64>().is_ok_and(|n| n >= 1), "{row}");
    let mib: f64 = fields[6].trim_end_matches("MiB").parse().expect("memory");
    assert!(mib > 1.0, "a JavaScript instance holds megabytes: {row}");
    let code: f64 = fields[7].trim_end_matches("MiB").parse().expect("code");
    assert!(
        code > 1.0,
        "a JavaScript engine compiles to megabytes: {row}"
    );
    assert!(table.lines().any(|l| l.starts_with("counter ")), "{table}");

    let json = warden(
        &["status", "--server", &server.url, "--json", "word-count-js"],
        None,
    );
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert!(
        value[0]["versions"][0]["metrics"]["memory_bytes"].as_u64() > Some(1 << 20),
        "{value}"
    );
    assert!(
        value[0]["versions"][0]["metrics"]["code_bytes"].as_u64() > Some(1 << 20),
        "{value}"
    );
    // The 50 calls, and what describing the plugin asked it.
    assert!(
        value[0]["versions"][0]["metrics"]["calls"].as_u64() >= Some(50),
        "{value}"
    );
}
