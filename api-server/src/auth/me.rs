//! `/api/auth/me`: the caller's account, quota and preferences.

use axum::extract::State;
use finagent_platform::store::{UserChange, UserStore};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::accounts::UserView;
use super::accounts_cache;
use super::principal::Caller;
use crate::error::{AppError, Problem};
use crate::extractors::ApiJson;
use crate::state::AppState;

/// A quantity used against its limit.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct Allowance {
    /// Used so far.
    pub used: u64,
    /// The most allowed.
    pub limit: u64,
}

/// What the caller may store, and has.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QuotaView {
    /// Receipts stored.
    pub receipts: Allowance,
    /// Bytes of stored images.
    pub image_bytes: Allowance,
    /// Uploads the caller may send at once.
    pub uploads_at_once: usize,
}

/// The signed-in user and their quota.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MeView {
    /// The account.
    #[serde(flatten)]
    pub user: UserView,
    /// Their quota and usage.
    pub quota: QuotaView,
    /// How their receipts are read when a receipt does not say where it is from.
    pub preferences: finagent_core::account::Preferences,
}

/// Absent: unchanged; `null`: cleared; a value: set.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A change of reading preferences. A field left out keeps its value; `null` clears it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesChange {
    /// Default country, ISO 3166-1 alpha-2 (`US`, `DE`, `MY`, …): a prior for receipts that print
    /// no address, phone or currency that says where they are from.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub country: Option<Option<String>>,
    /// Default currency, ISO 4217 (`EUR`): used for receipts that print amounts without one.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub currency: Option<Option<String>>,
}

/// Changes how the caller's receipts are read by default: a default country and currency, priors
/// that clear evidence on a receipt always outweighs. Applies to receipts read from now on.
#[utoipa::path(patch, path = "/api/auth/me", tag = "auth", security(("bearer" = []), ("api_key" = [])),
    request_body = PreferencesChange,
    responses(
        (status = 200, description = "Changed", body = MeView),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 422, description = "An unknown country or currency", body = Problem),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(change): ApiJson<PreferencesChange>,
) -> Result<axum::Json<MeView>, AppError> {
    let Caller(principal) = &caller;
    let user = state.store.user(principal.user_id).await?.ok_or(AppError::Unauthorized)?;
    let mut preferences = user.preferences.clone();
    if let Some(country) = change.country {
        preferences.country = match country.map(|code| code.trim().to_ascii_uppercase()) {
            Some(code) if finagent_extract::locale::country_by_code(&code).is_some() => Some(code),
            Some(code) => {
                let known: Vec<&str> = finagent_extract::locale::COUNTRIES.iter().map(|c| c.code).collect();
                return Err(AppError::Invalid(format!(
                    "country: {code:?} is not a supported country; expected one of {}",
                    known.join(", ")
                )));
            }
            None => None,
        };
    }
    if let Some(currency) = change.currency {
        preferences.currency = match currency.map(|code| code.trim().to_ascii_uppercase()) {
            Some(code) => {
                let parsed: finagent_core::Currency = code.parse().map_err(|_| {
                    AppError::Invalid(format!("currency: {code:?} is not an ISO 4217 code such as EUR"))
                })?;
                Some(parsed.to_string())
            }
            None => None,
        };
    }
    state
        .store
        .change_user(user.id, &UserChange::Preferences(preferences), None)
        .await?
        .ok_or(AppError::Unauthorized)?;
    accounts_cache::changed(&state, user.id).await;
    // The answer shows this change: the generation is read again, past the one the call began at.
    let Caller(mut principal) = caller;
    principal.generation = None;
    me(State(state), Caller(principal)).await
}

/// The signed-in user, with their quota and what they use of it.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller", body = MeView),
        (status = 401, description = "Not signed in", body = Problem),
    ))]
pub async fn me(State(state): State<AppState>, Caller(principal): Caller) -> Result<axum::Json<MeView>, AppError> {
    let (user, usage) = accounts_cache::account(&state, &principal).await?;
    let quota = state.settings.quota;
    Ok(axum::Json(MeView {
        preferences: user.preferences.clone(),
        user: UserView::from(user.as_ref()),
        quota: QuotaView {
            receipts: Allowance { used: usage.receipts, limit: quota.max_receipts },
            image_bytes: Allowance { used: usage.image_bytes, limit: quota.max_image_bytes },
            uploads_at_once: quota.uploads_at_once,
        },
    }))
}
