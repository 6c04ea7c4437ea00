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

/// `image-stats`'s two ways across the link: `stats` calls `decode`, whose
/// record crosses value by value; `luminance` calls `luminance`, whose
/// bytes cross as blocks of memory (the typed fast path).
const OPS: [&str; 2] = ["stats", "luminance"];

fn request_op(input: Vec<u8>, op: &str) -> ProcessRequest {
    ProcessRequest::new(input).option("op", op)
}

/// A granted host with both plugins loaded, each manifest with its `edit`
/// (text replaced) if any.
async fn loaded(
    decoder: Option<(&str, &str)>,
    stats: Option<(&str, &str)>,
) -> (Warden, warden::Plugin, warden::Plugin) {
    let host = granted();
    let decoder = load_edited(&host, "image-decoder", decoder).await;
    let stats = load_edited(&host, "image-stats", stats).await;
    (host, decoder, stats)
}

async fn load_edited(host: &Warden, plugin: &str, edit: Option<(&str, &str)>) -> warden::Plugin {
    match edit {
        None => load(host, plugin).await,
        Some((from, to)) => {
            host.load_bytes(manifest_with(plugin, from, to), component(plugin))
                .await
        }
    }
    .unwrap_or_else(|e| panic!("loading {plugin} ({edit:?}): {e}"))
}

/// Which plugin trapped, and how.
fn trap(err: Error) -> (String, TrapKind) {
    match err {
        Error::Trap { plugin, kind, .. } => (plugin, kind),
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// The error of a call that failed on the provider's side of the link.
fn linked_error(err: Error) -> Error {
    match err {
        Error::Linked { plugin, error, .. } => {
            assert_eq!(plugin, "image-stats");
            *error
        }
        other => panic!("expected a link failure, got {other:?}"),
    }
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

    // The same pixels as bare bytes, on the fast path; its errors alike.
    let out = stats
        .process(request_op(gradient_png(4, 2, 80), "luminance"))
        .await
        .expect("pixels of a png");
    assert_eq!(out.output, [0, 80, 160, 240, 0, 80, 160, 240]);
    assert_eq!(out.content_type, "application/octet-stream");
    let err = stats
        .process(request_op(b"not an image".to_vec(), "luminance"))
        .await
        .expect_err("not an image");
    assert!(
        matches!(&err, Error::Plugin { error, .. } if error.to_string().contains("not an image")),
        "{err:?}"
    );
    // A function of no argument crosses as values.
    let formats = stats
        .process(request_op(Vec::new(), "formats"))
        .await
        .expect("formats");
    assert_eq!(formats.output, b"png\njpeg");
    assert_eq!((decoder.stats().calls, decoder.stats().traps), (5, 0));
    assert_eq!(
        stats.metrics().capability_calls.get("links"),
        Some(&5),
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
    for op in OPS {
        each_side_keeps_its_own_limits_on(op).await;
    }
}

async fn each_side_keeps_its_own_limits_on(op: &str) {
    // 2000×2000 RGB decodes into 12 MB: more than an 8 MiB decoder has.
    let big = gradient_png(2000, 2000, 1);
    let (host, decoder, stats) = loaded(Some(("\nmemory-mb = 256", "\nmemory-mb = 8")), None).await;
    let err = stats
        .process(request_op(big.clone(), op).call_id("req-42"))
        .await
        .expect_err("decoder OOM");
    assert!(err.is_plugin_failure(), "{op}: {err:?}");
    assert_eq!(
        trap(linked_error(err)),
        ("image-decoder".into(), TrapKind::OutOfMemory),
        "{op}"
    );
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
        .process(request_op(gradient_png(8, 8, 30), op))
        .await
        .expect("after the decoder's trap");

    // The other way round: the decoded pixels do not fit the consumer.
    let (_host, decoder, stats) =
        loaded(None, Some(("\nmemory-mb = 128", "\nmemory-mb = 4"))).await;
    let err = stats
        .process(request_op(big, op))
        .await
        .expect_err("consumer OOM");
    assert_eq!(
        trap(err),
        ("image-stats".into(), TrapKind::OutOfMemory),
        "{op}: the consumer's own trap"
    );
    assert_eq!(decoder.stats().traps, 0, "the decoder did its part");
}

#[tokio::test]
async fn data_crossing_a_link_counts_against_the_providers_size_limits() {
    for op in OPS {
        data_crossing_a_link_counts_on(op).await;
    }
}

async fn data_crossing_a_link_counts_on(op: &str) {
    let limits = "[limits]\nmax-input-bytes = 4096\nmax-output-bytes = 5000";
    let (host, decoder, stats) = loaded(Some(("[limits]", limits)), None).await;
    stats
        .process(request_op(gradient_png(60, 60, 4), op))
        .await
        .expect("3600 pixels fit");
    let linked_limit = |err: Error| match linked_error(err) {
        Error::LimitExceeded {
            plugin, what, max, ..
        } => (plugin, what, max),
        other => panic!("{op}: expected the decoder's limit, got {other:?}"),
    };
    let too_many_pixels = stats
        .process(request_op(gradient_png(80, 80, 4), op))
        .await
        .expect_err("6400 pixels do not");
    assert_eq!(
        linked_limit(too_many_pixels),
        ("image-decoder".to_string(), "output", 5000)
    );
    let too_big_a_file = stats
        .process(request_op(noise_png(64), op))
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
async fn deadlines_bound_a_linked_call_on_both_paths() {
    // Decoding 3000×3000 pixels takes the decoder well over 20 ms.
    let big = gradient_png(3000, 3000, 1);
    let short = ("timeout-ms = 10000", "timeout-ms = 20");
    for op in OPS {
        let (_host, _, stats) = loaded(Some(short), None).await;
        let err = stats
            .process(request_op(big.clone(), op))
            .await
            .expect_err("decoder times out");
        assert_eq!(
            trap(linked_error(err)),
            ("image-decoder".into(), TrapKind::Timeout),
            "{op}: the decoder's own timeout"
        );

        // The consumer's deadline ends the decoder's call, whose own
        // timeout is 10 s: the decoder is interrupted (without the cap, it
        // would finish its decode and the consumer would trap instead).
        let (_host, _, stats) = loaded(None, Some(short)).await;
        let started = std::time::Instant::now();
        let err = stats
            .process(request_op(big.clone(), op))
            .await
            .expect_err("the consumer's deadline");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{op}: took {:?}",
            started.elapsed()
        );
        assert_eq!(
            trap(linked_error(err)),
            ("image-decoder".into(), TrapKind::Timeout),
            "{op}: the decoder's call ends at the consumer's deadline"
        );
    }
}

#[tokio::test]
async fn a_linked_call_copies_no_more_than_the_host_memory_limit() {
    // 2 MiB less 64 KiB for each of 16 handles: 1 MiB per host call.
    let small = (
        "host-memory-mb = 256",
        "host-memory-mb = 2\nmax-resources = 16",
    );
    let noise = noise_png(700);
    assert!(noise.len() > 1 << 20, "noise does not compress");
    for op in OPS {
        let (_host, _, stats) = loaded(None, Some(small)).await;
        let err = stats
            .process(request_op(noise.clone(), op))
            .await
            .expect_err("the consumer passes more than it may");
        assert_eq!(
            trap(err),
            ("image-stats".into(), TrapKind::HostResourceLimit),
            "{op}"
        );

        let (_host, _, stats) = loaded(Some(small), None).await;
        let err = stats
            .process(request_op(gradient_png(1200, 1200, 1), op))
            .await
            .expect_err("the decoder returns 1.44 MB of pixels");
        assert_eq!(
            trap(linked_error(err)),
            ("image-decoder".into(), TrapKind::HostResourceLimit),
            "{op}"
        );
    }

    // A byte held as a value costs the host 40, on the fast path 1: 80 kB
    // of PNG crosses as bytes, not as values.
    let (_host, _, stats) = loaded(None, Some(small)).await;
    let noise = noise_png(160);
    let pixels = stats
        .process(request_op(noise.clone(), "luminance"))
        .await
        .expect("bytes cross as a block");
    assert_eq!(pixels.output.len(), 160 * 160);
    let err = stats
        .process(request_op(noise, "stats"))
        .await
        .expect_err("values cost more host memory");
    assert_eq!(trap(err).1, TrapKind::HostResourceLimit);
}

/// A `side`×`side` PNG of noise, which does not compress.
fn noise_png(side: u32) -> Vec<u8> {
    let noise = RgbImage::from_fn(side, side, |x, y| {
        Rgb([(x * 7 + y * 13) as u8, (x ^ y) as u8, (x * y) as u8])
    });
    let mut png = Cursor::new(Vec::new());
    noise.write_to(&mut png, ImageFormat::Png).expect("png");
    png.into_inner()
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
