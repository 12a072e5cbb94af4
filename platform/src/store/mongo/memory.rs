//! The per-user merchant memory: corrections remembered by the merchant's key.

use chrono::Utc;
use finagent_core::UserId;
use mongodb::bson::doc;

use super::{MongoStore, unavailable};
use crate::store::StoreError;

impl crate::store::MerchantMemoryStore for MongoStore {
    async fn remember_merchant(
        &self,
        owner: UserId,
        keys: &[String],
        merchant: &finagent_core::receipt::RememberedMerchant,
    ) -> Result<(), StoreError> {
        let document = serde_json::to_string(merchant).map_err(StoreError::corrupt("document"))?;
        let now = Utc::now().timestamp_micros();
        for key in keys {
            self.merchant_memory
                .update_one(
                    doc! { "_id": format!("{owner}:{key}") },
                    doc! { "$set": { "owner_id": owner.to_string(), "updated_us": now, "document": &document } },
                )
                .upsert(true)
                .await
                .map_err(unavailable("remember_merchant"))?;
        }
        Ok(())
    }

    async fn recall_merchant(
        &self,
        owner: UserId,
        keys: &[String],
    ) -> Result<Option<finagent_core::receipt::RememberedMerchant>, StoreError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let ids: Vec<String> = keys.iter().map(|key| format!("{owner}:{key}")).collect();
        let found = self
            .merchant_memory
            .find_one(doc! { "_id": { "$in": ids } })
            .sort(doc! { "updated_us": -1 })
            .await
            .map_err(unavailable("recall_merchant"))?;
        found
            .and_then(|document| document.get_str("document").ok().map(str::to_owned))
            .map(|text| serde_json::from_str(&text).map_err(StoreError::corrupt("document")))
            .transpose()
    }
}
