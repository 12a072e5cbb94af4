//! Webhooks and their deliveries, claimed atomically by the senders.

use chrono::{DateTime, Utc};
use finagent_core::UserId;
use mongodb::bson::{Document, doc};
use uuid::Uuid;

use super::all;
use super::{MongoStore, decode, encode, unavailable};
use crate::store::StoreError;

pub(super) fn delivery_document(delivery: &finagent_core::webhook::WebhookDelivery) -> Result<Document, StoreError> {
    let mut document = encode(delivery, delivery.id.to_string())?;
    document.insert("next_attempt_ms", delivery.next_attempt_at.timestamp_millis());
    document.insert("created_ms", delivery.created_at.timestamp_millis());
    Ok(document)
}

pub(super) fn delivery_of(mut document: Document) -> Result<finagent_core::webhook::WebhookDelivery, StoreError> {
    document.remove("next_attempt_ms");
    document.remove("created_ms");
    decode(document)
}

impl crate::store::WebhookStore for MongoStore {
    async fn create_webhook(&self, webhook: &finagent_core::webhook::Webhook) -> Result<(), StoreError> {
        self.webhooks
            .insert_one(encode(webhook, webhook.id.to_string())?)
            .await
            .map_err(unavailable("create_webhook"))?;
        Ok(())
    }

    async fn webhooks(&self, owner: UserId) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        all(
            "webhooks",
            self.webhooks.find(doc! { "owner_id": owner.to_string() }).sort(doc! { "created_at": 1, "_id": 1 }),
            decode,
        )
        .await
    }

    async fn delete_webhook(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        let deleted = self
            .webhooks
            .delete_one(doc! { "_id": id.to_string(), "owner_id": owner.to_string() })
            .await
            .map_err(unavailable("delete_webhook"))?;
        Ok(deleted.deleted_count == 1)
    }

    async fn replace_webhook(
        &self,
        webhook: &finagent_core::webhook::Webhook,
        expected_secret: &str,
    ) -> Result<bool, StoreError> {
        let filter =
            doc! { "_id": webhook.id.to_string(), "owner_id": webhook.owner_id.to_string(), "secret": expected_secret };
        let replaced = self
            .webhooks
            .replace_one(filter, encode(webhook, webhook.id.to_string())?)
            .await
            .map_err(unavailable("replace_webhook"))?;
        Ok(replaced.matched_count == 1)
    }

    async fn webhooks_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        let filter = match after {
            Some(after) => doc! { "_id": { "$gt": after.to_string() } },
            None => doc! {},
        };
        all(
            "webhooks_after",
            self.webhooks.find(filter).sort(doc! { "_id": 1 }).limit(i64::try_from(limit).unwrap_or(i64::MAX)),
            decode,
        )
        .await
    }

    async fn save_delivery(&self, delivery: &finagent_core::webhook::WebhookDelivery) -> Result<(), StoreError> {
        self.webhook_deliveries
            .replace_one(doc! { "_id": delivery.id.to_string() }, delivery_document(delivery)?)
            .upsert(true)
            .await
            .map_err(unavailable("save_delivery"))?;
        Ok(())
    }

    async fn deliveries(
        &self,
        owner: UserId,
        webhook: Uuid,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        all(
            "deliveries",
            self.webhook_deliveries
                .find(doc! { "webhook_id": webhook.to_string(), "owner_id": owner.to_string() })
                .sort(doc! { "created_ms": -1, "_id": -1 })
                .limit(i64::from(limit)),
            delivery_of,
        )
        .await
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(1));
        let mut claimed = Vec::new();
        for _ in 0..limit {
            // One at a time: find-and-modify is atomic, so two senders never take the same one.
            let taken = self
                .webhook_deliveries
                .find_one_and_update(
                    doc! { "status": "pending", "next_attempt_ms": { "$lte": now.timestamp_millis() } },
                    doc! { "$set": { "next_attempt_ms": until.timestamp_millis(), "next_attempt_at": until.to_rfc3339() } },
                )
                .sort(doc! { "next_attempt_ms": 1 })
                .return_document(mongodb::options::ReturnDocument::After)
                .await
                .map_err(unavailable("claim_due_deliveries"))?;
            let Some(taken) = taken else { break };
            claimed.push(delivery_of(taken)?);
        }
        Ok(claimed)
    }
}
