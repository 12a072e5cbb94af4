//! How one receipt file is read: which reader reads an image ([`route`], pure), the passes of
//! Tesseract and PP-OCR, the language pass, the closer re-read of doubtful lines, and PDFs (the
//! text layer, or the pages rendered and read). It runs on the calling thread with the engines it
//! is given; [`crate::pool`] owns the threads and the engines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use finagent_core::receipt::{EngineInfo, ReceiptResult, Timings};
use finagent_extract::{self as extract, Context, Extraction, Page, date, recheck};
use finagent_platform::image_input::{self, ImageError, ImageLimits, MediaType};
use finagent_platform::pdf_input;

use crate::engine::{EngineConfig, OcrEngine, OcrError};
use crate::pdf::{self, PdfError};
use crate::ppocr::{PpOcr, PpOcrConfig, PpOcrImages};
use crate::preprocess::{self, PreparedImage};

/// Why an image produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// The image itself is unusable; retrying cannot help.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The OCR engine failed.
    #[error(transparent)]
    Ocr(#[from] OcrError),
    /// A PDF could not be read.
    #[error(transparent)]
    Pdf(#[from] PdfError),
    /// The per-image time limit passed.
    #[error("failed to finish OCR within {0:?}")]
    Timeout(Duration),
    /// The engine panicked on this image.
    #[error("failed to process the image: the OCR engine crashed")]
    Crashed,
    /// The pool has shut down.
    #[error("failed to process the image: the OCR pool is shut down")]
    Closed,
}

impl ProcessError {
    /// Whether another attempt could succeed (a bad image never will).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Image(_) => false,
            Self::Pdf(error) => error.is_retryable(),
            _ => true,
        }
    }
}

/// The Tesseract language data to read a receipt in `language` (ISO 639-1) with, next to
/// English; `None` where English's model reads the language's letters well enough (Malay,
/// Indonesian) or the language is not supported.
pub fn tesseract_language(language: &str) -> Option<&'static str> {
    match language {
        "de" => Some("deu"),
        "fr" => Some("fra"),
        "es" => Some("spa"),
        "it" => Some("ita"),
        "nl" => Some("nld"),
        "pt" => Some("por"),
        _ => None,
    }
}

/// The engines of one pool thread: the configured one, and one per further language, created
/// the first time a receipt needs it.
#[derive(Debug)]
pub struct Engines {
    config: EngineConfig,
    primary: OcrEngine,
    others: HashMap<String, Option<OcrEngine>>,
    language_pass: bool,
    reader: Option<(PpOcr, PpOcrImages)>,
}

impl Engines {
    /// Starts the configured engine.
    pub fn new(config: &EngineConfig) -> Result<Self, OcrError> {
        Ok(Self {
            config: config.clone(),
            primary: OcrEngine::new(config)?,
            others: HashMap::new(),
            language_pass: true,
            reader: None,
        })
    }

    /// The configured engine, the language pass when `language_pass`, and PP-OCR when configured.
    pub fn with_readers(
        config: &EngineConfig,
        language_pass: bool,
        ppocr: Option<&PpOcrConfig>,
    ) -> Result<Self, OcrError> {
        let mut engines = Self::new(config)?;
        engines.language_pass = language_pass;
        if let Some(ppocr) = ppocr {
            engines.reader = Some((PpOcr::new(ppocr)?, ppocr.images));
        }
        Ok(engines)
    }

    /// Which images PP-OCR reads; `None` without PP-OCR.
    fn ppocr_images(&self) -> Option<PpOcrImages> {
        self.reader.as_ref().map(|(_, images)| *images)
    }

    /// The engine that read a receipt, for the result's record.
    fn info_for(&self, language: Option<&str>) -> EngineInfo {
        if language == Some(PPOCR) {
            EngineInfo { name: PPOCR.to_owned(), version: "PP-OCRv4".to_owned() }
        } else {
            self.primary.info().clone()
        }
    }

    /// The configured engine.
    pub fn primary(&mut self) -> &mut OcrEngine {
        &mut self.primary
    }

    /// An engine reading the configured language plus `extra` (e.g. `eng+deu`), or `None` when
    /// that language's data is not installed (the first receipt that asks logs it, once).
    pub fn with_language(&mut self, extra: &str) -> Option<&mut OcrEngine> {
        if self.config.language.split('+').any(|language| language == extra) {
            return None;
        }
        let language = format!("{}+{extra}", self.config.language);
        let config = EngineConfig { language: language.clone(), ..self.config.clone() };
        self.others
            .entry(language)
            .or_insert_with(|| match OcrEngine::new(&config) {
                Ok(engine) => Some(engine),
                Err(error) => {
                    tracing::warn!(%error, "no OCR engine for this language; reading with the configured one");
                    None
                }
            })
            .as_mut()
    }
}

/// Which reader reads an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// Tesseract alone (scans, or no PP-OCR configured).
    Tesseract,
    /// PP-OCR alone (colour photos, and photos of modest resolution, which Tesseract reads
    /// poorly).
    PpOcr,
    /// Tesseract, then PP-OCR when Tesseract's reading lacks the total, the date or the merchant
    /// (grey photos with enough pixels, which Tesseract usually reads, at a quarter of the cost).
    TesseractThenPpOcr,
}

/// From this many pixels on its long side (of the paper, in the upload's pixels), a grey photo
/// is read by Tesseract first. On the development sets the six SROIE receipts that read as
/// photos are grey and 1,449–2,260 px long: Tesseract reads as many of their fields as PP-OCR, in
/// a quarter of the time. The US phone photos are in colour, or at most 1,000 px long.
const LARGE_PHOTO_SIDE: f32 = 1400.0;

/// What the choice of reader looks at in a prepared image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Looks {
    /// Taken by a camera rather than a scanner.
    pub photo: bool,
    /// In colour.
    pub colour: bool,
    /// The paper's long side, in the upload's pixels.
    pub long_side: f32,
}

impl Looks {
    /// How `image` looks.
    pub fn of(image: &PreparedImage) -> Self {
        let side = image.gray.width().max(image.gray.height()) as f32;
        Self { photo: image.photo, colour: image.colour, long_side: side / image.scale.max(f32::EPSILON) }
    }
}

/// Which reader reads an image that `looks` so, when PP-OCR reads `ppocr` images (`None`: no
/// PP-OCR). Scans go to Tesseract; photos, which Tesseract reads poorly, to PP-OCR, except grey
/// photos with enough pixels, which Tesseract reads first at a quarter of the cost.
pub fn route(looks: Looks, ppocr: Option<PpOcrImages>) -> Reader {
    match ppocr {
        Some(PpOcrImages::All) => Reader::PpOcr,
        Some(PpOcrImages::Photos) if looks.photo => {
            if looks.colour || looks.long_side < LARGE_PHOTO_SIDE {
                Reader::PpOcr
            } else {
                Reader::TesseractThenPpOcr
            }
        }
        Some(PpOcrImages::Photos) | None => Reader::Tesseract,
    }
}

/// Of two readings of one image, the one that found more of the fields a receipt almost always
/// prints (the second on a tie), counting the passes of both.
fn more_complete(first: Reading, second: Reading) -> Reading {
    let passes = first.passes + second.passes;
    let mut chosen = if found_fields(&second.extraction) >= found_fields(&first.extraction) { second } else { first };
    chosen.passes = passes;
    chosen
}

/// How many fields a result found that a receipt almost always prints.
fn found_fields(extraction: &Extraction) -> usize {
    usize::from(extraction.fields.total.is_some())
        + usize::from(extraction.fields.date.is_some())
        + usize::from(extraction.fields.merchant.name.is_some())
}

/// What one read of a prepared image gave.
struct Reading {
    page: Page,
    extraction: Extraction,
    image: PreparedImage,
    language: String,
    passes: u32,
    /// What orientation detection decided on the way (see [`Recognized::orientation`]).
    orientation: Option<Option<u32>>,
}

/// How Tesseract reads a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Passes {
    /// As one block, then turned, binarised or contrast-stretched when the reading is weak.
    Block,
    /// As one block, turned when weak, without the binarised and stretched passes (a photo that
    /// PP-OCR reads next when Tesseract falls short).
    BlockWithoutFallbacks,
    /// As sparse text, once (a document's columns).
    Sparse,
}

/// OCR with `engine`, then extraction, then a closer re-read of the lines a self-consistent
/// receipt would read differently.
fn read_prepared(
    engine: &mut OcrEngine,
    prepared: &PreparedImage,
    context: Context<'_>,
    extract_time: &mut Duration,
    passes: Passes,
) -> Result<Reading, ProcessError> {
    let mut recognized = match passes {
        Passes::Block => engine.recognize_with(prepared, true)?,
        Passes::BlockWithoutFallbacks => engine.recognize_with(prepared, false)?,
        Passes::Sparse => engine.recognize_sparse(prepared)?,
    };
    let image = recognized.turned.take().unwrap_or_else(|| prepared.clone());
    let mut extraction = timed_extract(&recognized.page, context, extract_time);
    let recheck = recheck::lines_to_recheck(&recognized.page, &extraction);
    let reread = Instant::now();
    let mut improved = false;
    let rechecked = recheck.len();
    for index in recheck {
        let line = &recognized.page.lines[index];
        if let Some((text, confidence)) = engine.reread_line(&image, line.bbox)? {
            // Keep the re-read when Tesseract is surer of it, or when it shows a date the first
            // reading garbled.
            let reveals_date = !date::dates_in(&text, false).is_empty() && date::dates_in(&line.text, false).is_empty();
            if text != line.text && (confidence > line.confidence || reveals_date) {
                let line = &mut recognized.page.lines[index];
                line.text = text;
                line.confidence = confidence;
                improved = true;
            }
        }
    }
    tracing::debug!(
        passes = recognized.passes,
        ocr_ms = recognized.ocr_ms,
        rechecked,
        reread_ms = elapsed_ms(reread),
        improved,
        "page read"
    );
    if improved {
        extraction = timed_extract(&recognized.page, context, extract_time);
    }
    Ok(Reading {
        page: recognized.page,
        extraction,
        image,
        language: engine.language().to_owned(),
        passes: recognized.passes,
        orientation: recognized.orientation,
    })
}

/// Reads one prepared image: with the configured language, then — when the words show another
/// language whose data is installed — again with that language added, keeping the reading that
/// finds more of the receipt.
fn read_image(
    engines: &mut Engines,
    prepared: &PreparedImage,
    context: Context<'_>,
    extract_time: &mut Duration,
) -> Result<Reading, ProcessError> {
    let reader = route(Looks::of(prepared), engines.ppocr_images());
    if reader == Reader::PpOcr {
        return read_with_ppocr(engines, prepared, context, extract_time, None);
    }
    // A photo PP-OCR reads when Tesseract's reading falls short skips Tesseract's own fallback
    // passes (binarised, contrast-stretched): PP-OCR is the better second reading of a photo.
    let block = if reader == Reader::TesseractThenPpOcr { Passes::BlockWithoutFallbacks } else { Passes::Block };
    let mut first = read_prepared(engines.primary(), prepared, context, extract_time, block)?;
    // A document (an invoice, a letter) whose reading as one block misses a field is read again as
    // sparse text, column by column; the sparse reading is kept only when it finds more.
    if found_fields(&first.extraction) < 3 && extract::document::is_document(&first.page) {
        let second = read_prepared(engines.primary(), prepared, context, extract_time, Passes::Sparse)?;
        let passes = first.passes + second.passes;
        if found_fields(&second.extraction) > found_fields(&first.extraction) {
            first = second;
        }
        first.passes = passes;
    }
    if reader == Reader::TesseractThenPpOcr && found_fields(&first.extraction) < 3 {
        // Orientation was settled by Tesseract's reading when it ran: it is not detected again.
        let second = read_with_ppocr(engines, prepared, context, extract_time, first.orientation)?;
        return Ok(more_complete(first, second));
    }
    if !engines.language_pass {
        return Ok(first);
    }
    let Some(extra) = first.extraction.locale.language.and_then(tesseract_language) else { return Ok(first) };
    let Some(engine) = engines.with_language(extra) else { return Ok(first) };
    let second = read_prepared(engine, prepared, context, extract_time, block)?;
    Ok(more_complete(first, second))
}

/// The name PP-OCR readings carry (as the engine, and in place of Tesseract's languages).
const PPOCR: &str = "pp-ocr";

/// Reads one prepared image with PP-OCR: turned upright first when its ink runs in columns and
/// Tesseract's orientation detection agrees.
fn read_with_ppocr(
    engines: &mut Engines,
    prepared: &PreparedImage,
    context: Context<'_>,
    extract_time: &mut Duration,
    orientation: Option<Option<u32>>,
) -> Result<Reading, ProcessError> {
    let mut image = prepared.clone();
    let mut turned = false;
    let orientation = match orientation {
        Some(decided) => decided,
        None if prepared.sideways => engines.primary().detect_orientation(prepared)?,
        None => None,
    };
    if let Some(quarter_turns) = orientation {
        image = prepared.rotated(quarter_turns);
        image.offset = (0, 0);
        image.scale = prepared.scale;
        turned = true;
    }
    let Some((reader, _)) = engines.reader.as_mut() else { return Err(OcrError::Recognize.into()) };
    let (lines, _) = reader.read(&image.gray)?;
    let (width, height) = image.gray.dimensions();
    let unscale = |value: i32| (value as f32 / image.scale).round() as i32;
    let mut page = Page {
        lines: lines
            .into_iter()
            .map(|mut line| {
                line.bbox = extract::BoundingBox {
                    left: unscale(line.bbox.left),
                    top: unscale(line.bbox.top),
                    right: unscale(line.bbox.right),
                    bottom: unscale(line.bbox.bottom),
                };
                line
            })
            .collect(),
        width: i32::try_from(width).map_or(i32::MAX, unscale),
        height: i32::try_from(height).map_or(i32::MAX, unscale),
    };
    if !turned {
        page.shift(image.offset);
        if image.offset != (0, 0) {
            page.width = i32::try_from(image.info.width).unwrap_or(i32::MAX);
            page.height = i32::try_from(image.info.height).unwrap_or(i32::MAX);
        }
    }
    let extraction = timed_extract(&page, context, extract_time);
    Ok(Reading { page, extraction, image, language: PPOCR.to_owned(), passes: 1, orientation: Some(orientation) })
}

/// Runs one receipt file (an image or a PDF) through the whole pipeline on the calling thread.
pub fn process_image(
    engines: &mut Engines,
    bytes: &[u8],
    limits: &ImageLimits,
    steps: preprocess::Steps,
    context: Context<'_>,
) -> Result<ReceiptResult, ProcessError> {
    let started = Instant::now();
    let mut extract_time = Duration::ZERO;
    let as_ms = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let info = image_input::inspect(bytes, limits)?;
    let (extraction, steps, language, preprocess_ms) = if info.media_type == MediaType::Pdf {
        read_pdf(engines, bytes, steps, context, &mut extract_time)?
    } else {
        let prepared = preprocess::prepare_with(bytes, limits, steps)?;
        let preprocess_ms = elapsed_ms(started);
        let reading = read_image(engines, &prepared, context, &mut extract_time)?;
        let mut steps = reading.image.steps.clone();
        if reading.passes > 1 {
            steps.push(format!("{} OCR passes", reading.passes));
        }
        (reading.extraction, steps, Some(reading.language), preprocess_ms)
    };
    let total_ms = elapsed_ms(started);
    let extract_ms = as_ms(extract_time);
    let timings = Timings {
        preprocess_ms,
        ocr_ms: total_ms.saturating_sub(preprocess_ms).saturating_sub(extract_ms),
        extract_ms,
        total_ms,
    };
    let mut result = extraction.into_result(engines.info_for(language.as_deref()), timings);
    if let Some(debug) = result.debug.as_mut() {
        debug.ocr_languages = language;
        debug.preprocessing = steps;
    }
    Ok(result)
}

type PdfReading = (Extraction, Vec<String>, Option<String>, u64);

/// A PDF: the text layer when it holds the receipt, else its first pages rendered and read.
fn read_pdf(
    engines: &mut Engines,
    bytes: &[u8],
    steps: preprocess::Steps,
    context: Context<'_>,
    extract_time: &mut Duration,
) -> Result<PdfReading, ProcessError> {
    let started = Instant::now();
    let info = pdf_input::inspect(bytes, &pdf_input::PdfLimits::default())?;
    if let Some(page) = pdf::text_layer(bytes, info.pages)? {
        let extraction = timed_extract(&page, context, extract_time);
        return Ok((extraction, vec!["PDF text layer".to_owned()], None, elapsed_ms(started)));
    }
    // A scan: render each page, read it, and stack the pages' lines.
    let mut lines = Vec::new();
    let (mut width, mut height) = (0, 0);
    let mut language = None;
    let mut preprocess_ms = 0;
    let pages = info.pages.min(pdf::MAX_RENDERED_PAGES);
    for number in 1..=pages {
        let clock = Instant::now();
        let (width_points, height_points) = info.page_points.get(number - 1).copied().unwrap_or((612.0, 792.0));
        let png = pdf::render_page(bytes, number, f64::from(width_points), f64::from(height_points))?;
        let limits = ImageLimits { max_bytes: pdf::MAX_TOOL_OUTPUT, ..ImageLimits::default() };
        let prepared = preprocess::prepare_with(&png, &limits, steps)?;
        preprocess_ms += elapsed_ms(clock);
        let reading = read_image(engines, &prepared, context, extract_time)?;
        let mut page = reading.page;
        page.shift((0, u32::try_from(height).unwrap_or(0)));
        width = width.max(page.width);
        height += page.height;
        lines.extend(page.lines);
        language = Some(reading.language);
    }
    let page = Page { lines, width, height };
    let extraction = timed_extract(&page, context, extract_time);
    Ok((
        extraction,
        vec![format!("PDF scan: {pages} page(s) rendered at up to {} dpi", pdf::RENDER_DPI)],
        language,
        preprocess_ms,
    ))
}

/// Extraction of `page`, its time added to `extract_time` (reported apart from the OCR's).
fn timed_extract(page: &Page, context: Context<'_>, extract_time: &mut Duration) -> Extraction {
    let clock = Instant::now();
    let extraction = extract::extract_with(page, context);
    *extract_time += clock.elapsed();
    extraction
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
