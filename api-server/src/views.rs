//! What clients see of a receipt: its task (for polling) and the whole receipt with its result.

use chrono::{DateTime, Utc};
use finagent_core::ReceiptId;
use finagent_core::receipt::{FailureReason, Receipt, ReceiptResult, ReceiptStatus};
use serde::Serialize;
use utoipa::ToSchema;

/// An OCR task: a receipt on its way through the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    /// The task id, which is the receipt id.
    pub task_id: ReceiptId,
    /// `queued`, `processing`, `done` or `failed`.
    pub status: ReceiptStatus,
    /// Why it failed, when it did: `unreadable_image`, `image_missing`, `timeout`,
    /// `engine_crashed`, `abandoned` or `internal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'static str>,
    /// The failure in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<&'static str>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Where to poll the status.
    pub status_url: String,
    /// Where the result will be.
    pub result_url: String,
}

impl From<&Receipt> for TaskView {
    fn from(receipt: &Receipt) -> Self {
        Self {
            task_id: receipt.id,
            status: receipt.status,
            failure: failure_of(receipt).map(FailureReason::as_str),
            failure_message: failure_of(receipt).map(FailureReason::message),
            created_at: receipt.created_at,
            updated_at: receipt.updated_at,
            status_url: format!("/api/ocr/status/{}", receipt.id),
            result_url: format!("/api/ocr/result/{}", receipt.id),
        }
    }
}

/// A receipt with its extraction.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptView {
    /// Id (also the OCR task id).
    pub id: ReceiptId,
    /// `queued`, `processing`, `done` or `failed`.
    pub status: ReceiptStatus,
    /// The uploaded file's name, when the client sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Media type detected from the image's bytes.
    pub content_type: String,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Why processing failed, when it did (a code, as in the task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'static str>,
    /// The failure in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_message: Option<&'static str>,
    /// The extraction, with the owner's corrections applied; absent until done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ReceiptResult>,
    /// Whether the owner corrected the extraction.
    pub corrected: bool,
    /// The extraction as the OCR produced it, when it was corrected since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_result: Option<ReceiptResult>,
    /// For a processed receipt, the lowest confidence among merchant name, date and total (a
    /// missing one counts 0): below 0.8 it deserves a look. The `review` sort orders by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_confidence: Option<f64>,
    /// Where the image is served.
    pub image_url: String,
}

impl From<&Receipt> for ReceiptView {
    fn from(receipt: &Receipt) -> Self {
        let corrected = receipt.corrected.is_some();
        Self {
            id: receipt.id,
            status: receipt.status,
            file_name: receipt.file_name.clone(),
            content_type: receipt.content_type.clone(),
            created_at: receipt.created_at,
            updated_at: receipt.updated_at,
            failure: failure_of(receipt).map(FailureReason::as_str),
            failure_message: failure_of(receipt).map(FailureReason::message),
            result: receipt.effective_result().cloned(),
            corrected,
            original_result: if corrected { receipt.result.clone() } else { None },
            review_confidence: crate::receipts::review_confidence(receipt),
            image_url: format!("/api/receipts/{}/image", receipt.id),
        }
    }
}

/// The reason a failed receipt failed, as its owner may see it.
pub fn failure_of(receipt: &Receipt) -> Option<FailureReason> {
    (receipt.status == finagent_core::receipt::ReceiptStatus::Failed)
        .then(|| FailureReason::of_stored(receipt.failure.as_deref().unwrap_or_default()))
}
