//! Golden tests that lock the wire formats: a change that alters any of these JSON documents breaks
//! compatibility between producers and consumers of different builds and needs a protocol version.

use chrono::{DateTime, NaiveDate, Utc};
use finagent_core::job::{DeadLetter, JOB_PROTOCOL_VERSION, OcrJob, QueueDepth};
use finagent_core::receipt::{
    Category, EngineInfo, FieldConfidence, LineItem, Merchant, PaymentMethod, ReceiptFields, ReceiptResult, Timings,
};
use finagent_core::{Amount, BlobKey, Currency};
use pretty_assertions::assert_eq;
use serde_json::Value;

fn golden(name: &str) -> String {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("failed to read {path}: {e}"))
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("valid timestamp").with_timezone(&Utc)
}

fn amount(text: &str) -> Amount {
    text.parse().expect("valid amount")
}

fn sample_job() -> OcrJob {
    OcrJob {
        v: JOB_PROTOCOL_VERSION,
        job_id: "01936a3e-7c00-7d4e-9a51-2f0c8e1b6a10".parse().expect("id"),
        receipt_id: "01936a3e-7bf0-7a21-8c33-5d7e9f0a1b22".parse().expect("id"),
        owner_id: "01936a3e-7a10-7f00-b123-4c5d6e7f8091".parse().expect("id"),
        blob_key: BlobKey::new("receipts/01936a3e-7bf0-7a21-8c33-5d7e9f0a1b22"),
        attempt: 1,
        enqueued_at: at("2026-11-24T18:30:00Z"),
    }
}

/// Serializing the value gives the golden document, and decoding the golden text gives the value.
fn assert_golden<T>(name: &str, value: &T, decode: impl Fn(&str) -> T)
where
    T: serde::Serialize + PartialEq + std::fmt::Debug,
{
    let text = golden(name);
    let expected: Value = serde_json::from_str(&text).expect("golden file is JSON");
    assert_eq!(serde_json::to_value(value).expect("serializes"), expected, "{name}: encoding changed");
    assert_eq!(&decode(&text), value, "{name}: decoding changed");
}

#[test]
fn golden_ocr_job_v1() {
    let job = sample_job();
    assert_golden("ocr_job_v1.json", &job, |text| OcrJob::decode(text).expect("decodes"));
    assert_eq!(OcrJob::decode(&job.encode()).expect("round trip"), job);
}

#[test]
fn golden_dead_letter_v1() {
    let letter = DeadLetter {
        v: JOB_PROTOCOL_VERSION,
        job: OcrJob { attempt: 3, ..sample_job() },
        reason: "failed to decode image: unsupported format".to_owned(),
        deliveries: 3,
        failed_at: at("2026-11-24T18:31:12.500Z"),
    };
    assert_golden("dead_letter_v1.json", &letter, |text| DeadLetter::decode(text).expect("decodes"));
    assert_eq!(DeadLetter::decode(&letter.encode()).expect("round trip"), letter);
}

#[test]
fn golden_queue_depth() {
    let depth = QueueDepth { lag: 12, pending: 2 };
    assert_golden("queue_depth.json", &depth, |text| serde_json::from_str(text).expect("decodes"));
    assert_eq!(depth.total(), 14);
}

#[test]
fn golden_receipt_result() {
    let result = ReceiptResult {
        fields: ReceiptFields {
            merchant: Merchant {
                name: Some("KEDAI PAPAN YEW CHUAN".to_owned()),
                address: Some("LOT 276 JALAN BANTING 43800 DENGKIL, SELANGOR.".to_owned()),
            },
            date: NaiveDate::from_ymd_opt(2018, 3, 20),
            date_order: Some("day_first".to_owned()),
            currency: Some(Currency::MYR),
            subtotal: Some(amount("30.91")),
            tax: Some(amount("1.85")),
            tip: None,
            total: Some(amount("32.76")),
            payment_method: Some(PaymentMethod::Cash),
            category: Some(Category::Hardware),
            line_items: vec![
                LineItem {
                    description: "PASIR HALUS (HQ)".to_owned(),
                    quantity: Some(1.into()),
                    unit_price: Some(amount("30.91")),
                    amount: Some(amount("30.91")),
                },
                LineItem {
                    description: "ROUNDING".to_owned(),
                    quantity: None,
                    unit_price: None,
                    amount: Some(amount("-0.01")),
                },
            ],
        },
        confidence: FieldConfidence {
            merchant_name: Some(0.9),
            merchant_address: Some(0.75),
            date: Some(0.95),
            total: Some(0.9),
            subtotal: Some(0.8),
            tax: Some(0.8),
            tip: None,
            currency: Some(0.6),
            payment_method: Some(0.7),
            category: Some(0.5),
            line_items: Some(0.6),
        },
        text: "KEDAI PAPAN YEW CHUAN\nTOTAL 32.76".to_owned(),
        engine: EngineInfo { name: "tesseract".to_owned(), version: "5.3.0".to_owned() },
        timings: Timings { preprocess_ms: 12, ocr_ms: 640, extract_ms: 1, total_ms: 655 },
        layout: None,
        country: Some("MY".to_owned()),
        locale: Some("en-MY".to_owned()),
        debug: None,
    };
    assert_golden("receipt_result.json", &result, |text| serde_json::from_str(text).expect("decodes"));
}
