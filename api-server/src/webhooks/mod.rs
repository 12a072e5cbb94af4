//! `/api/webhooks`: a user or service account registers a URL; when one of their receipts is done
//! or failed, the platform POSTs a signed JSON event there, retries with backoff when the
//! receiver fails, and keeps the history of deliveries.
//!
//! Events are queued in the store by whoever finishes the receipt (an OCR worker, in process or
//! not); every API replica runs [`run_sender`], which claims due deliveries atomically, so each is
//! sent by one replica. A delivery is `POST <url>` with the event as its body and
//! `X-FinAgent-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, with the timestamp in
//! `X-FinAgent-Timestamp` (a receiver should refuse one older than five minutes: a replay).
//! `POST /api/webhooks/{id}/secret` rotates the secret: for an overlap (24 hours unless asked
//! otherwise) the old secret signs too, and the header carries both, `v1=<new>,v1=<old>`; a
//! receiver accepts the event when any `v1` matches a secret it holds.
//! Secrets are stored sealed (ChaCha20-Poly1305 under a key derived from the token keys, bound to
//! the webhook's id): the store alone cannot sign an event. After a key rotation every replica
//! seals them again under the new key at start ([`reseal_secrets`]).
//! Outbound requests never reach loopback, private, link-local or other internal addresses (the
//! name is resolved, every address checked, and only checked addresses connected to, so DNS
//! rebinding cannot slip through) unless `WEBHOOK_ALLOW_PRIVATE_TARGETS` says otherwise.

pub mod outbound;
pub mod sender;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use finagent_core::webhook::{DeliveryStatus, EVENTS, MAX_ATTEMPTS, Webhook, WebhookDelivery, retry_delay};
use finagent_platform::store::{AnyStore, StoreError, WebhookStore};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::principal::Caller;
use crate::auth::tokens::{SealError, TokenKeys};
use crate::config::WebhookSettings;
use crate::error::{AppError, Problem};
use crate::extractors::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use outbound::*;
use sender::*;

/// Webhooks one user may register.
pub const MAX_WEBHOOKS_PER_USER: usize = 10;

/// A webhook to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where to POST events: `https://…` (or `http://…`).
    pub url: String,
    /// Which events (default: both): `receipt.done`, `receipt.failed`.
    pub events: Option<Vec<String>>,
}

/// A webhook as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    /// Where events go.
    pub url: String,
    /// The events it receives.
    pub events: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl From<&Webhook> for WebhookView {
    fn from(webhook: &Webhook) -> Self {
        Self {
            id: webhook.id,
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            created_at: webhook.created_at,
        }
    }
}

/// A webhook just registered: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub view: WebhookView,
    /// The HMAC-SHA256 key of `X-FinAgent-Signature`. Not retrievable later.
    pub secret: String,
}

/// A delivery as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Id (`X-FinAgent-Delivery`).
    pub id: Uuid,
    /// The event type.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    #[schema(value_type = String)]
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The receiver's last HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the receiver accepted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<&WebhookDelivery> for DeliveryView {
    fn from(delivery: &WebhookDelivery) -> Self {
        Self {
            id: delivery.id,
            event: delivery.event.clone(),
            status: delivery.status,
            attempts: delivery.attempts,
            last_status: delivery.last_status,
            last_error: delivery.last_error.clone(),
            created_at: delivery.created_at,
            next_attempt_at: (delivery.status == DeliveryStatus::Pending).then_some(delivery.next_attempt_at),
            delivered_at: delivery.delivered_at,
        }
    }
}

/// Registers a webhook for the caller's receipts.
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", security(("bearer" = []), ("api_key" = [])),
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Registered; the secret is shown only now", body = CreatedWebhook),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "A read-only API key", body = Problem),
        (status = 422, description = "A refused URL (internal address, other scheme), unknown events, or too many webhooks", body = Problem),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWebhook>,
) -> Result<Response, AppError> {
    let owner = caller.0.user_id;
    let events = body.events.unwrap_or_else(|| EVENTS.iter().map(|event| (*event).to_owned()).collect());
    if events.is_empty() || events.iter().any(|event| !EVENTS.contains(&event.as_str())) {
        return Err(AppError::Invalid(format!("events: one or more of {}", EVENTS.join(", "))));
    }
    let url = check_url(body.url.trim(), state.settings.webhooks.allow_private_targets).await?;
    if state.store.webhooks(owner).await?.len() >= MAX_WEBHOOKS_PER_USER {
        return Err(AppError::Invalid(format!("at most {MAX_WEBHOOKS_PER_USER} webhooks; delete one first")));
    }
    let id = Uuid::now_v7();
    let secret = new_secret();
    let webhook = Webhook {
        id,
        owner_id: owner,
        url,
        secret: state.tokens.seal(&secret, id.as_bytes()),
        previous_secret: None,
        previous_secret_expires_at: None,
        events,
        created_at: Utc::now(),
    };
    state.store.create_webhook(&webhook).await?;
    tracing::info!(target: "security", event = "webhook_created", user.id = %owner, webhook.id = %webhook.id, url = %webhook.url, "webhook registered");
    let created = CreatedWebhook { view: WebhookView::from(&webhook), secret };
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// The caller's webhooks.
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks", security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller's webhooks", body = [WebhookView]),
        (status = 401, description = "Not signed in", body = Problem),
    ))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Vec<WebhookView>>, AppError> {
    Ok(axum::Json(state.store.webhooks(caller.0.user_id).await?.iter().map(WebhookView::from).collect()))
}

/// Deletes one of the caller's webhooks; deliveries still pending are given up.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "webhooks", security(("bearer" = []), ("api_key" = [])),
    params(("id" = Uuid, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "A read-only API key", body = Problem),
        (status = 404, description = "The caller has no such webhook", body = Problem),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, AppError> {
    if !state.store.delete_webhook(caller.0.user_id, id).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(target: "security", event = "webhook_deleted", user.id = %caller.0.user_id, webhook.id = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// How long the replaced secret keeps signing after a rotation.
#[derive(Debug, Deserialize, IntoParams)]
pub struct Rotation {
    /// Hours the old secret still signs beside the new one (0 to 168, default 24); 0 stops it at
    /// once, for a secret that leaked.
    pub overlap_hours: Option<u32>,
}

/// A rotated secret: the only time it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new HMAC-SHA256 key of `X-FinAgent-Signature`.
    pub secret: String,
    /// Until when the old secret signs too (absent when the overlap is 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// The most a rotation's overlap lasts.
const MAX_OVERLAP_HOURS: u32 = 168;

/// Replaces a webhook's secret. Until the overlap ends, events are signed with both secrets, so a
/// receiver can take the new one at its own pace without refusing an event.
#[utoipa::path(post, path = "/api/webhooks/{id}/secret", tag = "webhooks", security(("bearer" = []), ("api_key" = [])),
    params(("id" = Uuid, Path, description = "The webhook's id"), Rotation),
    responses(
        (status = 200, description = "The new secret, shown only now", body = RotatedSecret),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "A read-only API key", body = Problem),
        (status = 404, description = "The caller has no such webhook", body = Problem),
        (status = 409, description = "Rotated by another request meanwhile", body = Problem),
        (status = 422, description = "An overlap over 168 hours", body = Problem),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(rotation): ApiQuery<Rotation>,
) -> Result<axum::Json<RotatedSecret>, AppError> {
    let owner = caller.0.user_id;
    let overlap = rotation.overlap_hours.unwrap_or(24);
    if overlap > MAX_OVERLAP_HOURS {
        return Err(AppError::Invalid(format!("overlap_hours: at most {MAX_OVERLAP_HOURS}")));
    }
    let webhooks = state.store.webhooks(owner).await?;
    let Some(current) = webhooks.into_iter().find(|webhook| webhook.id == id) else { return Err(AppError::NotFound) };
    let secret = new_secret();
    let until = (overlap > 0).then(|| Utc::now() + chrono::Duration::hours(i64::from(overlap)));
    let rotated = Webhook {
        secret: state.tokens.seal(&secret, id.as_bytes()),
        previous_secret: until.map(|_| current.secret.clone()),
        previous_secret_expires_at: until,
        ..current.clone()
    };
    if !state.store.replace_webhook(&rotated, &current.secret).await? {
        return Err(AppError::Conflict("the secret was rotated meanwhile; try again".into()));
    }
    tracing::info!(target: "security", event = "webhook_secret_rotated", user.id = %owner, webhook.id = %id, overlap_hours = overlap, "webhook secret rotated");
    Ok(axum::Json(RotatedSecret { secret, previous_secret_expires_at: until }))
}

/// Seals every webhook secret that is not sealed under the current key (stored before secrets were
/// sealed, or under a key since rotated) again under it, and drops previous secrets whose overlap
/// is over. Returns how many webhooks changed. Run by each replica at start: a replica racing
/// another, or a rotation, loses the compare-and-set and leaves the newer value alone.
pub async fn reseal_secrets(store: &AnyStore, keys: &TokenKeys) -> Result<usize, StoreError> {
    let mut changed = 0;
    let mut after = None;
    loop {
        let page = store.webhooks_after(after, 200).await?;
        let Some(last) = page.last() else { return Ok(changed) };
        after = Some(last.id);
        let now = Utc::now();
        for webhook in page {
            let context = webhook.id.as_bytes();
            let expired = webhook.previous_secret_expires_at.is_some_and(|until| until <= now);
            let stale = |sealed: &str| !keys.sealed_under_current(sealed);
            let previous_stale = webhook.previous_secret.as_deref().is_some_and(stale);
            if !stale(&webhook.secret) && !previous_stale && !expired {
                continue;
            }
            let reseal = |sealed: &str| keys.open(sealed, context).map(|plain| keys.seal(&plain, context));
            let resealed = match (reseal(&webhook.secret), &webhook.previous_secret) {
                (Ok(secret), Some(previous)) if !expired => reseal(previous).map(|previous| (secret, Some(previous))),
                (Ok(secret), _) => Ok((secret, None)),
                (Err(error), _) => Err(error),
            };
            let (secret, previous) = match resealed {
                Ok(sealed) => sealed,
                Err(error) => {
                    tracing::warn!(webhook.id = %webhook.id, %error, "a webhook secret cannot be opened; rotate it");
                    continue;
                }
            };
            let replacement = Webhook {
                secret,
                previous_secret_expires_at: previous.as_ref().and(webhook.previous_secret_expires_at),
                previous_secret: previous,
                ..webhook.clone()
            };
            if store.replace_webhook(&replacement, &webhook.secret).await? {
                changed += 1;
            }
        }
    }
}

/// The latest 50 deliveries of one of the caller's webhooks, newest first.
#[utoipa::path(get, path = "/api/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = []), ("api_key" = [])),
    params(("id" = Uuid, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "Its deliveries", body = [DeliveryView]),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 404, description = "The caller has no such webhook", body = Problem),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<axum::Json<Vec<DeliveryView>>, AppError> {
    let owner = caller.0.user_id;
    if !state.store.webhooks(owner).await?.iter().any(|webhook| webhook.id == id) {
        return Err(AppError::NotFound);
    }
    let deliveries = state.store.deliveries(owner, id, 50).await?;
    Ok(axum::Json(deliveries.iter().map(DeliveryView::from).collect()))
}
