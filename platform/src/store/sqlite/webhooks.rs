//! Webhooks and their deliveries, claimed atomically by the senders.

use chrono::{DateTime, Utc};
use finagent_core::UserId;
use rusqlite::params;
use rusqlite::types::Value;
use uuid::Uuid;

use super::{SqliteStore, documents, failed, to_json};
use crate::store::StoreError;

pub(super) fn delivery_status(status: finagent_core::webhook::DeliveryStatus) -> &'static str {
    match status {
        finagent_core::webhook::DeliveryStatus::Pending => "pending",
        finagent_core::webhook::DeliveryStatus::Delivered => "delivered",
        finagent_core::webhook::DeliveryStatus::Failed => "failed",
    }
}

impl crate::store::WebhookStore for SqliteStore {
    async fn create_webhook(&self, webhook: &finagent_core::webhook::Webhook) -> Result<(), StoreError> {
        self.insert_row(
            "webhook",
            "INSERT INTO webhooks (id, owner_id, created_ms, document) VALUES (?1, ?2, ?3, ?4)",
            vec![
                Value::from(webhook.id.to_string()),
                Value::from(webhook.owner_id.to_string()),
                Value::from(webhook.created_at.timestamp_millis()),
                Value::from(to_json(webhook)?),
            ],
        )
        .await
    }

    async fn webhooks(&self, owner: UserId) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        let owner = owner.to_string();
        self.with(move |db| {
            documents(db, "SELECT document FROM webhooks WHERE owner_id = ?1 ORDER BY created_ms, id", params![owner])
        })
        .await
    }

    async fn delete_webhook(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        let (owner, id) = (owner.to_string(), id.to_string());
        self.with(move |db| {
            let deleted = db
                .execute("DELETE FROM webhooks WHERE id = ?1 AND owner_id = ?2", params![id, owner])
                .map_err(failed("delete_webhook"))?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn replace_webhook(
        &self,
        webhook: &finagent_core::webhook::Webhook,
        expected_secret: &str,
    ) -> Result<bool, StoreError> {
        let (id, owner, document) = (webhook.id.to_string(), webhook.owner_id.to_string(), to_json(webhook)?);
        let expected = expected_secret.to_owned();
        self.with(move |db| {
            let replaced = db
                .execute(
                    "UPDATE webhooks SET document = ?1
                     WHERE id = ?2 AND owner_id = ?3 AND json_extract(document, '$.secret') = ?4",
                    params![document, id, owner, expected],
                )
                .map_err(failed("replace_webhook"))?;
            Ok(replaced == 1)
        })
        .await
    }

    async fn webhooks_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |db| {
            documents(db, "SELECT document FROM webhooks WHERE id > ?1 ORDER BY id LIMIT ?2", params![after, limit])
        })
        .await
    }

    async fn save_delivery(&self, delivery: &finagent_core::webhook::WebhookDelivery) -> Result<(), StoreError> {
        let values = (
            delivery.id.to_string(),
            delivery.webhook_id.to_string(),
            delivery.owner_id.to_string(),
            delivery_status(delivery.status),
            delivery.next_attempt_at.timestamp_millis(),
            delivery.created_at.timestamp_millis(),
            to_json(delivery)?,
        );
        self.with(move |db| {
            db.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, owner_id, status, next_attempt_ms, created_ms, document)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, next_attempt_ms = excluded.next_attempt_ms,
                   document = excluded.document",
                params![values.0, values.1, values.2, values.3, values.4, values.5, values.6],
            )
            .map_err(failed("save_delivery"))?;
            Ok(())
        })
        .await
    }

    async fn deliveries(
        &self,
        owner: UserId,
        webhook: Uuid,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        let (owner, webhook) = (owner.to_string(), webhook.to_string());
        self.with(move |db| {
            documents(
                db,
                "SELECT document FROM webhook_deliveries WHERE webhook_id = ?1 AND owner_id = ?2
                 ORDER BY created_ms DESC, id DESC LIMIT ?3",
                params![webhook, owner, limit],
            )
        })
        .await
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        let now_ms = now.timestamp_millis();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(1));
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed("claim_due_deliveries"))?;
            let mut due: Vec<finagent_core::webhook::WebhookDelivery> = documents(
                &transaction,
                "SELECT document FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_ms <= ?1
                 ORDER BY next_attempt_ms LIMIT ?2",
                params![now_ms, limit],
            )?;
            for delivery in &mut due {
                delivery.next_attempt_at = until;
                transaction
                    .execute(
                        "UPDATE webhook_deliveries SET next_attempt_ms = ?2, document = ?3 WHERE id = ?1",
                        params![delivery.id.to_string(), until.timestamp_millis(), to_json(delivery)?],
                    )
                    .map_err(failed("claim_due_deliveries"))?;
            }
            transaction.commit().map_err(failed("claim_due_deliveries"))?;
            Ok(due)
        })
        .await
    }
}
