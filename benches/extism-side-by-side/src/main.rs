//! Warden and Extism side by side in one process, on the same machine and
//! in the same run: text-transform's uppercase code natively, in Extism 1.30
//! (wasmtime 43; a core module built with the Extism PDK) and in Warden
//! (wasmtime 48; the text-transform component), warm at 64 B, 4 KiB and
//! 1 MiB, and on a fresh instance per call. Prints a table of means and
//! ratios.
//!
//! `cargo run --release --manifest-path benches/extism-side-by-side/Cargo.toml`
//! (builds both plugins first; `CARGO_TARGET_DIR=target` shares the main
//! workspace's build of Warden).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use extism::{CompiledPlugin, Manifest, Plugin as ExtismPlugin, PluginBuilder, Wasm};
use warden::{Plugin, ProcessRequest, Warden};

// text-transform's whole module; only `upper` is measured.
#[allow(dead_code)]
#[path = "../../../plugins/text-transform/src/transform.rs"]
mod transform;

/// How long each measurement runs, at least.
const BUDGET: Duration = Duration::from_secs(2);

/// The mean time of `f` over as many runs as fit in [`BUDGET`], after a
/// warm-up; the best of three such rounds, to shed a busy moment.
fn measure(mut f: impl FnMut()) -> Duration {
    for _ in 0..3 {
        f();
    }
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut runs = 0u32;
            while start.elapsed() < BUDGET / 3 {
                f();
                runs += 1;
            }
            start.elapsed() / runs
        })
        .min()
        .unwrap_or_default()
}

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The Extism plugin, built with the PDK for `wasm32-unknown-unknown`
/// (its release profile: LTO, `opt-level = 3`).
fn extism_wasm() -> Vec<u8> {
    let dir = here().join("plugin");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(dir.join("target"))
        // As `warden build` builds Rust plugins: with WebAssembly SIMD.
        .env("RUSTFLAGS", "-Ctarget-feature=+simd128")
        .current_dir(&dir)
        .status()
        .expect("running cargo for the Extism plugin");
    assert!(status.success(), "building the Extism plugin failed");
    std::fs::read(dir.join("target/wasm32-unknown-unknown/release/extism_upper.wasm"))
        .expect("the built Extism plugin")
}

/// Warden's text-transform, built as `warden build` builds it; `reuse`
/// false: a fresh instance per call.
fn warden_plugin(host: &Warden, stage: &Path, reuse: bool) -> Plugin {
    let repo = here().join("../..");
    let built = warden_build::build_plugin(
        &repo.join("plugins/text-transform"),
        &repo.join("target/bench-plugins/side-by-side"),
    )
    .expect("building text-transform");
    let name = format!("upper-{reuse}");
    let dir = stage.join(&name);
    std::fs::create_dir_all(&dir).expect("stage");
    std::fs::copy(
        built.dir.join("text-transform.wasm"),
        dir.join(format!("{name}.wasm")),
    )
    .expect("copy the component");
    let manifest = dir.join("plugin.toml");
    let text = std::fs::read_to_string(built.dir.join("plugin.toml")).expect("manifest");
    let text = text.replacen(
        "name = \"text-transform\"",
        &format!("name = \"{name}\""),
        1,
    );
    let text = text.replace(
        "instance-reuse = true",
        &format!("instance-reuse = {reuse}"),
    );
    std::fs::write(&manifest, text).expect("manifest");
    host.load_blocking(&dir).expect("load")
}

fn warden_call(plugin: &Plugin, input: &[u8]) -> Vec<u8> {
    plugin
        .process_blocking(ProcessRequest::new(input.to_vec()).option("op", "upper"))
        .expect("warden call")
        .output
}

fn extism_call(plugin: &mut ExtismPlugin, input: &[u8]) -> Vec<u8> {
    plugin
        .call::<&[u8], &[u8]>("upper", input)
        .expect("extism call")
        .to_vec()
}

fn text(len: usize) -> Vec<u8> {
    b"The quick brown fox jumps over the lazy dog. "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

fn show(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn main() {
    let stage = std::env::temp_dir().join(format!("warden-side-by-side-{}", std::process::id()));
    let wasm = extism_wasm();
    let compiled = CompiledPlugin::new(PluginBuilder::new(Manifest::new([Wasm::data(wasm)])))
        .expect("Extism compile");
    let mut extism = ExtismPlugin::new_from_compiled(&compiled).expect("Extism instance");
    let host = Warden::new().expect("Warden host");
    let warm = warden_plugin(&host, &stage, true);
    let fresh = warden_plugin(&host, &stage, false);

    println!("| work | native Rust | Warden | Extism 1.30 | Warden / native | Extism / Warden |");
    println!("|---|---|---|---|---|---|");
    for (label, len) in [
        ("warm call, 64 B", 64),
        ("warm call, 4 KiB", 4096),
        ("warm call, 1 MiB", 1 << 20),
    ] {
        let input = text(len);
        let expected = transform::run(Some("upper"), input.to_vec())
            .expect("native")
            .text
            .into_bytes();
        assert_eq!(warden_call(&warm, &input), expected, "Warden's output");
        assert_eq!(
            extism_call(&mut extism, &input),
            expected,
            "Extism's output"
        );
        let native = measure(|| drop(transform::run(Some("upper"), input.to_vec())));
        let w = measure(|| drop(warden_call(&warm, &input)));
        let e = measure(|| drop(extism_call(&mut extism, &input)));
        row(label, Some(native), w, e);
    }
    let input = text(12);
    let w = measure(|| drop(warden_call(&fresh, &input)));
    let e = measure(|| {
        let mut plugin = ExtismPlugin::new_from_compiled(&compiled).expect("Extism instance");
        drop(extism_call(&mut plugin, &input));
    });
    row("fresh instance + call, 12 B", None, w, e);
    let _ = std::fs::remove_dir_all(&stage);
}

fn row(label: &str, native: Option<Duration>, warden: Duration, extism: Duration) {
    let ratio = |a: Duration, b: Duration| format!("{:.2}x", a.as_secs_f64() / b.as_secs_f64());
    println!(
        "| {label} | {} | {} | {} | {} | {} |",
        native.map_or("–".to_string(), show),
        show(warden),
        show(extism),
        native.map_or("–".to_string(), |n| ratio(warden, n)),
        ratio(extism, warden)
    );
}
