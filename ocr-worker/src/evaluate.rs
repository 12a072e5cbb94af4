//! `ocr-worker evaluate`: scores extraction against SROIE-style labels.
//!
//! With `--images`, each image goes through the whole engine; with `--boxes`, the ground-truth
//! text lines are used instead of OCR, which separates extraction errors from OCR errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use finagent_core::evaluation::{FIELDS, Label, Scoreboard, score};
use finagent_core::extract::{self, Page};
use finagent_core::receipt::{EngineInfo, ReceiptResult, Timings};
use futures::StreamExt;

use crate::EngineArgs;
use crate::files::image_files;

/// Options of `ocr-worker evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Folder of receipt images (`NAME.jpg`), read with the OCR engine.
    #[arg(long, conflicts_with = "boxes", required_unless_present = "boxes")]
    pub images: Option<PathBuf>,
    /// Folder of ground-truth line boxes (`NAME.csv`), used instead of OCR.
    #[arg(long)]
    pub boxes: Option<PathBuf>,
    /// Folder of labels (`NAME.json` with company, date, address, total).
    #[arg(long)]
    pub labels: PathBuf,
    /// Print each wrong or missing field.
    #[arg(long)]
    pub show_errors: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

fn load_label(labels: &Path, stem: &str) -> anyhow::Result<Label> {
    let path = labels.join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("failed to read {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn stem(path: &Path) -> String {
    path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned()
}

/// Runs the evaluation and prints the report.
pub async fn run(args: EvaluateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let outcomes: Vec<(String, Result<ReceiptResult, String>)> = if let Some(boxes) = &args.boxes {
        let gazetteer = args.engine.gazetteer();
        let mut csvs: Vec<PathBuf> = std::fs::read_dir(boxes)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        csvs.sort();
        csvs.iter()
            .map(|path| {
                let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
                let result = extract::extract(&Page::from_box_csv(&text), &gazetteer).into_result(
                    EngineInfo { name: "ground-truth-lines".to_owned(), version: "1".to_owned() },
                    Timings::default(),
                );
                (stem(path), Ok(result))
            })
            .collect()
    } else {
        let images = args.images.clone().unwrap_or_default();
        let files = image_files(&[images])?;
        let pool = args.engine.start_pool()?;
        futures::stream::iter(files.into_iter().map(|file| {
            let pool = &pool;
            async move {
                let outcome = match std::fs::read(&file) {
                    Ok(bytes) => pool.process(bytes).await.map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                (stem(&file), outcome)
            }
        }))
        .buffered(pool.threads())
        .collect()
        .await
    };
    let elapsed = started.elapsed();

    let mut board = Scoreboard::default();
    let mut failed = 0;
    let empty = ReceiptResult {
        merchant: Default::default(),
        date: None,
        date_order: None,
        currency: None,
        subtotal: None,
        tax: None,
        tip: None,
        total: None,
        payment_method: None,
        category: None,
        line_items: vec![],
        confidence: Default::default(),
        text: String::new(),
        engine: EngineInfo { name: String::new(), version: String::new() },
        timings: Timings::default(),
        layout: None,
    };
    for (name, outcome) in &outcomes {
        let label = load_label(&args.labels, name)?;
        let result = match outcome {
            Ok(result) => result,
            Err(error) => {
                failed += 1;
                eprintln!("{name}: {error}");
                &empty
            }
        };
        board.add(result, &label);
        if args.show_errors {
            report_errors(name, result, &label);
        }
    }
    let source = if args.boxes.is_some() { "ground-truth lines" } else { "OCR" };
    println!("receipts: {} ({source}; {failed} failed) in {:.1}s", board.receipts, elapsed.as_secs_f64());
    for field in FIELDS {
        let counts = board.fields.get(field).copied().unwrap_or_default();
        println!(
            "{field:<8} accuracy {:>5.1}%  (right {}, wrong {}, missing {})",
            board.accuracy(field),
            counts.right,
            counts.wrong,
            counts.missing
        );
    }
    let (precision, recall, f1) = board.micro();
    println!("micro    precision {precision:.1}  recall {recall:.1}  F1 {f1:.1}");
    Ok(())
}

fn report_errors(name: &str, result: &ReceiptResult, label: &Label) {
    let predicted: BTreeMap<&str, String> = BTreeMap::from([
        ("company", result.merchant.name.clone().unwrap_or_default()),
        ("address", result.merchant.address.clone().unwrap_or_default()),
        ("date", result.date.map(|d| d.to_string()).unwrap_or_default()),
        ("total", result.total.map(|t| t.to_string()).unwrap_or_default()),
    ]);
    let expected: BTreeMap<&str, String> = BTreeMap::from([
        ("company", label.company.clone().unwrap_or_default()),
        ("address", label.address.clone().unwrap_or_default()),
        ("date", label.date.clone().unwrap_or_default()),
        ("total", label.total.clone().unwrap_or_default()),
    ]);
    for (field, outcome) in score(result, label) {
        if outcome != Some(true) {
            println!("{name} {field}: got {:?}, want {:?}", predicted[field], expected[field]);
        }
    }
}
