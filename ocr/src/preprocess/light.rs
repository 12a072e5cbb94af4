//! Light and ink: global (Otsu) and local (Sauvola) binarisation, uneven light, contrast stretch.

use image::GrayImage;

use super::PreparedImage;

/// A Sauvola-binarised copy of a prepared image, with a window of about a twentieth of its width.
pub fn binarised(image: &PreparedImage) -> PreparedImage {
    let window = (image.gray.width() / 20).clamp(15, 81) | 1;
    let mut steps = image.steps.clone();
    steps.push("binarised (Sauvola)".to_owned());
    PreparedImage { gray: sauvola(&image.gray, window, 0.25), steps, uneven: false, ..image.clone() }
}

/// Otsu's threshold of a histogram.
pub(crate) fn otsu(gray: &GrayImage) -> u8 {
    let mut histogram = [0u64; 256];
    for pixel in gray.pixels() {
        histogram[usize::from(pixel.0[0])] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let sum: f64 = histogram.iter().enumerate().map(|(value, count)| value as f64 * *count as f64).sum();
    let (mut weight_below, mut sum_below, mut best, mut threshold) = (0u64, 0f64, 0f64, 0u8);
    for (value, count) in histogram.iter().enumerate() {
        weight_below += count;
        if weight_below == 0 {
            continue;
        }
        let weight_above = total - weight_below;
        if weight_above == 0 {
            break;
        }
        sum_below += value as f64 * *count as f64;
        let mean_below = sum_below / weight_below as f64;
        let mean_above = (sum - sum_below) / weight_above as f64;
        let between = weight_below as f64 * weight_above as f64 * (mean_below - mean_above).powi(2);
        if between > best {
            best = between;
            threshold = u8::try_from(value).unwrap_or(255);
        }
    }
    threshold
}

/// Sauvola's local threshold, T = m · (1 + k · (s / 128 − 1)) over a `window`-pixel square, from
/// integral images: O(pixels) whatever the window. Ink becomes 0, paper 255.
pub fn sauvola(gray: &GrayImage, window: u32, k: f64) -> GrayImage {
    let (width, height) = gray.dimensions();
    let (w, h) = (width as usize, height as usize);
    let source = gray.as_raw();
    let stride = w + 1;
    let mut sum = vec![0u64; stride * (h + 1)];
    let mut squares = vec![0u64; stride * (h + 1)];
    for y in 0..h {
        let (mut row_sum, mut row_squares) = (0u64, 0u64);
        for x in 0..w {
            let value = u64::from(source[y * w + x]);
            row_sum += value;
            row_squares += value * value;
            let index = (y + 1) * stride + x + 1;
            sum[index] = sum[index - stride] + row_sum;
            squares[index] = squares[index - stride] + row_squares;
        }
    }
    let half = (window / 2).max(1) as usize;
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(half), (y + half + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(half), (x + half + 1).min(w));
            let count = ((y1 - y0) * (x1 - x0)) as f64;
            let area = |table: &[u64]| {
                (table[y1 * stride + x1] + table[y0 * stride + x0] - table[y0 * stride + x1] - table[y1 * stride + x0])
                    as f64
            };
            let mean = area(&sum) / count;
            let variance = (area(&squares) / count - mean * mean).max(0.0);
            let threshold = mean * (1.0 + k * (variance.sqrt() / 128.0 - 1.0));
            out[y * w + x] = if f64::from(source[y * w + x]) > threshold { 255 } else { 0 };
        }
    }
    GrayImage::from_raw(width, height, out).unwrap_or_else(|| gray.clone())
}

/// The ink pixels of a binary image, centred horizontally.
pub(crate) fn ink(binary: &GrayImage) -> Vec<(f32, f32)> {
    let half_width = binary.width() as f32 / 2.0;
    binary
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] < 128)
        .map(|(x, y, _)| (x as f32 - half_width, y as f32))
        .collect()
}

/// The paper's brightness (the 90th percentile), to fill what a rotation uncovers.
pub(crate) fn background(gray: &GrayImage) -> u8 {
    let mut histogram = [0u64; 256];
    for pixel in gray.pixels() {
        histogram[usize::from(pixel.0[0])] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let mut seen = 0;
    for (value, count) in histogram.iter().enumerate() {
        seen += count;
        if seen * 10 >= total * 9 {
            return u8::try_from(value).unwrap_or(255);
        }
    }
    255
}

/// The spread of the paper's brightness (0–255) above which the light is uneven.
pub const UNEVEN_LIGHT: u8 = 60;

/// Whether the paper's brightness varies across the image by more than a global threshold can
/// follow: the brightest tenth of each cell of a 6×6 grid, compared across cells that hold paper.
pub fn unevenly_lit(gray: &GrayImage) -> bool {
    let (width, height) = gray.dimensions();
    if width < 60 || height < 60 {
        return false;
    }
    let mut levels = Vec::new();
    for cell_y in 0..6 {
        for cell_x in 0..6 {
            let mut values: Vec<u8> = Vec::new();
            for y in (cell_y * height / 6)..((cell_y + 1) * height / 6) {
                for x in (cell_x * width / 6)..((cell_x + 1) * width / 6) {
                    values.push(gray.get_pixel(x, y).0[0]);
                }
            }
            values.sort_unstable();
            if let Some(level) = values.get(values.len() * 9 / 10) {
                levels.push(*level);
            }
        }
    }
    levels.sort_unstable();
    // Ignore the darkest third of the cells (background, a table, a hand).
    let paper = &levels[levels.len() / 3..];
    match (paper.first(), paper.last()) {
        (Some(low), Some(high)) => high.saturating_sub(*low) >= UNEVEN_LIGHT,
        _ => false,
    }
}

/// Stretches faint print to full contrast: the `low` quantile of brightness becomes black and the
/// `high` quantile (the paper) white. Thermal receipts fade to light grey; next to a few dark
/// marks a global threshold then drops the print entirely, and this brings it back.
pub fn stretch_contrast(gray: &GrayImage, low: f64, high: f64) -> GrayImage {
    let mut histogram = [0u64; 256];
    for pixel in gray.pixels() {
        histogram[usize::from(pixel.0[0])] += 1;
    }
    let total = histogram.iter().sum::<u64>() as f64;
    let quantile = |share: f64| {
        let mut seen = 0u64;
        for (value, count) in histogram.iter().enumerate() {
            seen += count;
            if seen as f64 >= share * total {
                return value;
            }
        }
        255
    };
    let (dark, paper) = (quantile(low), quantile(high));
    let mut stretched = gray.clone();
    if paper <= dark + 8 {
        return stretched;
    }
    let table: Vec<u8> = (0..256usize)
        .map(|value| {
            let scaled = (value.saturating_sub(dark) * 255) / (paper - dark);
            u8::try_from(scaled.min(255)).unwrap_or(255)
        })
        .collect();
    for pixel in stretched.pixels_mut() {
        pixel.0[0] = table[usize::from(pixel.0[0])];
    }
    stretched
}
