//! The example plugins built and called through the command line: each
//! one's output, stdin, files, events, listing, inspection and exit codes.

use super::*;

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
    // 11 Rust examples, and 10 in Python, JavaScript, Go and C.
    assert_eq!(rows.len(), 21);
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
