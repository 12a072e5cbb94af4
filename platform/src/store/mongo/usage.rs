//! Storage accounting: each owner's and the instance's usage documents, moved with conditional `$inc`
//! updates so a limit holds however many uploads arrive at once, on any number of replicas.

use finagent_core::UserId;
use mongodb::bson::{Document, doc};

use super::{MongoStore, is_duplicate, unavailable};
use crate::store::query::Usage;
use crate::store::{Exceeded, INSTANCE_USAGE_KEY, StorageLimits, StoreError};

impl MongoStore {
    /// Moves an owner's usage counts, and the instance's, by one receipt of `bytes`, up (`sign` 1)
    /// or down (-1).
    pub(super) async fn count_usage(&self, owner: UserId, bytes: u64, sign: i64) -> Result<(), StoreError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        for key in [owner.to_string(), INSTANCE_USAGE_KEY.to_owned()] {
            self.usage
                .update_one(doc! { "_id": key }, doc! { "$inc": { "receipts": sign, "image_bytes": sign * bytes } })
                .upsert(true)
                .await
                .map_err(unavailable("count_usage"))?;
        }
        Ok(())
    }

    /// Counts one more receipt of `bytes` in `key`'s usage only if it stays within `receipts` and
    /// `image_bytes`: one conditional increment, so concurrent reservations on any replica cannot
    /// overshoot. A row that does not match (over a limit) makes the upsert's insert collide with
    /// the existing `_id`, which is the refusal.
    pub(super) async fn reserve(
        &self,
        key: &str,
        bytes: u64,
        receipts: u64,
        image_bytes: u64,
    ) -> Result<bool, StoreError> {
        let (Some(room), true) = (image_bytes.checked_sub(bytes), receipts > 0) else { return Ok(false) };
        let clamp = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let filter = doc! {
            "_id": key,
            "receipts": { "$lt": clamp(receipts) },
            "image_bytes": { "$lte": clamp(room) },
        };
        match self
            .usage
            .update_one(filter, doc! { "$inc": { "receipts": 1i64, "image_bytes": clamp(bytes) } })
            .upsert(true)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_duplicate(&error) => Ok(false),
            Err(error) => Err(unavailable("reserve")(error)),
        }
    }

    /// Takes back a reservation of [`MongoStore::reserve`].
    pub(super) async fn release(&self, key: &str, bytes: u64) -> Result<(), StoreError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.usage
            .update_one(doc! { "_id": key }, doc! { "$inc": { "receipts": -1i64, "image_bytes": -bytes } })
            .await
            .map_err(unavailable("release"))?;
        Ok(())
    }

    /// Reserves room for one receipt of `bytes` for its owner and in the instance, or says which
    /// limit it would pass (and reserves nothing).
    pub(super) async fn reserve_within(
        &self,
        owner: UserId,
        bytes: u64,
        limits: StorageLimits,
    ) -> Result<Option<Exceeded>, StoreError> {
        let owner_key = owner.to_string();
        if !self.reserve(&owner_key, bytes, limits.owner_receipts, limits.owner_image_bytes).await? {
            return Ok(Some(Exceeded::Owner(self.usage_of(&owner_key).await?)));
        }
        if !self.reserve(INSTANCE_USAGE_KEY, bytes, u64::MAX, limits.instance_image_bytes).await? {
            self.release(&owner_key, bytes).await?;
            return Ok(Some(Exceeded::Instance(self.usage_of(INSTANCE_USAGE_KEY).await?)));
        }
        Ok(None)
    }

    /// Takes back both reservations of [`MongoStore::reserve_within`].
    pub(super) async fn release_within(&self, owner: UserId, bytes: u64) -> Result<(), StoreError> {
        self.release(&owner.to_string(), bytes).await?;
        self.release(INSTANCE_USAGE_KEY, bytes).await
    }

    /// The usage row of an owner, or of the instance ([`INSTANCE_USAGE_KEY`]).
    pub(super) async fn usage_of(&self, key: &str) -> Result<Usage, StoreError> {
        let found = self.usage.find_one(doc! { "_id": key }).await.map_err(unavailable("usage_of"))?;
        let count = |document: &Document, name: &str| {
            document
                .get(name)
                .and_then(|value| value.as_i64().or_else(|| value.as_i32().map(i64::from)))
                .unwrap_or(0)
                .max(0) as u64
        };
        Ok(found.map_or_else(Usage::default, |found| Usage {
            receipts: count(&found, "receipts"),
            image_bytes: count(&found, "image_bytes"),
        }))
    }
}
