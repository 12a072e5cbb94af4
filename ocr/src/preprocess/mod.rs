//! From a decoded image to the bitmap Tesseract reads, with phone photos in mind.
//!
//! The steps, each measured on the development sets (see the README's figures):
//! 1. **Grayscale.**
//! 2. **Find the paper** ([`find_paper`]): on a small copy, the largest bright region after Otsu's
//!    threshold. When it covers part of the frame and the rest is clearly darker (a receipt on a
//!    table, in a bill folder), the image is cropped to it; a flat scan is left alone.
//! 3. **Deskew** ([`estimate_skew`]): the angle within ±[`MAX_SKEW_DEGREES`] that makes the rows of
//!    ink line up best (the projection profile's sharpest), corrected when it is at least
//!    [`MIN_SKEW_DEGREES`].
//! 4. **Scale**: into a width band (small photos enlarged to 800 px, scans above 1800 px reduced);
//!    optionally (`scale`, off by default) so that text lines are about [`TARGET_LINE_HEIGHT`]
//!    pixels high, measured from the projection profile ([`line_height`]).
//! 5. **Binarise unevenly lit photos** with Sauvola's local threshold ([`sauvola`]): a shadow or
//!    a lamp's gradient defeats a global threshold, a local one follows it. The image is marked
//!    [`PreparedImage::uneven`], and the engine reads a binarised copy ([`binarised`]) when the
//!    first reading is weak, keeping whichever reads more: on the US photos, binarising every
//!    unevenly lit image read fewer fields than it saved.
//!
//! Orientation (a photo taken sideways) is decided by the engine with Tesseract's orientation
//! detection, because it needs the recogniser; see `crate::engine`.

mod light;
#[cfg(test)]
mod tests;

use finagent_platform::image_input::{self, ImageError, ImageInfo, ImageLimits};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, Luma};

use light::background;
use light::ink;
use light::otsu;
use light::sauvola;
use light::unevenly_lit;
pub use light::{binarised, stretch_contrast};

/// Skew below this is not corrected: Tesseract reads a slight tilt as well, and a resampling
/// blurs small print (measured on the US photo set).
pub const MIN_SKEW_DEGREES: f32 = 1.0;

/// Skew beyond this is not searched for (a receipt photographed at a larger angle is rare).
pub const MAX_SKEW_DEGREES: f32 = 6.0;

/// Height of a text line (ascender to descender) that Tesseract reads best, in pixels.
pub const TARGET_LINE_HEIGHT: f32 = 38.0;

/// Widths the prepared image is kept within.
pub const MIN_WIDTH: u32 = 400;

/// The prepared image is never wider than this.
pub const MAX_WIDTH: u32 = 2200;

/// Nor has more pixels than this.
pub const MAX_PIXELS: u64 = 9_000_000;

/// Which preprocessing steps run (all by default); `ocr-worker bench` and `evaluate` take them
/// as `--preprocess crop,deskew,scale,sauvola` (or `none`) to measure what each costs and gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    /// Crop a photo to the paper.
    pub crop: bool,
    /// Correct a small skew.
    pub deskew: bool,
    /// Scale to the text size (otherwise: into a fixed width band).
    pub scale: bool,
    /// Binarise unevenly lit photos with Sauvola.
    pub sauvola: bool,
}

impl Steps {
    /// Every step.
    pub const ALL: Steps = Steps { crop: true, deskew: true, scale: true, sauvola: true };
}

impl Default for Steps {
    /// Crop, deskew and Sauvola; scaling to the measured text size is off, because on the US photo
    /// set it read fewer totals than the fixed width band (see the README's figures).
    fn default() -> Self {
        Self { crop: true, deskew: true, scale: false, sauvola: true }
    }
}

impl std::str::FromStr for Steps {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut steps = Steps { crop: false, deskew: false, scale: false, sauvola: false };
        for name in text.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            match name {
                "none" => {}
                "all" => steps = Steps::ALL,
                "default" => steps = Steps::default(),
                "crop" => steps.crop = true,
                "deskew" => steps.deskew = true,
                "scale" => steps.scale = true,
                "sauvola" => steps.sauvola = true,
                other => {
                    return Err(format!(
                        "unknown preprocessing step {other:?}: expected crop, deskew, scale, sauvola, default, all or none"
                    ));
                }
            }
        }
        Ok(steps)
    }
}

/// A grayscale bitmap ready for OCR, and how it relates to the original.
#[derive(Clone, Debug)]
pub struct PreparedImage {
    /// The pixels, one byte each, row by row.
    pub gray: GrayImage,
    /// Scale applied to the (cropped) original (1.0 when unchanged).
    pub scale: f32,
    /// Where the crop starts in the original, in its pixels.
    pub offset: (u32, u32),
    /// Estimated resolution in pixels per inch, for Tesseract.
    pub ppi: i32,
    /// What the header said.
    pub info: ImageInfo,
    /// What was done, for the result's debug record (`cropped`, `deskewed 1.5°`, …).
    pub steps: Vec<String>,
    /// Whether the ink lines up in columns rather than rows (a photo taken sideways), so that
    /// orientation detection is worth its cost.
    pub sideways: bool,
    /// Whether the light is uneven enough that a Sauvola-binarised copy may read better; the
    /// engine tries it when the first reading is weak and keeps whichever reads more.
    pub uneven: bool,
    /// Whether this looks like a photo rather than a flat scan: less than [`SCAN_WHITE_SHARE`]
    /// of it is white paper (a photo's paper is grey under room light, with a table or a folder
    /// around it). Photos are read by PP-OCR when it is configured.
    pub photo: bool,
    /// Whether the upload is in colour (see `image_input::in_colour`): a camera photo with a
    /// table or a hand in it, rather than a grey scan or copy.
    pub colour: bool,
}

/// The share of near-white pixels (above 200) from which an image reads as a flat scan. On the
/// development sets, 118 of 124 SROIE scans are above it and 90 of 95 US phone photos below.
pub const SCAN_WHITE_SHARE: f64 = 0.6;

/// The share of pixels brighter than 200.
pub fn white_share(gray: &GrayImage) -> f64 {
    let pixels = gray.as_raw();
    if pixels.is_empty() {
        return 0.0;
    }
    pixels.iter().filter(|&&value| value > 200).count() as f64 / pixels.len() as f64
}

impl PreparedImage {
    /// The same image turned clockwise by `quarter_turns` × 90°.
    pub fn rotated(&self, quarter_turns: u32) -> PreparedImage {
        let gray = match quarter_turns % 4 {
            1 => image::imageops::rotate90(&self.gray),
            2 => image::imageops::rotate180(&self.gray),
            3 => image::imageops::rotate270(&self.gray),
            _ => self.gray.clone(),
        };
        let mut steps = self.steps.clone();
        steps.push(format!("rotated {}°", (quarter_turns % 4) * 90));
        PreparedImage { gray, steps, sideways: false, uneven: self.uneven, ..self.clone() }
    }
}

/// Checks, decodes and preprocesses an image with every step.
pub fn prepare(bytes: &[u8], limits: &ImageLimits) -> Result<PreparedImage, ImageError> {
    prepare_with(bytes, limits, Steps::default())
}

/// Checks, decodes and preprocesses an image with the chosen steps.
pub fn prepare_with(bytes: &[u8], limits: &ImageLimits, enabled: Steps) -> Result<PreparedImage, ImageError> {
    let started = std::time::Instant::now();
    let (gray, info, colour) = image_input::decode_gray(bytes, limits)?;
    let decoded = started.elapsed();
    let prepared = PreparedImage { colour, ..preprocess_gray(gray, info, enabled) };
    tracing::debug!(
        width = info.width,
        height = info.height,
        decode_ms = decoded.as_millis() as u64,
        preprocess_ms = (started.elapsed() - decoded).as_millis() as u64,
        "image prepared"
    );
    Ok(prepared)
}

/// Preprocesses a decoded image with every step (see the module documentation).
pub fn preprocess(decoded: DynamicImage, info: ImageInfo) -> PreparedImage {
    preprocess_with(decoded, info, Steps::default())
}

/// The width band images are scaled into when the text size is not measured.
fn band_scale(width: u32) -> f32 {
    if width > 1800 {
        1800.0 / width as f32
    } else if width < 400 {
        800.0 / width as f32
    } else {
        1.0
    }
}

/// Preprocesses a decoded image with the chosen steps.
pub fn preprocess_with(decoded: DynamicImage, info: ImageInfo, enabled: Steps) -> PreparedImage {
    let colour = image_input::in_colour(&decoded);
    PreparedImage { colour, ..preprocess_gray(decoded.into_luma8(), info, enabled) }
}

/// Preprocesses a grayscale image with the chosen steps.
pub fn preprocess_gray(mut gray: GrayImage, info: ImageInfo, enabled: Steps) -> PreparedImage {
    let mut steps = Vec::new();
    let mut offset = (0, 0);
    if enabled.crop
        && let Some((left, top, width, height)) = find_paper(&gray)
    {
        gray = image::imageops::crop_imm(&gray, left, top, width, height).to_image();
        offset = (left, top);
        steps.push(format!("cropped to {width}×{height} at {left},{top}"));
    }
    // Analysis runs on a copy about 1000 px wide.
    let analysis_scale = (1000.0 / gray.width() as f32).min(1.0);
    let small = resize(&gray, analysis_scale);
    let binary = sauvola(&small, 31, 0.3);
    let sideways = looks_sideways(&binary);
    let skew = if enabled.deskew && !sideways { estimate_skew(&binary) } else { 0.0 };
    let line = line_height(&binary).map(|height| height / analysis_scale);
    let (width, height) = gray.dimensions();
    let mut scale = match line {
        Some(line) if enabled.scale && line >= 4.0 => TARGET_LINE_HEIGHT / line,
        // No measurable lines: the width band.
        _ => band_scale(width),
    };
    scale = scale.clamp(0.4, 3.0);
    scale = scale.max(MIN_WIDTH as f32 / width as f32).min(MAX_WIDTH as f32 / width as f32);
    let pixels = f64::from(width) * f64::from(height) * f64::from(scale) * f64::from(scale);
    if pixels > MAX_PIXELS as f64 {
        scale *= (MAX_PIXELS as f64 / pixels).sqrt() as f32;
    }
    if (scale - 1.0).abs() < 0.1 {
        scale = 1.0;
    }
    if scale != 1.0 {
        gray = resize(&gray, scale);
        steps.push(format!("scaled ×{scale:.2}"));
    }
    // Rotated after scaling: a large scan is reduced first, so the resampling costs little.
    if skew.abs() >= MIN_SKEW_DEGREES {
        gray = rotate(&gray, -skew, background(&gray));
        steps.push(format!("deskewed {skew:.1}°"));
    }
    let uneven = enabled.sauvola && unevenly_lit(&small);
    // A receipt is about 3.15 inches wide; assume it fills most of the (cropped) frame.
    let ppi = ((gray.width() as f32 / 3.15).round() as i32).clamp(70, 600);
    let photo = white_share(&small) < SCAN_WHITE_SHARE;
    PreparedImage { gray, scale, offset, ppi, info, steps, sideways, uneven, photo, colour: false }
}

/// Whether a binary image's ink profile is sharper across its columns than across its rows by a
/// clear margin: text lines run vertically.
pub fn looks_sideways(binary: &GrayImage) -> bool {
    let (width, height) = binary.dimensions();
    let mut rows = vec![0i64; height as usize];
    let mut columns = vec![0i64; width as usize];
    for (x, y, pixel) in binary.enumerate_pixels() {
        if pixel.0[0] < 128 {
            rows[y as usize] += 1;
            columns[x as usize] += 1;
        }
    }
    let sharpness = |profile: &[i64]| profile.windows(2).map(|pair| ((pair[1] - pair[0]) as f64).powi(2)).sum::<f64>();
    sharpness(&columns) > 1.5 * sharpness(&rows)
}

/// `gray` scaled by `scale`, through `fast_image_resize` (integer SIMD convolution): a triangle
/// (bilinear) filter as wide as the reduction when reducing, Catmull–Rom when enlarging. On a
/// 35-megapixel SROIE scan, the whole preprocessing went from 540–900 ms to 70–260 ms with it.
fn resize(gray: &GrayImage, scale: f32) -> GrayImage {
    if (scale - 1.0).abs() < f32::EPSILON {
        return gray.clone();
    }
    let width = ((gray.width() as f32 * scale).round() as u32).max(1);
    let height = ((gray.height() as f32 * scale).round() as u32).max(1);
    resize_to(gray, width, height)
}

/// `gray` resampled to `width` × `height` (see [`resize`]).
pub fn resize_to(gray: &GrayImage, width: u32, height: u32) -> GrayImage {
    use fast_image_resize::{FilterType as Filter, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
    let (width, height) = (width.max(1), height.max(1));
    if gray.dimensions() == (width, height) {
        return gray.clone();
    }
    let enlarging = u64::from(width) * u64::from(height) > u64::from(gray.width()) * u64::from(gray.height());
    let filter = if enlarging { Filter::CatmullRom } else { Filter::Bilinear };
    let resampled =
        images::ImageRef::new(gray.width(), gray.height(), gray.as_raw(), PixelType::U8).ok().and_then(|source| {
            let mut target = images::Image::new(width, height, PixelType::U8);
            let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
            Resizer::new().resize(&source, &mut target, &options).ok()?;
            GrayImage::from_raw(width, height, target.into_vec())
        });
    // The library refuses only buffers of the wrong size, which a GrayImage cannot have.
    resampled.unwrap_or_else(|| {
        let filter = if enlarging { FilterType::CatmullRom } else { FilterType::Triangle };
        image::imageops::resize(gray, width, height, filter)
    })
}

/// The paper in a photo: the bounding box (left, top, width, height, in the image's pixels) of
/// the largest bright region, when it covers 12–60 % of the frame and what lies outside it is
/// clearly darker than the paper. `None` for scans and for photos filled by the receipt.
pub fn find_paper(gray: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let factor = (400.0 / gray.width().max(gray.height()) as f32).min(1.0);
    let small = image::imageops::blur(&resize(gray, factor), 1.5);
    let (width, height) = small.dimensions();
    let threshold = otsu(&small);
    let bright: Vec<bool> = small.pixels().map(|p| p.0[0] > threshold).collect();
    // The largest 4-connected bright region, by breadth-first search.
    let mut label = vec![0u32; bright.len()];
    let mut best: Option<(usize, (u32, u32, u32, u32))> = None;
    let mut next = 0;
    let mut queue = std::collections::VecDeque::new();
    for start in 0..bright.len() {
        if !bright[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        queue.push_back(start);
        let (mut area, mut bounds) = (0usize, (u32::MAX, u32::MAX, 0u32, 0u32));
        while let Some(index) = queue.pop_front() {
            area += 1;
            let (x, y) = ((index % width as usize) as u32, (index / width as usize) as u32);
            bounds = (bounds.0.min(x), bounds.1.min(y), bounds.2.max(x), bounds.3.max(y));
            let neighbours = [
                (x > 0).then(|| index - 1),
                (x + 1 < width).then(|| index + 1),
                (y > 0).then(|| index - width as usize),
                (y + 1 < height).then(|| index + width as usize),
            ];
            for neighbour in neighbours.into_iter().flatten() {
                if bright[neighbour] && label[neighbour] == 0 {
                    label[neighbour] = next;
                    queue.push_back(neighbour);
                }
            }
        }
        if best.is_none_or(|(best_area, _)| area > best_area) {
            best = Some((area, bounds));
        }
    }
    let (_, (left, top, right, bottom)) = best?;
    let (box_width, box_height) = (right - left + 1, bottom - top + 1);
    let frame = f64::from(width) * f64::from(height);
    let share = f64::from(box_width) * f64::from(box_height) / frame;
    if !(0.12..=0.60).contains(&share) {
        return None;
    }
    // Outside the box must be darker than the paper inside it.
    let (mut inside, mut inside_count, mut outside, mut outside_count) = (0f64, 0f64, 0f64, 0f64);
    for (x, y, pixel) in small.enumerate_pixels() {
        let value = f64::from(pixel.0[0]);
        if (left..=right).contains(&x) && (top..=bottom).contains(&y) {
            inside += value;
            inside_count += 1.0;
        } else {
            outside += value;
            outside_count += 1.0;
        }
    }
    if outside_count == 0.0 || inside / inside_count - outside / outside_count < 40.0 {
        return None;
    }
    // Back to full size, with a margin of 2 % so that no printed edge is cut.
    let scale = 1.0 / factor;
    let margin = (gray.width().max(gray.height()) as f32 * 0.02) as u32;
    let full = |value: u32| (value as f32 * scale) as u32;
    let left = full(left).saturating_sub(margin);
    let top = full(top).saturating_sub(margin);
    let right = (full(right + 1) + margin).min(gray.width());
    let bottom = (full(bottom + 1) + margin).min(gray.height());
    Some((left, top, right - left, bottom - top))
}

/// The skew of a binary image in degrees (positive: lines fall to the right). The projection
/// profile along the normal of each candidate angle is sharpest — the sum of squared differences
/// of neighbouring bins largest — when rows of text line up; a coarse search, then a fine one.
pub fn estimate_skew(binary: &GrayImage) -> f32 {
    let points = ink(binary);
    if points.len() < 200 {
        return 0.0;
    }
    let (width, height) = binary.dimensions();
    let diagonal = f64::from(width).hypot(f64::from(height)).ceil() as usize;
    let mut bins = vec![0u32; 2 * diagonal + 1];
    let mut sharpness = |degrees: f32| -> f64 {
        let (sin, cos) = degrees.to_radians().sin_cos();
        bins.iter_mut().for_each(|bin| *bin = 0);
        for &(x, y) in &points {
            let position = (y * cos - x * sin).round() as isize + diagonal as isize;
            bins[position.clamp(0, 2 * diagonal as isize) as usize] += 1;
        }
        bins.windows(2).map(|pair| (f64::from(pair[1]) - f64::from(pair[0])).powi(2)).sum()
    };
    let search = |low: f32, high: f32, step: f32, sharpness: &mut dyn FnMut(f32) -> f64| {
        let steps = ((high - low) / step).round() as i32;
        let mut best = (0.0f32, f64::MIN);
        for index in 0..=steps {
            let angle = low + index as f32 * step;
            let score = sharpness(angle);
            // Ties go to the smaller correction.
            if score > best.1 || (score == best.1 && angle.abs() < best.0.abs()) {
                best = (angle, score);
            }
        }
        best.0
    };
    let coarse = search(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES, 0.5, &mut sharpness);
    search(coarse - 0.5, coarse + 0.5, 0.1, &mut sharpness)
}

/// Turns an image clockwise by `degrees` about its centre (bilinear), filling with `fill`.
pub fn rotate(gray: &GrayImage, degrees: f32, fill: u8) -> GrayImage {
    let (width, height) = gray.dimensions();
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let (sin, cos) = degrees.to_radians().sin_cos();
    let source = gray.as_raw();
    let at = |x: i64, y: i64| {
        if x < 0 || y < 0 || x >= i64::from(width) || y >= i64::from(height) {
            f32::from(fill)
        } else {
            f32::from(source[y as usize * width as usize + x as usize])
        }
    };
    GrayImage::from_fn(width, height, |ox, oy| {
        let (dx, dy) = (ox as f32 + 0.5 - cx, oy as f32 + 0.5 - cy);
        let (sx, sy) = (cos * dx + sin * dy + cx - 0.5, -sin * dx + cos * dy + cy - 0.5);
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
        let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
        Luma([(top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8])
    })
}

/// The median height of the text lines of a binary image: runs of rows that hold ink, between
/// rows that hold almost none.
pub fn line_height(binary: &GrayImage) -> Option<f32> {
    let (width, height) = binary.dimensions();
    let minimum = (width / 100).max(2);
    let inked: Vec<bool> = (0..height)
        .map(|y| (0..width).filter(|x| binary.get_pixel(*x, y).0[0] < 128).count() as u32 >= minimum)
        .collect();
    let mut runs = Vec::new();
    let mut length = 0u32;
    for row in inked.iter().chain(std::iter::once(&false)) {
        if *row {
            length += 1;
        } else {
            if length >= 3 {
                runs.push(length);
            }
            length = 0;
        }
    }
    if runs.len() < 3 {
        return None;
    }
    runs.sort_unstable();
    Some(runs[runs.len() / 2] as f32)
}
