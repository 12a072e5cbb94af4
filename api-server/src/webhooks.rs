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
use crate::error::{AppError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// Webhooks one user may register.
pub const MAX_WEBHOOKS_PER_USER: usize = 10;

/// How the platform sends webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Whether targets may be loopback or private addresses (a private network's receivers, and
    /// tests); link-local addresses stay refused.
    pub allow_private_targets: bool,
    /// The wait before the first retry (then 4× each time).
    pub retry_base: Duration,
    /// How long a receiver may take to answer.
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self { allow_private_targets: false, retry_base: Duration::from_secs(30), timeout: Duration::from_secs(10) }
    }
}

/// Whether an address is one webhooks must never reach (unless private targets are allowed):
/// loopback, private, link-local, carrier-grade NAT, IETF protocol assignments, documentation,
/// benchmarking, multicast, reserved, unspecified, site-local and unique-local ranges, and every
/// IPv6 form that carries an IPv4 address (mapped, compatible, NAT64, 6to4 and Teredo), which
/// could reach an internal IPv4 host through a translator or a relay.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| v6.to_ipv4()) {
                return is_internal(IpAddr::V4(v4));
            }
            let [first, second, ..] = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && second == 0x0db8)
                // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48), 6to4 (2002::/16) and
                // Teredo (2001::/32) embed IPv4 addresses a gateway would reach for us.
                || (first == 0x0064 && second == 0xff9b)
                || first == 0x2002
                || (first == 0x2001 && second == 0x0000)
        }
    }
}

/// Whether an address is link-local, where cloud metadata services answer (169.254.169.254,
/// fd00:ec2::254 sits in unique-local space and is refused with it). Webhooks never reach these,
/// even when private targets are allowed.
fn is_never_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_never_allowed(IpAddr::V4(v4)),
            None => {
                (v6.segments()[0] & 0xffc0) == 0xfe80
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.segments()[..4] == [0xfd00, 0x0ec2, 0, 0]
            }
        },
    }
}

/// Whether webhooks may reach `ip`, with private targets allowed or not.
pub fn reachable(ip: IpAddr, allow_private: bool) -> bool {
    !is_never_allowed(ip) && (allow_private || !is_internal(ip))
}

/// Ports webhooks may reach: the web's own and the unprivileged range. Privileged ports other than
/// 80 and 443 belong to mail, name and directory services that a POST must never be relayed to.
pub fn allowed_port(port: u16) -> bool {
    port == 80 || port == 443 || port >= 1024
}

/// Resolves a host name and keeps only the addresses webhooks may reach; fails when none is left.
async fn resolve_allowed(host: &str, port: u16, allow_private: bool) -> std::io::Result<Vec<SocketAddr>> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let allowed: Vec<SocketAddr> =
        addresses.iter().copied().filter(|address| reachable(address.ip(), allow_private)).collect();
    if allowed.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{host} resolves only to internal addresses"),
        ));
    }
    Ok(allowed)
}

/// The resolver of the webhook client: [`resolve_allowed`], so a name that resolves to an internal
/// address at delivery time (DNS rebinding) is refused too.
#[derive(Clone, Debug)]
struct CheckedResolver {
    allow_private: bool,
}

impl tower::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move { resolve_allowed(name.as_str(), 0, allow_private).await.map(IntoIterator::into_iter) })
    }
}

type WebhookClient = Client<hyper_rustls::HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>;

fn client(settings: WebhookSettings) -> WebhookClient {
    let mut http = HttpConnector::new_with_resolver(CheckedResolver { allow_private: settings.allow_private_targets });
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).build(https)
}

/// The signature header: one `v1` per secret that signs, the newest first.
pub fn signatures(secrets: &[String], timestamp: i64, body: &str) -> String {
    secrets.iter().map(|secret| signature(secret, timestamp, body)).collect::<Vec<_>>().join(",")
}

/// A new webhook secret.
fn new_secret() -> String {
    format!("whsec_{}", hex::encode(crate::auth::secrets::random_bytes::<32>()))
}

/// The secrets that sign a webhook's events at `now`, opened: the current one, and the previous
/// one while its overlap lasts.
fn signing_secrets(keys: &TokenKeys, webhook: &Webhook, now: DateTime<Utc>) -> Result<Vec<String>, SealError> {
    let context = webhook.id.as_bytes();
    let mut secrets = vec![keys.open(&webhook.secret, context)?];
    if let (Some(previous), Some(until)) = (&webhook.previous_secret, webhook.previous_secret_expires_at)
        && now < until
    {
        secrets.push(keys.open(previous, context)?);
    }
    Ok(secrets)
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a target URL: `http` or `https`, a host, no credentials, and (unless private targets
/// are allowed) a host that resolves to public addresses only.
async fn check_url(url: &str, allow_private: bool) -> Result<String, AppError> {
    let invalid = |why: &str| AppError::Invalid(format!("url: {why}"));
    if url.len() > 2048 {
        return Err(invalid("at most 2048 characters"));
    }
    let uri: hyper::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(invalid("http or https only")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("credentials do not belong in the URL"));
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    if !allowed_port(port) {
        return Err(invalid("ports under 1024 other than 80 and 443 are not allowed"));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if !reachable(ip, allow_private) => {
            return Err(invalid("loopback, private, link-local and other internal addresses are not allowed"));
        }
        Ok(_) => {}
        Err(_) => {
            resolve_allowed(host, port, allow_private).await.map_err(|error| match error.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    invalid("the host resolves to loopback, private or link-local addresses, which are not allowed")
                }
                _ => invalid("the host does not resolve"),
            })?;
        }
    }
    Ok(uri.to_string())
}

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
    /// Id.
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

/// The most of a receiver's reply that is read: only its status counts, and a receiver that
/// streams an endless reply must not cost memory.
const REPLY_LIMIT: usize = 64 * 1024;

/// How long a claimed delivery is held by its sender before another may take it.
const LEASE: Duration = Duration::from_secs(120);

/// Sends one delivery: the outcome recorded on it (delivered, retry later, or given up).
async fn send(
    client: &WebhookClient,
    settings: WebhookSettings,
    keys: &TokenKeys,
    webhook: Option<&Webhook>,
    mut delivery: WebhookDelivery,
) -> WebhookDelivery {
    let now = Utc::now();
    let Some(webhook) = webhook else {
        delivery.status = DeliveryStatus::Failed;
        delivery.last_error = Some("the webhook was deleted".into());
        return delivery;
    };
    delivery.attempts += 1;
    if let Some(refusal) = refused_at_send(&webhook.url, settings.allow_private_targets) {
        // Never right later either: the target is refused for good.
        delivery.status = DeliveryStatus::Failed;
        delivery.last_error = Some(refusal.into());
        return delivery;
    }
    let timestamp = now.timestamp();
    let secrets = match signing_secrets(keys, webhook, now) {
        Ok(secrets) => secrets,
        Err(error) => {
            // Retried: restoring the key in JWT_PREVIOUS_KEYS, or rotating the secret, mends it.
            tracing::warn!(webhook.id = %webhook.id, %error, "a webhook secret cannot be opened");
            return retry_or_give_up(delivery, format!("cannot sign: {error}"), settings, now);
        }
    };
    let request = hyper::Request::post(&webhook.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("FinancialAgent-Webhooks/", env!("CARGO_PKG_VERSION")))
        .header("x-finagent-event", &delivery.event)
        .header("x-finagent-delivery", delivery.id.to_string())
        .header("x-finagent-timestamp", timestamp.to_string())
        .header("x-finagent-signature", signatures(&secrets, timestamp, &delivery.payload))
        .body(Full::new(Bytes::from(delivery.payload.clone())));
    let outcome = match request {
        Err(error) => Err(format!("invalid request: {error}")),
        Ok(request) => match tokio::time::timeout(settings.timeout, client.request(request)).await {
            Err(_) => Err(format!("no answer within {} s", settings.timeout.as_secs())),
            Ok(Err(error)) => Err(connect_error(&error)),
            Ok(Ok(response)) => {
                let status = response.status();
                // Read a little of the body so the connection can be reused; its content is not
                // kept, and a longer reply is cut off at REPLY_LIMIT (the connection is dropped).
                let reply = Limited::new(response.into_body(), REPLY_LIMIT);
                let _ = tokio::time::timeout(Duration::from_secs(2), reply.collect()).await;
                delivery.last_status = Some(status.as_u16());
                if status.is_success() { Ok(()) } else { Err(format!("the receiver answered {status}")) }
            }
        },
    };
    match outcome {
        Ok(()) => {
            delivery.status = DeliveryStatus::Delivered;
            delivery.delivered_at = Some(Utc::now());
            delivery.last_error = None;
        }
        Err(error) => return retry_or_give_up(delivery, error, settings, now),
    }
    delivery
}

/// A failed attempt: due again after the back-off, or given up after the last attempt.
fn retry_or_give_up(
    mut delivery: WebhookDelivery,
    error: String,
    settings: WebhookSettings,
    now: DateTime<Utc>,
) -> WebhookDelivery {
    delivery.last_error = Some(error);
    if delivery.attempts >= MAX_ATTEMPTS {
        delivery.status = DeliveryStatus::Failed;
    } else {
        let wait = retry_delay(delivery.attempts, settings.retry_base);
        delivery.next_attempt_at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(6));
    }
    delivery
}

/// What registration refuses, checked again before each delivery for what the connector does not
/// see: a literal IP address is connected to without the checking resolver, and a webhook stored
/// before a rule existed must not outlive it.
fn refused_at_send(url: &str, allow_private: bool) -> Option<&'static str> {
    let uri: hyper::Uri = url.parse().ok()?;
    let authority = uri.authority()?;
    let port = authority.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    if !allowed_port(port) {
        return Some("refused: ports under 1024 other than 80 and 443 are not allowed");
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) if !reachable(ip, allow_private) => Some("refused: the address is internal"),
        _ => None,
    }
}

/// The reason of a connection error, without internals beyond what the owner's URL implies.
fn connect_error(error: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return "refused: the host resolves to an internal address".into();
        }
        source = inner.source();
    }
    if error.is_connect() { "could not connect".into() } else { "the request failed".into() }
}

/// Sends due deliveries until `stop` completes: claims a batch, sends them concurrently, records
/// each outcome, and sleeps a second when nothing is due.
pub async fn run_sender(store: AnyStore, settings: WebhookSettings, keys: TokenKeys, stop: impl Future<Output = ()>) {
    let client = client(settings);
    let mut stop = std::pin::pin!(stop);
    loop {
        let claimed = match store.claim_due_deliveries(Utc::now(), LEASE, 20).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "failed to claim webhook deliveries");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                () = &mut stop => return,
            }
        }
        let sends = claimed.into_iter().map(|delivery| {
            let (store, client, keys) = (store.clone(), client.clone(), &keys);
            async move {
                let webhooks = store.webhooks(delivery.owner_id).await.unwrap_or_default();
                let webhook = webhooks.iter().find(|webhook| webhook.id == delivery.webhook_id);
                let sent = send(&client, settings, keys, webhook, delivery).await;
                tracing::info!(webhook.id = %sent.webhook_id, delivery.id = %sent.id, status = ?sent.status, attempts = sent.attempts, "webhook delivery");
                if let Err(error) = store.save_delivery(&sent).await {
                    tracing::warn!(%error, "failed to record a webhook delivery; it will be sent again");
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_receiver_streaming_an_endless_reply_costs_a_bounded_read() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let written = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&written);
        // A hostile receiver: 200, then bytes until the sender hangs up (or 5 s pass).
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 16 * 1024];
            let _ = stream.read(&mut request).await;
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                match tokio::time::timeout(Duration::from_secs(1), stream.write_all(&chunk)).await {
                    Ok(Ok(())) => counted.fetch_add(chunk.len() as u64, Ordering::SeqCst),
                    Ok(Err(_)) => break,
                    // Blocked: the sender stopped reading.
                    Err(_) => continue,
                };
            }
        });
        let settings = WebhookSettings { allow_private_targets: true, ..WebhookSettings::default() };
        let (webhook, delivery) = webhook_and_delivery(format!("http://{address}/hook"));
        let sent = send(&client(settings), settings, &test_keys(), Some(&webhook), delivery).await;
        assert_eq!((sent.status, sent.last_status), (DeliveryStatus::Delivered, Some(200)), "{:?}", sent.last_error);
        // What the receiver could push: the limit, plus what the sockets' buffers hold.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let pushed = written.load(Ordering::SeqCst);
        println!("an endless reply: {pushed} bytes pushed before the sender hung up (it reads {REPLY_LIMIT})");
        assert!(pushed < 32 * 1024 * 1024, "the sender read {pushed} bytes of an endless reply");
    }

    #[tokio::test]
    async fn a_stored_literal_internal_address_is_refused_without_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (webhook, delivery) = webhook_and_delivery(format!("http://{address}/hook"));
        let settings = WebhookSettings::default();
        let sent = send(&client(settings), settings, &test_keys(), Some(&webhook), delivery).await;
        assert_eq!(sent.status, DeliveryStatus::Failed, "refused for good, not retried");
        assert_eq!(sent.last_error.as_deref(), Some("refused: the address is internal"));
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accepted.is_err(), "nothing connected to the internal receiver");
    }

    fn test_keys() -> TokenKeys {
        TokenKeys::new(b"a webhook test key of 32 bytes or more", "iss", "aud", Duration::ZERO, Duration::ZERO)
    }

    /// A receiver on loopback that answers 204 and passes on each request's signature header.
    async fn signature_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (seen, signatures) = tokio::sync::mpsc::unbounded_channel();
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let signature = headers["x-finagent-signature"].to_str().expect("ascii").to_owned();
                    let _ = seen.send(signature);
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router).await.ok() });
        (format!("http://{address}/hook"), signatures)
    }

    #[tokio::test]
    async fn a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends() {
        let (url, mut signatures) = signature_receiver().await;
        let keys = test_keys();
        let settings = WebhookSettings { allow_private_targets: true, ..WebhookSettings::default() };
        let (mut webhook, delivery) = webhook_and_delivery(url);
        let context = webhook.id.as_bytes();
        webhook.secret = keys.seal("whsec_new", context);
        webhook.previous_secret = Some(keys.seal("whsec_old", context));
        webhook.previous_secret_expires_at = Some(Utc::now() + chrono::Duration::hours(1));
        let sent = send(&client(settings), settings, &keys, Some(&webhook), delivery.clone()).await;
        assert_eq!(sent.status, DeliveryStatus::Delivered, "{:?}", sent.last_error);
        let header = signatures.recv().await.expect("a request");
        let parts: Vec<&str> = header.split(',').collect();
        assert_eq!(parts.len(), 2, "{header}");
        assert!(parts.iter().all(|part| part.starts_with("v1=") && part.len() == 67), "{header}");
        assert_ne!(parts[0], parts[1], "one per secret");

        webhook.previous_secret_expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
        send(&client(settings), settings, &keys, Some(&webhook), delivery.clone()).await;
        let header = signatures.recv().await.expect("a request");
        assert!(!header.contains(','), "the old secret stopped signing: {header}");

        // A secret sealed under a key this server no longer has: no request, retried later.
        let stranger =
            TokenKeys::new(b"some other server's key of 32 bytes", "iss", "aud", Duration::ZERO, Duration::ZERO);
        webhook.secret = stranger.seal("whsec_new", context);
        let unsigned = send(&client(settings), settings, &keys, Some(&webhook), delivery).await;
        assert_eq!(unsigned.status, DeliveryStatus::Pending, "retried: restoring the key mends it");
        assert!(
            unsigned.last_error.as_deref().is_some_and(|error| error.starts_with("cannot sign")),
            "{:?}",
            unsigned.last_error
        );
        assert!(tokio::time::timeout(Duration::from_millis(300), signatures.recv()).await.is_err(), "nothing was sent");
    }

    fn webhook_and_delivery(url: String) -> (Webhook, WebhookDelivery) {
        let now = Utc::now();
        let owner = finagent_core::UserId::new();
        let webhook = Webhook {
            id: Uuid::new_v4(),
            owner_id: owner,
            url,
            secret: "a webhook secret".into(),
            previous_secret: None,
            previous_secret_expires_at: None,
            events: vec!["receipt.done".into()],
            created_at: now,
        };
        let delivery = WebhookDelivery {
            id: Uuid::new_v4(),
            webhook_id: webhook.id,
            owner_id: owner,
            event: "receipt.done".into(),
            payload: "{}".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_status: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        };
        (webhook, delivery)
    }

    #[test]
    fn internal_addresses_are_recognised_in_every_form() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
            "192.0.0.8",
            "fec0::1",
            // 10.0.0.1 through NAT64, the local-use NAT64 prefix, 6to4 of 192.168.1.1, Teredo.
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(is_internal(internal.parse().expect("ip")), "{internal}");
        }
        // Allowing private targets never opens link-local space, where metadata services answer.
        for metadata in ["169.254.169.254", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"] {
            assert!(!reachable(metadata.parse().expect("ip"), true), "{metadata}");
        }
        assert!(reachable("10.0.0.5".parse().expect("ip"), true), "a private receiver, when allowed");
        assert!(!reachable("10.0.0.5".parse().expect("ip"), false));
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn signatures_are_hmac_sha256_of_the_timestamp_and_the_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let signed = signature("secret", 1_700_000_000, "{}");
        assert!(signed.starts_with("v1=") && signed.len() == 3 + 64);
        assert_ne!(signed, signature("secret", 1_700_000_001, "{}"), "the timestamp is signed");
        assert_ne!(signed, signature("other", 1_700_000_000, "{}"));
    }

    #[tokio::test]
    async fn internal_and_odd_urls_are_refused() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://10.0.0.5/hook",
            "ftp://example.com/hook",
            "http://user:pass@example.com/hook",
            "not a url",
        ] {
            assert!(check_url(url, false).await.is_err(), "{url}");
        }
        assert!(check_url("http://127.0.0.1:8080/hook", true).await.is_ok(), "allowed when configured");
        assert!(check_url("http://169.254.169.254/latest", true).await.is_err(), "metadata, even when allowed");
        for port in [25, 22, 53, 389] {
            assert!(check_url(&format!("http://93.184.216.34:{port}/hook"), false).await.is_err(), "port {port}");
        }
        for port in [80, 443, 8080, 8443] {
            assert!(check_url(&format!("http://93.184.216.34:{port}/hook"), false).await.is_ok(), "port {port}");
        }
    }
}
