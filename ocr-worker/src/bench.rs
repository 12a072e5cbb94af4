//! `ocr-worker bench`: receipts per second and latency of the engine over a folder, next to the
//! plain `tesseract` command line on the same images with the same thread limit, in one run.
//!
//! Everything runs on one core, one image at a time, so the numbers compare per-image cost. The
//! engine's latency covers the whole pipeline (decode, preprocess, OCR, extraction); the command
//! line's covers process start, model load and OCR, which is what calling it per image costs.
//! The engine also runs without photo preprocessing and without the language pass, so that the
//! cost of each shows beside the rest; the report counts the receipts each step changed.

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
    println!(
        "{} images, one at a time, OMP_THREAD_LIMIT={}",
        files.len(),
        std::env::var("OMP_THREAD_LIMIT").unwrap_or_default()
    );
    let mut contestants = Vec::new();
    let variants: [(&str, Option<finagent_ocr::preprocess::Steps>, bool); 3] = [
        ("ocr-worker engine (full pipeline)", None, false),
        ("  without photo preprocessing", Some("none".parse().map_err(anyhow::Error::msg)?), false),
        ("  without the language pass", None, true),
    ];
    for (name, steps, no_language_pass) in variants {
        let mut engine_args = args.engine.clone();
        engine_args.threads = Some(1);
        if let Some(steps) = steps {
            engine_args.preprocess = steps;
        }
        engine_args.no_language_pass |= no_language_pass;
        let pool = engine_args.start_pool()?;
        let mut latencies = Vec::with_capacity(files.len());
        let (mut errors, mut second_language, mut preprocessed) = (0, 0, 0);
        for file in &files {
            let bytes = std::fs::read(file)?;
            let started = Instant::now();
            match pool.process(bytes).await {
                Ok(result) => {
                    let debug = result.debug.unwrap_or_default();
                    second_language += usize::from(debug.ocr_languages.is_some_and(|l| l.contains('+')));
                    preprocessed += usize::from(debug.preprocessing.iter().any(|step| !step.contains("OCR passes")));
                }
                Err(_) => errors += 1,
            }
            latencies.push(started.elapsed());
        }
        contestants.push((name, summarize(&latencies), errors, second_language, preprocessed));
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

    for (name, summary, errors, second_language, preprocessed) in &contestants {
        print_row(name, summary);
        println!(
            "{:<34} preprocessed {preprocessed}, read again in another language {second_language}, errors {errors}",
            ""
        );
    }
    for (name, summary) in &baselines {
        print_row(name, summary);
    }
    let ours = &contestants[0].1;
    for (name, summary) in &baselines {
        println!("throughput vs {name}: {:.2}x", ours.per_second / summary.per_second.max(f64::MIN_POSITIVE));
    }
    for (name, summary, ..) in &contestants[1..] {
        println!(
            "cost of{}: {:+.0} ms per receipt at p50, {:+.0} ms at p95",
            name.trim_start().trim_start_matches("without"),
            ours.p50.as_secs_f64() * 1000.0 - summary.p50.as_secs_f64() * 1000.0,
            ours.p95.as_secs_f64() * 1000.0 - summary.p95.as_secs_f64() * 1000.0
        );
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
