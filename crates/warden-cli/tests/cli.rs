//! The `warden` binary end to end: build the example plugins, call each one,
//! list, inspect, send an event, and check exit codes and error lines.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{Serving, repo};

/// The example plugins, built once by `warden build` itself.
fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-dist");
        let result = warden(
            &[
                "build",
                "plugins",
                "--out",
                out.to_str().expect("utf-8 path"),
            ],
            None,
        );
        assert!(
            result.status.success(),
            "warden build failed: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        out
    })
}

/// The `warden` binary with `args`, run in the repository with the tests'
/// caches, toolchains and data directory.
fn warden_command(args: &[&str]) -> Command {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.args(args)
        .current_dir(repo())
        .env("WARDEN_CACHE_DIR", cache)
        // Guest toolchains for the Python, JavaScript, Go and C examples,
        // shared with the other test binaries.
        .env(
            "WARDEN_TOOLCHAINS",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-toolchains"),
        )
        .env(
            "WARDEN_DATA_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-data"),
        )
        .env_remove("WARDEN_PLUGIN_DIR");
    cmd
}

fn warden(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = warden_command(args);
    match stdin {
        Some(bytes) => {
            use std::io::Write;
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("spawn warden");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(bytes)
                .expect("write stdin");
            child.wait_with_output().expect("wait")
        }
        None => cmd.output().expect("run warden"),
    }
}

fn call(args: &[&str]) -> Output {
    let dir = dist().to_str().expect("utf-8").to_string();
    let mut full = vec!["call"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--dir", &dir]);
    warden(&full, None)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn build_places_every_example_plugin() {
    for name in [
        "text-transform",
        "json-transform",
        "image-processor",
        "risk-rules",
        "audit-logger",
        "counter",
    ] {
        assert!(
            dist().join(name).join("plugin.toml").is_file(),
            "{name} manifest"
        );
        assert!(
            dist().join(name).join(format!("{name}.wasm")).is_file(),
            "{name} component"
        );
    }
}

#[test]
fn call_text_transform() {
    let o = call(&[
        "text-transform",
        "--input",
        "hello world",
        "--option",
        "op=title",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello World");
    let o = call(&[
        "text-transform",
        "-i",
        "a b c",
        "-o",
        "op=word-count",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["output"], "3");
    assert_eq!(doc["items_processed"], 3);
    assert_eq!(doc["plugin"], "text-transform");
}

#[test]
fn call_reads_stdin() {
    let dir = dist().to_str().expect("utf-8").to_string();
    let o = warden(
        &["call", "text-transform", "-o", "op=slugify", "--dir", &dir],
        Some(b"Hello, Stdin World!"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello-stdin-world");
}

#[test]
fn call_json_transform() {
    let o = call(&[
        "json-transform",
        "--input",
        r#"{"first_name":"Ada","age":36}"#,
        "--option",
        "case=camel",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v, serde_json::json!({"firstName":"Ada","age":36}));
}

#[test]
fn call_image_processor_with_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("in.png");
    let output = tmp.path().join("out.png");
    let img = image::RgbImage::from_pixel(64, 32, image::Rgb([10, 200, 30]));
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    std::fs::write(&input, &png).expect("write input");
    let o = call(&[
        "image-processor",
        "--input-file",
        input.to_str().expect("utf-8"),
        "-o",
        "width=16",
        "-o",
        "rotate=90",
        "--output-file",
        output.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let result = image::open(&output).expect("decodable output").to_rgb8();
    assert_eq!(result.dimensions(), (8, 16));
    assert_eq!(result.get_pixel(4, 8).0, [10, 200, 30]);
}

#[test]
fn call_risk_rules() {
    let o = call(&[
        "risk-rules",
        "--input",
        r#"{"id":"t9","amount":25000,"country":"KP","hour":3}"#,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["id"], "t9");
    assert_eq!(v["level"], "high");
    assert_eq!(v["score"], 100);
}

#[test]
fn event_reaches_the_audit_logger() {
    let dir = dist().to_str().expect("utf-8").to_string();
    let o = warden(
        &[
            "event",
            "order.created",
            r#"{"order":1}"#,
            "--dir",
            &dir,
            "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let delivered = v["delivered"].as_array().expect("delivered");
    // The Rust audit-logger and the Go order-audit-go both subscribe to
    // `order.*`.
    let mut plugins: Vec<&str> = delivered
        .iter()
        .filter_map(|d| d["plugin"].as_str())
        .collect();
    plugins.sort();
    assert_eq!(plugins, ["audit-logger", "order-audit-go"]);
    assert!(delivered.iter().all(|d| d["ok"] == true), "{v}");
}

#[test]
fn list_shows_every_plugin_ready() {
    let dir = dist().to_str().expect("utf-8").to_string();
    // url-fetcher asks for an HTTP origin: refused until the operator grants it.
    let o = warden(&["list", "--dir", &dir, "--json"], None);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).expect("json");
    let fetcher = rows
        .iter()
        .find(|r| r["name"] == "url-fetcher")
        .expect("url-fetcher listed");
    let status = fetcher["status"].as_str().expect("status");
    assert!(
        status.contains("--grant http:https://example.com:443"),
        "{status}"
    );
    let o = warden(
        &[
            "list",
            "--dir",
            &dir,
            "--json",
            "--grant",
            "http:https://example.com",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).expect("json");
    // 10 Rust examples, and 10 in Python, JavaScript, Go and C.
    assert_eq!(rows.len(), 20);
    for row in &rows {
        assert_eq!(row["status"], "ready", "{row}");
        let contract = match row["name"] == "text-stats" {
            true => "0.2.0",
            false => "0.1.0",
        };
        assert_eq!(row["contract"], contract, "{row}");
    }
    let o = warden(&["list", "--dir", &dir], None);
    let table = stdout(&o);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("image-processor") && table.contains("event-handler"),
        "{table}"
    );
}

#[test]
fn inspect_renders_the_world_and_metadata() {
    let wasm = dist().join("text-transform/text-transform.wasm");
    let o = warden(&["inspect", wasm.to_str().expect("utf-8")], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("world:   processor"), "{text}");
    assert!(
        text.contains("export warden:plugin/processing@0.1.0;"),
        "{text}"
    );
    assert!(
        text.contains("import warden:plugin/logging@0.1.0;"),
        "{text}"
    );
    assert!(text.contains("author:  Warden contributors"), "{text}");
    assert!(text.contains("contract: warden:plugin@0.1.0"), "{text}");
    assert!(!text.contains("options:"), "0.1.0 has no options: {text}");

    let stats = dist().join("text-stats");
    let o = warden(&["inspect", stats.to_str().expect("utf-8")], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("contract: warden:plugin@0.2.0"), "{text}");
    assert!(
        text.contains("export warden:plugin/processing@0.2.0;"),
        "{text}"
    );
    let top = text
        .lines()
        .find(|l| l.trim_start().starts_with("top "))
        .unwrap_or_else(|| panic!("option `top` listed: {text}"));
    assert!(top.ends_with("(default 5)"), "{top}");
}

#[test]
fn exit_codes_tell_plugin_failures_from_usage_errors() {
    let o = call(&["text-transform", "--input", "x", "--option", "op=shout"]);
    assert_eq!(o.status.code(), Some(1), "plugin error exits 1");
    let err = stderr(&o);
    assert!(
        err.starts_with("error: plugin `text-transform` returned an error: unsupported"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let o = call(&["no-such-plugin", "--input", "x"]);
    assert_eq!(o.status.code(), Some(2), "unknown plugin exits 2");
    assert!(
        stderr(&o).contains("no plugin named `no-such-plugin`"),
        "{}",
        stderr(&o)
    );

    let o = warden(&["call"], None);
    assert_eq!(o.status.code(), Some(2), "usage error exits 2");

    let o = call(&["text-transform", "--option", "novalue"]);
    assert_eq!(o.status.code(), Some(2));

    let tmp = tempfile::tempdir().expect("tempdir");
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let o = warden(
        &["call", core.to_str().expect("utf-8"), "--input", "x"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("core module without function exports"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The hostile suite's `connect` attack, assembled in a fresh directory:
/// its manifest asks for `net 127.0.0.1:1` only.
fn hostile_connect() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let out = BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-hostile");
        let built = warden(
            &[
                "build",
                "plugins/hostile/plugin",
                "--out",
                out.to_str().expect("utf-8"),
            ],
            None,
        );
        assert!(built.status.success(), "{}", stderr(&built));
        out
    });
    let dir = tempfile::tempdir().expect("tempdir").keep().join("connect");
    std::fs::create_dir_all(&dir).expect("plugin dir");
    std::fs::copy(
        repo().join("plugins/hostile/suite/connect/plugin.toml"),
        dir.join("plugin.toml"),
    )
    .expect("manifest");
    std::fs::copy(out.join("hostile/hostile.wasm"), dir.join("hostile.wasm")).expect("wasm");
    dir
}

#[test]
fn grants_decide_and_the_audit_log_remembers() {
    let plugin = hostile_connect();
    let plugin = plugin.to_str().expect("utf-8");
    let data = tempfile::tempdir().expect("data dir");
    let data = data.path().to_str().expect("utf-8");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let target = format!(
        "target=127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );

    let refused = warden(&["--data-dir", data, "call", plugin, "-o", &target], None);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--grant net:127.0.0.1:1"),
        "{}",
        stderr(&refused)
    );

    let inspect = warden(&["--grant", "net:127.0.0.1:1", "inspect", plugin], None);
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let text = stdout(&inspect);
    assert!(
        text.contains("requested permissions\n  net 127.0.0.1:1  (a harmless allowed port)")
            && text.contains("effective permissions\n  net 127.0.0.1:1"),
        "{text}"
    );

    let contained = warden(
        &[
            "--grant",
            "net:127.0.0.1:1",
            "--data-dir",
            data,
            "call",
            plugin,
            "-o",
            &target,
        ],
        None,
    );
    assert_eq!(contained.status.code(), Some(1), "{}", stderr(&contained));
    assert!(
        stderr(&contained).contains("contained"),
        "{}",
        stderr(&contained)
    );
    assert!(listener.accept().is_err(), "no connection may arrive");

    let audit = warden(&["--data-dir", data, "audit", "--json"], None);
    assert!(audit.status.success(), "{}", stderr(&audit));
    let kinds: Vec<String> = stdout(&audit)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            format!(
                "{} {}",
                v["kind"].as_str().unwrap_or(""),
                v["resource"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(
        kinds[0].starts_with("grant-refused net 127.0.0.1:1"),
        "{kinds:?}"
    );
    assert!(
        kinds[1].starts_with("socket-denied tcp connect 127.0.0.1:"),
        "{kinds:?}"
    );

    let filtered = warden(
        &[
            "--data-dir",
            data,
            "audit",
            "--kind",
            "socket-denied",
            "--since",
            "1h",
        ],
        None,
    );
    let lines = stdout(&filtered);
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(lines.contains("hostile-connect 0.1.0"), "{lines}");
    let future = warden(
        &[
            "--data-dir",
            data,
            "audit",
            "--since",
            "2999-01-01T00:00:00Z",
        ],
        None,
    );
    assert!(stdout(&future).is_empty());
    let bad = warden(
        &["--data-dir", data, "audit", "--since", "yesterday-ish"],
        None,
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn trim_loads_without_the_ungranted_permission() {
    let plugin = hostile_connect();
    let plugin = plugin.to_str().expect("utf-8");
    let listed = warden(
        &[
            "--trim",
            "--verbose",
            "list",
            "--dir",
            plugin.trim_end_matches("/connect"),
        ],
        None,
    );
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    assert!(
        text.contains("hostile-connect") && text.contains("ready"),
        "{text}"
    );
    assert!(text.contains("trimmed: net 127.0.0.1:1"), "{text}");
}

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
    assert!(server.terminate().success(), "a clean exit on SIGTERM");

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
    assert!(server.terminate().success());
    let after = std::fs::metadata(tmp.path().join("out/text-transform/text-transform.wasm"))
        .and_then(|m| m.modified())
        .expect("still there");
    assert_eq!(built, after, "serve does not rebuild");
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
    assert!(server.terminate().success());
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
fn core_modules_are_built_called_and_inspected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().to_str().expect("utf-8");
    for module in ["math", "json-rules"] {
        let source = format!("plugins/core-modules/{module}");
        let o = warden(&["build", &source, "--out", out], None);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let math = tmp.path().join("core-math");
    let math = math.to_str().expect("utf-8");
    let o = warden(&["call", math, "--export", "add", "--args", "3", "4"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "7");
    let o = warden(
        &["call", math, "--export", "add", "--args", "-3", "1"],
        None,
    );
    assert_eq!(stdout(&o).trim(), "-2", "{}", stderr(&o));
    let o = warden(&["call", math, "--export", "add", "--args", "3"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("takes 2 argument(s)"), "{}", stderr(&o));
    let o = warden(&["call", math, "--export", "spin"], None);
    assert_eq!(o.status.code(), Some(1), "a trap is a plugin failure");
    assert!(stderr(&o).contains("trapped (timeout)"), "{}", stderr(&o));

    let rules = tmp.path().join("core-json-rules");
    let rules = rules.to_str().expect("utf-8");
    let o = warden(
        &[
            "call",
            rules,
            "--input",
            r#"{"amount": 5, "country": "DK"}"#,
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let verdict: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("JSON");
    assert_eq!(verdict["approved"], true);
    let o = warden(&["call", rules, "--input", r#"{"lie": "pointer"}"#], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("broke its ABI"), "{}", stderr(&o));
    let o = warden(&["inspect", rules], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("abi         json"), "{text}");
    assert!(text.contains("execute(i32, i32) -> (i64)"), "{text}");
}

#[test]
fn compose_plugs_a_library_into_a_plugin() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().to_str().expect("utf-8");
    let o = warden(&["build", "plugins/composition/shout", "--out", out], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let plugins = repo().join("plugins");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "compose-case-lib",
        ])
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .status()
        .expect("cargo");
    assert!(status.success());
    let lib = plugins.join("target/wasm32-wasip2/release/compose_case_lib.wasm");
    let socket = tmp.path().join("compose-shout");
    let composed = tmp.path().join("composed");
    let o = warden(
        &[
            "compose",
            socket.to_str().expect("utf-8"),
            "--plug",
            lib.to_str().expect("utf-8"),
            "--out",
            composed.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(composed.join("plugin.toml").is_file());
    let o = warden(
        &[
            "call",
            composed.to_str().expect("utf-8"),
            "--input",
            "plugged in",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "PLUGGED IN");
    // The socket alone names the import it lacks.
    let o = warden(
        &["call", socket.to_str().expect("utf-8"), "--input", "x"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("warden-example:text/case"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    let dir = dist().to_str().expect("utf-8").to_string();
    let mut child = warden_command(&["list", "--dir", &dir, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn warden");
    // The reader goes away before the command writes (`warden list | true`).
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101), "no panic exit");
}

#[test]
fn call_loads_the_providers_a_plugin_links_to() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().to_str().expect("utf-8");
    for plugin in ["image-decoder", "image-stats"] {
        let source = format!("plugins/linking/{plugin}");
        let o = warden(&["build", &source, "--out", out], None);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let image = image::GrayImage::from_fn(4, 2, |x, _| image::Luma([x as u8 * 80]));
    let png = tmp.path().join("in.png");
    image.save(&png).expect("write png");
    let png = png.to_str().expect("utf-8");

    // `image-stats` alone is named; its provider comes from --dir.
    let granted = ["--dir", out, "--grant", "link:image-decoder"];
    let mut args = vec!["call", "image-stats", "--input-file", png];
    args.extend(granted);
    let o = warden(&args, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        r#"{"width":4,"height":2,"min":0,"max":240,"mean":120,"histogram":[2,2,2,2]}"#
    );

    let o = warden(
        &["call", "image-stats", "--input-file", png, "--dir", out],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "an ungranted link is a usage error"
    );
    assert!(
        stderr(&o).contains("--grant link:image-decoder"),
        "{}",
        stderr(&o)
    );

    let stats_dir = tmp.path().join("image-stats");
    let o = warden(
        &[
            "inspect",
            stats_dir.to_str().expect("utf-8"),
            "--grant",
            "link:image-decoder",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let effective = text
        .split("effective permissions")
        .nth(1)
        .unwrap_or_else(|| panic!("effective permissions shown: {text}"));
    assert!(
        effective.contains("link warden-example:image/decoder@0.1.0 -> image-decoder"),
        "{text}"
    );
}
