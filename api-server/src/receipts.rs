//! `/api/receipts`: the caller's receipts — list with filters and cursor pagination, read,
//! correct by hand, delete, export as CSV.
//!
//! Listing reads the owner's receipts (one indexed query) and filters them here, so both stores
//! answer identically; a person's receipts number in the thousands, not millions.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use finagent_core::ReceiptId;
use finagent_core::money::{Amount, Currency};
use finagent_core::receipt::{Category, PaymentMethod, Receipt, ReceiptStatus};
use finagent_platform::store::{BlobStore, ReceiptStore};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::principal::Caller;
use crate::error::{AppError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::ocr::owned;
use crate::state::AppState;
use crate::views::ReceiptView;

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

/// The order of the list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Newest upload first (the default).
    #[default]
    Newest,
    /// Oldest upload first.
    Oldest,
    /// Latest purchase date first; undated receipts last.
    Purchased,
    /// Largest total first; receipts without a total last.
    Total,
    /// Processed receipts that most need a look first: lowest `review_confidence` first; receipts
    /// still processing or failed last.
    Review,
}

impl SortOrder {
    fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Oldest => "oldest",
            Self::Purchased => "purchased",
            Self::Total => "total",
            Self::Review => "review",
        }
    }

    /// The primary sort key of a receipt, ascending; ties go newest first, then by id.
    fn primary(self, receipt: &Receipt) -> f64 {
        let result = receipt.effective_result();
        match self {
            Self::Newest => 0.0,
            Self::Oldest => receipt.created_at.timestamp_micros() as f64,
            Self::Purchased => result
                .and_then(|result| result.date)
                .map_or(f64::INFINITY, |date| -f64::from(chrono::Datelike::num_days_from_ce(&date))),
            Self::Total => result
                .and_then(|result| result.total)
                .and_then(|total| total.to_string().parse::<f64>().ok())
                .map_or(f64::INFINITY, |total| -total),
            Self::Review => review_confidence(receipt).unwrap_or(2.0),
        }
    }
}

/// The lowest confidence among the fields a person checks first (merchant, date and total; a
/// missing one counts 0), for a processed receipt.
pub fn review_confidence(receipt: &Receipt) -> Option<f64> {
    let result = receipt.effective_result().filter(|_| receipt.status == ReceiptStatus::Done)?;
    let confidence = &result.confidence;
    Some(
        [confidence.merchant_name, confidence.date, confidence.total]
            .into_iter()
            .map(|value| value.unwrap_or(0.0))
            .fold(1.0, f64::min),
    )
}

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
}

impl ReceiptFilter {
    fn matches(&self, receipt: &Receipt) -> bool {
        let result = receipt.effective_result();
        let date = result.and_then(|result| result.date);
        let total = result.and_then(|result| result.total);
        let dated = |bound: Option<NaiveDate>, keep: fn(NaiveDate, NaiveDate) -> bool| {
            bound.is_none_or(|bound| date.is_some_and(|date| keep(date, bound)))
        };
        let priced = |bound: Option<Amount>, keep: fn(Amount, Amount) -> bool| {
            bound.is_none_or(|bound| total.is_some_and(|total| keep(total, bound)))
        };
        let merchant_matches = self.merchant.as_deref().is_none_or(|wanted| {
            let wanted = wanted.to_lowercase();
            result
                .and_then(|result| result.merchant.name.as_deref())
                .is_some_and(|name| name.to_lowercase().contains(&wanted))
        });
        dated(self.from, |date, from| date >= from)
            && dated(self.to, |date, to| date <= to)
            && priced(self.min_total, |total, min| total >= min)
            && priced(self.max_total, |total, max| total <= max)
            && merchant_matches
            && self.category.is_none_or(|wanted| result.and_then(|result| result.category) == Some(wanted))
            && self.status.is_none_or(|wanted| receipt.status == wanted)
    }
}

/// A page of receipts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptPage {
    /// Newest first.
    pub items: Vec<ReceiptView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Where a receipt sits in a sorted list: its primary key, then newest first, then by id.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Position {
    primary: f64,
    created: DateTime<Utc>,
    id: ReceiptId,
}

impl Position {
    fn of(sort: SortOrder, receipt: &Receipt) -> Self {
        Self { primary: sort.primary(receipt), created: receipt.created_at, id: receipt.id }
    }

    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.primary
            .total_cmp(&other.primary)
            .then_with(|| other.created.cmp(&self.created))
            .then_with(|| other.id.cmp(&self.id))
    }
}

fn encode_cursor(sort: SortOrder, position: &Position) -> String {
    let text = match sort {
        // The default order keeps the cursor format it always had.
        SortOrder::Newest => format!("{}|{}", position.created.to_rfc3339(), position.id),
        _ => format!("{}|{:?}|{}|{}", sort.as_str(), position.primary, position.created.to_rfc3339(), position.id),
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
    let created = DateTime::parse_from_rfc3339(created).map_err(|_| invalid())?.with_timezone(&Utc);
    Ok(Position { primary, created, id: id.parse().map_err(|_| invalid())? })
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
    let receipts = state.store.receipts(caller.0.user_id).await?;
    let mut matching: Vec<(Position, &Receipt)> = receipts
        .iter()
        .filter(|receipt| filter.matches(receipt))
        .map(|receipt| (Position::of(sort, receipt), receipt))
        .filter(|(position, _)| after.is_none_or(|after| position.cmp(&after).is_gt()))
        .collect();
    matching.sort_by(|a, b| a.0.cmp(&b.0));
    let more = matching.len() > limit as usize;
    matching.truncate(limit as usize);
    let next_cursor = if more { matching.last().map(|(position, _)| encode_cursor(sort, position)) } else { None };
    let items = matching.into_iter().map(|(_, receipt)| ReceiptView::from(receipt)).collect();
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
        (status = 200, description = "The image, with the media type detected at upload", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "No such receipt for this caller", body = Problem),
    ))]
pub async fn image(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<ReceiptId>,
) -> Result<Response, AppError> {
    let receipt = owned(&state, &caller, id).await?;
    let bytes = state.store.blob(&receipt.blob_key).await?.ok_or(AppError::NotFound)?;
    // Only image types browsers display are served as themselves; anything else downloads.
    const SHOWN: [&str; 5] = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"];
    let content_type =
        SHOWN.into_iter().find(|kind| *kind == receipt.content_type).unwrap_or("application/octet-stream");
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(response)
}

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
    state.store.delete_blob(&receipt.blob_key).await?;
    tracing::info!(receipt.id = %id, user.id = %caller.0.user_id, "receipt deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Fields corrected by hand; absent fields are left as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// Merchant name.
    pub merchant_name: Option<String>,
    /// Merchant address.
    pub merchant_address: Option<String>,
    /// Date of purchase.
    pub date: Option<NaiveDate>,
    /// ISO 4217 currency.
    pub currency: Option<Currency>,
    /// Subtotal.
    pub subtotal: Option<Amount>,
    /// Tax.
    pub tax: Option<Amount>,
    /// Tip.
    pub tip: Option<Amount>,
    /// Total paid.
    pub total: Option<Amount>,
    /// How it was paid.
    pub payment_method: Option<PaymentMethod>,
    /// Spending category.
    pub category: Option<Category>,
}

fn text_field(name: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    match value.map(|value| value.trim().to_owned()) {
        Some(value) if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) => {
            Err(AppError::Invalid(format!("{name}: 1 to 200 printable characters")))
        }
        other => Ok(other),
    }
}

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
    let sure = Some(1.0);
    if let Some(name) = text_field("merchant_name", correction.merchant_name)? {
        (result.merchant.name, result.confidence.merchant_name) = (Some(name), sure);
    }
    if let Some(address) = text_field("merchant_address", correction.merchant_address)? {
        (result.merchant.address, result.confidence.merchant_address) = (Some(address), sure);
    }
    if let Some(date) = correction.date {
        (result.date, result.confidence.date) = (Some(date), sure);
    }
    if let Some(currency) = correction.currency {
        (result.currency, result.confidence.currency) = (Some(currency), sure);
    }
    for (value, field, confidence) in [
        (correction.subtotal, &mut result.subtotal, &mut result.confidence.subtotal),
        (correction.tax, &mut result.tax, &mut result.confidence.tax),
        (correction.tip, &mut result.tip, &mut result.confidence.tip),
        (correction.total, &mut result.total, &mut result.confidence.total),
    ] {
        if let Some(value) = value {
            (*field, *confidence) = (Some(value), sure);
        }
    }
    if let Some(method) = correction.payment_method {
        (result.payment_method, result.confidence.payment_method) = (Some(method), sure);
    }
    if let Some(category) = correction.category {
        (result.category, result.confidence.category) = (Some(category), sure);
    }
    if !state.store.save_corrections(caller.0.user_id, id, &result).await? {
        return Err(AppError::NotFound);
    }
    receipt.corrected = Some(result);
    receipt.updated_at = Utc::now();
    Ok(axum::Json(ReceiptView::from(&receipt)))
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

/// The caller's receipts as CSV (the same filters as the list), newest first.
#[utoipa::path(get, path = "/api/receipts/export.csv", tag = "receipts", security(("bearer" = []), ("api_key" = [])),
    params(ReceiptFilter),
    responses(
        (status = 200, description = "One row per receipt", content_type = "text/csv", body = String),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 422, description = "Invalid filter", body = Problem),
    ))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<ReceiptFilter>,
) -> Result<Response, AppError> {
    let receipts = state.store.receipts(caller.0.user_id).await?;
    let mut csv =
        String::from("id,status,date,merchant,category,currency,subtotal,tax,tip,total,payment_method,uploaded_at\r\n");
    for receipt in receipts.iter().filter(|receipt| filter.matches(receipt)) {
        let result = receipt.effective_result();
        let text = |value: Option<String>| cell(&value.unwrap_or_default());
        let amount = |pick: fn(&finagent_core::receipt::ReceiptResult) -> Option<Amount>| {
            text(result.and_then(pick).map(|amount| amount.to_string()))
        };
        let row = [
            cell(&receipt.id.to_string()),
            cell(receipt.status.as_str()),
            text(result.and_then(|r| r.date).map(|date| date.to_string())),
            text(result.and_then(|r| r.merchant.name.clone())),
            text(result.and_then(|r| r.category).map(|category| category.as_str().to_owned())),
            text(result.and_then(|r| r.currency).map(|currency| currency.to_string())),
            amount(|r| r.subtotal),
            amount(|r| r.tax),
            amount(|r| r.tip),
            amount(|r| r.total),
            text(result.and_then(|r| r.payment_method).map(|method| format!("{method:?}").to_lowercase())),
            cell(&receipt.created_at.to_rfc3339()),
        ];
        csv.push_str(&row.join(","));
        csv.push_str("\r\n");
    }
    let mut response = csv.into_response();
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
        for sort in [SortOrder::Newest, SortOrder::Oldest, SortOrder::Purchased, SortOrder::Total, SortOrder::Review] {
            let position = Position::of(sort, &receipt);
            let decoded = decode_cursor(sort, &encode_cursor(sort, &position)).expect("cursor");
            assert!(decoded.cmp(&position).is_eq(), "{sort:?}");
            assert_eq!((decoded.created, decoded.id), (receipt.created_at, receipt.id));
            assert!(decode_cursor(sort, "garbage!").is_err());
            assert!(decode_cursor(sort, &URL_SAFE_NO_PAD.encode("2020-01-01|nope")).is_err());
        }
        // A cursor of one order is refused by another.
        let total = encode_cursor(SortOrder::Total, &Position::of(SortOrder::Total, &receipt));
        assert!(decode_cursor(SortOrder::Review, &total).is_err());
        assert!(decode_cursor(SortOrder::Newest, &total).is_err());
    }
}
