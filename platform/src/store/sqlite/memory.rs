//! The per-user merchant memory: corrections remembered by the merchant's key.

use chrono::Utc;
use finagent_core::UserId;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, failed, from_json, to_json};
use crate::store::StoreError;

impl crate::store::MerchantMemoryStore for SqliteStore {
    async fn remember_merchant(
        &self,
        owner: UserId,
        keys: &[String],
        merchant: &finagent_core::receipt::RememberedMerchant,
    ) -> Result<(), StoreError> {
        let (owner, keys, document) = (owner.to_string(), keys.to_vec(), to_json(merchant)?);
        let now = Utc::now().timestamp_micros();
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed("remember_merchant"))?;
            for key in &keys {
                transaction
                    .execute(
                        "INSERT INTO merchant_memory (owner_id, key, updated_us, document) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (owner_id, key) DO UPDATE SET updated_us = excluded.updated_us, document = excluded.document",
                        params![owner, key, now, document],
                    )
                    .map_err(failed("remember_merchant"))?;
            }
            transaction.commit().map_err(failed("remember_merchant"))
        })
        .await
    }

    async fn recall_merchant(
        &self,
        owner: UserId,
        keys: &[String],
    ) -> Result<Option<finagent_core::receipt::RememberedMerchant>, StoreError> {
        let (owner, keys) = (owner.to_string(), keys.to_vec());
        let found: Option<String> = self
            .with(move |db| {
                let mut best: Option<(i64, String)> = None;
                let mut statement = db
                    .prepare_cached("SELECT updated_us, document FROM merchant_memory WHERE owner_id = ?1 AND key = ?2")
                    .map_err(failed("recall_merchant"))?;
                for key in &keys {
                    let row = statement
                        .query_row(params![owner, key], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
                        .optional()
                        .map_err(failed("recall_merchant"))?;
                    if let Some(row) = row
                        && best.as_ref().is_none_or(|(updated, _)| row.0 > *updated)
                    {
                        best = Some(row);
                    }
                }
                Ok(best.map(|(_, document)| document))
            })
            .await?;
        found.map(|document| from_json(&document)).transpose()
    }
}
