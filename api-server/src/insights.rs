//! `/api/insights/summary`: spending over a date range, aggregated by the store and summarised
//! by the pure [`finagent_core::insights::summarize_aggregates`].

use axum::extract::State;
use chrono::{Datelike, Months, NaiveDate, Utc};
use finagent_core::insights::{Insights, summarize_aggregates};
use finagent_platform::store::ReceiptStore;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::principal::Caller;
use crate::error::{AppError, Problem};
use crate::extractors::ApiQuery;
use crate::state::AppState;

/// The range and size of a summary.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// First day (default: the first day of the month eleven months before `to`).
    pub from: Option<NaiveDate>,
    /// Last day (default: today).
    pub to: Option<NaiveDate>,
    /// How many top merchants, 1–50 (default 5).
    #[param(minimum = 1, maximum = 50)]
    pub top: Option<u32>,
}

/// Spend by month, category and merchant, top merchants, month-over-month change and anomalies
/// (duplicate receipts, amounts far above the caller's usual), in the caller's main currency.
/// Corrected values count; receipts without a date or a total are left out.
#[utoipa::path(get, path = "/api/insights/summary", tag = "insights", security(("bearer" = []), ("api_key" = [])),
    params(SummaryQuery),
    responses(
        (status = 200, description = "The summary", body = Insights),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 422, description = "Invalid range", body = Problem),
    ))]
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SummaryQuery>,
) -> Result<axum::Json<Insights>, AppError> {
    let to = query.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = match query.from {
        Some(from) => from,
        None => to
            .checked_sub_months(Months::new(11))
            .and_then(|date| date.with_day(1))
            .ok_or_else(|| AppError::Invalid("to: out of range".into()))?,
    };
    if from > to {
        return Err(AppError::Invalid("from: must not be after to".into()));
    }
    let top = query.top.unwrap_or(5);
    if !(1..=50).contains(&top) {
        return Err(AppError::Invalid("top: between 1 and 50".into()));
    }
    let aggregates = state.store.spend_aggregates(caller.0.user_id, from, to).await?;
    Ok(axum::Json(summarize_aggregates(aggregates, top as usize)))
}
