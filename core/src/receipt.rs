//! The receipt model: what clients get back for one uploaded image.
//!
//! Field names follow the "Receipt result" contract of the design: `merchant {name, address}`,
//! `date` (ISO 8601), `currency` (ISO 4217), `subtotal`, `tax`, `tip`, `total` (decimal strings),
//! `payment_method`, `category`, `line_items`, per-field `confidence` in 0–1, the raw `text`, the
//! `engine` and its `timings`. A field the receipt does not support is `null`, never guessed.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{BlobKey, ReceiptId, UserId};
use crate::money::{Amount, Currency};

/// Where a receipt is in its life: `queued → processing → done | failed`.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Stored and waiting for a worker.
    Queued,
    /// A worker is running OCR on it.
    Processing,
    /// A result is stored.
    Done,
    /// Every attempt failed; the reason is kept on the receipt.
    Failed,
}

impl ReceiptStatus {
    /// The status as it appears on the wire and in the stores.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Whether the receipt may move from `self` to `next`. A redelivered job may move a
    /// `processing` receipt to `processing` again, and a finished receipt never changes state.
    pub fn can_become(&self, next: ReceiptStatus) -> bool {
        use ReceiptStatus::*;
        matches!((self, next), (Queued, Processing) | (Processing, Processing) | (Queued | Processing, Done | Failed))
    }
}

/// Why a receipt could not be read: a fixed code, which is what its owner sees (the raw error
/// stays in the worker's log and the dead-letter record, for operators).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// The image is not one the engine can decode.
    UnreadableImage,
    /// The stored image is gone.
    ImageMissing,
    /// Reading took longer than the per-image limit.
    Timeout,
    /// The engine crashed on this image.
    EngineCrashed,
    /// Every worker that took it stopped while reading it.
    Abandoned,
    /// Anything else (the store, the engine's setup).
    Internal,
}

impl FailureReason {
    /// Every reason.
    pub const ALL: [FailureReason; 6] = [
        Self::UnreadableImage,
        Self::ImageMissing,
        Self::Timeout,
        Self::EngineCrashed,
        Self::Abandoned,
        Self::Internal,
    ];

    /// The code stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnreadableImage => "unreadable_image",
            Self::ImageMissing => "image_missing",
            Self::Timeout => "timeout",
            Self::EngineCrashed => "engine_crashed",
            Self::Abandoned => "abandoned",
            Self::Internal => "internal",
        }
    }

    /// What it means, for the owner.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnreadableImage => "the image could not be decoded",
            Self::ImageMissing => "the stored image is missing",
            Self::Timeout => "reading the image took too long",
            Self::EngineCrashed => "the reader crashed on this image",
            Self::Abandoned => "every reader that took it stopped while reading it",
            Self::Internal => "an internal error stopped the reading; try uploading it again",
        }
    }

    /// The reason a stored failure names: its code, or `internal` for anything else (failures
    /// stored before codes were, whose raw text is never shown).
    pub fn of_stored(stored: &str) -> Self {
        Self::ALL.into_iter().find(|reason| reason.as_str() == stored).unwrap_or(Self::Internal)
    }
}

/// The merchant as printed on the receipt.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    /// Trading name, as printed.
    pub name: Option<String>,
    /// Postal address, lines joined with single spaces.
    pub address: Option<String>,
}

/// How the receipt was paid.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Notes and coins.
    Cash,
    /// A credit or debit card.
    Card,
    /// A phone wallet or QR payment.
    Mobile,
    /// A voucher, gift card or store credit.
    Voucher,
    /// Printed, but none of the above.
    Other,
}

/// Spending categories. The taxonomy is deliberately small so insights stay readable.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Supermarkets, grocers, convenience stores.
    Groceries,
    /// Restaurants, cafés, bakeries, take-away.
    Dining,
    /// Hardware, tools, building supplies, home improvement.
    Hardware,
    /// Stationery, books, printing, office supplies.
    Office,
    /// Pharmacies, clinics, opticians.
    Health,
    /// Fuel stations, parking, tolls, taxis and public transport.
    Transport,
    /// Hotels and other lodging.
    Lodging,
    /// Electronics, phones, computers.
    Electronics,
    /// Clothing, department stores, general retail.
    Shopping,
    /// Electricity, water, telecoms.
    Utilities,
    /// Anything else.
    Other,
}

impl Category {
    /// Every category, in a stable order.
    pub const ALL: [Category; 11] = [
        Self::Groceries,
        Self::Dining,
        Self::Hardware,
        Self::Office,
        Self::Health,
        Self::Transport,
        Self::Lodging,
        Self::Electronics,
        Self::Shopping,
        Self::Utilities,
        Self::Other,
    ];

    /// The category as it appears on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Groceries => "groceries",
            Self::Dining => "dining",
            Self::Hardware => "hardware",
            Self::Office => "office",
            Self::Health => "health",
            Self::Transport => "transport",
            Self::Lodging => "lodging",
            Self::Electronics => "electronics",
            Self::Shopping => "shopping",
            Self::Utilities => "utilities",
            Self::Other => "other",
        }
    }
}

/// One purchased line.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// What was bought, as printed.
    pub description: String,
    /// How many; decimal because goods are sold by weight.
    pub quantity: Option<rust_decimal::Decimal>,
    /// Price of one unit.
    pub unit_price: Option<Amount>,
    /// Line amount; negative for discounts and returns.
    pub amount: Option<Amount>,
}

/// Confidence in 0–1 for each extracted field; `None` where the field is absent.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldConfidence {
    /// Confidence in `merchant.name`.
    pub merchant_name: Option<f64>,
    /// Confidence in `merchant.address`.
    pub merchant_address: Option<f64>,
    /// Confidence in `date`.
    pub date: Option<f64>,
    /// Confidence in `total`.
    pub total: Option<f64>,
    /// Confidence in `subtotal`.
    pub subtotal: Option<f64>,
    /// Confidence in `tax`.
    pub tax: Option<f64>,
    /// Confidence in `tip`.
    pub tip: Option<f64>,
    /// Confidence in `currency`.
    pub currency: Option<f64>,
    /// Confidence in `payment_method`.
    pub payment_method: Option<f64>,
    /// Confidence in `category`.
    pub category: Option<f64>,
    /// Confidence in `line_items` as a whole.
    pub line_items: Option<f64>,
}

/// Which OCR engine produced a result.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// Engine name, e.g. `tesseract`.
    pub name: String,
    /// Engine version as it reports itself.
    pub version: String,
}

/// Where the time went, in milliseconds.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Decoding and preprocessing the image.
    pub preprocess_ms: u64,
    /// Running OCR (all passes).
    pub ocr_ms: u64,
    /// Field extraction.
    pub extract_ms: u64,
    /// End to end.
    pub total_ms: u64,
}

/// A box on the receipt's image, in pixels of the uploaded image: `[left, top, right, bottom]`.
pub type PixelBox = [i32; 4];

/// One line of OCR text and where it was read.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayoutLine {
    /// The text of the line.
    pub text: String,
    /// Where it is on the image.
    #[cfg_attr(feature = "utoipa", schema(value_type = [i32]))]
    pub bbox: PixelBox,
}

/// Where the fields were read on the image, so a reviewer can see the source of each value.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultLayout {
    /// Width of the image the boxes refer to (0 when unknown).
    pub width: i32,
    /// Height of the image the boxes refer to (0 when unknown).
    pub height: i32,
    /// For each field read from the image (`merchant_name`, `merchant_address`, `date`, `subtotal`,
    /// `tax`, `tip`, `total`, `payment_method`), the box of the row it was read from.
    #[cfg_attr(feature = "utoipa", schema(value_type = std::collections::BTreeMap<String, Vec<i32>>))]
    pub fields: std::collections::BTreeMap<String, PixelBox>,
    /// The OCR lines in reading order.
    pub lines: Vec<LayoutLine>,
}

/// The fields read from one receipt: what it says, defined once for the result, the extraction
/// that produces it and the corrections a user makes to it.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiptFields {
    pub merchant: Merchant,
    /// Date of purchase (ISO 8601, `YYYY-MM-DD`).
    pub date: Option<NaiveDate>,
    /// How an ambiguous printed date was read, e.g. `day_first`; `None` when unambiguous or absent.
    pub date_order: Option<String>,
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
    /// Purchased lines.
    pub line_items: Vec<LineItem>,
}

/// The structured result of one receipt.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiptResult {
    /// The fields, at the top level of the result.
    #[serde(flatten)]
    pub fields: ReceiptFields,
    /// Confidence per field.
    pub confidence: FieldConfidence,
    /// The OCR text the fields were extracted from.
    pub text: String,
    /// The engine that read the image.
    pub engine: EngineInfo,
    /// Where the time went.
    pub timings: Timings,
    /// Where the fields and lines were read on the image; absent for results read without boxes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<ResultLayout>,
    /// The country the receipt was printed in (ISO 3166-1 alpha-2, e.g. `US`), inferred from what
    /// it prints; absent when the evidence is too thin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The conventions the receipt was read with (BCP 47, e.g. `en-US`, `de-DE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// How the extraction decided: the locale evidence, where the merchant came from, the printed
    /// strings of the date and total. For debugging and evaluation; its shape may change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<ExtractionDebug>,
}

/// How an extraction reached its fields (see [`ReceiptResult::debug`]).
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtractionDebug {
    /// The signals the locale was inferred from, strongest first (e.g. `US state + ZIP "WA 98201"`).
    #[serde(default)]
    pub locale_evidence: Vec<String>,
    /// Where the merchant name came from: `header`, `thanks_line`, `gazetteer`, `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_source: Option<String>,
    /// The date as printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_text: Option<String>,
    /// The total as printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_text: Option<String>,
    /// The Tesseract languages the text was read with (e.g. `eng`, `eng+deu`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr_languages: Option<String>,
    /// Preprocessing steps applied to the image (e.g. `cropped`, `rotated 90`, `deskewed 1.5`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preprocessing: Vec<String>,
}

/// A stored receipt: who owns it, where its image is, and how far processing got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The receipt's id.
    pub id: ReceiptId,
    /// Its owner; nobody else may see it.
    pub owner_id: UserId,
    /// Processing state.
    pub status: ReceiptStatus,
    /// The original image.
    pub blob_key: BlobKey,
    /// Hex SHA-256 of the image, for per-user de-duplication.
    pub image_sha256: String,
    /// Original file name, if the client sent one.
    pub file_name: Option<String>,
    /// Media type detected from the image's magic bytes.
    pub content_type: String,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Why processing failed, when `status` is `failed`.
    pub failure: Option<String>,
    /// The extraction, when `status` is `done`; never changed by corrections.
    pub result: Option<ReceiptResult>,
    /// The extraction with the owner's corrections applied, when they made any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected: Option<ReceiptResult>,
    /// The `Idempotency-Key` the upload came with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Size of the stored image, counted against the owner's quota (0 for receipts stored before
    /// sizes were kept).
    #[serde(default)]
    pub image_bytes: u64,
}

impl Receipt {
    /// A receipt just uploaded: queued, its image under [`BlobKey::for_receipt`].
    pub fn queued(owner_id: UserId, image_sha256: String, content_type: &str, now: DateTime<Utc>) -> Receipt {
        let id = ReceiptId::new();
        Receipt {
            id,
            owner_id,
            status: ReceiptStatus::Queued,
            blob_key: BlobKey::for_receipt(id),
            image_sha256,
            file_name: None,
            content_type: content_type.to_owned(),
            created_at: now,
            updated_at: now,
            failure: None,
            result: None,
            corrected: None,
            idempotency_key: None,
            image_bytes: 0,
        }
    }

    /// The result clients should see: the corrected one when there is one.
    pub fn effective_result(&self) -> Option<&ReceiptResult> {
        self.corrected.as_ref().or(self.result.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions_follow_the_lifecycle() {
        use ReceiptStatus::*;
        assert!(Queued.can_become(Processing));
        assert!(Processing.can_become(Processing));
        assert!(Processing.can_become(Done));
        assert!(Queued.can_become(Failed));
        assert!(!Done.can_become(Processing));
        assert!(!Failed.can_become(Done));
        assert!(!Done.can_become(Queued));
    }

    #[test]
    fn categories_serialize_as_their_names() {
        for category in Category::ALL {
            let json = serde_json::to_value(category).expect("serializes");
            assert_eq!(json, serde_json::Value::String(category.as_str().to_owned()));
        }
    }
}

/// What a user's correction taught about a merchant, remembered under the receipt's fingerprints
/// (phone numbers, header lines, address) and given to their later receipts that share one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedMerchant {
    /// The merchant's name as the user wrote it.
    #[serde(default)]
    pub name: Option<String>,
    /// The category the user chose.
    #[serde(default)]
    pub category: Option<Category>,
}
