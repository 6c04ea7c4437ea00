//! The image pipeline of `image-processor` (decode, resize, greyscale, rotate,
//! encode), free of any WebAssembly bindings.
//!
//! Kept apart from `lib.rs` so the host's benchmarks can compile this file
//! natively (`#[path = ".../imaging.rs"] mod imaging;`). Depends on `std` and
//! the `image` crate (PNG and JPEG codecs) only.

use std::fmt;
use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Largest width or height accepted in options, in decoded input and in
/// output; it bounds the memory a request can make the plugin allocate.
pub const MAX_DIMENSION: u32 = 16384;

/// Quality of JPEG output, a common web default balancing size and artefacts.
pub const JPEG_QUALITY: u8 = 85;

/// Why a request could not be served; `lib.rs` maps the variants one to one
/// onto the contract's `plugin-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    InvalidInput(String),
    Unsupported(String),
    Internal(String),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::InvalidInput(m) | ImageError::Unsupported(m) | ImageError::Internal(m) => {
                f.write_str(m)
            }
        }
    }
}

/// An encoding the plugin can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Png,
    Jpeg,
}

impl OutputFormat {
    /// The MIME type of the encoded output.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Png => "image/png",
            OutputFormat::Jpeg => "image/jpeg",
        }
    }
}

/// Clockwise rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    None,
    Cw90,
    Cw180,
    Cw270,
}

/// The parsed request options. Unknown option keys are ignored so callers
/// can share one option set between plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Only matters when both `width` and `height` are given.
    pub keep_aspect: bool,
    pub grayscale: bool,
    pub rotate: Rotation,
    /// `None`: the input's own format.
    pub format: Option<OutputFormat>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            width: None,
            height: None,
            keep_aspect: true,
            grayscale: false,
            rotate: Rotation::None,
            format: None,
        }
    }
}

impl Options {
    /// Parses the request's key/value options.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Options, ImageError> {
        let mut opts = Options::default();
        for (key, value) in pairs {
            match key {
                "width" => opts.width = Some(parse_dimension(key, value)?),
                "height" => opts.height = Some(parse_dimension(key, value)?),
                "keep-aspect" => opts.keep_aspect = parse_bool(key, value)?,
                "grayscale" => opts.grayscale = parse_bool(key, value)?,
                "rotate" => {
                    opts.rotate = match value.trim() {
                        "0" => Rotation::None,
                        "90" => Rotation::Cw90,
                        "180" => Rotation::Cw180,
                        "270" => Rotation::Cw270,
                        other => {
                            return Err(ImageError::Unsupported(format!(
                                "cannot rotate by `{other}`: option `rotate` must be 90, 180 or 270"
                            )));
                        }
                    }
                }
                "format" => {
                    opts.format = Some(match value.trim().to_ascii_lowercase().as_str() {
                        "png" | "image/png" => OutputFormat::Png,
                        "jpeg" | "jpg" | "image/jpeg" => OutputFormat::Jpeg,
                        _ => {
                            return Err(ImageError::Unsupported(format!(
                                "cannot produce format `{value}`: option `format` must be png or jpeg"
                            )));
                        }
                    })
                }
                _ => {}
            }
        }
        Ok(opts)
    }
}

fn parse_dimension(key: &str, value: &str) -> Result<u32, ImageError> {
    match value.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_DIMENSION).contains(&n) => Ok(n),
        _ => Err(ImageError::InvalidInput(format!(
            "option `{key}` must be a whole number from 1 to {MAX_DIMENSION}, got `{value}`"
        ))),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ImageError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ImageError::InvalidInput(format!(
            "option `{key}` must be true or false, got `{value}`"
        ))),
    }
}

/// The encoded result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
}

impl Output {
    /// Pixels in the output: what the plugin reports as items processed.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

fn reader(input: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, ImageError> {
    let mut reader = ImageReader::new(Cursor::new(input))
        .with_guessed_format()
        .map_err(|e| ImageError::InvalidInput(format!("cannot decode image: {e}")))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DIMENSION);
    limits.max_image_height = Some(MAX_DIMENSION);
    reader.limits(limits);
    Ok(reader)
}

fn input_format(reader: &ImageReader<Cursor<&[u8]>>) -> Result<OutputFormat, ImageError> {
    match reader.format() {
        Some(ImageFormat::Png) => Ok(OutputFormat::Png),
        Some(ImageFormat::Jpeg) => Ok(OutputFormat::Jpeg),
        Some(other) => Err(ImageError::InvalidInput(format!(
            "cannot decode image: {other:?} is not supported, only PNG and JPEG"
        ))),
        None => Err(ImageError::InvalidInput(
            "cannot decode image: not a PNG or JPEG file".to_string(),
        )),
    }
}

/// Whether `input` looks like an image `process` can decode: a PNG or JPEG
/// whose header, including its dimensions, reads back.
pub fn validate(input: &[u8]) -> bool {
    match reader(input) {
        Ok(r) => input_format(&r).is_ok() && r.into_dimensions().is_ok(),
        Err(_) => false,
    }
}

/// Output size for an `orig` image given the size options, or `None` when no
/// resize was asked for.
pub fn target_size(
    orig: (u32, u32),
    width: Option<u32>,
    height: Option<u32>,
    keep_aspect: bool,
) -> Option<(u32, u32)> {
    let (ow, oh) = (u64::from(orig.0.max(1)), u64::from(orig.1.max(1)));
    // Rounded integer division: no float error on exact ratios.
    let scale = |n: u64, num: u64, den: u64| -> u32 {
        let v = (n * num + den / 2) / den;
        u32::try_from(v.max(1)).unwrap_or(u32::MAX)
    };
    match (width, height) {
        (None, None) => None,
        (Some(w), None) => Some((w, scale(oh, u64::from(w), ow))),
        (None, Some(h)) => Some((scale(ow, u64::from(h), oh), h)),
        (Some(w), Some(h)) if !keep_aspect => Some((w, h)),
        (Some(w), Some(h)) => {
            let (w64, h64) = (u64::from(w), u64::from(h));
            // Compare w/ow with h/oh without dividing: the smaller one binds.
            if w64 * oh <= h64 * ow {
                Some((w, scale(oh, w64, ow).min(h)))
            } else {
                Some((scale(ow, h64, oh).min(w), h))
            }
        }
    }
}

/// Decodes `input`, applies resize, then greyscale, then rotation, and
/// encodes the result.
pub fn process(input: &[u8], opts: &Options) -> Result<Output, ImageError> {
    let reader = reader(input)?;
    let in_format = input_format(&reader)?;
    let mut img = reader
        .decode()
        .map_err(|e| ImageError::InvalidInput(format!("cannot decode image: {e}")))?;

    if let Some((w, h)) = target_size(
        (img.width(), img.height()),
        opts.width,
        opts.height,
        opts.keep_aspect,
    ) {
        if w > MAX_DIMENSION || h > MAX_DIMENSION {
            return Err(ImageError::InvalidInput(format!(
                "resizing {}x{} to that width or height would give {w}x{h}, over the {MAX_DIMENSION} limit",
                img.width(),
                img.height()
            )));
        }
        if (w, h) != (img.width(), img.height()) {
            // Triangle (bilinear) rather than Lanczos3: about twice as fast,
            // which matters under the sandbox's time limit, and close enough
            // in quality for thumbnails.
            img = img.resize_exact(w, h, image::imageops::FilterType::Triangle);
        }
    }
    if opts.grayscale {
        // Plain 8-bit luma (alpha dropped) so a PNG comes out as colour type L8.
        img = DynamicImage::ImageLuma8(img.to_luma8());
    }
    img = match opts.rotate {
        Rotation::None => img,
        Rotation::Cw90 => img.rotate90(),
        Rotation::Cw180 => img.rotate180(),
        Rotation::Cw270 => img.rotate270(),
    };

    let format = opts.format.unwrap_or(in_format);
    let bytes = encode(&img, format)?;
    Ok(Output {
        bytes,
        format,
        width: img.width(),
        height: img.height(),
    })
}

fn encode(img: &DynamicImage, format: OutputFormat) -> Result<Vec<u8>, ImageError> {
    let mut out = Cursor::new(Vec::new());
    let result = match format {
        OutputFormat::Png => img.write_to(&mut out, ImageFormat::Png),
        OutputFormat::Jpeg => {
            // JPEG has neither alpha nor 16-bit samples: narrow first.
            let narrowed = match img {
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => None,
                DynamicImage::ImageLuma16(_)
                | DynamicImage::ImageLumaA8(_)
                | DynamicImage::ImageLumaA16(_) => Some(DynamicImage::ImageLuma8(img.to_luma8())),
                _ => Some(DynamicImage::ImageRgb8(img.to_rgb8())),
            };
            let encoder = JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
            narrowed.as_ref().unwrap_or(img).write_with_encoder(encoder)
        }
    };
    result.map_err(|e| {
        ImageError::Internal(format!("cannot encode {}: {e}", format.content_type()))
    })?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
