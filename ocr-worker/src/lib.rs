//! FinancialAgent's OCR worker: a thin binary over the OCR library (`finagent-ocr`) and the
//! extraction library (`finagent-extract`). Subcommands: `run` (the job consumer), `extract` (images in, one JSON result per line out), `evaluate`
//! (score against SROIE-style labels), `bench` (throughput and latency next to the plain
//! `tesseract` command). `main.rs` only parses the command line and calls [`run`].

pub mod bench;
pub mod evaluate;
pub mod files;
pub mod service;
pub mod soak;

pub use finagent_ocr::{engine, pool};

use finagent_core::names::env;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use finagent_extract::Gazetteer;
use finagent_platform::image_input::ImageLimits;
use finagent_platform::telemetry::{self, TelemetryArgs};
use futures::StreamExt;

use finagent_ocr::engine::EngineConfig;
use finagent_ocr::pool::{EnginePool, PoolConfig};

/// FinancialAgent's OCR worker.
#[derive(Debug, Parser)]
#[command(name = "ocr-worker", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume OCR jobs from the queue and store the results.
    Run(Box<service::RunArgs>),
    /// Read receipt images (files or folders) and print one JSON result per image per line.
    Extract(ExtractArgs),
    /// Score extraction against SROIE-style labels: per-field accuracy and micro F1.
    Evaluate(evaluate::EvaluateArgs),
    /// Measure receipts per second and latency next to the plain `tesseract` command.
    Bench(bench::BenchArgs),
    /// Push N jobs through M worker processes while killing workers at random; print the tally.
    Soak(Box<soak::SoakArgs>),
    /// Print the version, the Tesseract version and the job protocol version.
    Version,
}

/// Engine options shared by the subcommands.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// OCR threads, one Tesseract engine each (default: one per CPU).
    #[arg(long, env = env::OCR_THREADS)]
    pub threads: Option<usize>,
    /// Per-image time limit in seconds.
    #[arg(long, env = env::OCR_TIMEOUT, default_value_t = 60)]
    pub timeout: u64,
    /// Tesseract language data folder (default: Tesseract's own).
    #[arg(long, env = env::TESSDATA_PREFIX)]
    pub tessdata: Option<String>,
    /// Tesseract language.
    #[arg(long, env = env::OCR_LANGUAGE, default_value = "eng")]
    pub language: String,
    /// Ignore the bundled merchant gazetteer (layout rules only).
    #[arg(long)]
    pub no_gazetteer: bool,
    /// Preprocessing steps: a comma-separated list of crop, deskew, scale, sauvola; or default
    /// (crop, deskew, sauvola), all, none.
    #[arg(long, env = env::OCR_PREPROCESS, default_value = "default")]
    pub preprocess: finagent_ocr::preprocess::Steps,
    /// Do not read a receipt again in the language its words show.
    #[arg(long)]
    pub no_language_pass: bool,
    /// Read text with PP-OCR networks from this folder (`*_det_*.onnx`, `*_rec_*.onnx`) instead
    /// of Tesseract; needs `--onnxruntime`.
    #[arg(long, env = env::OCR_PPOCR_MODELS, requires = "onnxruntime")]
    pub ppocr_models: Option<PathBuf>,
    /// The ONNX Runtime shared library PP-OCR runs on.
    #[arg(long, env = env::ORT_DYLIB_PATH)]
    pub onnxruntime: Option<PathBuf>,
    /// Which images PP-OCR reads: photos (flat scans go to Tesseract) or all.
    #[arg(long, env = env::OCR_PPOCR_IMAGES, default_value = "photos")]
    pub ppocr_images: finagent_ocr::ppocr::PpOcrImages,
}

impl EngineArgs {
    /// Starts a pool from these options.
    pub fn start_pool(&self) -> anyhow::Result<EnginePool> {
        let threads = self.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let config = PoolConfig {
            threads,
            timeout: Duration::from_secs(self.timeout.max(1)),
            engine: EngineConfig { tessdata: self.tessdata.clone(), language: self.language.clone() },
            limits: ImageLimits::default(),
            steps: self.preprocess,
            language_pass: !self.no_language_pass,
            ppocr: match (&self.ppocr_models, &self.onnxruntime) {
                (Some(models), Some(runtime)) => Some(finagent_ocr::ppocr::PpOcrConfig {
                    models: models.clone(),
                    runtime: runtime.clone(),
                    images: self.ppocr_images,
                }),
                _ => None,
            },
        };
        Ok(EnginePool::start(config, Arc::new(self.gazetteer()))?)
    }

    /// The gazetteer these options ask for.
    pub fn gazetteer(&self) -> Gazetteer {
        if self.no_gazetteer { Gazetteer::default() } else { Gazetteer::bundled() }
    }
}

/// Options of `ocr-worker extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Image files, or folders of images.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(&cli.telemetry)?;
    match cli.command {
        Command::Run(args) => service::run(*args).await,
        Command::Extract(args) => extract(args).await,
        Command::Evaluate(args) => evaluate::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Soak(args) => soak::run(*args).await,
        Command::Version => {
            println!(
                "{} {} (tesseract {}, job protocol v{})",
                env!("CARGO_PKG_NAME"),
                env!("CARGO_PKG_VERSION"),
                tesseract_plumbing::version().to_string_lossy(),
                finagent_core::job::JOB_PROTOCOL_VERSION
            );
            Ok(())
        }
    }
}

async fn extract(args: ExtractArgs) -> anyhow::Result<()> {
    let files = files::image_files(&args.paths)?;
    let pool = args.engine.start_pool()?;
    let mut failures = 0usize;
    let mut results = futures::stream::iter(files.into_iter().map(|file| {
        let pool = &pool;
        async move {
            let outcome = match std::fs::read(&file) {
                Ok(bytes) => pool.process(bytes).await.map_err(|e| e.to_string()),
                Err(error) => Err(format!("failed to read the file: {error}")),
            };
            (file, outcome)
        }
    }))
    .buffered(pool.threads());
    while let Some((file, outcome)) = results.next().await {
        let line = match outcome {
            Ok(result) => {
                let mut json = serde_json::to_value(&result)?;
                if let Some(object) = json.as_object_mut() {
                    object.insert("file".to_owned(), serde_json::Value::String(file.display().to_string()));
                }
                json
            }
            Err(error) => {
                failures += 1;
                serde_json::json!({ "file": file.display().to_string(), "error": error })
            }
        };
        println!("{line}");
    }
    if failures > 0 {
        anyhow::bail!("{failures} image(s) could not be read");
    }
    Ok(())
}

/// Runs this executable again with `OMP_THREAD_LIMIT=1` and exits with its status.
pub fn reexec_with_thread_limit() -> anyhow::Result<()> {
    let executable = std::env::current_exe()?;
    let mut command = std::process::Command::new(executable);
    command.args(std::env::args_os().skip(1)).env(env::OMP_THREAD_LIMIT, "1");
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        Err(command.exec().into())
    }
    #[cfg(not(unix))]
    {
        let status = command.status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
}
