//! A fixed pool of OCR threads, each owning one [`OcrEngine`] created once at start (and, the
//! first time a receipt in another language needs one, an engine for that language).
//!
//! Work goes in over a channel; each image runs check → decode → preprocess → OCR → extraction on
//! a pool thread (a PDF: its text layer, or its pages rendered and read by OCR), and the caller awaits the result under a per-image time limit. Tesseract cannot
//! be interrupted from outside, so a timed-out image keeps its thread busy until it finishes; the
//! caller gets [`ProcessError::Timeout`] at once, the pixel limits checked before decoding bound
//! how long any image can take, and the limit of the images queued behind it starts only when a
//! thread picks them up. A panic on a pool thread fails that image only: the thread builds a
//! fresh engine and carries on.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use finagent_core::receipt::{EngineInfo, ReceiptResult, Timings};
use finagent_extract::{self as extract, Context, Extraction, Gazetteer, LocaleHint, Page, date, review};
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

/// Options of the pool.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Number of OCR threads (one engine each).
    pub threads: usize,
    /// Per-image time limit.
    pub timeout: Duration,
    /// Engine options.
    pub engine: EngineConfig,
    /// Input limits.
    pub limits: ImageLimits,
    /// Preprocessing steps.
    pub steps: preprocess::Steps,
    /// Whether a receipt whose words show another language is read again in it.
    pub language_pass: bool,
    /// Read images with PP-OCR instead of Tesseract (which then only detects orientation).
    pub ppocr: Option<PpOcrConfig>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            threads: 1,
            timeout: Duration::from_secs(60),
            engine: EngineConfig::default(),
            limits: ImageLimits::default(),
            steps: preprocess::Steps::default(),
            language_pass: true,
            ppocr: None,
        }
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<ReceiptResult, ProcessError>>;

struct Task {
    bytes: Vec<u8>,
    hint: LocaleHint,
    started: tokio::sync::oneshot::Sender<()>,
    reply: Reply,
}

/// The pool. Dropping it stops the threads once queued work is done.
#[derive(Debug)]
pub struct EnginePool {
    sender: Mutex<Option<mpsc::Sender<Task>>>,
    timeout: Duration,
    threads: usize,
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

    /// The engines a pool thread with `config` owns.
    pub fn for_pool(config: &PoolConfig) -> Result<Self, OcrError> {
        let mut engines = Self::new(&config.engine)?;
        engines.language_pass = config.language_pass;
        if let Some(ppocr) = &config.ppocr {
            engines.reader = Some((PpOcr::new(ppocr)?, ppocr.images));
        }
        Ok(engines)
    }

    /// Which reader reads this image.
    fn route(&self, image: &PreparedImage) -> Route {
        match &self.reader {
            Some((_, PpOcrImages::All)) => Route::PpOcr,
            Some((_, PpOcrImages::Photos)) if image.photo => {
                let side = image.gray.width().max(image.gray.height()) as f32 / image.scale.max(f32::EPSILON);
                if image.colour || side < LARGE_PHOTO_SIDE { Route::PpOcr } else { Route::TesseractThenPpOcr }
            }
            Some(_) | None => Route::Tesseract,
        }
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
enum Route {
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

/// How many fields a result found that a receipt almost always prints.
fn found_fields(extraction: &Extraction) -> usize {
    usize::from(extraction.total.is_some())
        + usize::from(extraction.date.is_some())
        + usize::from(extraction.merchant.name.is_some())
}

/// What one read of a prepared image gave.
struct Reading {
    page: Page,
    extraction: Extraction,
    image: PreparedImage,
    language: String,
    passes: u32,
}

/// OCR with `engine`, then extraction, then a closer re-read of the lines a self-consistent
/// receipt would read differently.
fn read_prepared(
    engine: &mut OcrEngine,
    prepared: &PreparedImage,
    context: Context<'_>,
    extract_time: &mut Duration,
) -> Result<Reading, ProcessError> {
    let mut recognized = engine.recognize(prepared)?;
    let image = recognized.turned.take().unwrap_or_else(|| prepared.clone());
    let clock = Instant::now();
    let mut extraction = extract::extract_with(&recognized.page, context);
    *extract_time += clock.elapsed();
    let recheck = review::lines_to_recheck(&recognized.page, &extraction);
    let mut improved = false;
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
    if improved {
        let clock = Instant::now();
        extraction = extract::extract_with(&recognized.page, context);
        *extract_time += clock.elapsed();
    }
    Ok(Reading {
        page: recognized.page,
        extraction,
        image,
        language: engine.language().to_owned(),
        passes: recognized.passes,
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
    let route = engines.route(prepared);
    if route == Route::PpOcr {
        return read_with_ppocr(engines, prepared, context, extract_time);
    }
    let first = read_prepared(engines.primary(), prepared, context, extract_time)?;
    if route == Route::TesseractThenPpOcr && found_fields(&first.extraction) < 3 {
        let second = read_with_ppocr(engines, prepared, context, extract_time)?;
        let passes = first.passes + second.passes;
        let mut chosen =
            if found_fields(&second.extraction) >= found_fields(&first.extraction) { second } else { first };
        chosen.passes = passes;
        return Ok(chosen);
    }
    if !engines.language_pass {
        return Ok(first);
    }
    let Some(extra) = first.extraction.locale.language.and_then(tesseract_language) else { return Ok(first) };
    let Some(engine) = engines.with_language(extra) else { return Ok(first) };
    let second = read_prepared(engine, prepared, context, extract_time)?;
    let passes = first.passes + second.passes;
    let better = found_fields(&second.extraction) >= found_fields(&first.extraction);
    let mut chosen = if better { second } else { first };
    chosen.passes = passes;
    Ok(chosen)
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
) -> Result<Reading, ProcessError> {
    let mut image = prepared.clone();
    let mut turned = false;
    if prepared.sideways
        && let Some(quarter_turns) = engines.primary().detect_orientation(prepared)?
    {
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
    let clock = Instant::now();
    let extraction = extract::extract_with(&page, context);
    *extract_time += clock.elapsed();
    Ok(Reading { page, extraction, image, language: PPOCR.to_owned(), passes: 1 })
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
        let clock = Instant::now();
        let extraction = extract::extract_with(&page, context);
        *extract_time += clock.elapsed();
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
    let clock = Instant::now();
    let extraction = extract::extract_with(&page, context);
    *extract_time += clock.elapsed();
    Ok((
        extraction,
        vec![format!("PDF scan: {pages} page(s) rendered at up to {} dpi", pdf::RENDER_DPI)],
        language,
        preprocess_ms,
    ))
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl EnginePool {
    /// Starts the threads and their engines; fails if Tesseract cannot initialise.
    pub fn start(config: PoolConfig, gazetteer: Arc<Gazetteer>) -> Result<Self, OcrError> {
        let threads = config.threads.max(1);
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        let (ready_sender, ready) = mpsc::channel::<Result<(), OcrError>>();
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            let gazetteer = Arc::clone(&gazetteer);
            let thread_config = config.clone();
            let ready_sender = ready_sender.clone();
            std::thread::Builder::new()
                .name(format!("ocr-{index}"))
                .spawn(move || run_thread(&thread_config, &gazetteer, &receiver, &ready_sender))
                .map_err(|_| OcrError::Init { language: config.engine.language.clone() })?;
        }
        drop(ready_sender);
        for _ in 0..threads {
            ready.recv().map_err(|_| OcrError::Init { language: config.engine.language.clone() })??;
        }
        Ok(Self { sender: Mutex::new(Some(sender)), timeout: config.timeout, threads })
    }

    /// Number of OCR threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Processes one image. The per-image time limit starts when a thread picks the image up, so
    /// time spent waiting behind other images (or behind a thread still busy with a timed-out
    /// one) never counts against it.
    pub async fn process(&self, bytes: Vec<u8>) -> Result<ReceiptResult, ProcessError> {
        self.process_with(bytes, LocaleHint::default()).await
    }

    /// Processes one image with the account's locale settings as a prior.
    pub async fn process_with(&self, bytes: Vec<u8>, hint: LocaleHint) -> Result<ReceiptResult, ProcessError> {
        let (reply, result) = tokio::sync::oneshot::channel();
        let (started, picked_up) = tokio::sync::oneshot::channel();
        {
            let guard = self.sender.lock().map_err(|_| ProcessError::Closed)?;
            let sender = guard.as_ref().ok_or(ProcessError::Closed)?;
            sender.send(Task { bytes, hint, started, reply }).map_err(|_| ProcessError::Closed)?;
        }
        picked_up.await.map_err(|_| ProcessError::Closed)?;
        match tokio::time::timeout(self.timeout, result).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ProcessError::Crashed),
            Err(_) => Err(ProcessError::Timeout(self.timeout)),
        }
    }

    /// Stops accepting work; threads exit after their current image.
    pub fn close(&self) {
        if let Ok(mut guard) = self.sender.lock() {
            guard.take();
        }
    }
}

fn run_thread(
    config: &PoolConfig,
    gazetteer: &Gazetteer,
    receiver: &Mutex<mpsc::Receiver<Task>>,
    ready: &mpsc::Sender<Result<(), OcrError>>,
) {
    let mut engine = match Engines::for_pool(config) {
        Ok(engine) => {
            let _ = ready.send(Ok(()));
            engine
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    loop {
        let task = match receiver.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok(task) = task else { return };
        // The caller may have gone (cancelled); then the image is not worth reading.
        if task.started.send(()).is_err() {
            continue;
        }
        let context = Context { gazetteer, hint: &task.hint, today: chrono::Utc::now().date_naive() };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            process_image(&mut engine, &task.bytes, &config.limits, config.steps, context)
        }));
        let outcome = outcome.unwrap_or_else(|_| {
            tracing::error!("the OCR engine panicked; starting a fresh one");
            if let Ok(fresh) = Engines::for_pool(config) {
                engine = fresh;
            }
            Err(ProcessError::Crashed)
        });
        // The caller may have timed out and gone; that is fine.
        let _ = task.reply.send(outcome);
    }
}
