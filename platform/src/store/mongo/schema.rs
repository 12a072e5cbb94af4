//! The collections' indexes, created at connect time, and the migrations between versions.

use futures::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};

use super::receipts::{from_document, to_document};
use super::{MongoStore, unavailable};
use crate::store::{INSTANCE_USAGE_KEY, StoreError};

impl MongoStore {
    /// Gives receipts stored before [`IndexKeys`] existed their keys, and counts every owner's
    /// usage, once per database.
    pub(super) async fn migrate(&self, database: &Database) -> Result<(), StoreError> {
        let meta = database.collection::<Document>("meta");
        // 3: the instance's usage is counted too.
        let marker = doc! { "_id": "receipt_keys", "version": 3 };
        if meta.find_one(marker.clone()).await.map_err(unavailable("migrate"))?.is_some() {
            return Ok(());
        }
        let mut cursor =
            self.receipts.find(doc! { "q": { "$exists": false } }).await.map_err(unavailable("migrate"))?;
        while let Some(document) = cursor.try_next().await.map_err(unavailable("migrate"))? {
            let receipt = from_document(document)?;
            let q = to_document(&receipt)?.remove("q").unwrap_or(Bson::Null);
            self.receipts
                .update_one(doc! { "_id": receipt.id.to_string() }, doc! { "$set": { "q": q } })
                .await
                .map_err(unavailable("migrate"))?;
        }
        self.usage.delete_many(doc! {}).await.map_err(unavailable("migrate"))?;
        let mut totals = self
            .receipts
            .aggregate([doc! { "$group": {
                "_id": "$owner_id", "receipts": { "$sum": 1 }, "image_bytes": { "$sum": "$image_bytes" },
            } }])
            .await
            .map_err(unavailable("migrate"))?;
        let mut instance = (0i64, 0i64);
        while let Some(total) = totals.try_next().await.map_err(unavailable("migrate"))? {
            let count =
                |name: &str| total.get(name).and_then(|value| value.as_i64().or_else(|| value.as_i32().map(i64::from)));
            instance.0 += count("receipts").unwrap_or(0);
            instance.1 += count("image_bytes").unwrap_or(0);
            self.usage.insert_one(total).await.map_err(unavailable("migrate"))?;
        }
        self.usage
            .insert_one(doc! { "_id": INSTANCE_USAGE_KEY, "receipts": instance.0, "image_bytes": instance.1 })
            .await
            .map_err(unavailable("migrate"))?;
        meta.replace_one(doc! { "_id": "receipt_keys" }, marker).upsert(true).await.map_err(unavailable("migrate"))?;
        Ok(())
    }
}
