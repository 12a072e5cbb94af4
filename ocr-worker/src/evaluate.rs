//! `ocr-worker evaluate`: scores extraction against SROIE-style labels.
//!
//! With `--images`, each image goes through the whole engine; with `--boxes`, the ground-truth
//! text lines are used instead of OCR, which separates extraction errors from OCR errors. Every
//! field is scored by value and by the label's own string (see [`finagent_extract::evaluation`]),
//! and the report says how many of the right merchant names and addresses the gazetteer gave.
//! `--ocr-cache DIR` keeps each image's OCR output, so that a change to extraction alone can be
//! re-scored without reading the images again (delete the folder after changing the engine).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use finagent_core::receipt::{EngineInfo, ReceiptResult, Timings};
use finagent_extract::evaluation::{FIELDS, Label, Matching, Scoreboard, score};
use finagent_extract::{self as extract, BoundingBox, Gazetteer, LocaleHint, Page, TextLine};
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
    /// Keep each image's OCR output in this folder and re-extract from it on later runs.
    #[arg(long)]
    pub ocr_cache: Option<PathBuf>,
    /// The account's default country (ISO 3166-1), as a user's settings would give it: a prior
    /// the receipt's own print outweighs. Without it, nothing is assumed.
    #[arg(long)]
    pub default_country: Option<String>,
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
    let hint = LocaleHint { country: args.default_country.clone(), currency: None };
    let hint = &hint;
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
                let result = extract_page(&Page::from_box_csv(&text), &gazetteer, hint).into_result(
                    EngineInfo { name: "ground-truth-lines".to_owned(), version: "1".to_owned() },
                    Timings::default(),
                );
                (stem(path), Ok(result))
            })
            .collect()
    } else {
        let images = args.images.clone().unwrap_or_default();
        let files = image_files(&[images])?;
        let gazetteer = args.engine.gazetteer();
        let cached = |file: &Path| -> Option<ReceiptResult> {
            let path = args.ocr_cache.as_ref()?.join(format!("{}.json", stem(file)));
            let saved: ReceiptResult = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            Some(re_extract(&saved, &gazetteer, hint))
        };
        let pool = args.engine.start_pool()?;
        if let Some(cache) = &args.ocr_cache {
            std::fs::create_dir_all(cache)?;
        }
        futures::stream::iter(files.into_iter().map(|file| {
            let pool = &pool;
            let hit = cached(&file);
            let cache = args.ocr_cache.clone();
            async move {
                if let Some(result) = hit {
                    return (stem(&file), Ok(result));
                }
                let outcome = match std::fs::read(&file) {
                    Ok(bytes) => pool.process_with(bytes, hint.clone()).await.map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                if let (Some(cache), Ok(result)) = (cache, &outcome)
                    && let Ok(json) = serde_json::to_vec(result)
                {
                    let _ = std::fs::write(cache.join(format!("{}.json", stem(&file))), json);
                }
                (stem(&file), outcome)
            }
        }))
        .buffered(pool.threads())
        .collect()
        .await
    };
    let elapsed = started.elapsed();

    let mut by_value = Scoreboard::new(Matching::Value);
    let mut by_string = Scoreboard::new(Matching::String);
    let mut by_country: BTreeMap<String, Scoreboard> = BTreeMap::new();
    let mut failed = 0;
    let empty = ReceiptResult::default();
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
        by_value.add(result, &label);
        by_string.add(result, &label);
        if let Some(country) = &label.country {
            by_country
                .entry(country.to_uppercase())
                .or_insert_with(|| Scoreboard::new(Matching::Value))
                .add(result, &label);
        }
        if args.show_errors {
            report_errors(name, result, &label);
        }
    }
    let source = if args.boxes.is_some() { "ground-truth lines" } else { "OCR" };
    let gazetteer = if args.engine.no_gazetteer { "without the gazetteer" } else { "with the gazetteer" };
    println!(
        "receipts: {} ({source}, {gazetteer}; {failed} failed) in {:.1}s",
        by_value.receipts,
        elapsed.as_secs_f64()
    );
    for (title, board) in [("by value", &by_value), ("by string", &by_string)] {
        println!("{title}:");
        for field in FIELDS.iter().copied().chain(board.fields.contains_key("currency").then_some("currency")) {
            let counts = board.fields.get(field).copied().unwrap_or_default();
            println!(
                "  {field:<8} accuracy {:>5.1}%  (right {}, wrong {}, missing {} of {})",
                board.accuracy(field),
                counts.right,
                counts.wrong,
                counts.missing,
                counts.labelled
            );
        }
        let (precision, recall, f1) = board.micro();
        println!("  micro    precision {precision:.1}  recall {recall:.1}  F1 {f1:.1}");
    }
    if let Some((majority, _)) = by_value.currency_labels.iter().max_by_key(|(_, count)| **count) {
        println!("currency baseline: {:.1}% (answering {majority} every time)", by_value.currency_baseline());
    }
    println!(
        "gazetteer: {:.1}% of the right merchant names and addresses (by value) came from it",
        by_value.gazetteer_share()
    );
    if !by_country.is_empty() {
        print!("{}", country_table(&by_country));
    }
    Ok(())
}

/// Per-country accuracy by value, one row a country: `  DE  receipts 6  company 83.3 ...`.
fn country_table(boards: &BTreeMap<String, Scoreboard>) -> String {
    let mut out = String::from("by country (by value, accuracy %):\n");
    for (country, board) in boards {
        out.push_str(&format!("  {country}  receipts {:>3}", board.receipts));
        for field in ["company", "address", "date", "total", "currency"] {
            out.push_str(&format!("  {field} {:>5.1}", board.accuracy(field)));
        }
        out.push('\n');
    }
    out
}

/// Extraction of one page with the account settings given, today's date in UTC.
fn extract_page(page: &Page, gazetteer: &Gazetteer, hint: &LocaleHint) -> extract::Extraction {
    extract::extract_with(page, extract::Context { gazetteer, hint, today: chrono::Utc::now().date_naive() })
}

/// Re-runs extraction on the lines of a saved result.
fn re_extract(saved: &ReceiptResult, gazetteer: &Gazetteer, hint: &LocaleHint) -> ReceiptResult {
    let layout = saved.layout.clone().unwrap_or_default();
    let page = Page {
        lines: layout
            .lines
            .iter()
            .map(|line| TextLine {
                text: line.text.clone(),
                bbox: BoundingBox { left: line.bbox[0], top: line.bbox[1], right: line.bbox[2], bottom: line.bbox[3] },
                confidence: 0.9,
            })
            .collect(),
        width: layout.width,
        height: layout.height,
    };
    let mut result = extract_page(&page, gazetteer, hint).into_result(saved.engine.clone(), saved.timings.clone());
    if let (Some(debug), Some(saved)) = (result.debug.as_mut(), saved.debug.as_ref()) {
        debug.ocr_languages.clone_from(&saved.ocr_languages);
        debug.preprocessing.clone_from(&saved.preprocessing);
    }
    result
}

fn report_errors(name: &str, result: &ReceiptResult, label: &Label) {
    let predicted: BTreeMap<&str, String> = BTreeMap::from([
        ("company", result.fields.merchant.name.clone().unwrap_or_default()),
        ("address", result.fields.merchant.address.clone().unwrap_or_default()),
        ("date", result.fields.date.map(|d| d.to_string()).unwrap_or_default()),
        ("total", result.fields.total.map(|t| t.to_string()).unwrap_or_default()),
        ("currency", result.fields.currency.map(|c| c.to_string()).unwrap_or_default()),
    ]);
    let expected: BTreeMap<&str, String> = BTreeMap::from([
        ("company", label.company.clone().unwrap_or_default()),
        ("address", label.address.clone().unwrap_or_default()),
        ("date", label.date.clone().unwrap_or_default()),
        ("total", label.total.clone().unwrap_or_default()),
        ("currency", label.currency.clone().unwrap_or_default()),
    ]);
    let by_string = score(result, label, Matching::String);
    let debug = result.debug.as_ref();
    for (field, outcome) in score(result, label, Matching::Value) {
        if outcome != Some(true) {
            println!("{name} {field}: got {:?}, want {:?}", predicted[field], expected[field]);
        } else if by_string.get(field).copied().flatten() == Some(false) {
            // Right by value, printed differently from the label.
            let printed = match field {
                "date" => debug.and_then(|d| d.date_text.clone()).unwrap_or_default(),
                "total" => debug.and_then(|d| d.total_text.clone()).unwrap_or_default(),
                _ => predicted[field].clone(),
            };
            println!("{name} {field} (by string): got {printed:?}, want {:?}", expected[field]);
        }
    }
}
