//! `ocr-worker bench`: receipts per second and latency of the engine over a folder, next to the
//! plain `tesseract` command line on the same images with the same thread limit, in one run.
//!
//! Everything runs on one core, one image at a time, so the numbers compare per-image cost. The
//! engine's latency covers the whole pipeline (decode, preprocess, OCR, extraction); the command
//! line's covers process start, model load and OCR, which is what calling it per image costs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::EngineArgs;
use crate::files::image_files;

/// Options of `ocr-worker bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Folder of receipt images.
    #[arg(long)]
    pub images: PathBuf,
    /// Use at most this many images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// The tesseract executable for the baseline.
    #[arg(long, default_value = "tesseract")]
    pub tesseract: String,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Latency summary of one contestant.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Images per second.
    pub per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 95th percentile latency.
    pub p95: Duration,
}

/// Summarises per-image latencies (nearest-rank percentiles).
pub fn summarize(latencies: &[Duration]) -> Summary {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let total: Duration = sorted.iter().sum();
    let rank =
        |p: f64| sorted.get(((p * sorted.len() as f64).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default();
    Summary {
        per_second: if total.is_zero() { 0.0 } else { sorted.len() as f64 / total.as_secs_f64() },
        p50: rank(0.50),
        p95: rank(0.95),
    }
}

fn print_row(name: &str, summary: &Summary) {
    println!(
        "{name:<34} {:>8.2} receipts/s   p50 {:>6} ms   p95 {:>6} ms",
        summary.per_second,
        summary.p50.as_millis(),
        summary.p95.as_millis()
    );
}

/// Runs the benchmark and prints the comparison.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut files = image_files(std::slice::from_ref(&args.images))?;
    if let Some(limit) = args.limit {
        files.truncate(limit);
    }
    anyhow::ensure!(!files.is_empty(), "no images in {}", args.images.display());
    let mut engine_args = args.engine.clone();
    engine_args.threads = Some(1);
    let pool = engine_args.start_pool()?;
    println!(
        "{} images, one at a time, OMP_THREAD_LIMIT={}",
        files.len(),
        std::env::var("OMP_THREAD_LIMIT").unwrap_or_default()
    );

    let mut engine_latencies = Vec::with_capacity(files.len());
    let mut engine_errors = 0;
    for file in &files {
        let bytes = std::fs::read(file)?;
        let started = Instant::now();
        if pool.process(bytes).await.is_err() {
            engine_errors += 1;
        }
        engine_latencies.push(started.elapsed());
    }

    let mut baselines = Vec::new();
    for (name, extra) in [("tesseract IMAGE - (plain)", &[][..]), ("tesseract IMAGE - --psm 6", &["--psm", "6"][..])] {
        let mut latencies = Vec::with_capacity(files.len());
        for file in &files {
            let started = Instant::now();
            let output = tokio::process::Command::new(&args.tesseract)
                .arg(file)
                .arg("-")
                .args(extra)
                .env("OMP_THREAD_LIMIT", "1")
                .output()
                .await
                .map_err(|e| anyhow::anyhow!("failed to run {}: {e}", args.tesseract))?;
            anyhow::ensure!(output.status.success(), "{} failed on {}", args.tesseract, file.display());
            latencies.push(started.elapsed());
        }
        baselines.push((name, summarize(&latencies)));
    }

    let ours = summarize(&engine_latencies);
    print_row("ocr-worker engine (full pipeline)", &ours);
    for (name, summary) in &baselines {
        print_row(name, summary);
    }
    for (name, summary) in &baselines {
        println!("throughput vs {name}: {:.2}x", ours.per_second / summary.per_second.max(f64::MIN_POSITIVE));
    }
    if engine_errors > 0 {
        println!("engine errors: {engine_errors}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let latencies: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        let summary = summarize(&latencies);
        assert_eq!((summary.p50, summary.p95), (Duration::from_millis(10), Duration::from_millis(19)));
        assert!((summary.per_second - 20.0 / 0.210).abs() < 1e-6);
    }
}
