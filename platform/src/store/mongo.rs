//! MongoDB storage: receipt documents in `receipts`, images in the GridFS bucket `images`.
//!
//! Receipts are stored as their JSON model with `_id` set to the receipt id. Indexes, created at
//! connect time (creating an existing index is a no-op): `(owner_id, created_at)` for listing,
//! `(owner_id, image_sha256)` for de-duplicating uploads, and `status` for operations.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use finagent_core::account::{ApiKey, Rotation, Session, User};
use finagent_core::insights::{
    GroupSums, MEDIAN_WINDOW, SpendAggregates, main_currency, median_of_recent, unusual_threshold,
};
use finagent_core::money::{Amount, Currency};
use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};
use futures::{AsyncReadExt, AsyncWriteExt, TryStreamExt};
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::gridfs::GridFsBucket;
use mongodb::options::{GridFsBucketOptions, IndexOptions};
use mongodb::{Collection, Database, IndexModel};
use uuid::Uuid;

use super::query::{IndexKeys, KeyValue, OrderKey, ReceiptFilter, ReceiptQuery, Usage};
use super::{
    ApiKeyStore, BlobStore, Exceeded, INSTANCE_USAGE_KEY, Inserted, ReceiptStore, SessionStore, StorageLimits,
    StoreError, UserChange, UserStore, dedup_keys,
};

/// Receipts, images and accounts on MongoDB.
#[derive(Clone, Debug)]
pub struct MongoStore {
    receipts: Collection<Document>,
    /// De-duplication keys of uploads (`_id` = key), whose `_id` uniqueness makes them atomic.
    receipt_keys: Collection<Document>,
    images: GridFsBucket,
    users: Collection<Document>,
    sessions: Collection<Document>,
    api_keys: Collection<Document>,
    /// Running counts of each owner's receipts and image bytes (`_id` = owner).
    usage: Collection<Document>,
    /// Revocations of the in-process guard (`_id` = what is revoked).
    revocations: Collection<Document>,
    webhooks: Collection<Document>,
    webhook_deliveries: Collection<Document>,
    /// Merchant memory (`_id` = owner + fingerprint).
    merchant_memory: Collection<Document>,
    invites: Collection<Document>,
}

fn is_duplicate(error: &mongodb::error::Error) -> bool {
    let text = error.to_string();
    text.contains("E11000") || text.to_lowercase().contains("duplicate")
}

fn encode<T: serde::Serialize>(value: &T, id: String) -> Result<Document, StoreError> {
    let mut document = bson::to_document(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    document.insert("_id", id);
    Ok(document)
}

fn decode<T: serde::de::DeserializeOwned>(mut document: Document) -> Result<T, StoreError> {
    document.remove("_id");
    document.remove("used_token_hashes");
    bson::from_document(document).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn unavailable(error: mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn to_document(receipt: &Receipt) -> Result<Document, StoreError> {
    let mut document = bson::to_document(receipt).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    document.insert("_id", receipt.id.to_string());
    let keys = IndexKeys::of(receipt);
    let mut q = result_keys(&keys);
    q.insert("created_us", keys.created_us);
    q.insert("recency", -keys.created_us);
    document.insert("q", q);
    Ok(document)
}

/// The keys of [`IndexKeys`] that follow the receipt's result (all but its upload time).
fn result_keys(keys: &IndexKeys) -> Document {
    doc! {
        "date": keys.date_text(),
        "month": keys.month(),
        "merchant_lower": keys.merchant_lower.clone(),
        "merchant_key": keys.merchant_key.clone(),
        "category": keys.category,
        "total_units": keys.total_units,
        "currency": keys.currency.clone(),
        "sort_purchased": keys.sort_purchased,
        "sort_total": keys.sort_total,
        "sort_review": keys.sort_review,
    }
}

/// [`result_keys`] as `$set` paths under `q`.
fn result_key_paths(result: &ReceiptResult) -> Document {
    result_keys(&IndexKeys::new(DateTime::<Utc>::UNIX_EPOCH, Some(result)))
        .into_iter()
        .map(|(name, value)| (format!("q.{name}"), value))
        .collect()
}

fn from_document(mut document: Document) -> Result<Receipt, StoreError> {
    document.remove("_id");
    document.remove("result_writes");
    document.remove("q");
    bson::from_document(document).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The query document of a filter, for an owner.
fn filter_document(owner: UserId, filter: &ReceiptFilter) -> Document {
    let mut query = doc! { "owner_id": owner.to_string() };
    let mut range = |field: &str, low: Option<Bson>, high: Option<Bson>| {
        let mut bounds = Document::new();
        if let Some(low) = low {
            bounds.insert("$gte", low);
        }
        if let Some(high) = high {
            bounds.insert("$lte", high);
        }
        if !bounds.is_empty() {
            query.insert(field, bounds);
        }
    };
    range("q.date", filter.from.map(|d| Bson::from(d.to_string())), filter.to.map(|d| Bson::from(d.to_string())));
    // Dates bound the `purchased` order's key too, so that order reads only the range.
    let day_key = |date: NaiveDate| Bson::Int64(-i64::from(date.num_days_from_ce()));
    range("q.sort_purchased", filter.to.map(day_key), filter.from.map(day_key));
    range(
        "q.total_units",
        filter.min_total.map(|a| Bson::Int64(a.to_units())),
        filter.max_total.map(|a| Bson::Int64(a.to_units())),
    );
    if let Some(needle) = filter.merchant_needle() {
        query.insert("q.merchant_lower", doc! { "$regex": regex_escape(&needle) });
    }
    if let Some(category) = filter.category {
        query.insert("q.category", category.as_str());
    }
    if let Some(status) = filter.status {
        query.insert("status", status.as_str());
    }
    query
}

/// A regular expression that matches `text` literally.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~ ".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The field of an order's key.
fn field(key: OrderKey) -> &'static str {
    match key {
        OrderKey::CreatedUs => "q.created_us",
        OrderKey::Recency => "q.recency",
        OrderKey::SortPurchased => "q.sort_purchased",
        OrderKey::SortTotal => "q.sort_total",
        OrderKey::SortReview => "q.sort_review",
        OrderKey::Id => "_id",
    }
}

/// A key's value as BSON.
fn bson_value(value: KeyValue) -> Bson {
    match value {
        KeyValue::Integer(integer) => Bson::Int64(integer),
        KeyValue::Real(real) => Bson::Double(real),
        KeyValue::Id(id) => Bson::String(id.to_string()),
    }
}

/// `fields > bounds` in lexicographic order, as a query document.
fn after_document(fields: &[&str], bounds: &[Bson]) -> Document {
    let branches: Vec<Document> = (0..fields.len())
        .map(|last| {
            let mut branch = Document::new();
            for (field, bound) in fields.iter().zip(bounds).take(last) {
                branch.insert(*field, bound.clone());
            }
            branch.insert(fields[last], doc! { "$gt": bounds[last].clone() });
            branch
        })
        .collect();
    doc! { "$or": branches }
}

impl MongoStore {
    /// Connects to `url`, uses database `database`, and creates the indexes.
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        let client = mongodb::Client::with_uri_str(url).await.map_err(unavailable)?;
        Self::open(client.database(database)).await
    }

    /// Uses an open database and creates the indexes.
    pub async fn open(database: Database) -> Result<Self, StoreError> {
        let receipts = database.collection::<Document>("receipts");
        let index = |keys: Document, name: &str| {
            IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).build()).build()
        };
        receipts
            .create_indexes([
                index(doc! { "owner_id": 1, "created_at": -1 }, "owner_created"),
                index(doc! { "owner_id": 1, "image_sha256": 1 }, "owner_image"),
                index(doc! { "status": 1 }, "status"),
                index(doc! { "owner_id": 1, "q.recency": 1, "_id": 1 }, "newest"),
                index(doc! { "owner_id": 1, "q.created_us": 1, "_id": 1 }, "oldest"),
                index(doc! { "owner_id": 1, "q.sort_purchased": 1, "q.recency": 1, "_id": 1 }, "purchased"),
                index(doc! { "owner_id": 1, "q.sort_total": 1, "q.recency": 1, "_id": 1 }, "total"),
                index(doc! { "owner_id": 1, "q.sort_review": 1, "q.recency": 1, "_id": 1 }, "review"),
                index(doc! { "owner_id": 1, "q.date": 1 }, "spend"),
                index(doc! { "owner_id": 1, "q.total_units": 1 }, "totals"),
            ])
            .await
            .map_err(unavailable)?;
        let images = database.gridfs_bucket(GridFsBucketOptions::builder().bucket_name("images".to_owned()).build());
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).unique(true).build())
                .build()
        };
        let users = database.collection::<Document>("users");
        users.create_indexes([unique(doc! { "username": 1 }, "username")]).await.map_err(unavailable)?;
        // Emails were unique before; an address nobody verified is no key (see the SQLite store).
        if let Err(error) = users.drop_index("email").await {
            tracing::debug!(%error, "no unique email index to drop");
        }
        let sessions = database.collection::<Document>("sessions");
        sessions
            .create_indexes([
                index(doc! { "current_token_hash": 1 }, "current_token"),
                index(doc! { "used_token_hashes": 1 }, "used_tokens"),
                index(doc! { "user_id": 1 }, "user"),
            ])
            .await
            .map_err(unavailable)?;
        let api_keys = database.collection::<Document>("api_keys");
        api_keys
            .create_indexes([unique(doc! { "key_hash": 1 }, "key_hash"), index(doc! { "owner_id": 1 }, "owner")])
            .await
            .map_err(unavailable)?;
        let receipt_keys = database.collection::<Document>("receipt_keys");
        receipt_keys.create_indexes([index(doc! { "receipt_id": 1 }, "receipt")]).await.map_err(unavailable)?;
        let store = Self {
            receipts,
            receipt_keys,
            images,
            users,
            sessions,
            api_keys,
            usage: database.collection("usage"),
            revocations: database.collection("revocations"),
            webhooks: database.collection("webhooks"),
            webhook_deliveries: database.collection("webhook_deliveries"),
            merchant_memory: database.collection("merchant_memory"),
            invites: database.collection("invites"),
        };
        store
            .invites
            .create_indexes([IndexModel::builder()
                .keys(doc! { "code_hash": 1 })
                .options(IndexOptions::builder().name("code".to_owned()).unique(true).build())
                .build()])
            .await
            .map_err(unavailable)?;
        store
            .webhooks
            .create_indexes([index(doc! { "owner_id": 1, "created_at": 1 }, "owner")])
            .await
            .map_err(unavailable)?;
        store
            .webhook_deliveries
            .create_indexes([
                index(doc! { "status": 1, "next_attempt_ms": 1 }, "due"),
                index(doc! { "webhook_id": 1, "created_ms": -1 }, "of_webhook"),
            ])
            .await
            .map_err(unavailable)?;
        store.migrate(&database).await?;
        Ok(store)
    }

    /// Gives receipts stored before [`IndexKeys`] existed their keys, and counts every owner's
    /// usage, once per database.
    async fn migrate(&self, database: &Database) -> Result<(), StoreError> {
        let meta = database.collection::<Document>("meta");
        // 3: the instance's usage is counted too.
        let marker = doc! { "_id": "receipt_keys", "version": 3 };
        if meta.find_one(marker.clone()).await.map_err(unavailable)?.is_some() {
            return Ok(());
        }
        let mut cursor = self.receipts.find(doc! { "q": { "$exists": false } }).await.map_err(unavailable)?;
        while let Some(document) = cursor.try_next().await.map_err(unavailable)? {
            let receipt = from_document(document)?;
            let q = to_document(&receipt)?.remove("q").unwrap_or(Bson::Null);
            self.receipts
                .update_one(doc! { "_id": receipt.id.to_string() }, doc! { "$set": { "q": q } })
                .await
                .map_err(unavailable)?;
        }
        self.usage.delete_many(doc! {}).await.map_err(unavailable)?;
        let mut totals = self
            .receipts
            .aggregate([doc! { "$group": {
                "_id": "$owner_id", "receipts": { "$sum": 1 }, "image_bytes": { "$sum": "$image_bytes" },
            } }])
            .await
            .map_err(unavailable)?;
        let mut instance = (0i64, 0i64);
        while let Some(total) = totals.try_next().await.map_err(unavailable)? {
            let count =
                |name: &str| total.get(name).and_then(|value| value.as_i64().or_else(|| value.as_i32().map(i64::from)));
            instance.0 += count("receipts").unwrap_or(0);
            instance.1 += count("image_bytes").unwrap_or(0);
            self.usage.insert_one(total).await.map_err(unavailable)?;
        }
        self.usage
            .insert_one(doc! { "_id": INSTANCE_USAGE_KEY, "receipts": instance.0, "image_bytes": instance.1 })
            .await
            .map_err(unavailable)?;
        meta.replace_one(doc! { "_id": "receipt_keys" }, marker).upsert(true).await.map_err(unavailable)?;
        Ok(())
    }

    /// Moves an owner's usage counts, and the instance's, by one receipt of `bytes`, up (`sign` 1)
    /// or down (-1).
    async fn count_usage(&self, owner: UserId, bytes: u64, sign: i64) -> Result<(), StoreError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        for key in [owner.to_string(), INSTANCE_USAGE_KEY.to_owned()] {
            self.usage
                .update_one(doc! { "_id": key }, doc! { "$inc": { "receipts": sign, "image_bytes": sign * bytes } })
                .upsert(true)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Counts one more receipt of `bytes` in `key`'s usage only if it stays within `receipts` and
    /// `image_bytes`: one conditional increment, so concurrent reservations on any replica cannot
    /// overshoot. A row that does not match (over a limit) makes the upsert's insert collide with
    /// the existing `_id`, which is the refusal.
    async fn reserve(&self, key: &str, bytes: u64, receipts: u64, image_bytes: u64) -> Result<bool, StoreError> {
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
            Err(error) => Err(unavailable(error)),
        }
    }

    /// Takes back a reservation of [`MongoStore::reserve`].
    async fn release(&self, key: &str, bytes: u64) -> Result<(), StoreError> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.usage
            .update_one(doc! { "_id": key }, doc! { "$inc": { "receipts": -1i64, "image_bytes": -bytes } })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Reserves room for one receipt of `bytes` for its owner and in the instance, or says which
    /// limit it would pass (and reserves nothing).
    async fn reserve_within(
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
    async fn release_within(&self, owner: UserId, bytes: u64) -> Result<(), StoreError> {
        self.release(&owner.to_string(), bytes).await?;
        self.release(INSTANCE_USAGE_KEY, bytes).await
    }

    /// The usage row of an owner, or of the instance ([`INSTANCE_USAGE_KEY`]).
    async fn usage_of(&self, key: &str) -> Result<Usage, StoreError> {
        let found = self.usage.find_one(doc! { "_id": key }).await.map_err(unavailable)?;
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

    /// Stores a receipt's document (its usage counted by the caller).
    async fn insert_document(&self, receipt: &Receipt) -> Result<(), StoreError> {
        match self.receipts.insert_one(to_document(receipt)?).await {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict(format!("receipt {}", receipt.id))),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// [`ReceiptStore::insert_receipt_once`] once its room is reserved: claims the de-duplication
    /// keys, then stores the document.
    async fn insert_reserved_once(&self, receipt: &Receipt) -> Result<Inserted, StoreError> {
        let id = receipt.id.to_string();
        let mut claimed = Vec::new();
        for key in dedup_keys(receipt) {
            match self.receipt_keys.insert_one(doc! { "_id": &key, "receipt_id": &id }).await {
                Ok(_) => claimed.push(key),
                Err(error) if is_duplicate(&error) => {
                    let mut existing = None;
                    let mut holder_id = None;
                    // The holder may be an upload between claiming its key and storing its receipt.
                    for wait in [0, 250, 1000] {
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                        let holder = self.receipt_keys.find_one(doc! { "_id": &key }).await.map_err(unavailable)?;
                        holder_id =
                            holder.as_ref().and_then(|holder| holder.get_str("receipt_id").ok()).map(str::to_owned);
                        if let Some(holder_id) = &holder_id {
                            existing = self.receipts.find_one(doc! { "_id": holder_id }).await.map_err(unavailable)?;
                        }
                        if existing.is_some() {
                            break;
                        }
                    }
                    if let Some(existing) = existing {
                        self.receipt_keys
                            .delete_many(doc! { "_id": { "$in": &claimed } })
                            .await
                            .map_err(unavailable)?;
                        return Ok(Inserted::Existing(Box::new(from_document(existing)?)));
                    }
                    // A key left behind by an upload that died before storing its receipt: take it
                    // over, only if nobody else did meanwhile.
                    let taken = self
                        .receipt_keys
                        .update_one(
                            doc! { "_id": &key, "receipt_id": holder_id.unwrap_or_default() },
                            doc! { "$set": { "receipt_id": &id } },
                        )
                        .await
                        .map_err(unavailable)?;
                    if taken.modified_count != 1 {
                        self.receipt_keys
                            .delete_many(doc! { "_id": { "$in": &claimed } })
                            .await
                            .map_err(unavailable)?;
                        return Err(StoreError::Conflict(format!("another upload holds {key}")));
                    }
                    claimed.push(key);
                }
                Err(error) => return Err(unavailable(error)),
            }
        }
        self.insert_document(receipt).await?;
        Ok(Inserted::New)
    }

    async fn aggregate_all(&self, pipeline: Vec<Document>) -> Result<Vec<Document>, StoreError> {
        self.receipts.aggregate(pipeline).await.map_err(unavailable)?.try_collect().await.map_err(unavailable)
    }

    /// Whether the server answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.receipts.estimated_document_count().await.map(|_| ()).map_err(unavailable)
    }

    async fn find_receipts(&self, filter: Document, sort: Document) -> Result<Vec<Receipt>, StoreError> {
        let options = mongodb::options::FindOptions::builder().sort(sort).build();
        let documents: Vec<Document> = self
            .receipts
            .find(filter)
            .with_options(options)
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        documents.into_iter().map(from_document).collect()
    }

    async fn blob_id(&self, key: &BlobKey) -> Result<Option<Bson>, StoreError> {
        let files: Vec<_> = self
            .images
            .find(doc! { "filename": key.as_str() })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        Ok(files.into_iter().next().map(|file| file.id))
    }
}

impl ReceiptStore for MongoStore {
    async fn insert_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        self.insert_document(receipt).await?;
        self.count_usage(receipt.owner_id, receipt.image_bytes, 1).await
    }

    async fn insert_receipt_once(&self, receipt: &Receipt, limits: StorageLimits) -> Result<Inserted, StoreError> {
        let (owner, bytes) = (receipt.owner_id, receipt.image_bytes);
        if let Some(exceeded) = self.reserve_within(owner, bytes, limits).await? {
            // An upload stored before is returned again even at the limit, as on SQLite.
            for key in dedup_keys(receipt) {
                let holder = self.receipt_keys.find_one(doc! { "_id": &key }).await.map_err(unavailable)?;
                let Some(holder) = holder.as_ref().and_then(|holder| holder.get_str("receipt_id").ok()) else {
                    continue;
                };
                if let Some(existing) = self.receipts.find_one(doc! { "_id": holder }).await.map_err(unavailable)? {
                    return Ok(Inserted::Existing(Box::new(from_document(existing)?)));
                }
            }
            return Ok(Inserted::OverLimit(exceeded));
        }
        let inserted = self.insert_reserved_once(receipt).await;
        if !matches!(inserted, Ok(Inserted::New)) {
            // Nothing was stored: the room reserved is given back.
            self.release_within(owner, bytes).await?;
        }
        inserted
    }

    async fn unfinished_receipts(&self) -> Result<Vec<Receipt>, StoreError> {
        self.find_receipts(doc! { "status": { "$in": ["queued", "processing"] } }, doc! { "created_at": 1, "_id": 1 })
            .await
    }

    async fn delete_receipt(&self, owner: UserId, id: ReceiptId) -> Result<Option<Receipt>, StoreError> {
        let found = self
            .receipts
            .find_one_and_delete(doc! { "_id": id.to_string(), "owner_id": owner.to_string() })
            .await
            .map_err(unavailable)?;
        let Some(found) = found.map(from_document).transpose()? else { return Ok(None) };
        self.receipt_keys.delete_many(doc! { "receipt_id": id.to_string() }).await.map_err(unavailable)?;
        self.count_usage(owner, found.image_bytes, -1).await?;
        Ok(Some(found))
    }

    async fn save_corrections(
        &self,
        owner: UserId,
        id: ReceiptId,
        corrected: &ReceiptResult,
    ) -> Result<bool, StoreError> {
        let mut set = result_key_paths(corrected);
        set.insert("corrected", bson::to_bson(corrected).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        set.insert("updated_at", Utc::now().to_rfc3339());
        let updated = self
            .receipts
            .update_one(doc! { "_id": id.to_string(), "owner_id": owner.to_string() }, doc! { "$set": set })
            .await
            .map_err(unavailable)?;
        Ok(updated.matched_count == 1)
    }

    async fn receipt(&self, id: ReceiptId, owner: Option<UserId>) -> Result<Option<Receipt>, StoreError> {
        let mut filter = doc! { "_id": id.to_string() };
        if let Some(owner) = owner {
            filter.insert("owner_id", owner.to_string());
        }
        self.receipts.find_one(filter).await.map_err(unavailable)?.map(from_document).transpose()
    }

    async fn set_status(&self, id: ReceiptId, next: ReceiptStatus, failure: Option<&str>) -> Result<bool, StoreError> {
        let allowed: Vec<&str> =
            [ReceiptStatus::Queued, ReceiptStatus::Processing, ReceiptStatus::Done, ReceiptStatus::Failed]
                .into_iter()
                .filter(|current| current.can_become(next))
                .map(|current| current.as_str())
                .collect();
        let mut set = doc! { "status": next.as_str(), "updated_at": Utc::now().to_rfc3339() };
        if let Some(reason) = failure {
            set.insert("failure", reason);
        }
        let updated = self
            .receipts
            .update_one(doc! { "_id": id.to_string(), "status": { "$in": allowed } }, doc! { "$set": set })
            .await
            .map_err(unavailable)?;
        Ok(updated.modified_count == 1)
    }

    async fn store_result(&self, id: ReceiptId, result: &ReceiptResult) -> Result<(), StoreError> {
        let keys = result_key_paths(result);
        let result = bson::to_bson(result).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let set =
            doc! { "status": "done", "result": result, "failure": Bson::Null, "updated_at": Utc::now().to_rfc3339() };
        // Counts overwrites by redelivered jobs, for operations; the result itself stays single.
        let count = doc! { "result_writes": 1 };
        let unfinished = doc! { "_id": id.to_string(), "status": { "$in": ["queued", "processing", "done"] } };
        // The keys follow the result unless the owner's corrections take precedence.
        let mut uncorrected = unfinished.clone();
        uncorrected.insert("corrected", Bson::Null);
        let mut with_keys = set.clone();
        with_keys.extend(keys);
        let updated = self
            .receipts
            .update_one(uncorrected, doc! { "$set": with_keys, "$inc": count.clone() })
            .await
            .map_err(unavailable)?;
        if updated.matched_count == 0 {
            self.receipts.update_one(unfinished, doc! { "$set": set, "$inc": count }).await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn receipt_page(&self, owner: UserId, query: &ReceiptQuery) -> Result<Vec<Receipt>, StoreError> {
        let fields: Vec<&str> = query.sort.keys().iter().copied().map(field).collect();
        let mut filter = filter_document(owner, &query.filter);
        if let Some(after) = &query.after {
            let bounds: Vec<Bson> = after.bounds(query.sort).into_iter().map(bson_value).collect();
            filter = doc! { "$and": [filter, after_document(&fields, &bounds)] };
        }
        let sort: Document = fields.iter().map(|field| (field.to_string(), Bson::Int32(1))).collect();
        let documents: Vec<Document> = self
            .receipts
            .find(filter)
            .sort(sort)
            .limit(i64::from(query.limit))
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        documents.into_iter().map(from_document).collect()
    }

    async fn count_receipts(&self, owner: UserId, filter: &ReceiptFilter) -> Result<u64, StoreError> {
        self.receipts.count_documents(filter_document(owner, filter)).await.map_err(unavailable)
    }

    async fn usage(&self, owner: UserId) -> Result<Usage, StoreError> {
        self.usage_of(&owner.to_string()).await
    }

    async fn instance_usage(&self) -> Result<Usage, StoreError> {
        self.usage_of(INSTANCE_USAGE_KEY).await
    }

    async fn spend_aggregates(
        &self,
        owner: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SpendAggregates, StoreError> {
        let number = |document: &Document, name: &str| {
            document.get(name).and_then(|value| value.as_i64().or_else(|| value.as_i32().map(i64::from))).unwrap_or(0)
        };
        let text = |value: Option<&Bson>| value.and_then(Bson::as_str).map(str::to_owned);
        let spent = doc! { "owner_id": owner.to_string(), "q.date": { "$ne": Bson::Null }, "q.total_units": { "$ne": Bson::Null } };
        let counts: Vec<(Option<Currency>, usize)> = self
            .aggregate_all(vec![
                doc! { "$match": spent.clone() },
                doc! { "$group": { "_id": "$q.currency", "n": { "$sum": 1 } } },
            ])
            .await?
            .iter()
            .map(|group| {
                (text(group.get("_id")).and_then(|code| code.parse().ok()), number(group, "n").max(0) as usize)
            })
            .collect();
        let currency = main_currency(&counts);
        let code = currency.map(|currency| currency.to_string());
        let same_money = doc! { "$or": [{ "q.currency": Bson::Null }, { "q.currency": code.clone() }] };
        let dates = doc! { "$gte": from.to_string(), "$lte": to.to_string() };
        let in_range = doc! { "$and": [spent.clone(), { "q.date": dates.clone() }, same_money.clone()] };
        let mut aggregates = SpendAggregates { currency, ..Default::default() };

        let groups = self
            .aggregate_all(vec![
                doc! { "$match": in_range.clone() },
                doc! { "$group": {
                    "_id": { "m": "$q.month", "c": "$q.category", "k": "$q.merchant_key" },
                    "units": { "$sum": "$q.total_units" }, "n": { "$sum": 1 },
                } },
            ])
            .await?;
        let mut sums = GroupSums::default();
        for group in &groups {
            let key = group.get_document("_id").map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let (category, merchant) = (text(key.get("c")), text(key.get("k")));
            let units = number(group, "units");
            let count = number(group, "n").max(0) as usize;
            sums.add(text(key.get("m")).unwrap_or_default(), category.as_deref(), merchant.as_deref(), units, count);
        }
        let [by_month, by_category, by_merchant] = sums.into_spends();
        (aggregates.by_month, aggregates.by_category, aggregates.by_merchant) = (by_month, by_category, by_merchant);
        let other = doc! { "$and": [spent.clone(), { "q.date": dates }, { "$nor": [same_money.clone()] }] };
        aggregates.other_currency_receipts = self.receipts.count_documents(other).await.map_err(unavailable)? as usize;
        let mut named = in_range.clone();
        named.insert("q.merchant_key", doc! { "$ne": Bson::Null });
        // Repeated keys are found by counting, and their receipts read by key: `$push` is not an
        // accumulator every MongoDB-wire server has (FerretDB has `$sum` and `$count` only).
        const SAME_IMAGE: &[(&str, &str)] = &[("i", "image_sha256")];
        const SAME_SALE: &[(&str, &str)] = &[("k", "q.merchant_key"), ("d", "q.date"), ("t", "q.total_units")];
        for (matching, fields, target) in
            [(in_range.clone(), SAME_IMAGE, &mut aggregates.same_image), (named, SAME_SALE, &mut aggregates.same_sale)]
        {
            let key: Document =
                fields.iter().map(|(alias, path)| (alias.to_string(), Bson::from(format!("${path}")))).collect();
            let groups = self
                .aggregate_all(vec![
                    doc! { "$match": matching.clone() },
                    doc! { "$group": { "_id": key, "n": { "$sum": 1 } } },
                    doc! { "$match": { "n": { "$gt": 1 } } },
                ])
                .await?;
            for group in groups {
                let values = group.get_document("_id").map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let mut members = matching.clone();
                for (alias, path) in fields {
                    members.insert(*path, values.get(*alias).cloned().unwrap_or(Bson::Null));
                }
                let members: Vec<Document> = self
                    .receipts
                    .find(members)
                    .projection(doc! { "_id": 1 })
                    .await
                    .map_err(unavailable)?
                    .try_collect()
                    .await
                    .map_err(unavailable)?;
                let ids: Result<Vec<ReceiptId>, StoreError> = members
                    .iter()
                    .map(|member| {
                        member
                            .get_str("_id")
                            .ok()
                            .and_then(|id| id.parse().ok())
                            .ok_or_else(|| StoreError::Corrupt(format!("receipt id {member}")))
                    })
                    .collect();
                target.push(ids?);
            }
        }
        let recent: Vec<Document> = self
            .receipts
            .find(doc! { "$and": [spent, same_money] })
            .sort(doc! { "q.sort_purchased": 1, "q.recency": 1, "_id": 1 })
            .limit(MEDIAN_WINDOW as i64)
            .projection(doc! { "q.total_units": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        aggregates.median = median_of_recent(
            recent
                .iter()
                .filter_map(|document| document.get_document("q").ok().map(|q| number(q, "total_units")))
                .collect(),
        );
        if let Some(threshold) = aggregates.median.and_then(unusual_threshold) {
            let mut above = in_range;
            above.insert("q.total_units", doc! { "$gt": threshold.to_units() });
            let found: Vec<Document> = self
                .receipts
                .find(above)
                .projection(doc! { "q.total_units": 1 })
                .await
                .map_err(unavailable)?
                .try_collect()
                .await
                .map_err(unavailable)?;
            for document in found {
                let id = document.get_str("_id").ok().and_then(|id| id.parse().ok());
                let units = document.get_document("q").ok().map(|q| number(q, "total_units"));
                if let (Some(id), Some(units)) = (id, units) {
                    aggregates.unusual.push((id, Amount::from_units(units)));
                }
            }
        }
        Ok(aggregates.normalized())
    }
}

impl BlobStore for MongoStore {
    async fn put_blob(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), StoreError> {
        if let Some(existing) = self.blob_id(key).await? {
            self.images.delete(existing).await.map_err(unavailable)?;
        }
        let mut upload = self.images.open_upload_stream(key.as_str()).await.map_err(unavailable)?;
        upload.write_all(bytes).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        upload.close().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(())
    }

    async fn blob(&self, key: &BlobKey) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(id) = self.blob_id(key).await? else { return Ok(None) };
        let mut download = self.images.open_download_stream(id).await.map_err(unavailable)?;
        let mut bytes = Vec::new();
        download.read_to_end(&mut bytes).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Some(bytes))
    }

    async fn delete_blob(&self, key: &BlobKey) -> Result<(), StoreError> {
        if let Some(id) = self.blob_id(key).await? {
            self.images.delete(id).await.map_err(unavailable)?;
        }
        Ok(())
    }
}

impl UserStore for MongoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        match self.users.insert_one(encode(user, user.id.to_string())?).await {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict("user name".to_owned())),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.users.find_one(doc! { "_id": id.to_string() }).await.map_err(unavailable)?.map(decode).transpose()
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.users.find_one(doc! { "username": username }).await.map_err(unavailable)?.map(decode).transpose()
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let documents: Vec<Document> = self
            .users
            .find(doc! {})
            .sort(doc! { "username": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        documents.into_iter().map(decode).collect()
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let replaced =
            self.users.replace_one(doc! { "_id": user.id.to_string() }, encode(user, user.id.to_string())?).await;
        match replaced {
            Ok(outcome) => Ok(outcome.matched_count == 1),
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict("user name".to_owned())),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn change_user(
        &self,
        id: UserId,
        change: &UserChange,
        tokens_valid_after: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError> {
        let corrupt = |error: bson::ser::Error| StoreError::Corrupt(error.to_string());
        let mut set = match change {
            UserChange::Password(hash) => doc! { "password_hash": hash },
            UserChange::Disabled(disabled) => doc! { "disabled": disabled },
            UserChange::Role(role) => doc! { "role": bson::to_bson(role).map_err(corrupt)? },
            UserChange::Preferences(preferences) => {
                doc! { "preferences": bson::to_bson(preferences).map_err(corrupt)? }
            }
        };
        if let Some(after) = tokens_valid_after {
            set.insert("tokens_valid_after", bson::to_bson(&after).map_err(corrupt)?);
        }
        let options = mongodb::options::FindOneAndUpdateOptions::builder()
            .return_document(mongodb::options::ReturnDocument::After)
            .build();
        self.users
            .find_one_and_update(doc! { "_id": id.to_string() }, doc! { "$set": set })
            .with_options(options)
            .await
            .map_err(unavailable)?
            .map(decode)
            .transpose()
    }
}

impl SessionStore for MongoStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let mut document = encode(session, session.family_id.to_string())?;
        document.insert("used_token_hashes", Vec::<String>::new());
        self.sessions.insert_one(document).await.map_err(unavailable)?;
        Ok(())
    }

    async fn rotate_session(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        if let Some(document) =
            self.sessions.find_one(doc! { "current_token_hash": presented_hash }).await.map_err(unavailable)?
        {
            let family_id = document.get_str("_id").unwrap_or_default().to_owned();
            let session: Session = decode(document)?;
            if session.revoked || session.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            // Compare-and-set on the current token: of two concurrent refreshes, one wins.
            let updated = self
                .sessions
                .update_one(
                    doc! { "_id": &family_id, "current_token_hash": presented_hash, "revoked": false },
                    doc! {
                        "$set": { "current_token_hash": next_hash, "last_used_at": now.to_rfc3339() },
                        "$push": { "used_token_hashes": presented_hash },
                    },
                )
                .await
                .map_err(unavailable)?;
            if updated.modified_count == 1 {
                return Ok(Rotation::Rotated(Session {
                    current_token_hash: next_hash.to_owned(),
                    last_used_at: Some(now),
                    ..session
                }));
            }
        }
        let reused = self
            .sessions
            .find_one_and_update(doc! { "used_token_hashes": presented_hash }, doc! { "$set": { "revoked": true } })
            .await
            .map_err(unavailable)?;
        Ok(if reused.is_some() { Rotation::ReuseDetected } else { Rotation::Invalid })
    }

    async fn user_sessions(&self, user_id: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let found: Vec<Document> = self
            .sessions
            .find(doc! { "user_id": user_id.to_string(), "revoked": false })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let mut live: Vec<Session> = found.into_iter().map(decode).collect::<Result<_, _>>()?;
        live.retain(|session| !session.revoked && session.expires_at > now);
        live.sort_by_key(|session| std::cmp::Reverse(session.last_used_at.unwrap_or(session.created_at)));
        Ok(live)
    }

    async fn revoke_user_session(&self, user_id: UserId, family_id: Uuid) -> Result<bool, StoreError> {
        let updated = self
            .sessions
            .update_one(
                doc! { "_id": family_id.to_string(), "user_id": user_id.to_string(), "revoked": false },
                doc! { "$set": { "revoked": true } },
            )
            .await
            .map_err(unavailable)?;
        Ok(updated.modified_count == 1)
    }

    async fn revoke_session(&self, family_id: Uuid) -> Result<(), StoreError> {
        self.sessions
            .update_one(doc! { "_id": family_id.to_string() }, doc! { "$set": { "revoked": true } })
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke_user_sessions(&self, user_id: UserId) -> Result<u64, StoreError> {
        let updated = self
            .sessions
            .update_many(
                doc! { "user_id": user_id.to_string(), "revoked": false },
                doc! { "$set": { "revoked": true } },
            )
            .await
            .map_err(unavailable)?;
        Ok(updated.modified_count)
    }
}

impl ApiKeyStore for MongoStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        match self.api_keys.insert_one(encode(key, key.id.to_string())?).await {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict("api key".to_owned())),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.api_keys
            .find_one(doc! { "key_hash": key_hash, "revoked": false })
            .await
            .map_err(unavailable)?
            .map(decode)
            .transpose()
    }

    async fn api_keys(&self, owner: UserId) -> Result<Vec<ApiKey>, StoreError> {
        let documents: Vec<Document> = self
            .api_keys
            .find(doc! { "owner_id": owner.to_string() })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let mut keys: Vec<ApiKey> = documents.into_iter().map(decode).collect::<Result<_, _>>()?;
        keys.sort_by_key(|key| std::cmp::Reverse(key.created_at));
        Ok(keys)
    }

    async fn revoke_api_key(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        let updated = self
            .api_keys
            .update_one(
                doc! { "_id": id.to_string(), "owner_id": owner.to_string(), "revoked": false },
                doc! { "$set": { "revoked": true } },
            )
            .await
            .map_err(unavailable)?;
        Ok(updated.matched_count == 1)
    }
}

impl super::RevocationStore for MongoStore {
    async fn save_revocation(&self, revocation: &super::Revocation) -> Result<(), StoreError> {
        self.revocations
            .update_one(
                doc! { "_id": &revocation.key },
                doc! { "$max": { "value": revocation.value, "until_ms": revocation.until.timestamp_millis() } },
            )
            .upsert(true)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn live_revocations(&self, now: DateTime<Utc>) -> Result<Vec<super::Revocation>, StoreError> {
        let now = now.timestamp_millis();
        self.revocations.delete_many(doc! { "until_ms": { "$lte": now } }).await.map_err(unavailable)?;
        let found: Vec<Document> =
            self.revocations.find(doc! {}).await.map_err(unavailable)?.try_collect().await.map_err(unavailable)?;
        Ok(found
            .iter()
            .filter_map(|document| {
                Some(super::Revocation {
                    key: document.get_str("_id").ok()?.to_owned(),
                    value: document.get_i64("value").ok()?,
                    until: DateTime::from_timestamp_millis(document.get_i64("until_ms").ok()?)?,
                })
            })
            .collect())
    }
}

fn delivery_document(delivery: &finagent_core::webhook::WebhookDelivery) -> Result<Document, StoreError> {
    let mut document = encode(delivery, delivery.id.to_string())?;
    document.insert("next_attempt_ms", delivery.next_attempt_at.timestamp_millis());
    document.insert("created_ms", delivery.created_at.timestamp_millis());
    Ok(document)
}

fn delivery_of(mut document: Document) -> Result<finagent_core::webhook::WebhookDelivery, StoreError> {
    document.remove("next_attempt_ms");
    document.remove("created_ms");
    decode(document)
}

impl super::MerchantMemoryStore for MongoStore {
    async fn remember_merchant(
        &self,
        owner: UserId,
        keys: &[String],
        merchant: &finagent_core::receipt::RememberedMerchant,
    ) -> Result<(), StoreError> {
        let document = serde_json::to_string(merchant).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        let now = Utc::now().timestamp_micros();
        for key in keys {
            self.merchant_memory
                .update_one(
                    doc! { "_id": format!("{owner}:{key}") },
                    doc! { "$set": { "owner_id": owner.to_string(), "updated_us": now, "document": &document } },
                )
                .upsert(true)
                .await
                .map_err(unavailable)?;
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
            .map_err(unavailable)?;
        found
            .and_then(|document| document.get_str("document").ok().map(str::to_owned))
            .map(|text| serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(error.to_string())))
            .transpose()
    }
}

impl super::InviteStore for MongoStore {
    async fn create_invite(&self, invite: &finagent_core::account::Invite) -> Result<(), StoreError> {
        let mut document = encode(invite, invite.id.to_string())?;
        document.insert("created_ms", invite.created_at.timestamp_millis());
        document.insert("expires_ms", invite.expires_at.timestamp_millis());
        match self.invites.insert_one(document).await {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict("invite".into())),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn invites(&self, now: DateTime<Utc>) -> Result<Vec<finagent_core::account::Invite>, StoreError> {
        let found: Vec<Document> = self
            .invites
            .find(doc! { "expires_ms": { "$gt": now.timestamp_millis() } })
            .sort(doc! { "created_ms": -1, "_id": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        found.into_iter().map(decode).collect()
    }

    async fn delete_invite(&self, id: Uuid) -> Result<bool, StoreError> {
        let deleted = self.invites.delete_one(doc! { "_id": id.to_string() }).await.map_err(unavailable)?;
        Ok(deleted.deleted_count == 1)
    }

    async fn take_invite(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<finagent_core::account::Invite>, StoreError> {
        let taken = self
            .invites
            .find_one_and_delete(doc! { "code_hash": code_hash, "expires_ms": { "$gt": now.timestamp_millis() } })
            .await
            .map_err(unavailable)?;
        taken.map(decode).transpose()
    }
}

impl super::WebhookStore for MongoStore {
    async fn create_webhook(&self, webhook: &finagent_core::webhook::Webhook) -> Result<(), StoreError> {
        self.webhooks.insert_one(encode(webhook, webhook.id.to_string())?).await.map_err(unavailable)?;
        Ok(())
    }

    async fn webhooks(&self, owner: UserId) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        let found: Vec<Document> = self
            .webhooks
            .find(doc! { "owner_id": owner.to_string() })
            .sort(doc! { "created_at": 1, "_id": 1 })
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        found.into_iter().map(decode).collect()
    }

    async fn delete_webhook(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        let deleted = self
            .webhooks
            .delete_one(doc! { "_id": id.to_string(), "owner_id": owner.to_string() })
            .await
            .map_err(unavailable)?;
        Ok(deleted.deleted_count == 1)
    }

    async fn replace_webhook(
        &self,
        webhook: &finagent_core::webhook::Webhook,
        expected_secret: &str,
    ) -> Result<bool, StoreError> {
        let filter =
            doc! { "_id": webhook.id.to_string(), "owner_id": webhook.owner_id.to_string(), "secret": expected_secret };
        let replaced =
            self.webhooks.replace_one(filter, encode(webhook, webhook.id.to_string())?).await.map_err(unavailable)?;
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
        let found: Vec<Document> = self
            .webhooks
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        found.into_iter().map(decode).collect()
    }

    async fn save_delivery(&self, delivery: &finagent_core::webhook::WebhookDelivery) -> Result<(), StoreError> {
        self.webhook_deliveries
            .replace_one(doc! { "_id": delivery.id.to_string() }, delivery_document(delivery)?)
            .upsert(true)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn deliveries(
        &self,
        owner: UserId,
        webhook: Uuid,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        let found: Vec<Document> = self
            .webhook_deliveries
            .find(doc! { "webhook_id": webhook.to_string(), "owner_id": owner.to_string() })
            .sort(doc! { "created_ms": -1, "_id": -1 })
            .limit(i64::from(limit))
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        found.into_iter().map(delivery_of).collect()
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
                .map_err(unavailable)?;
            let Some(taken) = taken else { break };
            claimed.push(delivery_of(taken)?);
        }
        Ok(claimed)
    }
}
