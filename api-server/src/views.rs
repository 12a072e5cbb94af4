//! What clients see of a receipt: its task (for polling) and the whole receipt with its result.

use chrono::{DateTime, Utc};
use finagent_core::ReceiptId;
use finagent_core::money::{Amount, Currency};
use finagent_core::receipt::{Category, FailureReason, Merchant, PaymentMethod, Receipt, ReceiptResult, ReceiptStatus};
use serde::{Deserialize, Serialize};
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
    /// For a PDF, where its pages are served as one PNG to show instead (the field outlines of
    /// `result.layout` fit it); absent for images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
}

/// Where a receipt's preview is served, when it is a PDF.
pub fn preview_url(receipt: &Receipt) -> Option<String> {
    (receipt.content_type == "application/pdf").then(|| format!("/api/receipts/{}/preview", receipt.id))
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
            review_confidence: finagent_platform::store::query::review_confidence(receipt),
            image_url: format!("/api/receipts/{}/image", receipt.id),
            preview_url: preview_url(receipt),
        }
    }
}

/// How a list shows each receipt.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListView {
    /// The fields a list shows: merchant, date, amounts, category, status and the review
    /// confidence, without the OCR text, the line items, the layout, the per-field confidence and
    /// the original extraction. A page
    /// stays a few KiB, whatever the receipts hold.
    #[default]
    Summary,
    /// Each receipt whole, as `GET /api/receipts/{id}` answers it.
    Full,
}

/// A receipt in a list (the default `view=summary`): what a row shows. The whole receipt is at
/// `GET /api/receipts/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptSummary {
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
    /// The extracted fields, with the owner's corrections applied; absent until done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultSummary>,
    /// Whether the owner corrected the extraction.
    pub corrected: bool,
    /// As in the whole receipt: the lowest confidence among merchant name, date and total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_confidence: Option<f64>,
    /// Where the image is served.
    pub image_url: String,
}

/// The fields of an extraction that a list shows, with the same names and types as in
/// [`ReceiptResult`]. Per-field confidence is left to the whole receipt; `review_confidence`
/// says whether a row deserves a look.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultSummary {
    pub merchant: Merchant,
    /// Date of purchase (ISO 8601, `YYYY-MM-DD`).
    pub date: Option<chrono::NaiveDate>,
    /// ISO 4217 currency.
    pub currency: Option<Currency>,
    /// Sum before tax.
    pub subtotal: Option<Amount>,
    pub tax: Option<Amount>,
    /// Tip or service charge.
    pub tip: Option<Amount>,
    /// Amount paid.
    pub total: Option<Amount>,
    /// How it was paid.
    pub payment_method: Option<PaymentMethod>,
    /// Spending category.
    pub category: Option<Category>,
    /// The country the receipt was printed in (ISO 3166-1 alpha-2), when inferred.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl From<&ReceiptResult> for ResultSummary {
    fn from(result: &ReceiptResult) -> Self {
        Self {
            merchant: result.fields.merchant.clone(),
            date: result.fields.date,
            currency: result.fields.currency,
            subtotal: result.fields.subtotal,
            tax: result.fields.tax,
            tip: result.fields.tip,
            total: result.fields.total,
            payment_method: result.fields.payment_method,
            category: result.fields.category,
            country: result.country.clone(),
        }
    }
}

impl From<&Receipt> for ReceiptSummary {
    fn from(receipt: &Receipt) -> Self {
        Self {
            id: receipt.id,
            status: receipt.status,
            file_name: receipt.file_name.clone(),
            content_type: receipt.content_type.clone(),
            created_at: receipt.created_at,
            updated_at: receipt.updated_at,
            failure: failure_of(receipt).map(FailureReason::as_str),
            failure_message: failure_of(receipt).map(FailureReason::message),
            result: receipt.effective_result().map(ResultSummary::from),
            corrected: receipt.corrected.is_some(),
            review_confidence: finagent_platform::store::query::review_confidence(receipt),
            image_url: format!("/api/receipts/{}/image", receipt.id),
        }
    }
}

/// A receipt in a list, as its `view` asks.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ListedReceipt {
    /// `view=summary` (the default).
    Summary(Box<ReceiptSummary>),
    /// `view=full`.
    Full(Box<ReceiptView>),
}

impl ListedReceipt {
    /// `receipt` as `view` shows it.
    pub fn new(receipt: &Receipt, view: ListView) -> Self {
        match view {
            ListView::Summary => Self::Summary(Box::new(ReceiptSummary::from(receipt))),
            ListView::Full => Self::Full(Box::new(ReceiptView::from(receipt))),
        }
    }
}

/// The reason a failed receipt failed, as its owner may see it.
pub fn failure_of(receipt: &Receipt) -> Option<FailureReason> {
    (receipt.status == finagent_core::receipt::ReceiptStatus::Failed)
        .then(|| FailureReason::of_stored(receipt.failure.as_deref().unwrap_or_default()))
}
