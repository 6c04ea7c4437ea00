//! Unit tests of the image pipeline, run natively (`cargo test -p
//! image-processor`).

use std::io::Cursor;

use image::{DynamicImage, ImageFormat};

use crate::imaging::*;
use image::{Rgb, RgbImage, Rgba, RgbaImage};

fn png(img: DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    if let Err(e) = img.write_to(&mut out, ImageFormat::Png) {
        panic!("test PNG: {e}");
    }
    out.into_inner()
}

fn jpeg(img: DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    if let Err(e) = img.write_to(&mut out, ImageFormat::Jpeg) {
        panic!("test JPEG: {e}");
    }
    out.into_inner()
}

/// A 40x20 image: left half red, right half blue.
fn sample_rgb() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    }))
}

fn opts(pairs: &[(&str, &str)]) -> Options {
    match Options::parse(pairs.iter().copied()) {
        Ok(o) => o,
        Err(e) => panic!("bad options {pairs:?}: {e}"),
    }
}

fn run(input: &[u8], pairs: &[(&str, &str)]) -> (Output, DynamicImage) {
    let out = match process(input, &opts(pairs)) {
        Ok(o) => o,
        Err(e) => panic!("process failed with {pairs:?}: {e}"),
    };
    let decoded = match image::load_from_memory(&out.bytes) {
        Ok(d) => d,
        Err(e) => panic!("output does not decode: {e}"),
    };
    (out, decoded)
}

#[test]
fn sizes() {
    assert_eq!(target_size((40, 20), None, None, true), None);
    assert_eq!(target_size((40, 20), Some(10), None, true), Some((10, 5)));
    assert_eq!(target_size((40, 20), None, Some(10), false), Some((20, 10)));
    assert_eq!(
        target_size((40, 20), Some(10), Some(10), true),
        Some((10, 5))
    );
    assert_eq!(
        target_size((40, 20), Some(100), Some(10), true),
        Some((20, 10))
    );
    assert_eq!(
        target_size((40, 20), Some(10), Some(10), false),
        Some((10, 10))
    );
    assert_eq!(target_size((1000, 1), Some(10), None, true), Some((10, 1)));
    assert_eq!(target_size((3, 2), Some(2), None, true), Some((2, 1)));
}

#[test]
fn passthrough_keeps_format_and_size() {
    let input = png(sample_rgb());
    let (out, img) = run(&input, &[]);
    assert_eq!(out.format, OutputFormat::Png);
    assert_eq!((img.width(), img.height()), (40, 20));
    assert_eq!(out.pixels(), 800);
}

#[test]
fn resize_keeping_aspect() {
    let (out, img) = run(&png(sample_rgb()), &[("width", "10"), ("height", "10")]);
    assert_eq!((out.width, out.height), (10, 5));
    assert_eq!((img.width(), img.height()), (10, 5));
    assert_eq!(out.pixels(), 50);
}

#[test]
fn resize_exact_without_aspect() {
    let (_, img) = run(
        &png(sample_rgb()),
        &[("width", "7"), ("height", "9"), ("keep-aspect", "false")],
    );
    assert_eq!((img.width(), img.height()), (7, 9));
}

#[test]
fn grayscale_gives_luma8_png() {
    let (_, img) = run(&png(sample_rgb()), &[("grayscale", "true")]);
    let DynamicImage::ImageLuma8(gray) = img else {
        panic!("not L8: {:?}", img.color())
    };
    // Rec. 709 luma of pure red and pure blue, as the image crate weighs them.
    assert_eq!(gray.get_pixel(0, 0).0[0], 54);
    assert_eq!(gray.get_pixel(39, 0).0[0], 18);
}

#[test]
fn grayscale_drops_alpha() {
    let rgba =
        DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([255, 255, 255, 128])));
    let (_, img) = run(&png(rgba), &[("grayscale", "true")]);
    assert!(
        matches!(img, DynamicImage::ImageLuma8(_)),
        "{:?}",
        img.color()
    );
}

#[test]
fn rotate_after_resize() {
    let (out, img) = run(&png(sample_rgb()), &[("width", "20"), ("rotate", "90")]);
    assert_eq!((out.width, out.height), (10, 20));
    assert_eq!((img.width(), img.height()), (10, 20));
    // Clockwise: the red left half ends up on top.
    let rgb = img.to_rgb8();
    assert!(rgb.get_pixel(5, 2).0[0] > 200, "{:?}", rgb.get_pixel(5, 2));
    assert!(
        rgb.get_pixel(5, 17).0[2] > 200,
        "{:?}",
        rgb.get_pixel(5, 17)
    );
    let (_, img) = run(&png(sample_rgb()), &[("rotate", "180")]);
    assert_eq!((img.width(), img.height()), (40, 20));
}

#[test]
fn format_conversion_both_ways() {
    let (out, img) = run(&png(sample_rgb()), &[("format", "image/jpeg")]);
    assert_eq!(out.format.content_type(), "image/jpeg");
    assert_eq!(&out.bytes[..2], &[0xFF, 0xD8]);
    assert_eq!((img.width(), img.height()), (40, 20));

    let (out, _) = run(&jpeg(sample_rgb()), &[]);
    assert_eq!(out.format, OutputFormat::Jpeg);
    let (out, _) = run(&jpeg(sample_rgb()), &[("format", "png")]);
    assert_eq!(&out.bytes[..4], b"\x89PNG");

    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([1, 2, 3, 4])));
    let (out, _) = run(&png(rgba), &[("format", "jpeg")]);
    assert_eq!(out.format, OutputFormat::Jpeg);
}

#[test]
fn option_errors() {
    for (k, v) in [
        ("width", "0"),
        ("width", "abc"),
        ("height", "16385"),
        ("width", "-3"),
    ] {
        match Options::parse([(k, v)]) {
            Err(ImageError::InvalidInput(m)) => assert!(m.contains(k), "{m}"),
            other => panic!("{k}={v}: {other:?}"),
        }
    }
    assert!(
        matches!(Options::parse([("rotate", "45")]), Err(ImageError::Unsupported(m)) if m.contains("45"))
    );
    assert!(
        matches!(Options::parse([("format", "gif")]), Err(ImageError::Unsupported(m)) if m.contains("gif"))
    );
    assert!(matches!(
        Options::parse([("grayscale", "yes")]),
        Err(ImageError::InvalidInput(_))
    ));
}

#[test]
fn undecodable_input() {
    match process(b"definitely not an image", &Options::default()) {
        Err(ImageError::InvalidInput(m)) => {
            assert!(m.starts_with("cannot decode image: "), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let mut truncated = png(sample_rgb());
    truncated.truncate(40);
    assert!(matches!(
        process(&truncated, &Options::default()),
        Err(ImageError::InvalidInput(_))
    ));
    assert!(!validate(b"definitely not an image"));
    assert!(!validate(b""));
}

#[test]
fn validate_accepts_png_and_jpeg() {
    assert!(validate(&png(sample_rgb())));
    assert!(validate(&jpeg(sample_rgb())));
}

#[test]
fn derived_size_over_limit_is_rejected() {
    let tall = png(DynamicImage::ImageLuma8(image::GrayImage::new(1, 200)));
    assert!(matches!(
        process(&tall, &opts(&[("width", "100")])),
        Err(ImageError::InvalidInput(_))
    ));
}

#[test]
fn crop_comes_before_resize() {
    // The right half is blue: cropping it and resizing keeps only blue.
    let (out, img) = run(
        &png(sample_rgb()),
        &[("crop", "20,0,20,20"), ("width", "10")],
    );
    assert_eq!((out.width, out.height), (10, 10));
    let rgb = img.to_rgb8();
    assert!(
        rgb.pixels().all(|p| p.0[2] > 200 && p.0[0] < 50),
        "red survived the crop"
    );
    match process(&png(sample_rgb()), &opts(&[("crop", "30,0,20,20")])) {
        Err(ImageError::InvalidInput(m)) => assert!(m.contains("outside the 40x20 image"), "{m}"),
        other => panic!("{other:?}"),
    }
    for bad in ["1,2,3", "0,0,0,5", "a,b,c,d", "0,0,16385,1"] {
        assert!(
            matches!(Options::parse([("crop", bad)]), Err(ImageError::InvalidInput(m)) if m.contains("crop")),
            "{bad}"
        );
    }
}

#[test]
fn lanczos3_is_the_default_and_filters_differ() {
    assert_eq!(Options::default().filter, Filter::Lanczos3);
    // A hard edge: Lanczos3 rings (over- and undershoots) where nearest
    // keeps the two colours only.
    let edge = png(sample_rgb());
    let (_, lanczos) = run(&edge, &[("width", "30"), ("height", "20"), ("keep-aspect", "false")]);
    let (_, nearest) = run(
        &edge,
        &[("width", "30"), ("height", "20"), ("keep-aspect", "false"), ("filter", "nearest")],
    );
    let colours = |img: &DynamicImage| {
        let mut seen: Vec<[u8; 3]> = img.to_rgb8().pixels().map(|p| p.0).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    assert_eq!(colours(&nearest), 2);
    assert!(colours(&lanczos) > 2, "no resampling happened");
    assert!(matches!(
        Options::parse([("filter", "box")]),
        Err(ImageError::Unsupported(m)) if m.contains("lanczos3")
    ));
}

#[test]
fn jpeg_quality_changes_the_size() {
    let noisy = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 64, |x, y| {
        image::Rgb([(x * 37 ^ y * 11) as u8, (x * y) as u8, (x + y * 5) as u8])
    }));
    let input = png(noisy);
    let (low, _) = run(&input, &[("format", "jpeg"), ("quality", "10")]);
    let (high, _) = run(&input, &[("format", "jpeg"), ("quality", "95")]);
    assert!(
        low.bytes.len() * 2 < high.bytes.len(),
        "quality 10: {} bytes, 95: {} bytes",
        low.bytes.len(),
        high.bytes.len()
    );
    match process(&input, &opts(&[("quality", "50")])) {
        Err(ImageError::Unsupported(m)) => assert!(m.contains("JPEG output only"), "{m}"),
        other => panic!("quality on PNG output: {other:?}"),
    }
    for bad in ["0", "101", "high"] {
        assert!(matches!(
            Options::parse([("quality", bad)]),
            Err(ImageError::InvalidInput(_))
        ));
    }
}

#[test]
fn webp_out_is_lossless_and_reads_back() {
    let input = png(sample_rgb());
    let (out, img) = run(&input, &[("format", "webp")]);
    assert_eq!(out.format.content_type(), "image/webp");
    assert_eq!(&out.bytes[..4], b"RIFF");
    assert_eq!(&out.bytes[8..12], b"WEBP");
    assert_eq!(img.to_rgb8(), sample_rgb().to_rgb8(), "lossless");
    // WebP in, and out as another format.
    let (again, _) = run(&out.bytes, &[("format", "png")]);
    assert_eq!(&again.bytes[..4], b"\x89PNG");
    assert!(validate(&out.bytes));
    let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(4, 4, image::Rgba([9, 8, 7, 6])));
    let (_, back) = run(&png(rgba.clone()), &[("format", "webp")]);
    assert_eq!(back.to_rgba8(), rgba.to_rgba8(), "alpha kept");
}

#[test]
fn requests_that_would_exhaust_memory_are_refused() {
    // 1x1 stretched to 16384x16384: gigabytes of buffers.
    let tiny = png(DynamicImage::ImageLuma8(image::GrayImage::new(1, 1)));
    match process(
        &tiny,
        &opts(&[("width", "16384"), ("height", "16384"), ("keep-aspect", "false")]),
    ) {
        Err(ImageError::InvalidInput(m)) => assert!(m.contains("MiB"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A small file whose pixels take 100 MiB decoded (all zero, so it
    // compresses to almost nothing): over the decode limit.
    let huge = png(DynamicImage::ImageLuma8(image::GrayImage::new(10240, 10240)));
    assert!(huge.len() < 1 << 20, "{} bytes", huge.len());
    match process(&huge, &Options::default()) {
        Err(ImageError::InvalidInput(m)) => assert!(m.contains("limit"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sixteen_bit_input_goes_out_as_webp_and_jpeg() {
    let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(8, 8, image::Rgb([65535u16, 0, 0])));
    for format in ["webp", "jpeg"] {
        let (_, back) = run(&png(deep.clone()), &[("format", format)]);
        assert!(back.to_rgb8().get_pixel(0, 0).0[0] > 240, "{format}");
    }
}
