//! Link-time composition: `image-stats` asking the `image-decoder` plugin
//! to decode through a link, against the same decode and statistics done
//! natively in Rust, and against a call into `image-stats` that does not
//! cross the link (`validate`), for a 1×1, a 256×256 and a 1024×1024 PNG.
//! The per-call cost of a link is the 1×1 row's linked time minus its
//! plugin-call time; the larger rows show the cost of copying the decoded
//! pixels between the two instances.
//!
//! The same decode is linked twice: `decode` returns a record, which
//! crosses value by value (`linked`), and `luminance` returns the same
//! pixels as bare bytes, which cross as blocks of memory
//! (`linked-bytes`, `op=luminance`).
//!
//! The fixed cost of a link alone: `op=formats` asks the decoder for the
//! two names of the formats it reads (`linked-formats`), against the same
//! kind of call without the link (`no-link-refused-op`: an unknown op,
//! which the consumer refuses itself).
//!
//! `cargo bench -p warden --bench links`

use std::io::Cursor;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use image::{ImageFormat, Rgb, RgbImage};
use warden::{Grants, ProcessRequest, Warden};

/// The statistics `image-stats` computes, natively: the baseline.
fn native_stats(png: &[u8]) -> String {
    let grey = image::load_from_memory(png).expect("decode").into_luma8();
    let pixels = grey.as_raw();
    let mut histogram = [0u64; 4];
    let mut sum = 0u64;
    for &p in pixels {
        histogram[usize::from(p / 64)] += 1;
        sum += u64::from(p);
    }
    let min = pixels.iter().min().copied().unwrap_or(0);
    let max = pixels.iter().max().copied().unwrap_or(0);
    let mean = sum.checked_div(pixels.len() as u64).unwrap_or(0);
    format!(
        "{{\"width\":{},\"height\":{},\"min\":{min},\"max\":{max},\"mean\":{mean},\
         \"histogram\":[{},{},{},{}]}}",
        grey.width(),
        grey.height(),
        histogram[0],
        histogram[1],
        histogram[2],
        histogram[3]
    )
}

fn png(side: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(side, side, |x, y| {
        Rgb([(x * 7) as u8, (y * 3) as u8, ((x ^ y) & 0xff) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).expect("png");
    out.into_inner()
}

fn benches(c: &mut Criterion) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = repo.join("target/bench-plugins/links");
    let host = Warden::builder()
        .grants(Grants::new().grant("link:image-decoder").expect("grant"))
        .build()
        .expect("host");
    for plugin in ["image-decoder", "image-stats"] {
        let built = warden_build::build_plugin(&repo.join("plugins/linking").join(plugin), &out)
            .unwrap_or_else(|e| panic!("building {plugin}: {e}"));
        host.load_blocking(&built.dir).expect("load");
    }
    let stats = host.get("image-stats").expect("image-stats");

    let mut group = c.benchmark_group("links/image-stats");
    group.sample_size(20);
    let formats = || ProcessRequest::new(Vec::new()).option("op", "formats");
    let answer = stats.process_blocking(formats()).expect("formats").output;
    assert_eq!(answer, b"png\njpeg");
    group.bench_function("linked-formats", |b| {
        b.iter(|| stats.process_blocking(formats()).expect("formats"))
    });
    let refused = || ProcessRequest::new(Vec::new()).option("op", "none");
    stats
        .process_blocking(refused())
        .expect_err("an unknown op");
    group.bench_function("no-link-refused-op", |b| {
        b.iter(|| {
            stats
                .process_blocking(refused())
                .expect_err("an unknown op")
        })
    });
    for side in [1u32, 256, 1024] {
        let input = png(side);
        let response = stats
            .process_blocking(ProcessRequest::new(input.clone()))
            .expect("linked call");
        assert_eq!(
            String::from_utf8_lossy(&response.output),
            native_stats(&input)
        );
        let size = format!("{side}x{side}");
        group.bench_with_input(
            BenchmarkId::new("native-rust", &size),
            &input,
            |b, input| b.iter(|| native_stats(std::hint::black_box(input))),
        );
        group.bench_with_input(
            BenchmarkId::new("plugin-call-no-link", &size),
            &input,
            |b, input| b.iter(|| stats.validate_blocking(input.clone()).expect("validate")),
        );
        group.bench_with_input(BenchmarkId::new("linked", &size), &input, |b, input| {
            b.iter(|| {
                stats
                    .process_blocking(ProcessRequest::new(input.clone()))
                    .expect("linked call")
            })
        });
        let luminance =
            |input: &[u8]| ProcessRequest::new(input.to_vec()).option("op", "luminance");
        let pixels = stats
            .process_blocking(luminance(&input))
            .expect("luminance")
            .output;
        assert_eq!(pixels.len(), (side * side) as usize);
        group.bench_with_input(
            BenchmarkId::new("linked-bytes", &size),
            &input,
            |b, input| {
                b.iter(|| {
                    stats
                        .process_blocking(luminance(input))
                        .expect("linked call")
                })
            },
        );
    }
    group.finish();
}

criterion_group!(links, benches);
criterion_main!(links);
