//! A second text reader: PaddleOCR's PP-OCRv4 detection and recognition networks, run by ONNX
//! Runtime through `ort`.
//!
//! Tesseract reads flat scans well but little of a low-resolution phone photo: on the US
//! restaurant photos, fewer than two totals in three are even present in its text. PP-OCR finds
//! text regions with a segmentation network (DB) and reads each region with a CTC recogniser,
//! which copes with blur, shadows and small print far better.
//!
//! - **Detection**: the page is scaled so its short side is at least 736 px and its long side at
//!   most 2,000 px (multiples of 32), the probability map is thresholded at 0.3 and dilated, each
//!   connected region whose mean probability reaches 0.5 becomes a box, grown by the DB "unclip"
//!   distance (area × 1.6 / perimeter).
//! - **Recognition**: each box is cut from the page at full resolution, scaled to 48 px high, and
//!   read in batches of six of similar width; greedy CTC decoding over the model's own character
//!   list (stored in the model file), keeping regions read with a mean probability of 0.5 or more.
//! - **Lines**: each region is a line of its own, top to bottom; extraction joins the regions
//!   that sit side by side into rows, as it does for ground-truth boxes.
//!
//! The runtime library (`libonnxruntime.so`) is loaded at start from the path given, so nothing
//! is downloaded at build time; the models are the ones RapidOCR ships (Apache-2.0).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use finagent_extract::{BoundingBox, TextLine};
use image::GrayImage;
use ort::session::Session;
use ort::value::Tensor;

use crate::engine::OcrError;

/// Where the networks and the runtime are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PpOcrConfig {
    /// Folder holding `*det*.onnx` and `*rec*.onnx`.
    pub models: PathBuf,
    /// The ONNX Runtime shared library (`libonnxruntime.so…`).
    pub runtime: PathBuf,
    /// Which images PP-OCR reads; Tesseract reads the rest.
    pub images: PpOcrImages,
}

impl PpOcrConfig {
    /// PP-OCR as the environment configures it (`OCR_PPOCR_MODELS`, `ORT_DYLIB_PATH`,
    /// `OCR_PPOCR_IMAGES`), or `None` when either path is unset: then Tesseract reads everything.
    pub fn from_env() -> Result<Option<Self>, String> {
        let (Some(models), Some(runtime)) = (std::env::var_os("OCR_PPOCR_MODELS"), std::env::var_os("ORT_DYLIB_PATH"))
        else {
            return Ok(None);
        };
        let images = match std::env::var("OCR_PPOCR_IMAGES") {
            Ok(value) => value.parse()?,
            Err(_) => PpOcrImages::default(),
        };
        Ok(Some(Self { models: models.into(), runtime: runtime.into(), images }))
    }
}

/// Which images PP-OCR reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PpOcrImages {
    /// Phone photos (see [`crate::preprocess::PreparedImage::photo`]); flat scans go to
    /// Tesseract, which reads them as well and three times faster.
    #[default]
    Photos,
    /// Every image.
    All,
}

impl std::str::FromStr for PpOcrImages {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "photos" => Ok(Self::Photos),
            "all" => Ok(Self::All),
            other => Err(format!("expected photos or all, not {other:?}")),
        }
    }
}

const DET_MIN_SIDE: f32 = 736.0;
const DET_MAX_SIDE: f32 = 2000.0;
const DET_THRESHOLD: f32 = 0.3;
const BOX_THRESHOLD: f32 = 0.5;
const UNCLIP_RATIO: f32 = 1.6;
const MIN_BOX_SIDE: f32 = 3.0;
const REC_HEIGHT: u32 = 48;
const REC_MIN_WIDTH: u32 = 320;
const REC_MAX_WIDTH: u32 = 3200;
const REC_BATCH: usize = 6;
const TEXT_THRESHOLD: f32 = 0.5;

/// The loaded networks (one per pool thread: sessions run one image at a time, on one core).
pub struct PpOcr {
    det: Session,
    rec: Session,
    characters: Vec<String>,
}

impl std::fmt::Debug for PpOcr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PpOcr").field("characters", &self.characters.len()).finish_non_exhaustive()
    }
}

fn environment(runtime: &Path) -> Result<ort::environment::Environment, OcrError> {
    static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let builder = ort::init_from(runtime).map_err(|e| format!("{}: {e}", runtime.display()))?;
            builder.with_name("finagent-ocr").build().map_err(|e| e.to_string())
        })
        .clone()
        .map_err(OcrError::Model)
}

fn model_file(folder: &Path, part: &str) -> Result<PathBuf, OcrError> {
    let entries = std::fs::read_dir(folder).map_err(|e| OcrError::Model(format!("{}: {e}", folder.display())))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.ends_with(".onnx") && name.contains(&format!("_{part}_")))
        })
        .collect();
    found.sort();
    found.pop().ok_or_else(|| OcrError::Model(format!("no *_{part}_*.onnx in {}", folder.display())))
}

impl PpOcr {
    /// Loads the runtime (once per process) and both networks, each on one thread.
    pub fn new(config: &PpOcrConfig) -> Result<Self, OcrError> {
        let environment = environment(&config.runtime)?;
        let session = |path: PathBuf| -> Result<Session, OcrError> {
            let failed = |e: String| OcrError::Model(format!("{}: {e}", path.display()));
            Session::builder(&environment)
                .map_err(|e| failed(e.to_string()))?
                .with_intra_threads(1)
                .map_err(|e| failed(e.to_string()))?
                .with_inter_threads(1)
                .map_err(|e| failed(e.to_string()))?
                .commit_from_file(&path)
                .map_err(|e| failed(e.to_string()))
        };
        let det = session(model_file(&config.models, "det")?)?;
        let rec = session(model_file(&config.models, "rec")?)?;
        let list = rec
            .metadata()
            .ok()
            .and_then(|metadata| metadata.custom("character"))
            .ok_or_else(|| OcrError::Model("the recognition model carries no character list".to_owned()))?;
        // Index 0 is CTC's blank; the list follows, then the space.
        let mut characters = vec![String::new()];
        characters.extend(list.lines().map(str::to_owned));
        characters.push(" ".to_owned());
        Ok(Self { det, rec, characters })
    }

    /// Reads a page: its text lines (boxes in `page`'s pixels) and the mean confidence in 0–1.
    pub fn read(&mut self, page: &GrayImage) -> Result<(Vec<TextLine>, f64), OcrError> {
        let started = std::time::Instant::now();
        let boxes = self.detect(page)?;
        let detected = started.elapsed();
        let regions = self.recognize(page, &boxes)?;
        tracing::debug!(
            width = page.width(),
            height = page.height(),
            regions = boxes.len(),
            detect_ms = detected.as_millis() as u64,
            recognize_ms = (started.elapsed() - detected).as_millis() as u64,
            "PP-OCR read"
        );
        let confidence = if regions.is_empty() {
            0.0
        } else {
            regions.iter().map(|region| region.confidence).sum::<f64>() / regions.len() as f64
        };
        Ok((as_lines(regions), confidence))
    }

    fn detect(&mut self, page: &GrayImage) -> Result<Vec<Quad>, OcrError> {
        let (width, height) = page.dimensions();
        if width < 8 || height < 8 {
            return Ok(Vec::new());
        }
        let mut ratio = 1.0f32;
        let (short, long) = (width.min(height) as f32, width.max(height) as f32);
        if short < DET_MIN_SIDE {
            ratio = DET_MIN_SIDE / short;
        }
        if long * ratio > DET_MAX_SIDE {
            ratio = DET_MAX_SIDE / long;
        }
        let round32 = |value: f32| ((value / 32.0).round() as u32).max(1) * 32;
        let (det_width, det_height) = (round32(width as f32 * ratio), round32(height as f32 * ratio));
        let resized = image::imageops::resize(page, det_width, det_height, image::imageops::FilterType::Triangle);
        let input = normalized(&resized, det_width);
        let shape = [1usize, 3, det_height as usize, det_width as usize];
        let tensor = Tensor::from_array((shape, input)).map_err(|e| OcrError::Model(e.to_string()))?;
        let outputs = self.det.run(ort::inputs![tensor]).map_err(|e| OcrError::Model(e.to_string()))?;
        let (_, probabilities) = outputs[0].try_extract_tensor::<f32>().map_err(|e| OcrError::Model(e.to_string()))?;
        if probabilities.len() != (det_width * det_height) as usize {
            return Err(OcrError::Model("detection output has an unexpected shape".to_owned()));
        }
        let scale_x = width as f32 / det_width as f32;
        let scale_y = height as f32 / det_height as f32;
        Ok(regions(probabilities, det_width as usize, det_height as usize)
            .into_iter()
            .map(|quad| quad.scaled(scale_x, scale_y))
            .filter(|quad| quad.bounds(width, height).right > quad.bounds(width, height).left + 1)
            .collect())
    }

    fn recognize(&mut self, page: &GrayImage, quads: &[Quad]) -> Result<Vec<Region>, OcrError> {
        let (width, height) = page.dimensions();
        let crops: Vec<(BoundingBox, GrayImage)> =
            quads.iter().map(|quad| (quad.bounds(width, height), quad.sample(page, REC_HEIGHT))).collect();
        let mut order: Vec<usize> = (0..crops.len()).collect();
        order.sort_by_key(|&index| crops[index].1.width());
        let mut regions = Vec::with_capacity(crops.len());
        for batch in order.chunks(REC_BATCH) {
            let batch_width = batch.iter().map(|&index| crops[index].1.width()).max().unwrap_or(0).max(REC_MIN_WIDTH);
            let plane = (REC_HEIGHT * batch_width) as usize;
            let mut input = vec![0f32; batch.len() * 3 * plane];
            for (slot, &index) in batch.iter().enumerate() {
                let line = &crops[index].1;
                let values = normalized(line, batch_width);
                input[slot * 3 * plane..(slot + 1) * 3 * plane].copy_from_slice(&values);
            }
            let shape = [batch.len(), 3, REC_HEIGHT as usize, batch_width as usize];
            let tensor = Tensor::from_array((shape, input)).map_err(|e| OcrError::Model(e.to_string()))?;
            let outputs = self.rec.run(ort::inputs![tensor]).map_err(|e| OcrError::Model(e.to_string()))?;
            let (shape, scores) = outputs[0].try_extract_tensor::<f32>().map_err(|e| OcrError::Model(e.to_string()))?;
            let dims: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
            let [items, steps, classes] = dims[..] else {
                return Err(OcrError::Model("recognition output has an unexpected shape".to_owned()));
            };
            if items != batch.len() || classes != self.characters.len() {
                return Err(OcrError::Model(format!(
                    "recognition output has {classes} classes for a list of {}",
                    self.characters.len()
                )));
            }
            for (slot, &index) in batch.iter().enumerate() {
                let item = &scores[slot * steps * classes..(slot + 1) * steps * classes];
                let (text, confidence) = ctc_decode(item, classes, &self.characters);
                let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                if !text.is_empty() && confidence >= TEXT_THRESHOLD {
                    regions.push(Region { bbox: crops[index].0, text, confidence: f64::from(confidence) });
                }
            }
        }
        Ok(regions)
    }
}

/// One region read.
#[derive(Clone, Debug, PartialEq)]
struct Region {
    bbox: BoundingBox,
    text: String,
    confidence: f64,
}

/// Gray pixels as the networks want them: (v / 255 − 0.5) / 0.5, three equal channels, the row
/// padded to `width` with zeros.
fn normalized(image: &GrayImage, width: u32) -> Vec<f32> {
    let (image_width, height) = image.dimensions();
    let plane = (width * height) as usize;
    let mut values = vec![0f32; 3 * plane];
    for (x, y, pixel) in image.enumerate_pixels() {
        if x >= width {
            continue;
        }
        let value = f32::from(pixel.0[0]) / 127.5 - 1.0;
        let at = (y * width + x) as usize;
        values[at] = value;
        values[plane + at] = value;
        values[2 * plane + at] = value;
    }
    debug_assert!(image_width <= width);
    values
}

/// A text region found by detection: a rectangle, possibly turned a little, given by its
/// top-left, top-right and bottom-left corners.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Quad {
    origin: (f32, f32),
    along: (f32, f32),
    across: (f32, f32),
}

impl Quad {
    fn scaled(self, sx: f32, sy: f32) -> Self {
        Self {
            origin: (self.origin.0 * sx, self.origin.1 * sy),
            along: (self.along.0 * sx, self.along.1 * sy),
            across: (self.across.0 * sx, self.across.1 * sy),
        }
    }

    fn length(vector: (f32, f32)) -> f32 {
        vector.0.hypot(vector.1)
    }

    /// The upright box around it, clamped to a `width` × `height` page.
    fn bounds(&self, width: u32, height: u32) -> BoundingBox {
        let corners = [
            self.origin,
            (self.origin.0 + self.along.0, self.origin.1 + self.along.1),
            (self.origin.0 + self.across.0, self.origin.1 + self.across.1),
            (self.origin.0 + self.along.0 + self.across.0, self.origin.1 + self.along.1 + self.across.1),
        ];
        let min_x = corners.iter().map(|c| c.0).fold(f32::MAX, f32::min);
        let max_x = corners.iter().map(|c| c.0).fold(f32::MIN, f32::max);
        let min_y = corners.iter().map(|c| c.1).fold(f32::MAX, f32::min);
        let max_y = corners.iter().map(|c| c.1).fold(f32::MIN, f32::max);
        BoundingBox {
            left: (min_x.floor() as i32).clamp(0, width as i32),
            top: (min_y.floor() as i32).clamp(0, height as i32),
            right: (max_x.ceil() as i32).clamp(0, width as i32),
            bottom: (max_y.ceil() as i32).clamp(0, height as i32),
        }
    }

    /// The region cut out of `page` and straightened, `line_height` pixels high (bilinear).
    fn sample(&self, page: &GrayImage, line_height: u32) -> GrayImage {
        let (length, thickness) = (Self::length(self.along), Self::length(self.across).max(1.0));
        let width = ((line_height as f32 * length / thickness).ceil() as u32).clamp(1, REC_MAX_WIDTH);
        let (page_width, page_height) = page.dimensions();
        let at = |x: i64, y: i64| -> f32 {
            let x = x.clamp(0, i64::from(page_width) - 1) as u32;
            let y = y.clamp(0, i64::from(page_height) - 1) as u32;
            f32::from(page.get_pixel(x, y).0[0])
        };
        GrayImage::from_fn(width, line_height, |u, v| {
            let (fu, fv) = ((u as f32 + 0.5) / width as f32, (v as f32 + 0.5) / line_height as f32);
            let x = self.origin.0 + self.along.0 * fu + self.across.0 * fv - 0.5;
            let y = self.origin.1 + self.along.1 * fu + self.across.1 * fv - 0.5;
            let (x0, y0) = (x.floor(), y.floor());
            let (dx, dy) = (x - x0, y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let top = at(x0, y0) * (1.0 - dx) + at(x0 + 1, y0) * dx;
            let bottom = at(x0, y0 + 1) * (1.0 - dx) + at(x0 + 1, y0 + 1) * dx;
            image::Luma([(top * (1.0 - dy) + bottom * dy).round().clamp(0.0, 255.0) as u8])
        })
    }
}

/// Text lines turn by at most this much (radians); a rounder blob is taken as upright.
const MAX_LINE_ANGLE: f32 = 0.5;

/// The text regions of a DB probability map, in the map's pixels: thresholded and dilated by
/// one pixel; each 8-connected region whose mean probability reaches [`BOX_THRESHOLD`] becomes
/// the rectangle around it along its principal axis, grown by the unclip distance.
fn regions(probabilities: &[f32], width: usize, height: usize) -> Vec<Quad> {
    let mut mask = vec![false; width * height];
    for y in 0..height {
        for x in 0..width {
            if probabilities[y * width + x] > DET_THRESHOLD {
                // A 2×2 dilation, as PaddleOCR does.
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < width && ny < height {
                        mask[ny * width + nx] = true;
                    }
                }
            }
        }
    }
    let mut seen = vec![false; width * height];
    let mut stack = Vec::new();
    let mut pixels = Vec::new();
    let mut found = Vec::new();
    for start in 0..width * height {
        if !mask[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        pixels.clear();
        while let Some(at) = stack.pop() {
            pixels.push(at);
            let (x, y) = (at % width, at / width);
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let next = ny as usize * width + nx as usize;
                    if mask[next] && !seen[next] {
                        seen[next] = true;
                        stack.push(next);
                    }
                }
            }
        }
        let count = pixels.len() as f32;
        let score = pixels.iter().map(|&at| probabilities[at]).sum::<f32>() / count;
        if score < BOX_THRESHOLD || count < MIN_BOX_SIDE * MIN_BOX_SIDE {
            continue;
        }
        let point = |at: usize| ((at % width) as f32 + 0.5, (at / width) as f32 + 0.5);
        let (mut mean_x, mut mean_y) = (0f32, 0f32);
        for &at in &pixels {
            let (x, y) = point(at);
            mean_x += x;
            mean_y += y;
        }
        (mean_x, mean_y) = (mean_x / count, mean_y / count);
        let (mut xx, mut yy, mut xy) = (0f32, 0f32, 0f32);
        for &at in &pixels {
            let (x, y) = point(at);
            let (dx, dy) = (x - mean_x, y - mean_y);
            xx += dx * dx;
            yy += dy * dy;
            xy += dx * dy;
        }
        let mut angle = 0.5 * (2.0 * xy).atan2(xx - yy);
        if angle.abs() > MAX_LINE_ANGLE {
            angle = 0.0;
        }
        let (along, across) = ((angle.cos(), angle.sin()), (-angle.sin(), angle.cos()));
        let (mut min_a, mut max_a, mut min_b, mut max_b) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for &at in &pixels {
            let (x, y) = point(at);
            let (dx, dy) = (x - mean_x, y - mean_y);
            let (a, b) = (dx * along.0 + dy * along.1, dx * across.0 + dy * across.1);
            min_a = min_a.min(a - 0.5);
            max_a = max_a.max(a + 0.5);
            min_b = min_b.min(b - 0.5);
            max_b = max_b.max(b + 0.5);
        }
        let (length, thickness) = (max_a - min_a, max_b - min_b);
        if length.min(thickness) < MIN_BOX_SIDE {
            continue;
        }
        let distance = length * thickness * UNCLIP_RATIO / (2.0 * (length + thickness));
        let (min_a, max_a, min_b, max_b) = (min_a - distance, max_a + distance, min_b - distance, max_b + distance);
        found.push(Quad {
            origin: (mean_x + along.0 * min_a + across.0 * min_b, mean_y + along.1 * min_a + across.1 * min_b),
            along: (along.0 * (max_a - min_a), along.1 * (max_a - min_a)),
            across: (across.0 * (max_b - min_b), across.1 * (max_b - min_b)),
        });
    }
    found
}

/// Greedy CTC decoding of one item's `steps × classes` scores: the best class at each step,
/// repeats merged, blanks dropped. Returns the text and the mean probability of its characters.
///
/// The recognition network rarely emits the space of Latin text (`BahnhofstraBe215`,
/// `10115Berlin`), but its steps keep the characters' positions: where the step between two
/// characters is well over the line's usual character pitch, a space is put back ([`WORD_GAP`]).
fn ctc_decode(scores: &[f32], classes: usize, characters: &[String]) -> (String, f32) {
    let mut emitted: Vec<(usize, &str)> = Vec::new();
    let mut kept = Vec::new();
    let mut previous = 0;
    for (index, step) in scores.chunks_exact(classes).enumerate() {
        let (best, probability) = step
            .iter()
            .copied()
            .enumerate()
            .fold((0, f32::MIN), |best, (index, value)| if value > best.1 { (index, value) } else { best });
        if best != 0
            && best != previous
            && let Some(character) = characters.get(best)
        {
            emitted.push((index, character.as_str()));
            kept.push(probability);
        }
        previous = best;
    }
    let confidence = if kept.is_empty() { 0.0 } else { kept.iter().sum::<f32>() / kept.len() as f32 };
    (with_word_gaps(&emitted), confidence)
}

/// How much wider than the line's median character pitch a gap must be to hold a space, and by
/// how many steps at least (a step is four pixels of the 48-pixel-high line).
const WORD_GAP: (f64, usize) = (1.75, 3);

/// The characters joined, with a space where the gap before a character is a word gap.
fn with_word_gaps(emitted: &[(usize, &str)]) -> String {
    let mut pitches: Vec<usize> = emitted.windows(2).map(|pair| pair[1].0 - pair[0].0).collect();
    pitches.sort_unstable();
    let median = pitches.get(pitches.len() / 2).copied();
    let mut text = String::new();
    for (index, &(step, character)) in emitted.iter().enumerate() {
        if index > 0
            && pitches.len() >= 3
            && let Some(median) = median
        {
            let (previous_step, previous) = emitted[index - 1];
            let gap = step - previous_step;
            let wide = gap as f64 >= median as f64 * WORD_GAP.0 && gap >= median + WORD_GAP.1;
            if wide && previous != " " && character != " " {
                text.push(' ');
            }
        }
        text.push_str(character);
    }
    text
}

/// Each region as a line of its own, top to bottom (extraction joins the ones side by side).
fn as_lines(mut regions: Vec<Region>) -> Vec<TextLine> {
    regions.sort_by_key(|region| (region.bbox.top, region.bbox.left));
    regions
        .into_iter()
        .map(|region| TextLine { text: region.text, bbox: region.bbox, confidence: region.confidence })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_of_probability_becomes_one_grown_box() {
        let (width, height) = (40, 20);
        let mut map = vec![0f32; width * height];
        for y in 8..12 {
            for x in 5..30 {
                map[y * width + x] = 0.9;
            }
        }
        // A faint region below the box threshold, and a speck too small to keep.
        for x in 32..38 {
            map[2 * width + x] = 0.35;
            map[3 * width + x] = 0.35;
            map[4 * width + x] = 0.35;
        }
        map[17 * width + 2] = 0.99;
        let found = regions(&map, width, height);
        assert_eq!(found.len(), 1, "{found:?}");
        let bounds = found[0].bounds(40, 20);
        assert!(bounds.left < 5 && bounds.right > 31 && bounds.top < 8 && bounds.bottom > 13, "{found:?}");
        assert!(found[0].along.1.abs() < 1e-3, "an upright line stays upright: {found:?}");
    }

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let characters: Vec<String> = ["", "a", "b", " "].iter().map(|s| (*s).to_owned()).collect();
        // a a blank a b b space b
        let steps = [1, 1, 0, 1, 2, 2, 3, 2];
        let mut scores = vec![0f32; steps.len() * 4];
        for (step, &class) in steps.iter().enumerate() {
            scores[step * 4 + class] = 0.8;
        }
        let (text, confidence) = ctc_decode(&scores, 4, &characters);
        assert_eq!(text, "aab b");
        assert!((confidence - 0.8).abs() < 1e-6);
    }

    #[test]
    fn a_wide_gap_between_characters_is_a_space() {
        // Characters every 5 steps, then a gap of 11 before `2`: `STRASSE 24`.
        let emitted: Vec<(usize, &str)> =
            [(0, "S"), (5, "T"), (10, "R"), (15, "A"), (20, "S"), (25, "S"), (30, "E"), (41, "2"), (46, "4")].to_vec();
        assert_eq!(with_word_gaps(&emitted), "STRASSE 24");
        // An uneven but narrow gap (a wide letter) is not.
        let uneven: Vec<(usize, &str)> = [(0, "W"), (8, "I"), (11, "N"), (16, "E"), (21, "S")].to_vec();
        assert_eq!(with_word_gaps(&uneven), "WINES");
        // A space the network did emit is not doubled.
        let spaced: Vec<(usize, &str)> = [(0, "A"), (5, "B"), (9, " "), (16, "C"), (21, "D")].to_vec();
        assert_eq!(with_word_gaps(&spaced), "AB CD");
    }
}
