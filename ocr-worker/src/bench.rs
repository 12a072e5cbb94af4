//! `ocr-worker bench`: receipts per second and latency of the engine over a folder, next to the
//! plain `tesseract` command line on the same images with the same thread limit, in one run.
//!
//! Everything runs on one core, one image at a time, so the numbers compare per-image cost. The
//! engine's latency covers the whole pipeline (decode, preprocess, OCR, extraction); the command
//! line's covers process start, model load and OCR, which is what calling it per image costs.
//! The engine also runs without photo preprocessing and without the language pass, so that the
//! cost of each shows beside the rest; the report counts the receipts each step changed, and
//! where the full pipeline's time went (decoding and preprocessing, OCR, extraction; by reader;
//! the slowest receipts). `--pipeline-only` runs the full pipeline alone.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use finagent_core::receipt::Timings;

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
    /// Run only the full pipeline (no variants, no baseline): for a quick look at where time goes.
    #[arg(long)]
    pub pipeline_only: bool,
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

/// Where the full pipeline's time went: summed over every receipt, and for the slowest ones.
fn report_slowest(slowest: &mut [(Timings, String, String)]) {
    let sum = |part: fn(&Timings) -> u64| slowest.iter().map(|(timings, ..)| part(timings)).sum::<u64>();
    println!(
        "full pipeline, summed: decode and preprocessing {} ms, OCR {} ms, extraction {} ms",
        sum(|t| t.preprocess_ms),
        sum(|t| t.ocr_ms),
        sum(|t| t.extract_ms)
    );
    let mut by_engine = std::collections::BTreeMap::<&str, (usize, u64)>::new();
    for (timings, engine, _) in slowest.iter() {
        let entry = by_engine.entry(engine.as_str()).or_default();
        entry.0 += 1;
        entry.1 += timings.total_ms;
    }
    for (engine, (count, total)) in by_engine {
        println!("  read by {engine}: {count} receipts, {total} ms in all");
    }
    slowest.sort_by_key(|(timings, ..)| std::cmp::Reverse(timings.total_ms));
    println!("slowest receipts (total = preprocessing + OCR + extraction, ms):");
    for (timings, engine, name) in slowest.iter().take(8) {
        println!(
            "  {name:<20} {:>6} = {:>5} + {:>5} + {:>4}  {engine}",
            timings.total_ms, timings.preprocess_ms, timings.ocr_ms, timings.extract_ms
        );
    }
}

/// One contestant's tally.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: usize,
    second_language: usize,
    preprocessed: usize,
}

/// Runs the benchmark and prints the comparison.
///
/// The contestants take turns image by image (each image read by every contestant before the
/// next), so a drift in the machine's speed during the run falls on all of them alike, and each
/// engine reads one untimed image first, as a running worker would have.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut files = image_files(std::slice::from_ref(&args.images))?;
    if let Some(limit) = args.limit {
        files.truncate(limit);
    }
    anyhow::ensure!(!files.is_empty(), "no images in {}", args.images.display());
    println!(
        "{} images, one at a time, contestants in turn, OMP_THREAD_LIMIT={}",
        files.len(),
        std::env::var("OMP_THREAD_LIMIT").unwrap_or_default()
    );
    let variants: [(&str, Option<finagent_ocr::preprocess::Steps>, bool); 3] = [
        ("ocr-worker engine (full pipeline)", None, false),
        ("  without photo preprocessing", Some("none".parse().map_err(anyhow::Error::msg)?), false),
        ("  without the language pass", None, true),
    ];
    let variants = if args.pipeline_only { &variants[..1] } else { &variants[..] };
    let commands = [("tesseract IMAGE - (plain)", &[][..]), ("tesseract IMAGE - --psm 6", &["--psm", "6"][..])];
    let commands = if args.pipeline_only { &commands[..0] } else { &commands[..] };

    let mut pools = Vec::new();
    for &(_, steps, no_language_pass) in variants {
        let mut engine_args = args.engine.clone();
        engine_args.threads = Some(1);
        if let Some(steps) = steps {
            engine_args.preprocess = steps;
        }
        engine_args.no_language_pass |= no_language_pass;
        let pool = engine_args.start_pool()?;
        // Warm-up: the first read allocates what later reads reuse.
        let _ = pool.process(std::fs::read(&files[0])?).await;
        pools.push(pool);
    }

    let mut tallies: Vec<Tally> = (0..pools.len()).map(|_| Tally::default()).collect();
    let mut command_latencies: Vec<Vec<Duration>> = vec![Vec::with_capacity(files.len()); commands.len()];
    let mut slowest = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file)?;
        for (index, (pool, tally)) in pools.iter().zip(tallies.iter_mut()).enumerate() {
            let started = Instant::now();
            let outcome = pool.process(bytes.clone()).await;
            tally.latencies.push(started.elapsed());
            match outcome {
                Ok(result) => {
                    if index == 0 {
                        let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
                        slowest.push((result.timings, result.engine.name.clone(), name));
                    }
                    let debug = result.debug.unwrap_or_default();
                    tally.second_language += usize::from(debug.ocr_languages.is_some_and(|l| l.contains('+')));
                    tally.preprocessed +=
                        usize::from(debug.preprocessing.iter().any(|step| !step.contains("OCR passes")));
                }
                Err(_) => tally.errors += 1,
            }
        }
        for ((_, extra), latencies) in commands.iter().zip(command_latencies.iter_mut()) {
            let started = Instant::now();
            let output = tokio::process::Command::new(&args.tesseract)
                .arg(file)
                .arg("-")
                .args(*extra)
                .env("OMP_THREAD_LIMIT", "1")
                .output()
                .await
                .map_err(|e| anyhow::anyhow!("failed to run {}: {e}", args.tesseract))?;
            anyhow::ensure!(output.status.success(), "{} failed on {}", args.tesseract, file.display());
            latencies.push(started.elapsed());
        }
    }

    report_slowest(&mut slowest);
    let contestants: Vec<(&str, Summary)> =
        variants.iter().zip(&tallies).map(|((name, ..), tally)| (*name, summarize(&tally.latencies))).collect();
    for ((name, summary), tally) in contestants.iter().zip(&tallies) {
        print_row(name, summary);
        println!(
            "{:<34} preprocessed {}, read again in another language {}, errors {}",
            "", tally.preprocessed, tally.second_language, tally.errors
        );
    }
    let baselines: Vec<(&str, Summary)> =
        commands.iter().zip(&command_latencies).map(|((name, _), latencies)| (*name, summarize(latencies))).collect();
    for (name, summary) in &baselines {
        print_row(name, summary);
    }
    let ours = &contestants[0].1;
    for (name, summary) in &baselines {
        println!("throughput vs {name}: {:.2}x", ours.per_second / summary.per_second.max(f64::MIN_POSITIVE));
    }
    for (name, summary) in &contestants[1..] {
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
