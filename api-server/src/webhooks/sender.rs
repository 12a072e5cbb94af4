//! The sender every API replica runs: claims due deliveries, signs and POSTs them, and retries with
//! backoff or gives up.

use super::*;

/// The signature header: one `v1` per secret that signs, the newest first.
pub fn signatures(secrets: &[String], timestamp: i64, body: &str) -> String {
    secrets.iter().map(|secret| signature(secret, timestamp, body)).collect::<Vec<_>>().join(",")
}

/// A new webhook secret.
pub(crate) fn new_secret() -> String {
    format!("whsec_{}", hex::encode(crate::auth::secrets::random_bytes::<32>()))
}

/// The secrets that sign a webhook's events at `now`, opened: the current one, and the previous
/// one while its overlap lasts.
pub(crate) fn signing_secrets(
    keys: &TokenKeys,
    webhook: &Webhook,
    now: DateTime<Utc>,
) -> Result<Vec<String>, SealError> {
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

/// The most of a receiver's reply that is read: only its status counts, and a receiver that
/// streams an endless reply must not cost memory.
pub(crate) const REPLY_LIMIT: usize = 64 * 1024;

/// How long a claimed delivery is held by its sender before another may take it.
pub(crate) const LEASE: Duration = Duration::from_secs(120);

/// Sends one delivery: the outcome recorded on it (delivered, retry later, or given up).
pub(crate) async fn send(
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
pub(crate) fn retry_or_give_up(
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
pub(crate) fn refused_at_send(url: &str, allow_private: bool) -> Option<&'static str> {
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
pub(crate) fn connect_error(error: &hyper_util::client::legacy::Error) -> String {
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
