//! Decoding PNG and JPEG into 8-bit greyscale, independent of the
//! component bindings (so it is unit-tested natively).

use std::io::Cursor;

use image::{ImageFormat, ImageReader};

/// Images larger than this many pixels are refused before decoding.
pub const MAX_PIXELS: u64 = 40_000_000;

/// The formats [`decode`] reads.
pub const FORMATS: [&str; 2] = ["png", "jpeg"];

/// A decoded image: one luminance byte per pixel, row by row.
#[derive(Debug, PartialEq, Eq)]
pub struct Grey {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Decodes `data`, a PNG or JPEG image; the error says why it cannot.
pub fn decode(data: &[u8]) -> Result<Grey, String> {
    let reader = || {
        ImageReader::new(Cursor::new(data))
            .with_guessed_format()
            .map_err(|e| format!("cannot read the image: {e}"))
    };
    match reader()?.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        Some(other) => {
            return Err(format!(
                "{other:?} images are not supported; send {}",
                FORMATS.join(" or ")
            ));
        }
        None => return Err(format!("not an image; send {}", FORMATS.join(" or "))),
    }
    let (width, height) = reader()?
        .into_dimensions()
        .map_err(|e| format!("cannot read the image header: {e}"))?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!("{width}x{height} is more than {MAX_PIXELS} pixels"));
    }
    let image = reader()?
        .decode()
        .map_err(|e| format!("cannot decode the image: {e}"))?;
    Ok(Grey {
        width,
        height,
        pixels: image.into_luma8().into_raw(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb(pixel(x, y)));
        let mut out = Cursor::new(Vec::new());
        image
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode png");
        out.into_inner()
    }

    #[test]
    fn decodes_colour_to_luminance() {
        let grey = decode(&png(3, 2, |x, _| [x as u8 * 100; 3])).expect("decode");
        assert_eq!((grey.width, grey.height), (3, 2));
        assert_eq!(grey.pixels, vec![0, 100, 200, 0, 100, 200]);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(decode(b"hello").unwrap_err().contains("not an image"));
        let mut gif = b"GIF89a".to_vec();
        gif.extend([0; 16]);
        assert!(decode(&gif).unwrap_err().contains("not supported"));
        let mut truncated = png(4, 4, |_, _| [1, 2, 3]);
        truncated.truncate(truncated.len() / 2);
        assert!(decode(&truncated).is_err());
    }
}
