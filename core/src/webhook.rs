//! Webhooks: a user's URL that the platform POSTs a signed event to when one of their receipts is
//! done or failed, with retries and a delivery history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::UserId;
use crate::receipt::{FailureReason, Receipt, ReceiptStatus};

/// The events a webhook can receive.
pub const EVENTS: [&str; 2] = ["receipt.done", "receipt.failed"];

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// A registered webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: Uuid,
    /// Owner: it receives the events of their receipts only.
    pub owner_id: UserId,
    /// Where events are POSTed.
    pub url: String,
    /// The HMAC-SHA256 key of the signatures, shown once at creation or rotation. Stored sealed
    /// under the server's key (the API server seals and opens it; the store never sees it plain).
    pub secret: String,
    /// The key it replaced, still signing beside it until `previous_secret_expires_at`, so that
    /// receivers can switch without missing an event. Sealed like `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<String>,
    /// When the previous key stops signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The events it receives (of [`EVENTS`]).
    pub events: Vec<String>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after [`MAX_ATTEMPTS`], or its webhook is gone.
    Failed,
}

/// One event sent (or to be sent) to one webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    /// Id, sent as `X-FinAgent-Delivery`.
    pub id: Uuid,
    /// The webhook.
    pub webhook_id: Uuid,
    /// The webhook's owner.
    pub owner_id: UserId,
    /// The event's type.
    pub event: String,
    /// The JSON body, exactly as signed and sent.
    pub payload: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (while pending).
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The wait before attempt `attempts + 1`: `base`, then 4× each time, at most six hours.
pub fn retry_delay(attempts: u32, base: std::time::Duration) -> std::time::Duration {
    let factor = 4u32.saturating_pow(attempts.saturating_sub(1).min(10));
    base.saturating_mul(factor).min(std::time::Duration::from_secs(6 * 3600))
}

/// The event of a finished receipt (`receipt.done` or `receipt.failed`), or `None` while it is
/// still queued or processing.
pub fn receipt_event(receipt: &Receipt, at: DateTime<Utc>) -> Option<(String, serde_json::Value)> {
    let kind = match receipt.status {
        ReceiptStatus::Done => "receipt.done",
        ReceiptStatus::Failed => "receipt.failed",
        ReceiptStatus::Queued | ReceiptStatus::Processing => return None,
    };
    let result = receipt.effective_result();
    let failure = (receipt.status == ReceiptStatus::Failed)
        .then(|| FailureReason::of_stored(receipt.failure.as_deref().unwrap_or_default()).as_str());
    let data = serde_json::json!({
        "receipt_id": receipt.id,
        "status": receipt.status.as_str(),
        "failure": failure,
        "merchant": result.and_then(|result| result.fields.merchant.name.clone()),
        "date": result.and_then(|result| result.fields.date),
        "total": result.and_then(|result| result.fields.total).map(|total| total.to_string()),
        "currency": result.and_then(|result| result.fields.currency).map(|currency| currency.to_string()),
        "url": format!("/api/receipts/{}", receipt.id),
    });
    Some((kind.to_owned(), serde_json::json!({ "id": Uuid::now_v7(), "type": kind, "created_at": at, "data": data })))
}

/// Pending deliveries of a receipt's event to every webhook of its owner that wants it.
pub fn deliveries_for(webhooks: &[Webhook], receipt: &Receipt, now: DateTime<Utc>) -> Vec<WebhookDelivery> {
    let Some((kind, body)) = receipt_event(receipt, now) else { return Vec::new() };
    webhooks
        .iter()
        .filter(|webhook| webhook.owner_id == receipt.owner_id && webhook.events.contains(&kind))
        .map(|webhook| WebhookDelivery {
            id: Uuid::now_v7(),
            webhook_id: webhook.id,
            owner_id: webhook.owner_id,
            event: kind.clone(),
            payload: body.to_string(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_status: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_six_hours() {
        let base = std::time::Duration::from_secs(30);
        let waits: Vec<u64> = (1..=6).map(|attempt| retry_delay(attempt, base).as_secs()).collect();
        assert_eq!(waits, [30, 120, 480, 1920, 7680, 21600]);
        assert_eq!(retry_delay(100, base).as_secs(), 21600);
    }

    #[test]
    fn only_finished_receipts_make_events_for_the_owners_webhooks_that_want_them() {
        let owner = UserId::new();
        let mut receipt = Receipt::queued(owner, "ab".into(), "image/png", Utc::now());
        let hook = |owner: UserId, events: &[&str]| Webhook {
            id: Uuid::now_v7(),
            owner_id: owner,
            url: "https://example.com/hook".into(),
            secret: "s".into(),
            previous_secret: None,
            previous_secret_expires_at: None,
            events: events.iter().map(|event| (*event).to_owned()).collect(),
            created_at: Utc::now(),
        };
        let hooks = [hook(owner, &EVENTS), hook(owner, &["receipt.done"]), hook(UserId::new(), &EVENTS)];
        assert!(deliveries_for(&hooks, &receipt, Utc::now()).is_empty(), "queued: nothing yet");
        receipt.status = ReceiptStatus::Failed;
        receipt.failure = Some("raw driver text".into());
        let failed = deliveries_for(&hooks, &receipt, Utc::now());
        assert_eq!(failed.len(), 1, "only the hook that wants failures, of this owner");
        let body: serde_json::Value = serde_json::from_str(&failed[0].payload).expect("json");
        assert_eq!(body["type"], "receipt.failed");
        assert_eq!(body["data"]["failure"], "internal", "never the raw text");
        assert_eq!(body["data"]["receipt_id"], receipt.id.to_string());
    }
}
