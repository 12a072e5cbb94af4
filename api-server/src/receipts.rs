//! `/api/receipts`: the caller's receipts — list with filters and cursor pagination, read,
//! correct by hand, delete, export as CSV.
//!
//! Filtering, ordering and paging run in the store ([`ReceiptStore::receipt_page`]), which reads
//! only the page asked for; the export streams the store's pages.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use finagent_core::ReceiptId;
use finagent_core::money::Amount;
use finagent_core::receipt::{Category, Receipt, ReceiptResult, ReceiptStatus};
use finagent_platform::store::{
    BlobStore, Position, ReceiptFilter as StoreFilter, ReceiptQuery, ReceiptStore, SortOrder,
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::principal::Caller;
use crate::error::{AppError, Problem};
use crate::extractors::{ApiJson, ApiPath, ApiQuery};
use crate::ocr::owned;
use crate::state::AppState;
use crate::views::{ListView, ListedReceipt, ReceiptView};

/// Filters of the list and the export.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptFilter {
    /// Purchases on or after this date (receipts without a date are left out when set).
    pub from: Option<NaiveDate>,
    /// Purchases on or before this date.
    pub to: Option<NaiveDate>,
    /// Merchant name contains this (case-insensitive).
    pub merchant: Option<String>,
    /// Spending category.
    #[param(value_type = Option<String>)]
    pub category: Option<Category>,
    /// Total at least this much.
    #[param(value_type = Option<String>, example = "10.00")]
    pub min_total: Option<Amount>,
    /// Total at most this much.
    #[param(value_type = Option<String>, example = "100.00")]
    pub max_total: Option<Amount>,
    /// Processing status.
    #[param(value_type = Option<String>)]
    pub status: Option<ReceiptStatus>,
}

pub use finagent_platform::store::query::review_confidence;

/// Paging of the list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Receipts per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (of the same `sort`).
    pub cursor: Option<String>,
    /// The order: `newest` (default), `oldest`, `purchased`, `total` or `review`.
    #[param(value_type = Option<String>)]
    pub sort: Option<SortOrder>,
    /// How each receipt is shown: `summary` (default; what a list row shows, without the OCR
    /// text, line items and layout) or `full` (as `GET /api/receipts/{id}`).
    #[param(value_type = Option<String>)]
    pub view: Option<ListView>,
}

impl ReceiptFilter {
    /// The filter as the store takes it.
    pub fn to_store(&self) -> StoreFilter {
        StoreFilter {
            from: self.from,
            to: self.to,
            merchant: self.merchant.clone(),
            category: self.category,
            min_total: self.min_total,
            max_total: self.max_total,
            status: self.status,
        }
    }
}

/// A page of receipts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptPage {
    /// In the order asked for, each as `view` asks.
    pub items: Vec<ListedReceipt>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The cursor of the page after `position`.
pub fn encode_cursor(sort: SortOrder, position: &Position) -> String {
    let created = position.created().unwrap_or_default().to_rfc3339_opts(SecondsFormat::Micros, true);
    let text = match sort {
        // The default order keeps the cursor format it always had.
        SortOrder::Newest => format!("{created}|{}", position.id),
        _ => format!("{}|{:?}|{created}|{}", sort.as_str(), position.primary, position.id),
    };
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(sort: SortOrder, cursor: &str) -> Result<Position, AppError> {
    let invalid = || AppError::Invalid("cursor: not a cursor this API returned for this sort".into());
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?).map_err(|_| invalid())?;
    let parts: Vec<&str> = text.split('|').collect();
    let (primary, created, id) = match (sort, parts.as_slice()) {
        (SortOrder::Newest, [created, id]) => (0.0, *created, *id),
        (_, [name, primary, created, id]) if *name == sort.as_str() && sort != SortOrder::Newest => {
            (primary.parse::<f64>().map_err(|_| invalid())?, *created, *id)
        }
        _ => return Err(invalid()),
    };
    let created = DateTime::parse_from_rfc3339(created).map_err(|_| invalid())?.timestamp_micros();
    if !primary.is_finite() {
        return Err(invalid());
    }
    Ok(Position { primary, created_us: created, id: id.parse().map_err(|_| invalid())? })
}

/// Lists the caller's receipts, newest first.
#[utoipa::path(get, path = "/api/receipts", tag = "receipts", security(("bearer" = []), ("api_key" = [])),
    params(ReceiptFilter, Paging),
    responses(
        (status = 200, description = "A page", body = ReceiptPage),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 422, description = "Invalid filter or cursor", body = Problem),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<ReceiptFilter>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<axum::Json<ReceiptPage>, AppError> {
    let limit = paging.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(AppError::Invalid("limit: between 1 and 100".into()));
    }
    let sort = paging.sort.unwrap_or_default();
    let after = paging.cursor.as_deref().map(|cursor| decode_cursor(sort, cursor)).transpose()?;
    // One more than the page tells whether there is a next one.
    let query = ReceiptQuery { filter: filter.to_store(), sort, after, limit: limit + 1 };
    let mut page = state.store.receipt_page(caller.0.user_id, &query).await?;
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_cursor =
        if more { page.last().map(|receipt| encode_cursor(sort, &Position::of(sort, receipt))) } else { None };
    let view = paging.view.unwrap_or_default();
    let items = page.iter().map(|receipt| ListedReceipt::new(receipt, view)).collect();
    Ok(axum::Json(ReceiptPage { items, next_cursor }))
}

/// One of the caller's receipts.
#[utoipa::path(get, path = "/api/receipts/{id}", tag = "receipts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = ReceiptId, Path, description = "The receipt id")),
    responses(
        (status = 200, description = "The receipt", body = ReceiptView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "No such receipt for this caller", body = Problem),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReceiptId>,
) -> Result<axum::Json<ReceiptView>, AppError> {
    Ok(axum::Json(ReceiptView::from(&owned(&state, &caller, id).await?)))
}

/// The receipt's original image, as uploaded.
#[utoipa::path(get, path = "/api/receipts/{id}/image", tag = "receipts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = ReceiptId, Path, description = "The receipt id")),
    responses(
        (status = 200, description = "The image, with the media type detected at upload; `ETag` is its SHA-256", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "`If-None-Match` names this image's `ETag`: the copy the client holds is current"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "No such receipt for this caller", body = Problem),
    ))]
pub async fn image(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReceiptId>,
    request: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    let receipt = owned(&state, &caller, id).await?;
    // A receipt's image never changes, so its digest is a strong validator.
    let etag = HeaderValue::from_str(&format!("\"{}\"", receipt.image_sha256))
        .map_err(|_| AppError::Internal("an image digest that is not a header value".into()))?;
    if crate::read_cache::not_modified(&request, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, etag);
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(IMAGE_CACHE));
        return Ok(response);
    }
    let bytes = state.store.blob(&receipt.blob_key).await?.ok_or(AppError::NotFound)?;
    // Only image types browsers display are served as themselves; anything else downloads.
    const SHOWN: [&str; 5] = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"];
    let content_type =
        SHOWN.into_iter().find(|kind| *kind == receipt.content_type).unwrap_or("application/octet-stream");
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMAGE_CACHE));
    headers.insert(header::ETAG, etag);
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(response)
}

/// A PDF receipt's pages as one PNG, rendered by the OCR worker when it read the receipt: what the
/// review page shows, since a browser cannot draw a PDF in an image.
#[utoipa::path(get, path = "/api/receipts/{id}/preview", tag = "receipts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = ReceiptId, Path, description = "The receipt id")),
    responses(
        (status = 200, description = "The preview", content_type = "image/png", body = Vec<u8>),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "No such receipt for this caller, not a PDF, or not read yet", body = Problem),
    ))]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReceiptId>,
) -> Result<Response, AppError> {
    let receipt = owned(&state, &caller, id).await?;
    if crate::views::preview_url(&receipt).is_none() {
        return Err(AppError::NotFound);
    }
    let bytes = state.store.blob(&receipt.blob_key.preview()).await?.ok_or(AppError::NotFound)?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMAGE_CACHE));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(response)
}

/// Browsers keep an image for an hour, then ask again with its `ETag`.
const IMAGE_CACHE: &str = "private, max-age=3600";

/// Deletes a receipt, its result and its image.
#[utoipa::path(delete, path = "/api/receipts/{id}", tag = "receipts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = ReceiptId, Path, description = "The receipt id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "No such receipt for this caller", body = Problem),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReceiptId>,
) -> Result<StatusCode, AppError> {
    let receipt = state.store.delete_receipt(caller.0.user_id, id).await?.ok_or(AppError::NotFound)?;
    crate::auth::accounts_cache::changed(&state, caller.0.user_id).await;
    state.store.delete_blob(&receipt.blob_key).await?;
    if crate::views::preview_url(&receipt).is_some() {
        state.store.delete_blob(&receipt.blob_key.preview()).await?;
    }
    tracing::info!(receipt.id = %id, user.id = %caller.0.user_id, "receipt deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub use finagent_core::correction::Correction;

/// Corrects fields of a processed receipt by hand. The OCR's extraction is kept as
/// `original_result`; corrected fields get confidence 1.
#[utoipa::path(patch, path = "/api/receipts/{id}", tag = "receipts", security(("bearer" = []), ("api_key" = [])),
    params(("id" = ReceiptId, Path, description = "The receipt id")), request_body = Correction,
    responses(
        (status = 200, description = "Corrected", body = ReceiptView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "No such receipt for this caller", body = Problem),
        (status = 409, description = "Not processed yet", body = Problem),
        (status = 422, description = "Invalid field", body = Problem),
    ))]
pub async fn correct(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReceiptId>,
    ApiJson(correction): ApiJson<Correction>,
) -> Result<axum::Json<ReceiptView>, AppError> {
    let mut receipt = owned(&state, &caller, id).await?;
    let Some(mut result) = receipt.effective_result().cloned().filter(|_| receipt.status == ReceiptStatus::Done) else {
        return Err(AppError::Conflict(format!(
            "the receipt is {}: only processed receipts can be corrected",
            receipt.status.as_str()
        )));
    };
    correction.apply(&mut result).map_err(|error| AppError::Invalid(error.to_string()))?;
    let taught = correction_teaches(&result);
    if !state.store.save_corrections(caller.0.user_id, id, &result).await? {
        return Err(AppError::NotFound);
    }
    // A corrected merchant or category is remembered under the receipt's fingerprints, so that
    // the owner's later receipts from the same merchant get it without being corrected.
    if let Some(remembered) = taught {
        let read = receipt.result.as_ref().unwrap_or(&result);
        let keys = finagent_extract::memory::fingerprints(read);
        if !keys.is_empty() {
            // The correction is saved; remembering it is a bonus whose failure is only logged.
            match finagent_platform::store::MerchantMemoryStore::remember_merchant(
                &state.store,
                caller.0.user_id,
                &keys,
                &remembered,
            )
            .await
            {
                Ok(()) => tracing::info!(receipt.id = %id, fingerprints = keys.len(), "merchant correction remembered"),
                Err(error) => tracing::warn!(receipt.id = %id, %error, "failed to remember the merchant correction"),
            }
        }
    }
    receipt.corrected = Some(result);
    receipt.updated_at = Utc::now();
    Ok(axum::Json(ReceiptView::from(&receipt)))
}

/// What a corrected result teaches: its merchant name and category where a person set them
/// (confidence 1), or nothing when neither was corrected.
fn correction_teaches(result: &ReceiptResult) -> Option<finagent_core::receipt::RememberedMerchant> {
    let by_hand = |confidence: Option<f64>| confidence == Some(1.0);
    let name = result.fields.merchant.name.clone().filter(|_| by_hand(result.confidence.merchant_name));
    let category = result.fields.category.filter(|_| by_hand(result.confidence.category));
    (name.is_some() || category.is_some()).then_some(finagent_core::receipt::RememberedMerchant { name, category })
}

/// A CSV cell: quoted, and a leading `=`, `+`, `-`, `@` (a formula to a spreadsheet) defused.
fn cell(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) && value.parse::<f64>().is_err() {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// The header row of the export.
const CSV_HEADER: &str =
    "id,status,date,merchant,category,currency,subtotal,tax,tip,total,payment_method,uploaded_at\r\n";

/// Rows the export reads from the store at a time.
const EXPORT_PAGE: u32 = 500;

/// One receipt as a CSV row.
fn csv_row(receipt: &Receipt) -> String {
    let result = receipt.effective_result();
    let text = |value: Option<String>| cell(&value.unwrap_or_default());
    let amount = |pick: fn(&finagent_core::receipt::ReceiptResult) -> Option<Amount>| {
        text(result.and_then(pick).map(|amount| amount.to_string()))
    };
    let row = [
        cell(&receipt.id.to_string()),
        cell(receipt.status.as_str()),
        text(result.and_then(|r| r.fields.date).map(|date| date.to_string())),
        text(result.and_then(|r| r.fields.merchant.name.clone())),
        text(result.and_then(|r| r.fields.category).map(|category| category.as_str().to_owned())),
        text(result.and_then(|r| r.fields.currency).map(|currency| currency.to_string())),
        amount(|r| r.fields.subtotal),
        amount(|r| r.fields.tax),
        amount(|r| r.fields.tip),
        amount(|r| r.fields.total),
        text(result.and_then(|r| r.fields.payment_method).map(|method| format!("{method:?}").to_lowercase())),
        cell(&receipt.created_at.to_rfc3339()),
    ];
    let mut line = row.join(",");
    line.push_str("\r\n");
    line
}

/// The caller's receipts as CSV (the same filters as the list), latest purchase first (undated
/// receipts last, then newest upload first), streamed a page at a time. An export may have at most `EXPORT_MAX_ROWS` rows; a larger one is refused before
/// anything is sent, so that a narrower range can be asked for.
#[utoipa::path(get, path = "/api/receipts/export.csv", tag = "receipts", security(("bearer" = []), ("api_key" = [])),
    params(ReceiptFilter),
    responses(
        (status = 200, description = "One row per receipt", content_type = "text/csv", body = String),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 422, description = "Invalid filter, or more rows than an export may have", body = Problem),
    ))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<ReceiptFilter>,
) -> Result<Response, AppError> {
    let owner = caller.0.user_id;
    let filter = filter.to_store();
    let rows = state.store.count_receipts(owner, &filter).await?;
    let cap = state.settings.export_max_rows;
    if rows > cap {
        return Err(AppError::Invalid(format!(
            "the export would have {rows} rows, more than the {cap} one export may have: narrow it with from and to"
        )));
    }
    let store = state.store.clone();
    let pages = futures::stream::try_unfold(Some((None, true)), move |next| {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            let Some((after, first)) = next else { return Ok::<_, finagent_platform::store::StoreError>(None) };
            let query = ReceiptQuery { filter, sort: SortOrder::Purchased, after, limit: EXPORT_PAGE };
            let page = store.receipt_page(owner, &query).await?;
            let mut chunk = if first { String::from(CSV_HEADER) } else { String::new() };
            page.iter().for_each(|receipt| chunk.push_str(&csv_row(receipt)));
            let following = (page.len() == EXPORT_PAGE as usize)
                .then(|| page.last().map(|receipt| (Some(Position::of(SortOrder::Purchased, receipt)), false)))
                .flatten();
            Ok(Some((axum::body::Bytes::from(chunk), following)))
        }
    })
    .inspect_err(move |error| tracing::warn!(user.id = %owner, %error, "the export stopped: the store failed"));
    let mut response = axum::body::Body::from_stream(pages).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"receipts.csv\""));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("KEDAI \"MAJU\""), "\"KEDAI \"\"MAJU\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-12.50"), "\"-12.50\"", "a negative amount is a number, not a formula");
        assert_eq!(cell("@SUM(A1)"), "\"'@SUM(A1)\"");
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let receipt = Receipt::queued(finagent_core::UserId::new(), "00".into(), "image/png", Utc::now());
        for sort in SortOrder::ALL {
            let position = Position::of(sort, &receipt);
            let decoded = decode_cursor(sort, &encode_cursor(sort, &position)).expect("cursor");
            assert!(decoded.order(&position).is_eq(), "{sort:?}");
            assert_eq!((decoded.created_us, decoded.id), (receipt.created_at.timestamp_micros(), receipt.id));
            assert!(decode_cursor(sort, "garbage!").is_err());
            assert!(decode_cursor(sort, &URL_SAFE_NO_PAD.encode("2020-01-01|nope")).is_err());
        }
        // A cursor of one order is refused by another.
        let total = encode_cursor(SortOrder::Total, &Position::of(SortOrder::Total, &receipt));
        assert!(decode_cursor(SortOrder::Review, &total).is_err());
        assert!(decode_cursor(SortOrder::Newest, &total).is_err());
    }
}
