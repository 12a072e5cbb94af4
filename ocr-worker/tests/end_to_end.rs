//! The engine end to end with real Tesseract: a fixture receipt in, its fields out; the command
//! line's output format; hostile files rejected with clear errors and nothing lost.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use finagent_extract::Gazetteer;
use finagent_ocr::pool::{EnginePool, PoolConfig, ProcessError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/receipts").join(name)
}

fn pool() -> EnginePool {
    EnginePool::start(PoolConfig::default(), Arc::new(Gazetteer::bundled())).expect("tesseract starts")
}

#[tokio::test]
async fn tesseract_reads_a_fixture_receipt() {
    let bytes = std::fs::read(fixture("000.jpg")).expect("fixture");
    let result = pool().process(bytes).await.expect("readable receipt");
    assert_eq!(result.total.map(|t| t.to_string()).as_deref(), Some("9.00"));
    assert_eq!(result.date.map(|d| d.to_string()).as_deref(), Some("2018-12-25"));
    assert_eq!(result.currency.map(|c| c.to_string()).as_deref(), Some("MYR"));
    let name = result.merchant.name.expect("merchant found");
    assert!(name.contains("TAMAN DAYA"), "{name}");
    assert!(result.text.contains("JOHOR"), "{}", result.text);
    assert_eq!(result.engine.name, "tesseract");
    assert!(result.engine.version.starts_with('5'), "{}", result.engine.version);
    assert!(result.confidence.total.is_some_and(|c| c > 0.5 && c <= 1.0));
}

#[tokio::test]
async fn hostile_files_get_clear_errors_and_the_pool_survives() {
    let pool = pool();
    let jpeg = std::fs::read(fixture("005.jpg")).expect("fixture");
    let cases: Vec<(&str, Vec<u8>)> =
        vec![("empty", vec![]), ("text", b"TOTAL 9.00".to_vec()), ("truncated jpeg", jpeg[..jpeg.len() / 4].to_vec())];
    for (name, bytes) in cases {
        let error = pool.process(bytes).await.expect_err(name);
        assert!(matches!(error, ProcessError::Image(_)), "{name}: {error:?}");
        assert!(!error.is_retryable(), "{name}: a bad image is never retried");
    }
    // The same engine still reads a good receipt afterwards.
    assert!(pool.process(jpeg).await.is_ok());
}

#[test]
fn extract_prints_one_json_line_per_image_and_reports_bad_files() {
    let directory = std::env::temp_dir().join(format!("finagent-extract-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("temp dir");
    std::fs::copy(fixture("010.jpg"), directory.join("a.jpg")).expect("copy");
    std::fs::write(directory.join("b.png"), b"not an image").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_ocr-worker"))
        .arg("extract")
        .arg(&directory)
        .arg("--threads")
        .arg("1")
        .output()
        .expect("runs");
    std::fs::remove_dir_all(&directory).ok();
    assert!(!output.status.success(), "a bad file makes the exit status non-zero");
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["file"].as_str().is_some_and(|f| f.ends_with("a.jpg")));
    for field in [
        "merchant",
        "date",
        "currency",
        "subtotal",
        "tax",
        "tip",
        "total",
        "payment_method",
        "category",
        "line_items",
        "confidence",
        "text",
        "engine",
        "timings",
    ] {
        assert!(lines[0].get(field).is_some(), "missing {field}");
    }
    assert_eq!(lines[0]["total"], "14.10");
    assert!(lines[1]["error"].as_str().is_some_and(|e| e.contains("not a supported image")), "{}", lines[1]);
}

#[test]
fn evaluate_scores_the_fixtures() {
    let fixtures = fixture("");
    let output = Command::new(env!("CARGO_BIN_EXE_ocr-worker"))
        .args(["evaluate", "--threads", "2", "--images"])
        .arg(&fixtures)
        .arg("--labels")
        .arg(&fixtures)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report = String::from_utf8(output.stdout).expect("utf-8");
    assert!(report.starts_with("receipts: 4 (OCR; 0 failed)"), "{report}");
    for field in ["company", "address", "date", "total", "micro"] {
        assert!(report.lines().any(|line| line.starts_with(field)), "{field} missing from {report}");
    }
}
