//! The OCR engine: one Tesseract instance (through `leptess`), created once and reused.
//!
//! Tesseract is not thread-safe and costs ~100 ms to initialise, so each worker thread owns one
//! [`OcrEngine`] for its whole life (see [`crate::pool`]). Recognition runs page segmentation mode
//! 6 (a single uniform block, which suits receipts' one column of text best); when that yields
//! little text or low confidence, a second pass runs on a contrast-stretched copy (faint thermal
//! print) and the better page is kept. Word boxes and confidences come from Tesseract's TSV output and are grouped into lines.

use std::ffi::CString;
use std::time::Instant;

use finagent_core::receipt::EngineInfo;
use finagent_extract::{BoundingBox, Page, TextLine};
use leptess::tesseract::TessApi;

use crate::preprocess::{PreparedImage, binarised, stretch_contrast};

/// Why OCR failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrError {
    /// Tesseract could not start (language data missing?).
    #[error("failed to initialise tesseract with language {language:?}: is tesseract-ocr-{language} installed?")]
    Init {
        /// Language requested.
        language: String,
    },
    /// A Tesseract variable was refused.
    #[error("failed to set tesseract variable {0}")]
    Variable(String),
    /// The bitmap was refused.
    #[error("failed to hand the image to tesseract: {0}")]
    SetImage(String),
    /// Recognition failed.
    #[error("failed to recognise the image")]
    Recognize,
    /// The text output was not UTF-8 or absent.
    #[error("failed to read tesseract's output")]
    Output,
    /// The PP-OCR runtime or a network could not be loaded or run.
    #[error("PP-OCR failed: {0}")]
    Model(String),
}

/// What the engine needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Folder of `*.traineddata` (None: Tesseract's default).
    pub tessdata: Option<String>,
    /// Language(s), e.g. `eng`.
    pub language: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self { tessdata: None, language: "eng".to_owned() }
    }
}

/// A page read by the engine, with timing.
#[derive(Clone, Debug)]
pub struct Recognized {
    /// The lines.
    pub page: Page,
    /// Mean word confidence in 0–1.
    pub confidence: f64,
    /// How many passes ran.
    pub passes: u32,
    /// Milliseconds spent in recognition.
    pub ocr_ms: u64,
    /// The image the page was read from when it is not the one given (turned upright, or
    /// binarised); its boxes are in its frame.
    pub turned: Option<PreparedImage>,
    /// What orientation detection decided, when it ran: the quarter turns whose reading was kept,
    /// or `None` when the page stayed as given.
    pub orientation: Option<Option<u32>>,
}

/// Words below this many mean the first pass found too little text (receipts carry 40 or more).
const FEW_WORDS: usize = 25;
/// Mean confidence below this (0–1) also triggers the second pass.
const LOW_CONFIDENCE: f64 = 0.6;

/// One Tesseract instance.
#[derive(Debug)]
pub struct OcrEngine {
    api: TessApi,
    info: EngineInfo,
    language: String,
}

impl OcrEngine {
    /// Initialises Tesseract. Costs ~100 ms: create once per thread.
    pub fn new(config: &EngineConfig) -> Result<Self, OcrError> {
        let api = TessApi::new(config.tessdata.as_deref(), &config.language)
            .map_err(|_| OcrError::Init { language: config.language.clone() })?;
        let version = tesseract_plumbing::version().to_string_lossy().into_owned();
        let mut engine =
            Self { api, info: EngineInfo { name: "tesseract".to_owned(), version }, language: config.language.clone() };
        // Receipts are never inverted text; skipping the inverted retry saves time on faint lines.
        engine.set("tessedit_do_invert", "0")?;
        // Tesseract's diagnostics ("Image too small to scale!!") are not for our users.
        engine.set("debug_file", "/dev/null")?;
        Ok(engine)
    }

    /// Which engine this is.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    fn set(&mut self, name: &str, value: &str) -> Result<(), OcrError> {
        let (Ok(c_name), Ok(c_value)) = (CString::new(name), CString::new(value)) else {
            return Err(OcrError::Variable(name.to_owned()));
        };
        self.api.raw.set_variable(&c_name, &c_value).map_err(|_| OcrError::Variable(name.to_owned()))
    }

    fn pass(&mut self, image: &PreparedImage, mode: &str) -> Result<(Page, f64), OcrError> {
        self.set("tessedit_pageseg_mode", mode)?;
        let (width, height) = image.gray.dimensions();
        let (Ok(w), Ok(h)) = (i32::try_from(width), i32::try_from(height)) else {
            return Err(OcrError::SetImage("image too large".to_owned()));
        };
        self.api.raw.set_image(image.gray.as_raw(), w, h, 1, w).map_err(|e| OcrError::SetImage(format!("{e:?}")))?;
        self.api.raw.set_source_resolution(image.ppi);
        if self.api.recognize() != 0 {
            return Err(OcrError::Recognize);
        }
        let tsv = self.api.get_tsv_text(0).map_err(|_| OcrError::Output)?;
        let (mut page, confidence) = page_from_tsv(&tsv, image.scale, width, height);
        page.shift(image.offset);
        Ok((page, confidence))
    }

    /// Re-reads one line of a prepared image, enlarged, as a single text line. `bbox` is in the
    /// original image's pixels. Returns the text and its mean confidence in 0–1.
    pub fn reread_line(&mut self, image: &PreparedImage, bbox: BoundingBox) -> Result<Option<(String, f64)>, OcrError> {
        let (width, height) = image.gray.dimensions();
        let (dx, dy) = (i64::from(image.offset.0), i64::from(image.offset.1));
        let scaled_x = |value: i32| ((i64::from(value) - dx) as f32 * image.scale).round() as i64;
        let scaled_y = |value: i32| ((i64::from(value) - dy) as f32 * image.scale).round() as i64;
        let pad = 4;
        let left = (scaled_x(bbox.left) - pad).clamp(0, i64::from(width));
        let top = (scaled_y(bbox.top) - pad).clamp(0, i64::from(height));
        let right = (scaled_x(bbox.right) + pad).clamp(0, i64::from(width));
        let bottom = (scaled_y(bbox.bottom) + pad).clamp(0, i64::from(height));
        if right - left < 8 || bottom - top < 8 {
            return Ok(None);
        }
        let (Ok(crop_width), Ok(crop_height)) = (u32::try_from(right - left), u32::try_from(bottom - top)) else {
            return Ok(None);
        };
        let (Ok(left), Ok(top)) = (u32::try_from(left), u32::try_from(top)) else { return Ok(None) };
        let crop = image::imageops::crop_imm(&image.gray, left, top, crop_width, crop_height).to_image();
        // Lines shorter than ~48 px are enlarged so the glyphs reach the size the LSTM reads best.
        let factor = (48.0 / crop_height as f32).clamp(1.0, 3.0);
        let crop = if factor > 1.05 {
            let new_width = (crop_width as f32 * factor).round() as u32;
            let new_height = (crop_height as f32 * factor).round() as u32;
            image::imageops::resize(&crop, new_width, new_height, image::imageops::FilterType::CatmullRom)
        } else {
            crop
        };
        let line = PreparedImage {
            gray: crop,
            scale: 1.0,
            offset: (0, 0),
            ppi: image.ppi,
            info: image.info,
            steps: vec![],
            sideways: false,
            uneven: false,
            photo: false,
            colour: false,
        };
        let (page, confidence) = self.pass(&line, "7")?;
        let text = page.lines.iter().map(|line| line.text.as_str()).collect::<Vec<_>>().join(" ");
        Ok((!text.is_empty()).then_some((text, confidence)))
    }

    /// Tesseract's orientation detection on a copy at most 1000 px wide: page segmentation with
    /// orientation and script detection (mode 1) marks each line it found turned with a
    /// `textangle`; when most lines agree, the quarter turns (clockwise) that set it upright.
    pub fn detect_orientation(&mut self, image: &PreparedImage) -> Result<Option<u32>, OcrError> {
        let factor = (1000.0 / image.gray.width().max(image.gray.height()) as f32).min(1.0);
        let small = if factor < 1.0 {
            let width = ((image.gray.width() as f32 * factor) as u32).max(1);
            let height = ((image.gray.height() as f32 * factor) as u32).max(1);
            image::imageops::resize(&image.gray, width, height, image::imageops::FilterType::Triangle)
        } else {
            image.gray.clone()
        };
        self.set("tessedit_pageseg_mode", "1")?;
        let (width, height) = small.dimensions();
        let (Ok(w), Ok(h)) = (i32::try_from(width), i32::try_from(height)) else { return Ok(None) };
        self.api.raw.set_image(small.as_raw(), w, h, 1, w).map_err(|e| OcrError::SetImage(format!("{e:?}")))?;
        self.api.raw.set_source_resolution(((image.ppi as f32) * factor).round().max(70.0) as i32);
        if self.api.recognize() != 0 {
            return Err(OcrError::Recognize);
        }
        let hocr = self.api.get_hocr_text(0).map_err(|_| OcrError::Output)?;
        Ok(orientation_from_hocr(&hocr))
    }

    /// Reads a prepared image: a first pass; when it finds too little, Tesseract's orientation
    /// detection (a photo taken sideways) and a pass on a contrast-stretched copy (faint thermal
    /// print), keeping whichever page says more, with more confidence.
    pub fn recognize(&mut self, image: &PreparedImage) -> Result<Recognized, OcrError> {
        self.recognize_with(image, true)
    }

    /// [`OcrEngine::recognize`], with the binarised and contrast-stretched passes only when
    /// `fallbacks`: a caller with a better reader for a weak page (PP-OCR for a photo) skips them.
    pub fn recognize_with(&mut self, image: &PreparedImage, fallbacks: bool) -> Result<Recognized, OcrError> {
        let started = Instant::now();
        let (mut page, mut confidence) = self.pass(image, "6")?;
        let mut passes = 1;
        let mut turned = None;
        let words = |page: &Page| page.lines.iter().map(|line| line.text.split(' ').count()).sum::<usize>();
        let weak = |page: &Page, confidence: f64| words(page) < FEW_WORDS || confidence < LOW_CONFIDENCE;
        let score = |page: &Page, confidence: f64| words(page) as f64 * confidence;
        let detected =
            if image.sideways && weak(&page, confidence) { Some(self.detect_orientation(image)?) } else { None };
        let mut orientation = detected.map(|_| None);
        if let Some(Some(quarter_turns)) = detected {
            let mut upright = image.rotated(quarter_turns);
            // Boxes of a turned image are in its own frame.
            upright.offset = (0, 0);
            upright.scale = image.scale;
            let (second, second_confidence) = self.pass(&upright, "6")?;
            passes += 1;
            if turned_reading_wins((words(&page), confidence), (words(&second), second_confidence)) {
                (page, confidence) = (second, second_confidence);
                turned = Some(upright);
                orientation = Some(Some(quarter_turns));
            }
        }
        let current = turned.as_ref().unwrap_or(image);
        let mut binarised_won = None;
        if fallbacks && current.uneven && weak(&page, confidence) {
            let local = binarised(current);
            let (second, second_confidence) = self.pass(&local, "6")?;
            passes += 1;
            if score(&second, second_confidence) > score(&page, confidence) {
                (page, confidence) = (second, second_confidence);
                binarised_won = Some(local);
            }
        }
        let current = binarised_won.as_ref().unwrap_or(current);
        if fallbacks && weak(&page, confidence) {
            let stretched = PreparedImage { gray: stretch_contrast(&current.gray, 0.05, 0.5), ..current.clone() };
            let (second, second_confidence) = self.pass(&stretched, "6")?;
            passes += 1;
            if score(&second, second_confidence) > score(&page, confidence) {
                (page, confidence) = (second, second_confidence);
            }
        }
        if turned.is_none() && current.offset != (0, 0) {
            // A cropped photo: boxes are in the original's pixels, so is the page.
            page.width = i32::try_from(current.info.width).unwrap_or(i32::MAX);
            page.height = i32::try_from(current.info.height).unwrap_or(i32::MAX);
        }
        let ocr_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The image the page was read from, when it is not the one given.
        let turned = binarised_won.or(turned);
        Ok(Recognized { page, confidence, passes, ocr_ms, turned, orientation })
    }

    /// Reads a prepared image as sparse text (page segmentation mode 11): each run of words
    /// apart, wherever it sits. A document set in columns (an invoice's seller block beside its
    /// dates) reads badly as one uniform block, because its columns' lines sit at different
    /// heights; read sparse, its rows are rebuilt from the runs' boxes.
    pub fn recognize_sparse(&mut self, image: &PreparedImage) -> Result<Recognized, OcrError> {
        let started = Instant::now();
        let (page, confidence) = self.pass(image, "11")?;
        let ocr_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(Recognized { page, confidence, passes: 1, ocr_ms, turned: None, orientation: None })
    }

    /// The language(s) this engine reads.
    pub fn language(&self) -> &str {
        &self.language
    }
}

/// Whether a page's reading turned upright (its words and mean confidence) replaces the reading as
/// given: it says more (words × confidence) and with more confidence. Turned the right way, a page
/// reads with more confidence, not only more words: a faint upright page turned by a wrong guess
/// reads as many words of debris.
pub fn turned_reading_wins(given: (usize, f64), turned: (usize, f64)) -> bool {
    let score = |(words, confidence): (usize, f64)| words as f64 * confidence;
    score(turned) > score(given) && turned.1 > given.1
}

/// The quarter turns (clockwise) that set upright an image whose hOCR lines carry `textangle`:
/// `Some` when more than half of the lines agree on 90, 180 or 270.
pub fn orientation_from_hocr(hocr: &str) -> Option<u32> {
    let lines = hocr.matches("class='ocr_line'").count() + hocr.matches("class='ocr_caption'").count();
    let angle = |value: &str| hocr.matches(&format!("textangle {value}")).count();
    let (ninety, half, two_seventy) = (angle("90;"), angle("180;"), angle("270;"));
    let best = [(1, ninety), (2, half), (3, two_seventy)].into_iter().max_by_key(|(_, count)| *count)?;
    (best.1 * 2 > lines.max(1) && best.1 >= 2).then_some(best.0)
}

/// A word Tesseract read: its text, box and confidence (0–1).
type Word<'a> = (&'a str, BoundingBox, f64);

/// Groups Tesseract's TSV words into lines, mapping boxes back to the original image's pixels.
/// Returns the page and the mean word confidence in 0–1.
pub fn page_from_tsv(tsv: &str, scale: f32, width: u32, height: u32) -> (Page, f64) {
    let unscale = |value: i32| (value as f32 / scale).round() as i32;
    // Each of Tesseract's lines as its words, with their boxes and confidences.
    let mut lines: Vec<(String, Vec<Word<'_>>)> = Vec::new();
    let mut confidences = Vec::new();
    for row in tsv.lines() {
        let fields: Vec<&str> = row.split('\t').collect();
        if fields.len() < 12 || fields[0] != "5" {
            continue;
        }
        let text = fields[11].trim();
        let Ok(confidence) = fields[10].parse::<f64>() else {
            continue;
        };
        if text.is_empty() || confidence < 0.0 {
            continue;
        }
        let numbers: Vec<i32> = fields[6..10].iter().filter_map(|f| f.parse().ok()).collect();
        if numbers.len() != 4 {
            continue;
        }
        let bbox = BoundingBox {
            left: unscale(numbers[0]),
            top: unscale(numbers[1]),
            right: unscale(numbers[0] + numbers[2]),
            bottom: unscale(numbers[1] + numbers[3]),
        };
        let key = format!("{}:{}:{}", fields[2], fields[3], fields[4]);
        confidences.push(confidence / 100.0);
        match lines.last_mut() {
            Some((last_key, words)) if *last_key == key => words.push((text, bbox, confidence / 100.0)),
            _ => lines.push((key, vec![(text, bbox, confidence / 100.0)])),
        }
    }
    let join = |words: &[Word<'_>]| TextLine {
        text: words.iter().map(|word| word.0).collect::<Vec<_>>().join(" "),
        bbox: words.iter().skip(1).fold(words[0].1, |acc, word| acc.union(&word.1)),
        confidence: words.iter().map(|word| word.2).sum::<f64>() / words.len().max(1) as f64,
    };
    let mean = if confidences.is_empty() { 0.0 } else { confidences.iter().sum::<f64>() / confidences.len() as f64 };
    let mut page = Page {
        lines: lines.iter().map(|(_, words)| join(words)).collect(),
        width: i32::try_from(width).map_or(i32::MAX, unscale),
        height: i32::try_from(height).map_or(i32::MAX, unscale),
    };
    // On a document (a letter, an invoice), Tesseract's lines run across its columns (the seller's
    // name and the title beside it): a wide gap between two words ends a line there, as the
    // columns are read apart ([`finagent_extract::document`]). Receipts keep Tesseract's lines.
    if finagent_extract::document::is_document(&page) {
        page.lines = lines
            .iter()
            .flat_map(|(_, words)| {
                let height = f64::from(join(words).bbox.height());
                let mut parts: Vec<&[Word<'_>]> = Vec::new();
                let mut start = 0;
                for index in 1..words.len() {
                    let (previous, next) = (&words[index - 1].1, &words[index].1);
                    if f64::from(next.left - previous.right) > finagent_extract::document::CELL_GAP * height {
                        parts.push(&words[start..index]);
                        start = index;
                    }
                }
                parts.push(&words[start..]);
                parts.into_iter().map(join).collect::<Vec<_>>()
            })
            .collect();
    }
    (page, mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turned_reading_wins_only_when_it_is_also_more_confident() {
        // Upright and faint, turned by a wrong guess: more words of debris, less confidence.
        assert!(!turned_reading_wins((30, 0.62), (55, 0.41)));
        // Sideways, read upright: more words and more confidence.
        assert!(turned_reading_wins((12, 0.35), (48, 0.81)));
        // More confident but saying less.
        assert!(!turned_reading_wins((60, 0.70), (20, 0.75)));
    }

    #[test]
    fn tsv_words_become_lines_in_original_pixels() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   5\t1\t1\t1\t1\t1\t20\t10\t40\t20\t96.5\tTOTAL:\n\
                   5\t1\t1\t1\t1\t2\t200\t12\t30\t18\t90.1\t9.00\n\
                   5\t1\t1\t1\t2\t1\t20\t50\t40\t20\t80\tCASH\n\
                   4\t1\t1\t1\t3\t0\t0\t0\t1\t1\t-1\t\n";
        let (page, mean) = page_from_tsv(tsv, 2.0, 600, 800);
        assert_eq!(
            orientation_from_hocr(
                "<span class='ocr_line' title='textangle 270; x'><span class='ocr_line' title='textangle 270; y'><span class='ocr_line' title='bbox'>"
            ),
            Some(3)
        );
        assert_eq!(
            orientation_from_hocr("<span class='ocr_line' title='bbox'><span class='ocr_line' title='bbox'>"),
            None
        );
        assert_eq!(page.lines.len(), 2);
        assert_eq!(page.lines[0].text, "TOTAL: 9.00");
        assert_eq!(page.lines[0].bbox, BoundingBox { left: 10, top: 5, right: 115, bottom: 15 });
        assert!((page.lines[0].confidence - 0.933).abs() < 0.001);
        assert!((mean - 0.888).abs() < 0.001);
        assert_eq!((page.width, page.height), (300, 400));
    }

    /// An invoice's first lines as Tesseract's uniform block gives them: the seller's name runs
    /// into the title, the street into the invoice number. On a page that wide in line heights
    /// the wide gaps end the lines; on a receipt the same words stay one line.
    #[test]
    fn a_documents_lines_end_at_wide_gaps() {
        let mut tsv = String::from(
            "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n",
        );
        let words = [
            (1, 160, "Schneider"),
            (1, 330, "Software"),
            (1, 480, "GmbH"),
            (1, 1300, "Rechnung"),
            (2, 160, "Hauptstraße"),
            (2, 360, "132"),
            (2, 1000, "Nr.:"),
            (2, 1100, "2026-1244"),
            (3, 160, "10115"),
            (3, 270, "Berlin"),
            (4, 160, "Beratung"),
            (5, 160, "Bürostühle"),
            (6, 160, "Catering"),
        ];
        for (line, left, text) in words {
            let width = i32::try_from(text.chars().count()).unwrap_or(0) * 16;
            tsv.push_str(&format!("5\t1\t1\t1\t{line}\t1\t{left}\t{}\t{width}\t28\t90\t{text}\n", line * 40));
        }
        let (page, _) = page_from_tsv(&tsv, 1.0, 1654, 2339);
        let texts: Vec<&str> = page.lines.iter().map(|line| line.text.as_str()).collect();
        assert_eq!(
            &texts[..5],
            ["Schneider Software GmbH", "Rechnung", "Hauptstraße 132", "Nr.: 2026-1244", "10115 Berlin"]
        );
        // The same words squeezed onto a till roll's width stay Tesseract's lines.
        let narrow = tsv.replace("\t1300\t", "\t560\t").replace("\t1000\t", "\t440\t").replace("\t1100\t", "\t510\t");
        let (page, _) = page_from_tsv(&narrow, 1.0, 700, 2339);
        assert_eq!(page.lines[0].text, "Schneider Software GmbH Rechnung");
    }
}
