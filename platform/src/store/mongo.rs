//! MongoDB storage: receipt documents in `receipts`, images in the GridFS bucket `images`.
//!
//! Receipts are stored as their JSON model with `_id` set to the receipt id. Indexes, created at
//! connect time (creating an existing index is a no-op): `(owner_id, created_at)` for listing,
//! `(owner_id, image_sha256)` for de-duplicating uploads, and `status` for operations.

use chrono::Utc;
use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};
use futures::{AsyncReadExt, AsyncWriteExt, TryStreamExt};
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::gridfs::GridFsBucket;
use mongodb::options::{GridFsBucketOptions, IndexOptions};
use mongodb::{Collection, Database, IndexModel};

use super::{BlobStore, ReceiptStore, StoreError};

/// Receipts and images on MongoDB.
#[derive(Clone, Debug)]
pub struct MongoStore {
    receipts: Collection<Document>,
    images: GridFsBucket,
}

fn unavailable(error: mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn to_document(receipt: &Receipt) -> Result<Document, StoreError> {
    let mut document = bson::to_document(receipt).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    document.insert("_id", receipt.id.to_string());
    Ok(document)
}

fn from_document(mut document: Document) -> Result<Receipt, StoreError> {
    document.remove("_id");
    bson::from_document(document).map_err(|e| StoreError::Corrupt(e.to_string()))
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
            ])
            .await
            .map_err(unavailable)?;
        let images = database.gridfs_bucket(GridFsBucketOptions::builder().bucket_name("images".to_owned()).build());
        Ok(Self { receipts, images })
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
        match self.receipts.insert_one(to_document(receipt)?).await {
            Ok(_) => Ok(()),
            Err(error)
                if error.to_string().contains("E11000") || error.to_string().to_lowercase().contains("duplicate") =>
            {
                Err(StoreError::Conflict(format!("receipt {}", receipt.id)))
            }
            Err(error) => Err(unavailable(error)),
        }
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
        let result = bson::to_bson(result).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.receipts
            .update_one(
                doc! { "_id": id.to_string(), "status": { "$in": ["queued", "processing", "done"] } },
                doc! { "$set": { "status": "done", "result": result, "failure": Bson::Null, "updated_at": Utc::now().to_rfc3339() } },
            )
            .await
            .map_err(unavailable)?;
        Ok(())
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
