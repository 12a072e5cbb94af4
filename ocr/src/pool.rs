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

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use finagent_core::receipt::ReceiptResult;
use finagent_extract::{Context, Gazetteer, LocaleHint};
use finagent_platform::image_input::ImageLimits;

use crate::engine::{EngineConfig, OcrError};
use crate::ppocr::PpOcrConfig;
use crate::preprocess;
pub use crate::reading::ProcessError;
use crate::reading::{Engines, process_image};

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

/// The engines a pool thread with `config` owns.
fn engines_for(config: &PoolConfig) -> Result<Engines, OcrError> {
    Engines::with_readers(&config.engine, config.language_pass, config.ppocr.as_ref())
}

fn run_thread(
    config: &PoolConfig,
    gazetteer: &Gazetteer,
    receiver: &Mutex<mpsc::Receiver<Task>>,
    ready: &mpsc::Sender<Result<(), OcrError>>,
) {
    let mut engine = match engines_for(config) {
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
            if let Ok(fresh) = engines_for(config) {
                engine = fresh;
            }
            Err(ProcessError::Crashed)
        });
        // The caller may have timed out and gone; that is fine.
        let _ = task.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests;
