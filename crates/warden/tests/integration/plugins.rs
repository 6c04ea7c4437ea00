//! Every example plugin called through the library, with its real output checked.

use warden_testkit as common;

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use image::{GenericImageView, ImageFormat, Rgb, RgbImage};
use warden::{Error, Event, PluginError, ProcessRequest, World};

fn text(op: &str, input: &str) -> warden::Result<String> {
    let host = common::host();
    let plugin = host.load_blocking(common::plugin_dir("text-transform"))?;
    let out = plugin.process_blocking(ProcessRequest::new(input).option("op", op))?;
    Ok(String::from_utf8(out.output).expect("utf-8 output"))
}

#[test]
fn text_transform_does_every_operation() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("load");
    let call = |op: &str, input: &str| {
        let out = plugin
            .process_blocking(ProcessRequest::new(input).option("op", op))
            .expect(op);
        (
            String::from_utf8(out.output).expect("utf-8"),
            out.items_processed,
        )
    };
    assert_eq!(call("upper", "Hello, World").0, "HELLO, WORLD");
    assert_eq!(call("lower", "Hello, World").0, "hello, world");
    assert_eq!(call("title", "hello wORLD foo").0, "Hello World Foo");
    assert_eq!(call("reverse", "abc déf").0, "féd cba");
    assert_eq!(call("slugify", "Hello, World!  Foo").0, "hello-world-foo");
    assert_eq!(
        call("word-count", "one two  three\nfour"),
        ("4".to_string(), 4)
    );
    assert!(plugin.validate_blocking("text").expect("validate"));
    assert!(
        !plugin
            .validate_blocking(vec![0xff, 0xfe])
            .expect("validate")
    );
}

#[test]
fn text_transform_rejects_bad_options() {
    let err = text("shout", "x").unwrap_err();
    assert!(
        matches!(&err, Error::Plugin { error: PluginError::Unsupported(m), .. } if m.contains("shout")),
        "{err:?}"
    );
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("text-transform"))
        .expect("load");
    let err = plugin
        .process_blocking(ProcessRequest::new("x"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Plugin { error: PluginError::InvalidInput(m), .. } if m.contains("op")),
        "{err:?}"
    );
}

#[test]
fn json_transform_picks_renames_and_converts_case() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("json-transform"))
        .expect("load");
    let input = r#"{"user_name":"ada","user_id":7,"home_address":{"zip_code":"1"},"secret":"x"}"#;
    let out = plugin
        .process_blocking(
            ProcessRequest::new(input)
                .option("pick", "user_name,user_id,home_address")
                .option("rename", "user_id:id")
                .option("case", "camel"),
        )
        .expect("transform");
    let value: serde_json::Value = serde_json::from_slice(&out.output).expect("json output");
    assert_eq!(
        value,
        serde_json::json!({"userName":"ada","id":7,"homeAddress":{"zipCode":"1"}})
    );
    assert_eq!(out.content_type, "application/json");
    assert_eq!(out.items_processed, 1);

    let out = plugin
        .process_blocking(
            ProcessRequest::new(r#"[{"userName":1},{"httpCode":2}]"#).option("case", "snake"),
        )
        .expect("array");
    let value: serde_json::Value = serde_json::from_slice(&out.output).expect("json output");
    assert_eq!(value, serde_json::json!([{"user_name":1},{"http_code":2}]));
    assert_eq!(out.items_processed, 2);
}

#[test]
fn json_transform_reports_the_parse_error() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("json-transform"))
        .expect("load");
    let err = plugin
        .process_blocking(ProcessRequest::new("{\"a\": "))
        .unwrap_err();
    match err {
        Error::Plugin {
            plugin,
            error: PluginError::InvalidInput(m),
        } => {
            assert_eq!(plugin, "json-transform");
            assert!(m.contains("line 1"), "parse position missing: {m}");
        }
        other => panic!("expected invalid-input, got {other:?}"),
    }
}

fn test_png() -> Vec<u8> {
    // Left half pure red, right half pure blue: 40x20.
    let img = RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .expect("encode png");
    bytes
}

#[test]
fn image_processor_resizes_grays_and_rotates() {
    let host = common::host();
    let plugin = host
        .load_blocking(common::plugin_dir("image-processor"))
        .expect("load");
    let png = test_png();
    assert!(plugin.validate_blocking(png.clone()).expect("validate"));
    assert!(
        !plugin
            .validate_blocking(b"not an image".to_vec())
            .expect("validate")
    );

    let out = plugin
        .process_blocking(
            ProcessRequest::new(png.clone())
                .content_type("image/png")
                .option("width", "20"),
        )
        .expect("resize");
    assert_eq!(out.content_type, "image/png");
    let img = image::load_from_memory(&out.output).expect("decodable output");
    assert_eq!(img.dimensions(), (20, 10), "aspect ratio kept");
    assert_eq!(out.items_processed, 200);
    let rgb = img.to_rgb8();
    assert_eq!(rgb.get_pixel(2, 5).0, [255, 0, 0]);
    assert_eq!(rgb.get_pixel(17, 5).0, [0, 0, 255]);

    let out = plugin
        .process_blocking(
            ProcessRequest::new(png.clone())
                .option("grayscale", "true")
                .option("rotate", "90"),
        )
        .expect("gray + rotate");
    let img = image::load_from_memory(&out.output).expect("decodable output");
    assert_eq!(img.dimensions(), (20, 40), "rotated 90 degrees");
    let luma = img.to_luma8();
    // Rotating 90° clockwise puts the red (left) half on top. Rec. 709 luma:
    // red ≈ 54, blue ≈ 18.
    let top = luma.get_pixel(10, 5).0[0];
    let bottom = luma.get_pixel(10, 35).0[0];
    assert!((50..=80).contains(&top), "red as gray: {top}");
    assert!((10..=30).contains(&bottom), "blue as gray: {bottom}");

    // Cropped to the blue half, then out as lossless WebP.
    let out = plugin
        .process_blocking(
            ProcessRequest::new(png.clone())
                .option("crop", "20,0,20,20")
                .option("format", "webp"),
        )
        .expect("crop to webp");
    assert_eq!(out.content_type, "image/webp");
    let img = image::load_from_memory(&out.output).expect("webp");
    assert_eq!(img.dimensions(), (20, 20));
    assert!(img.to_rgb8().pixels().all(|p| p.0 == [0, 0, 255]));
    let quality_on_png = plugin
        .process_blocking(ProcessRequest::new(png.clone()).option("quality", "50"))
        .unwrap_err();
    assert!(
        matches!(
            &quality_on_png,
            Error::Plugin {
                error: PluginError::Unsupported(m),
                ..
            } if m.contains("JPEG output only")
        ),
        "{quality_on_png}"
    );

    let out = plugin
        .process_blocking(
            ProcessRequest::new(png)
                .option("format", "jpeg")
                .option("quality", "60")
                .option("width", "8")
                .option("height", "8"),
        )
        .expect("to jpeg");
    assert_eq!(out.content_type, "image/jpeg");
    assert_eq!(
        image::guess_format(&out.output).expect("format"),
        ImageFormat::Jpeg
    );
    assert_eq!(
        image::load_from_memory(&out.output)
            .expect("jpeg")
            .dimensions(),
        (8, 4)
    );

    let err = plugin
        .process_blocking(ProcessRequest::new(b"garbage".to_vec()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Plugin {
                error: PluginError::InvalidInput(_),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn risk_rules_scores_with_thresholds_from_config() {
    let host = common::host();
    let manifest = common::manifest_from(
        r#"
name = "risk-rules"
version = "0.1.0"
world = "processor"
[config]
high-amount = 5000
medium-amount = 500
blocked-countries = "XX"
"#,
    );
    let plugin = host
        .load_bytes_blocking(manifest, common::wasm("risk-rules"))
        .expect("load");
    let score = |tx: serde_json::Value| {
        let out = plugin
            .process_blocking(ProcessRequest::new(tx.to_string()))
            .expect("score");
        serde_json::from_slice::<serde_json::Value>(&out.output).expect("json")
    };
    let low = score(serde_json::json!({"id": "t1", "amount": 100.0, "hour": 12}));
    assert_eq!(low["level"], "low");
    assert_eq!(low["score"], 0);

    let high =
        score(serde_json::json!({"id": "t2", "amount": 6000.0, "country": "XX", "hour": 12}));
    assert_eq!(high["id"], "t2");
    assert_eq!(high["score"], 90);
    assert_eq!(high["level"], "high");
    let reasons = high["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons[0].as_str().is_some_and(|r| r.contains("5000")),
        "threshold from config: {reasons:?}"
    );

    let medium =
        score(serde_json::json!({"amount": 600.0, "merchant_category": "gambling", "hour": 12}));
    assert_eq!(medium["score"], 45);
    assert_eq!(medium["level"], "medium");

    let err = plugin
        .process_blocking(ProcessRequest::new(r#"{"id":"x"}"#))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Plugin { error: PluginError::InvalidInput(m), .. } if m.contains("amount")),
        "{err:?}"
    );
}

#[test]
fn audit_logger_counts_events_and_emits_a_summary() {
    let host = common::host();
    let mut manifest = common::manifest("audit-logger");
    manifest.config.insert("summary-every".into(), "3".into());
    let plugin = host
        .load_bytes_blocking(manifest, common::wasm("audit-logger"))
        .expect("load");
    assert_eq!(plugin.info().world, World::EventHandler);
    let emitted = Arc::new(Mutex::new(Vec::new()));
    let sink = emitted.clone();
    host.subscribe(move |e: &Event| {
        if e.source == "audit-logger" {
            sink.lock().expect("lock").push(e.clone());
        }
    })
    .expect("subscribe");
    for t in ["order.created", "order.created", "user.login"] {
        let outcomes = host
            .dispatch_event_blocking(&Event::new(t, b"{}".to_vec(), "host"))
            .expect("dispatch");
        assert_eq!(outcomes.len(), 1);
        assert!(outcomes[0].1.is_ok(), "{:?}", outcomes[0]);
    }
    assert!(
        host.settle_events_blocking(std::time::Duration::from_secs(10))
            .expect("settle")
    );
    let emitted = emitted.lock().expect("lock");
    assert_eq!(emitted.len(), 1, "one summary after three events");
    assert_eq!(emitted[0].event_type, "audit.summary");
    let summary: serde_json::Value =
        serde_json::from_slice(&emitted[0].payload).expect("summary json");
    assert_eq!(summary["total"], 3);
    assert_eq!(summary["by_type"]["order.created"], 2);
    assert_eq!(summary["by_type"]["user.login"], 1);
}

#[test]
fn metadata_and_status_come_from_the_plugin() {
    // url-fetcher asks for an HTTP origin, which the host must grant.
    let host = warden::Warden::builder()
        .grants(
            warden::Grants::new()
                .grant("http:https://example.com")
                .expect("grant"),
        )
        .build()
        .expect("host");
    let loaded = host.load_dir_blocking(common::plugins()).expect("load all");
    assert!(loaded.len() >= 5);
    for name in [
        "text-transform",
        "json-transform",
        "image-processor",
        "risk-rules",
        "audit-logger",
    ] {
        let plugin = host.get(name).expect("loaded");
        let meta = plugin.metadata_blocking().expect("metadata");
        assert_eq!(meta.name, name);
        assert_eq!(meta.version, plugin.info().version.to_string());
        assert!(!meta.description.is_empty());
        assert_eq!(
            plugin.status_blocking().expect("status"),
            warden::PluginStatus::Ready
        );
    }
}
