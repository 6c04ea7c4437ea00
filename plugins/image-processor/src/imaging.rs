//! The image pipeline of `image-processor` (decode, crop, resize, greyscale,
//! rotate, encode), free of any WebAssembly bindings.
//!
//! Kept apart from `lib.rs` so the host's benchmarks can compile this file
//! natively (`#[path = ".../imaging.rs"] mod imaging;`) and compare the same
//! code natively and in the sandbox. Depends on `std` and the `image` crate
//! (PNG, JPEG and WebP codecs) only.

use std::fmt;
use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::webp::WebPEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Largest width or height accepted in options, in decoded input and in
/// output.
pub const MAX_DIMENSION: u32 = 16384;

/// The most a decoded input may take. With [`MAX_RESIZE_BYTES`] it keeps a
/// request inside the plugin's 256 MiB, so that a small file claiming a
/// huge image is refused with an error instead of exhausting the memory
/// limit (a trap).
pub const MAX_DECODED_BYTES: u64 = 96 << 20;

/// The most a resize may take: its working buffer (one 16-byte float pixel
/// per input column and output row, for every filter but nearest) and the
/// output.
pub const MAX_RESIZE_BYTES: u64 = 112 << 20;

/// Quality of JPEG output unless `quality` says otherwise: a common web
/// default balancing size and artefacts.
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
    /// Lossless WebP (the codec this plugin carries encodes no lossy WebP).
    WebP,
}

impl OutputFormat {
    /// The MIME type of the encoded output.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Png => "image/png",
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::WebP => "image/webp",
        }
    }
}

/// How pixels are resampled when resizing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filter {
    /// Lanczos with a window of 3: the sharpest, and the slowest.
    #[default]
    Lanczos3,
    /// Catmull-Rom (bicubic).
    CatmullRom,
    /// Bilinear: about twice as fast as Lanczos3, softer.
    Triangle,
    /// Nearest neighbour: blocky, the fastest.
    Nearest,
}

impl Filter {
    fn kind(self) -> FilterType {
        match self {
            Filter::Lanczos3 => FilterType::Lanczos3,
            Filter::CatmullRom => FilterType::CatmullRom,
            Filter::Triangle => FilterType::Triangle,
            Filter::Nearest => FilterType::Nearest,
        }
    }
}

/// A rectangle of the input to keep, in pixels from its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
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
    /// Applied first, before any resize.
    pub crop: Option<Crop>,
    pub filter: Filter,
    /// JPEG quality, 1–100; `None`: [`JPEG_QUALITY`].
    pub quality: Option<u8>,
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
            crop: None,
            filter: Filter::default(),
            quality: None,
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
                                "cannot rotate by `{other}`: option `rotate` must be 0, 90, 180 or 270"
                            )));
                        }
                    }
                }
                "format" => {
                    opts.format = Some(match value.trim().to_ascii_lowercase().as_str() {
                        "png" | "image/png" => OutputFormat::Png,
                        "jpeg" | "jpg" | "image/jpeg" => OutputFormat::Jpeg,
                        "webp" | "image/webp" => OutputFormat::WebP,
                        _ => {
                            return Err(ImageError::Unsupported(format!(
                                "cannot produce format `{value}`: option `format` must be png, jpeg or webp"
                            )));
                        }
                    })
                }
                "filter" => {
                    opts.filter = match value.trim().to_ascii_lowercase().as_str() {
                        "lanczos3" => Filter::Lanczos3,
                        "catmull-rom" | "catmullrom" => Filter::CatmullRom,
                        "triangle" | "bilinear" => Filter::Triangle,
                        "nearest" => Filter::Nearest,
                        _ => {
                            return Err(ImageError::Unsupported(format!(
                                "cannot resize with filter `{value}`: option `filter` must be lanczos3, catmull-rom, triangle or nearest"
                            )));
                        }
                    }
                }
                "crop" => opts.crop = Some(parse_crop(value)?),
                "quality" => match value.trim().parse::<u8>() {
                    Ok(q) if (1..=100).contains(&q) => opts.quality = Some(q),
                    _ => {
                        return Err(ImageError::InvalidInput(format!(
                            "option `quality` must be a whole number from 1 to 100, got `{value}`"
                        )));
                    }
                },
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

/// `X,Y,WIDTH,HEIGHT`.
fn parse_crop(value: &str) -> Result<Crop, ImageError> {
    let bad = || {
        ImageError::InvalidInput(format!(
            "option `crop` must be X,Y,WIDTH,HEIGHT in pixels (width and height from 1 to {MAX_DIMENSION}), got `{value}`"
        ))
    };
    let numbers: Vec<u32> = value
        .split(',')
        .map(|n| n.trim().parse::<u32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [x, y, width, height] = numbers[..] else {
        return Err(bad());
    };
    if !(1..=MAX_DIMENSION).contains(&width) || !(1..=MAX_DIMENSION).contains(&height) {
        return Err(bad());
    }
    Ok(Crop {
        x,
        y,
        width,
        height,
    })
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
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    Ok(reader)
}

fn input_format(reader: &ImageReader<Cursor<&[u8]>>) -> Result<OutputFormat, ImageError> {
    match reader.format() {
        Some(ImageFormat::Png) => Ok(OutputFormat::Png),
        Some(ImageFormat::Jpeg) => Ok(OutputFormat::Jpeg),
        Some(ImageFormat::WebP) => Ok(OutputFormat::WebP),
        Some(other) => Err(ImageError::InvalidInput(format!(
            "cannot decode image: {other:?} is not supported, only PNG, JPEG and WebP"
        ))),
        None => Err(ImageError::InvalidInput(
            "cannot decode image: not a PNG, JPEG or WebP file".to_string(),
        )),
    }
}

/// Whether `input` looks like an image `process` can decode: a PNG, JPEG
/// or WebP whose header, including its dimensions, reads back.
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

/// Decodes `input`, applies crop, then resize, then greyscale, then
/// rotation, and encodes the result.
pub fn process(input: &[u8], opts: &Options) -> Result<Output, ImageError> {
    let reader = reader(input)?;
    let in_format = input_format(&reader)?;
    let format = opts.format.unwrap_or(in_format);
    if opts.quality.is_some() && format != OutputFormat::Jpeg {
        return Err(ImageError::Unsupported(format!(
            "option `quality` applies to JPEG output only, and this output is {} (WebP is lossless \
             here); remove `quality`, or add `format=jpeg`",
            format.content_type()
        )));
    }
    let mut img = reader
        .decode()
        .map_err(|e| ImageError::InvalidInput(format!("cannot decode image: {e}")))?;
    if let Some(c) = opts.crop {
        let fits = u64::from(c.x) + u64::from(c.width) <= u64::from(img.width())
            && u64::from(c.y) + u64::from(c.height) <= u64::from(img.height());
        if !fits {
            return Err(ImageError::InvalidInput(format!(
                "crop {}x{} at {},{} reaches outside the {}x{} image",
                c.width,
                c.height,
                c.x,
                c.y,
                img.width(),
                img.height()
            )));
        }
        img = img.crop_imm(c.x, c.y, c.width, c.height);
    }

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
            let working = match opts.filter {
                Filter::Nearest => 0,
                _ => u64::from(img.width()) * u64::from(h) * 16,
            };
            let needed = working + u64::from(w) * u64::from(h) * 16;
            if needed > MAX_RESIZE_BYTES {
                return Err(ImageError::InvalidInput(format!(
                    "resizing {}x{} to {w}x{h} needs about {} MiB, more than the {} MiB a resize \
                     may take; ask for a smaller `width` or `height`, `crop` first, or use \
                     `filter=nearest`",
                    img.width(),
                    img.height(),
                    needed >> 20,
                    MAX_RESIZE_BYTES >> 20
                )));
            }
            img = img.resize_exact(w, h, opts.filter.kind());
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

    let bytes = encode(&img, format, opts.quality.unwrap_or(JPEG_QUALITY))?;
    Ok(Output {
        bytes,
        format,
        width: img.width(),
        height: img.height(),
    })
}

fn encode(img: &DynamicImage, format: OutputFormat, quality: u8) -> Result<Vec<u8>, ImageError> {
    let mut out = Cursor::new(Vec::new());
    let result = match format {
        OutputFormat::Png => img.write_to(&mut out, ImageFormat::Png),
        OutputFormat::WebP => {
            // The encoder takes 8-bit RGB(A) and luma only.
            let narrowed = match img {
                DynamicImage::ImageLuma8(_)
                | DynamicImage::ImageLumaA8(_)
                | DynamicImage::ImageRgb8(_)
                | DynamicImage::ImageRgba8(_) => None,
                DynamicImage::ImageLuma16(_) => Some(DynamicImage::ImageLuma8(img.to_luma8())),
                DynamicImage::ImageLumaA16(_) => {
                    Some(DynamicImage::ImageLumaA8(img.to_luma_alpha8()))
                }
                _ if img.color().has_alpha() => Some(DynamicImage::ImageRgba8(img.to_rgba8())),
                _ => Some(DynamicImage::ImageRgb8(img.to_rgb8())),
            };
            narrowed
                .as_ref()
                .unwrap_or(img)
                .write_with_encoder(WebPEncoder::new_lossless(&mut out))
        }
        OutputFormat::Jpeg => {
            // JPEG has neither alpha nor 16-bit samples: narrow first.
            let narrowed = match img {
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => None,
                DynamicImage::ImageLuma16(_)
                | DynamicImage::ImageLumaA8(_)
                | DynamicImage::ImageLumaA16(_) => Some(DynamicImage::ImageLuma8(img.to_luma8())),
                _ => Some(DynamicImage::ImageRgb8(img.to_rgb8())),
            };
            let encoder = JpegEncoder::new_with_quality(&mut out, quality);
            narrowed.as_ref().unwrap_or(img).write_with_encoder(encoder)
        }
    };
    result.map_err(|e| {
        ImageError::Internal(format!("cannot encode {}: {e}", format.content_type()))
    })?;
    Ok(out.into_inner())
}
