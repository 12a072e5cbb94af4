//! A fixed pool of OCR threads, each owning one [`OcrEngine`] created once at start.
//!
//! Work goes in over a channel; each image runs check → decode → preprocess → OCR → extraction on
//! a pool thread, and the caller awaits the result under a per-image time limit. Tesseract cannot
//! be interrupted from outside, so a timed-out image keeps its thread busy until it finishes; the
//! caller gets [`ProcessError::Timeout`] at once, the pixel limits checked before decoding bound
//! how long any image can take, and the limit of the images queued behind it starts only when a
//! thread picks them up. A panic on a pool thread fails that image only: the thread builds a
//! fresh engine and carries on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use finagent_core::extract::{self, Gazetteer, date, review};
use finagent_core::receipt::{ReceiptResult, Timings};

use crate::engine::{EngineConfig, OcrEngine, OcrError};
use crate::image_input::{self, ImageError, ImageLimits};

/// Why an image produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// The image itself is unusable; retrying cannot help.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The OCR engine failed.
    #[error(transparent)]
    Ocr(#[from] OcrError),
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
        !matches!(self, Self::Image(_))
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
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            threads: 1,
            timeout: Duration::from_secs(60),
            engine: EngineConfig::default(),
            limits: ImageLimits::default(),
        }
    }
}

type Reply = tokio::sync::oneshot::Sender<Result<ReceiptResult, ProcessError>>;

struct Task {
    bytes: Vec<u8>,
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

/// Runs one image through the whole pipeline on the calling thread.
pub fn process_image(
    engine: &mut OcrEngine,
    bytes: &[u8],
    limits: &ImageLimits,
    gazetteer: &Gazetteer,
) -> Result<ReceiptResult, ProcessError> {
    let started = Instant::now();
    let prepared = image_input::prepare(bytes, limits)?;
    let preprocess_ms = elapsed_ms(started);
    let mut recognized = engine.recognize(&prepared)?;
    let mut extract_time = Duration::ZERO;
    let mut ocr_time = Duration::from_millis(recognized.ocr_ms);
    let clock = Instant::now();
    let mut extraction = extract::extract(&recognized.page, gazetteer);
    extract_time += clock.elapsed();
    let recheck = review::lines_to_recheck(&recognized.page, &extraction);
    if !recheck.is_empty() {
        let clock = Instant::now();
        let mut improved = false;
        for index in recheck {
            let line = &recognized.page.lines[index];
            if let Some((text, confidence)) = engine.reread_line(&prepared, line.bbox)? {
                // Keep the re-read when Tesseract is surer of it, or when it shows a date the first
                // reading garbled.
                let reveals_date =
                    !date::dates_in(&text, false).is_empty() && date::dates_in(&line.text, false).is_empty();
                if text != line.text && (confidence > line.confidence || reveals_date) {
                    let line = &mut recognized.page.lines[index];
                    line.text = text;
                    line.confidence = confidence;
                    improved = true;
                }
            }
        }
        ocr_time += clock.elapsed();
        if improved {
            let clock = Instant::now();
            extraction = extract::extract(&recognized.page, gazetteer);
            extract_time += clock.elapsed();
        }
    }
    let as_ms = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let timings = Timings {
        preprocess_ms,
        ocr_ms: as_ms(ocr_time),
        extract_ms: as_ms(extract_time),
        total_ms: elapsed_ms(started),
    };
    Ok(extraction.into_result(engine.info().clone(), timings))
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
        let (reply, result) = tokio::sync::oneshot::channel();
        let (started, picked_up) = tokio::sync::oneshot::channel();
        {
            let guard = self.sender.lock().map_err(|_| ProcessError::Closed)?;
            let sender = guard.as_ref().ok_or(ProcessError::Closed)?;
            sender.send(Task { bytes, started, reply }).map_err(|_| ProcessError::Closed)?;
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
    let mut engine = match OcrEngine::new(&config.engine) {
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
        let outcome =
            catch_unwind(AssertUnwindSafe(|| process_image(&mut engine, &task.bytes, &config.limits, gazetteer)));
        let outcome = outcome.unwrap_or_else(|_| {
            tracing::error!("the OCR engine panicked; starting a fresh one");
            if let Ok(fresh) = OcrEngine::new(&config.engine) {
                engine = fresh;
            }
            Err(ProcessError::Crashed)
        });
        // The caller may have timed out and gone; that is fine.
        let _ = task.reply.send(outcome);
    }
}
