//! Link-time composition: `image-stats` imports `warden-example:image/decoder`,
//! which the host wires to the loaded `image-decoder` plugin. Each side keeps
//! its own sandbox and limits; the provider is found at every call.

use warden_testkit as common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{ImageFormat, Rgb, RgbImage};
use warden::{AuditKind, Error, GrantPolicy, Grants, ProcessRequest, TrapKind, Warden};

const DECODER: &str = "warden-example:image/decoder@0.1.0";

/// The built linking examples (`image-decoder`, `image-stats`).
fn built() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("links");
        for plugin in ["image-decoder", "image-stats"] {
            let source = common::repo().join("plugins/linking").join(plugin);
            warden_build::build_plugin(&source, &out)
                .unwrap_or_else(|e| panic!("building {plugin}: {e}"));
        }
        out
    })
}

fn component(plugin: &str) -> Vec<u8> {
    std::fs::read(built().join(plugin).join(format!("{plugin}.wasm"))).expect("built component")
}

/// `plugin` as built.
async fn load(host: &Warden, plugin: &str) -> warden::Result<warden::Plugin> {
    host.load(built().join(plugin)).await
}

fn host_with(grants: Grants) -> Warden {
    Warden::builder().grants(grants).build().expect("host")
}

fn granted() -> Warden {
    host_with(Grants::new().grant("link:image-decoder").expect("grant"))
}

/// A `width`×`height` PNG whose pixel at column x has grey level `x * step`.
fn gradient_png(width: u32, height: u32, step: u8) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, _| {
        let level = (x as u8).wrapping_mul(step);
        Rgb([level, level, level])
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).expect("png");
    out.into_inner()
}

fn request(input: Vec<u8>) -> ProcessRequest {
    ProcessRequest::new(input)
}

#[tokio::test]
async fn a_plugin_calls_another_through_a_link() {
    let host = granted();
    let decoder = load(&host, "image-decoder").await.expect("decoder");
    let stats = load(&host, "image-stats").await.expect("stats");
    assert_eq!(
        stats
            .info()
            .permissions
            .links
            .get(DECODER)
            .map(String::as_str),
        Some("image-decoder")
    );

    let out = stats
        .process(request(gradient_png(4, 2, 80)))
        .await
        .expect("stats of a png");
    assert_eq!(
        String::from_utf8_lossy(&out.output),
        r#"{"width":4,"height":2,"min":0,"max":240,"mean":120,"histogram":[2,2,2,2]}"#
    );
    assert_eq!(out.items_processed, 8);
    assert_eq!(decoder.stats().calls, 1, "one decode, in the decoder");

    // The decoder's own error is a value of the interface: the consumer
    // turns it into its error, and nothing trapped.
    let err = stats
        .process(request(b"not an image".to_vec()))
        .await
        .expect_err("not an image");
    match err {
        Error::Plugin { plugin, error } => {
            assert_eq!(plugin, "image-stats");
            assert!(error.to_string().contains("not an image"), "{error}");
        }
        other => panic!("expected the consumer's plugin error, got {other:?}"),
    }
    assert_eq!((decoder.stats().calls, decoder.stats().traps), (2, 0));
    assert_eq!(
        stats.metrics().capability_calls.get("links"),
        Some(&2),
        "each call through the link is counted as the consumer's"
    );
}

#[tokio::test]
async fn links_need_the_operators_grant() {
    let host = host_with(Grants::new());
    load(&host, "image-decoder").await.expect("decoder");
    match load(&host, "image-stats").await {
        Err(Error::PermissionDenied { plugin, refused }) => {
            assert_eq!(plugin, "image-stats");
            assert_eq!(refused.len(), 1);
            let refusal = refused[0].to_string();
            assert!(refusal.contains("--grant link:image-decoder"), "{refusal}");
        }
        other => panic!("an ungranted link must be refused, got {other:?}"),
    }
    assert_eq!(
        common::audited(&host, Some("image-stats"), AuditKind::GrantRefused).len(),
        1
    );

    // Trimmed: the plugin loads, and each call through the link fails.
    let trimming = host_with(Grants::new().policy(GrantPolicy::Trim));
    load(&trimming, "image-decoder").await.expect("decoder");
    let stats = load(&trimming, "image-stats").await.expect("trimmed");
    assert!(stats.info().permissions.links.is_empty());
    let err = stats
        .process(request(gradient_png(2, 2, 1)))
        .await
        .expect_err("an ungranted link");
    match &err {
        Error::Linked { plugin, error, .. } => {
            assert_eq!(plugin, "image-stats");
            assert!(
                matches!(**error, Error::PermissionDenied { .. }),
                "{error:?}"
            );
            assert!(
                err.to_string().contains("--grant link:image-decoder"),
                "{err}"
            );
        }
        other => panic!("expected a link failure, got {other:?}"),
    }
}

#[tokio::test]
async fn the_provider_is_looked_up_at_each_call() {
    let host = granted();
    // Loaded before its provider: allowed, its links resolve at call time.
    let stats = load(&host, "image-stats").await.expect("stats first");
    let png = gradient_png(3, 3, 10);
    let not_loaded = stats
        .process(request(png.clone()))
        .await
        .expect_err("no provider");
    match not_loaded {
        Error::Linked {
            provider,
            function,
            error,
            ..
        } => {
            assert_eq!(provider, "image-decoder");
            assert_eq!(function, format!("{DECODER}#decode"));
            assert!(matches!(*error, Error::NotFound { .. }), "{error:?}");
        }
        other => panic!("expected a link failure, got {other:?}"),
    }
    assert_eq!(stats.stats().link_failures, 1);
    assert_eq!(stats.stats().traps, 0, "the consumer did not trap");

    load(&host, "image-decoder").await.expect("decoder");
    stats
        .process(request(png.clone()))
        .await
        .expect("provider loaded");

    // Unloaded, the provider is missed again; its next build takes over.
    host.unload("image-decoder").await.expect("unload");
    let gone = stats
        .process(request(png.clone()))
        .await
        .expect_err("unloaded");
    assert!(matches!(gone, Error::Linked { .. }), "{gone:?}");
    let second = host
        .load_bytes(
            manifest_with(
                "image-decoder",
                "version = \"0.1.0\"",
                "version = \"0.2.0\"",
            ),
            component("image-decoder"),
        )
        .await
        .expect("decoder 0.2.0");
    stats.process(request(png)).await.expect("served by 0.2.0");
    assert_eq!(second.stats().calls, 1);
}

/// `plugin`'s manifest text with `from` replaced by `to`.
fn manifest_with(plugin: &str, from: &str, to: &str) -> warden::Manifest {
    let text = std::fs::read_to_string(built().join(plugin).join("plugin.toml")).expect("manifest");
    assert!(text.contains(from), "{plugin}'s manifest has no `{from}`");
    common::manifest_from(&text.replace(from, to))
}

#[tokio::test]
async fn each_side_keeps_its_own_limits() {
    // 2000×2000 RGB decodes into 12 MB: more than an 8 MiB decoder has.
    let big = gradient_png(2000, 2000, 1);
    let host = granted();
    let decoder = host
        .load_bytes(
            manifest_with("image-decoder", "\nmemory-mb = 256", "\nmemory-mb = 8"),
            component("image-decoder"),
        )
        .await
        .expect("decoder with 8 MiB");
    let stats = load(&host, "image-stats").await.expect("stats");
    let err = stats
        .process(request(big.clone()).call_id("req-42"))
        .await
        .expect_err("decoder OOM");
    match &err {
        Error::Linked { plugin, error, .. } => {
            assert_eq!(plugin, "image-stats");
            match &**error {
                Error::Trap { plugin, kind, .. } => {
                    assert_eq!(plugin, "image-decoder");
                    assert_eq!(*kind, TrapKind::OutOfMemory);
                }
                other => panic!("expected the decoder's trap, got {other:?}"),
            }
        }
        other => panic!("expected a link failure, got {other:?}"),
    }
    assert!(err.is_plugin_failure());
    assert_eq!(decoder.stats().traps, 1, "the trap is the decoder's");
    let audited = common::audited(&host, Some("image-decoder"), AuditKind::MemoryLimit);
    assert_eq!(audited.len(), 1);
    assert_eq!(
        audited[0].call_id.as_deref(),
        Some("req-42"),
        "the provider's call carries the consumer's call id"
    );
    assert_eq!((stats.stats().traps, stats.stats().link_failures), (0, 1));
    assert!(
        common::audited(&host, Some("image-stats"), AuditKind::MemoryLimit).is_empty(),
        "the consumer hit no limit"
    );
    // Both sides serve the next call, each with a fresh instance.
    stats
        .process(request(gradient_png(8, 8, 30)))
        .await
        .expect("after the decoder's trap");

    // The other way round: the decoded pixels do not fit the consumer.
    let host = granted();
    let decoder = load(&host, "image-decoder").await.expect("decoder");
    let stats = host
        .load_bytes(
            manifest_with("image-stats", "\nmemory-mb = 128", "\nmemory-mb = 4"),
            component("image-stats"),
        )
        .await
        .expect("stats with 4 MiB");
    let err = stats.process(request(big)).await.expect_err("consumer OOM");
    match err {
        Error::Trap { plugin, kind, .. } => {
            assert_eq!(plugin, "image-stats");
            assert_eq!(kind, TrapKind::OutOfMemory);
        }
        other => panic!("expected the consumer's own trap, got {other:?}"),
    }
    assert_eq!(decoder.stats().traps, 0, "the decoder did its part");
}

#[tokio::test]
async fn data_crossing_a_link_counts_against_the_providers_size_limits() {
    let host = granted();
    let decoder = host
        .load_bytes(
            manifest_with(
                "image-decoder",
                "[limits]",
                "[limits]\nmax-input-bytes = 4096\nmax-output-bytes = 5000",
            ),
            component("image-decoder"),
        )
        .await
        .expect("decoder");
    let stats = load(&host, "image-stats").await.expect("stats");
    stats
        .process(request(gradient_png(60, 60, 4)))
        .await
        .expect("3600 pixels fit");
    let linked_limit = |err: Error| match err {
        Error::Linked { error, .. } => match *error {
            Error::LimitExceeded {
                plugin, what, max, ..
            } => (plugin, what, max),
            other => panic!("expected the decoder's limit, got {other:?}"),
        },
        other => panic!("expected a link failure, got {other:?}"),
    };
    let too_many_pixels = stats
        .process(request(gradient_png(80, 80, 4)))
        .await
        .expect_err("6400 pixels do not");
    assert_eq!(
        linked_limit(too_many_pixels),
        ("image-decoder".to_string(), "output", 5000)
    );
    let noise = RgbImage::from_fn(64, 64, |x, y| {
        Rgb([(x * 7 + y * 13) as u8, (x ^ y) as u8, (x * y) as u8])
    });
    let mut png = Cursor::new(Vec::new());
    noise.write_to(&mut png, ImageFormat::Png).expect("png");
    let too_big_a_file = stats
        .process(request(png.into_inner()))
        .await
        .expect_err("a PNG over 4096 bytes");
    assert_eq!(
        linked_limit(too_big_a_file),
        ("image-decoder".to_string(), "input", 4096)
    );
    assert_eq!(
        common::audited(&host, Some("image-decoder"), AuditKind::OutputLimit).len(),
        1
    );
    assert_eq!(decoder.stats().traps, 0);
}

#[tokio::test]
async fn bad_links_are_refused_at_load() {
    let host = host_with(Grants::new().grant("link:*").expect("grant"));
    let manifest_error = |result: warden::Result<warden::Plugin>| match result {
        Err(Error::Manifest { message, .. }) => message,
        other => panic!("expected a manifest error, got {other:?}"),
    };
    let relinked = |from: &str, to: &str| {
        host.load_bytes(
            manifest_with("image-stats", from, to),
            component("image-stats"),
        )
    };

    let message = manifest_error(relinked(DECODER, "warden-example:image/encoder@0.1.0").await);
    assert!(message.contains("does not import"), "{message}");
    assert!(
        message.contains(DECODER),
        "lists what it imports: {message}"
    );

    let message =
        manifest_error(relinked("plugin = \"image-decoder\"", "plugin = \"image-stats\"").await);
    assert!(message.contains("cannot link to itself"), "{message}");

    // A loaded provider is checked at once.
    host.load_bytes(
        common::manifest("text-transform"),
        common::wasm("text-transform"),
    )
    .await
    .expect("text-transform");
    let message =
        manifest_error(relinked("plugin = \"image-decoder\"", "plugin = \"text-transform\"").await);
    assert!(
        message.contains("plugin `text-transform` 0.1.0 cannot serve it")
            && message.contains("does not export"),
        "{message}"
    );

    assert!(host.get("image-stats").is_err(), "nothing was loaded");
}

#[tokio::test]
async fn load_dir_loads_providers_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    // `a-stats` sorts before `image-decoder`, and links to it.
    let consumer = dir.path().join("a-stats");
    std::fs::create_dir_all(&consumer).expect("dir");
    let manifest = std::fs::read_to_string(built().join("image-stats/plugin.toml"))
        .expect("manifest")
        .replace("name = \"image-stats\"", "name = \"a-stats\"");
    std::fs::write(consumer.join("plugin.toml"), manifest).expect("manifest");
    std::fs::write(consumer.join("a-stats.wasm"), component("image-stats")).expect("wasm");
    let provider = dir.path().join("image-decoder");
    std::fs::create_dir_all(&provider).expect("dir");
    for file in ["plugin.toml", "image-decoder.wasm"] {
        std::fs::copy(
            built().join("image-decoder").join(file),
            provider.join(file),
        )
        .expect("copy");
    }
    let found = warden::discover(dir.path()).expect("discover");
    assert_eq!(found, vec![consumer.clone(), provider.clone()]);
    assert_eq!(warden::providers_first(&found), vec![provider, consumer]);

    let host = granted();
    let loaded = host.load_dir(dir.path()).await.expect("load dir");
    let names: Vec<&str> = loaded.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["image-decoder", "a-stats"]);
    host.get("a-stats")
        .expect("a-stats")
        .process(request(gradient_png(2, 1, 255)))
        .await
        .expect("through the link");
}
