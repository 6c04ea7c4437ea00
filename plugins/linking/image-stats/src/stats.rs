//! The statistics of a greyscale image, as the JSON that `image-stats`
//! (and its Python twin, `image-analyzer-py`) answer.

/// `{"width":..,"height":..,"min":..,"max":..,"mean":..,"histogram":[..]}`:
/// min, max and mean (rounded down) luminance, and how many pixels fall in
/// each quarter of the range (0-63, 64-127, 128-191, 192-255). An image
/// without pixels has min, max and mean 0.
pub fn summarize(width: u32, height: u32, pixels: &[u8]) -> String {
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
        "{{\"width\":{width},\"height\":{height},\"min\":{min},\"max\":{max},\"mean\":{mean},\
         \"histogram\":[{},{},{},{}]}}",
        histogram[0], histogram[1], histogram[2], histogram[3]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_pixels() {
        assert_eq!(
            summarize(2, 2, &[0, 64, 200, 255]),
            r#"{"width":2,"height":2,"min":0,"max":255,"mean":129,"histogram":[1,1,0,2]}"#
        );
        assert_eq!(
            summarize(0, 0, &[]),
            r#"{"width":0,"height":0,"min":0,"max":0,"mean":0,"histogram":[0,0,0,0]}"#
        );
    }
}
