//! MongoDB storage: receipt documents in `receipts`, images in the GridFS bucket `images`.
//!
//! Receipts are stored as their JSON model with `_id` set to the receipt id. Indexes, created at
//! connect time (creating an existing index is a no-op): `(owner_id, created_at)` for listing,
//! `(owner_id, image_sha256)` for de-duplicating uploads, and `status` for operations.

mod accounts;
mod memory;
mod receipts;
mod schema;
mod usage;
mod webhooks;

use futures::TryStreamExt;
use mongodb::bson::{self, Document, doc};
use mongodb::gridfs::GridFsBucket;
use mongodb::options::{GridFsBucketOptions, IndexOptions};
use mongodb::{Collection, Database, IndexModel};

use super::{Source, StoreError};

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

pub(super) fn is_duplicate(error: &mongodb::error::Error) -> bool {
    let text = error.to_string();
    text.contains("E11000") || text.to_lowercase().contains("duplicate")
}

pub(super) fn encode<T: serde::Serialize>(value: &T, id: String) -> Result<Document, StoreError> {
    let mut document = bson::to_document(value).map_err(StoreError::corrupt(std::any::type_name::<T>()))?;
    document.insert("_id", id);
    Ok(document)
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(mut document: Document) -> Result<T, StoreError> {
    document.remove("_id");
    document.remove("used_token_hashes");
    bson::from_document(document).map_err(StoreError::corrupt(std::any::type_name::<T>()))
}

/// Runs a find (or an aggregation) and collects what it returns.
pub(super) async fn documents<T>(
    operation: &'static str,
    cursor: impl IntoFuture<Output = mongodb::error::Result<mongodb::Cursor<T>>>,
) -> Result<Vec<T>, StoreError>
where
    T: serde::de::DeserializeOwned + Send + Sync + Unpin,
{
    cursor.await.map_err(unavailable(operation))?.try_collect().await.map_err(unavailable(operation))
}

/// Runs a find and decodes every document it returns.
pub(super) async fn all<T>(
    operation: &'static str,
    cursor: impl IntoFuture<Output = mongodb::error::Result<mongodb::Cursor<Document>>>,
    decode: impl FnMut(Document) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    documents(operation, cursor).await?.into_iter().map(decode).collect()
}

pub(super) fn unavailable<E: Into<Source>>(operation: &'static str) -> impl FnOnce(E) -> StoreError {
    StoreError::unavailable(operation)
}

impl MongoStore {
    /// Connects to `url`, uses database `database`, and creates the indexes.
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        let client = mongodb::Client::with_uri_str(url).await.map_err(unavailable("connect"))?;
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
            .map_err(unavailable("open"))?;
        let images = database.gridfs_bucket(GridFsBucketOptions::builder().bucket_name("images".to_owned()).build());
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).unique(true).build())
                .build()
        };
        let users = database.collection::<Document>("users");
        users.create_indexes([unique(doc! { "username": 1 }, "username")]).await.map_err(unavailable("open"))?;
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
            .map_err(unavailable("open"))?;
        let api_keys = database.collection::<Document>("api_keys");
        api_keys
            .create_indexes([unique(doc! { "key_hash": 1 }, "key_hash"), index(doc! { "owner_id": 1 }, "owner")])
            .await
            .map_err(unavailable("open"))?;
        let receipt_keys = database.collection::<Document>("receipt_keys");
        receipt_keys.create_indexes([index(doc! { "receipt_id": 1 }, "receipt")]).await.map_err(unavailable("open"))?;
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
            .map_err(unavailable("open"))?;
        store
            .webhooks
            .create_indexes([index(doc! { "owner_id": 1, "created_at": 1 }, "owner")])
            .await
            .map_err(unavailable("open"))?;
        store
            .webhook_deliveries
            .create_indexes([
                index(doc! { "status": 1, "next_attempt_ms": 1 }, "due"),
                index(doc! { "webhook_id": 1, "created_ms": -1 }, "of_webhook"),
            ])
            .await
            .map_err(unavailable("open"))?;
        store.migrate(&database).await?;
        Ok(store)
    }
}
