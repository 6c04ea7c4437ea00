//! The seeds' image pipeline, the same code natively and in the sandbox:
//! `plugins/image-processor/src/imaging.rs` compiled into this bench and
//! into the `image-processor` component, on a 1024×768 photo-like PNG:
//! Lanczos3 thumbnail to PNG, crop + resize to JPEG at quality 80, and
//! re-encoding to lossless WebP. Prints the wasm/native ratio of each
//! (fastest of 20 runs each) after criterion's own figures.
//!
//! `cargo bench -p warden --bench image`

use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use image::{ImageFormat, Rgb, RgbImage};
use warden::{Plugin, ProcessRequest, Warden};

// The plugin's whole pipeline module; the bench uses only part of it.
#[allow(dead_code)]
#[path = "../../../plugins/image-processor/src/imaging.rs"]
mod imaging;

/// The pipelines measured: a name and the request's options.
const CASES: [(&str, &[(&str, &str)]); 3] = [
    ("thumbnail-lanczos3-png", &[("width", "256")]),
    (
        "crop-resize-jpeg-q80",
        &[
            ("crop", "128,96,768,576"),
            ("width", "320"),
            ("format", "jpeg"),
            ("quality", "80"),
        ],
    ),
    ("webp-lossless", &[("width", "512"), ("format", "webp")]),
];

/// Smooth gradients with some texture, so codecs and filters do real work.
fn photo() -> Vec<u8> {
    let image = RgbImage::from_fn(1024, 768, |x, y| {
        let wave = ((x as f32 / 23.0).sin() * (y as f32 / 17.0).cos() * 40.0) as i32;
        Rgb([
            (x / 4) as u8,
            (y / 3) as u8,
            ((128 + wave) as u8) ^ ((x * y) as u8 & 7),
        ])
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).expect("png");
    out.into_inner()
}

fn native(input: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
    let opts = imaging::Options::parse(options.iter().copied()).expect("options");
    imaging::process(input, &opts)
        .expect("native pipeline")
        .bytes
}

fn sandboxed(plugin: &Plugin, input: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
    let request = ProcessRequest::new(input.to_vec()).options(options.iter().copied());
    plugin
        .process_blocking(request)
        .expect("wasm pipeline")
        .output
}

/// Checks that both outputs are the same picture: the same size, and
/// pixels within two levels on average. Not byte for byte: the filters'
/// floating-point functions (`sin` in Lanczos3) come from the system's
/// maths library natively and from Rust's own in wasm, and may round a
/// sample the other way, which the JPEG encoder then spreads.
fn agree(name: &str, wasm: &[u8], native: &[u8]) {
    if wasm == native {
        return;
    }
    let decode = |bytes: &[u8]| {
        image::load_from_memory(bytes)
            .expect("decodable")
            .into_rgb8()
    };
    let (w, n) = (decode(wasm), decode(native));
    assert_eq!(w.dimensions(), n.dimensions(), "{name}: sizes differ");
    let off = w
        .as_raw()
        .iter()
        .zip(n.as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum::<u64>()
        / w.as_raw().len() as u64;
    assert!(off <= 2, "{name}: pixels differ by {off} levels on average");
}

/// The fastest of `runs` runs of `f`, for the printed ratio: the least
/// disturbed by the rest of the machine.
fn best(runs: u32, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn benches(c: &mut Criterion) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let built = warden_build::build_plugin(
        &repo.join("plugins/image-processor"),
        &repo.join("target/bench-plugins/image"),
    )
    .expect("building image-processor");
    let host = Warden::new().expect("host");
    let plugin = host.load_blocking(&built.dir).expect("load");
    let input = photo();

    let mut group = c.benchmark_group("image-pipeline");
    group.sample_size(10);
    let mut ratios = Vec::new();
    for (name, options) in CASES {
        agree(
            name,
            &sandboxed(&plugin, &input, options),
            &native(&input, options),
        );
        group.bench_with_input(BenchmarkId::new("native-rust", name), &input, |b, i| {
            b.iter(|| native(i, options))
        });
        group.bench_with_input(BenchmarkId::new("warden", name), &input, |b, i| {
            b.iter(|| sandboxed(&plugin, i, options))
        });
        let n = best(20, || drop(native(&input, options)));
        let w = best(20, || drop(sandboxed(&plugin, &input, options)));
        ratios.push((name, n, w));
    }
    group.finish();
    println!("| pipeline (1024x768 PNG in) | native | warden | wasm / native |");
    println!("|---|---|---|---|");
    for (name, n, w) in ratios {
        println!(
            "| {name} | {:.1} ms | {:.1} ms | {:.2}x |",
            n.as_secs_f64() * 1e3,
            w.as_secs_f64() * 1e3,
            w.as_secs_f64() / n.as_secs_f64()
        );
    }
}

criterion_group!(image_pipeline, benches);
criterion_main!(image_pipeline);
