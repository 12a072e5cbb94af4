//! `/api/auth/api-keys`: keys for scripts and integrations. A key is shown once at creation and
//! stored as a digest; it acts with its owner's current role. Keys are managed from a signed-in
//! session only, so a leaked key cannot mint more keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use finagent_core::account::{ApiKey, KeyScope};
use finagent_platform::store::ApiKeyStore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::principal::SessionCaller;
use super::secrets::{API_KEY_PREFIX, digest, new_api_key};
use crate::error::{AppError, Problem};
use crate::extractors::{ApiJson, ApiPath};
use crate::state::AppState;

/// Live keys a user may hold.
pub const MAX_KEYS_PER_USER: usize = 25;

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// A label, 1–64 characters.
    pub name: String,
    /// Days until the key stops working, 1–3650; without it the key works until revoked.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
    /// `read_write` (the default) or `read_only` (only `GET` requests).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "read_only")]
    pub scope: KeyScope,
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Id, for revoking.
    pub id: Uuid,
    /// The label.
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// `read_write` or `read_only`.
    #[schema(value_type = String, example = "read_write")]
    pub scope: KeyScope,
}

/// A key just created: the only time its value is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key's details.
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// Send as `X-API-Key: <key>` or `Authorization: Bearer <key>`. Not retrievable later.
    pub key: String,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(key: &ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            scope: key.scope,
        }
    }
}

/// Creates a key.
#[utoipa::path(post, path = "/api/auth/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = NewApiKey,
    responses(
        (status = 201, description = "Created; the key is shown only now", body = CreatedApiKey),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "API keys cannot create keys", body = Problem),
        (status = 422, description = "Invalid name or too many keys", body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: SessionCaller,
    ApiJson(body): ApiJson<NewApiKey>,
) -> Result<Response, AppError> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AppError::Invalid("name: 1 to 64 printable characters".into()));
    }
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days @ 1..=3650) => Some(Utc::now() + chrono::Duration::days(i64::from(days))),
        Some(_) => return Err(AppError::Invalid("expires_in_days: between 1 and 3650".into())),
    };
    let owner = caller.principal.user_id;
    let now = Utc::now();
    let live = state
        .store
        .api_keys(owner)
        .await?
        .into_iter()
        .filter(|key| !key.revoked && key.expires_at.is_none_or(|expires| expires > now))
        .count();
    if live >= MAX_KEYS_PER_USER {
        return Err(AppError::Invalid(format!("at most {MAX_KEYS_PER_USER} live keys; revoke one first")));
    }
    let key = new_api_key();
    let stored = ApiKey {
        id: Uuid::now_v7(),
        owner_id: owner,
        name,
        prefix: key.chars().take(API_KEY_PREFIX.len() + 6).collect(),
        key_hash: digest(&key),
        created_at: now,
        revoked: false,
        expires_at,
        scope: body.scope,
    };
    state.store.create_api_key(&stored).await?;
    tracing::info!(target: "security", event = "api_key_created", user.id = %owner, api_key.id = %stored.id, scope = ?stored.scope, "api key created");
    Ok((StatusCode::CREATED, axum::Json(CreatedApiKey { view: ApiKeyView::from(&stored), key })).into_response())
}

/// Lists the caller's live keys, newest first.
#[utoipa::path(get, path = "/api/auth/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's keys", body = [ApiKeyView]),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "API keys cannot list keys", body = Problem),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: SessionCaller,
) -> Result<axum::Json<Vec<ApiKeyView>>, AppError> {
    let keys = state.store.api_keys(caller.principal.user_id).await?;
    let now = Utc::now();
    let live = keys.iter().filter(|key| !key.revoked && key.expires_at.is_none_or(|expires| expires > now));
    Ok(axum::Json(live.map(ApiKeyView::from).collect()))
}

/// Revokes one of the caller's keys; it stops working at once.
#[utoipa::path(delete, path = "/api/auth/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "API keys cannot revoke keys", body = Problem),
        (status = 404, description = "The caller has no such key", body = Problem),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: SessionCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, AppError> {
    if state.store.revoke_api_key(caller.principal.user_id, id).await? {
        tracing::info!(target: "security", event = "api_key_revoked", user.id = %caller.principal.user_id, api_key.id = %id, "api key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::NotFound)
    }
}
