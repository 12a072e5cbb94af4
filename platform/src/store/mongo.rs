//! MongoDB storage: receipt documents in `receipts`, images in the GridFS bucket `images`.
//!
//! Receipts are stored as their JSON model with `_id` set to the receipt id. Indexes, created at
//! connect time (creating an existing index is a no-op): `(owner_id, created_at)` for listing,
//! `(owner_id, image_sha256)` for de-duplicating uploads, and `status` for operations.

use chrono::DateTime;
use chrono::Utc;
use finagent_core::account::{ApiKey, Rotation, Session, User};
use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};
use futures::{AsyncReadExt, AsyncWriteExt, TryStreamExt};
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::gridfs::GridFsBucket;
use mongodb::options::{GridFsBucketOptions, IndexOptions};
use mongodb::{Collection, Database, IndexModel};
use uuid::Uuid;

use super::{
    ApiKeyStore, BlobStore, Inserted, ReceiptStore, SessionStore, StoreError, UserChange, UserStore, dedup_keys,
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
    Ok(document)
}

fn from_document(mut document: Document) -> Result<Receipt, StoreError> {
    document.remove("_id");
    document.remove("result_writes");
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
        let unique = |keys: Document, name: &str| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).unique(true).build())
                .build()
        };
        let users = database.collection::<Document>("users");
        users
            .create_indexes([unique(doc! { "username": 1 }, "username"), unique(doc! { "email": 1 }, "email")])
            .await
            .map_err(unavailable)?;
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
        Ok(Self { receipts, receipt_keys, images, users, sessions, api_keys })
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

    async fn insert_receipt_once(&self, receipt: &Receipt) -> Result<Inserted, StoreError> {
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
        self.insert_receipt(receipt).await?;
        Ok(Inserted::New)
    }

    async fn unfinished_receipts(&self) -> Result<Vec<Receipt>, StoreError> {
        self.find_receipts(doc! { "status": { "$in": ["queued", "processing"] } }, doc! { "created_at": 1, "_id": 1 })
            .await
    }

    async fn receipts(&self, owner: UserId) -> Result<Vec<Receipt>, StoreError> {
        self.find_receipts(doc! { "owner_id": owner.to_string() }, doc! { "created_at": -1, "_id": -1 }).await
    }

    async fn delete_receipt(&self, owner: UserId, id: ReceiptId) -> Result<Option<Receipt>, StoreError> {
        let found = self
            .receipts
            .find_one_and_delete(doc! { "_id": id.to_string(), "owner_id": owner.to_string() })
            .await
            .map_err(unavailable)?;
        if found.is_some() {
            self.receipt_keys.delete_many(doc! { "receipt_id": id.to_string() }).await.map_err(unavailable)?;
        }
        found.map(from_document).transpose()
    }

    async fn save_corrections(
        &self,
        owner: UserId,
        id: ReceiptId,
        corrected: &ReceiptResult,
    ) -> Result<bool, StoreError> {
        let corrected = bson::to_bson(corrected).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let updated = self
            .receipts
            .update_one(
                doc! { "_id": id.to_string(), "owner_id": owner.to_string() },
                doc! { "$set": { "corrected": corrected, "updated_at": Utc::now().to_rfc3339() } },
            )
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
        let result = bson::to_bson(result).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.receipts
            .update_one(
                doc! { "_id": id.to_string(), "status": { "$in": ["queued", "processing", "done"] } },
                doc! {
                    "$set": { "status": "done", "result": result, "failure": Bson::Null, "updated_at": Utc::now().to_rfc3339() },
                    // Counts overwrites by redelivered jobs, for operations; the result itself stays single.
                    "$inc": { "result_writes": 1 },
                },
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

impl UserStore for MongoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        match self.users.insert_one(encode(user, user.id.to_string())?).await {
            Ok(_) => Ok(()),
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict("user name or email".to_owned())),
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
            Err(error) if is_duplicate(&error) => Err(StoreError::Conflict("user name or email".to_owned())),
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
                    doc! { "$set": { "current_token_hash": next_hash }, "$push": { "used_token_hashes": presented_hash } },
                )
                .await
                .map_err(unavailable)?;
            if updated.modified_count == 1 {
                return Ok(Rotation::Rotated(Session { current_token_hash: next_hash.to_owned(), ..session }));
            }
        }
        let reused = self
            .sessions
            .find_one_and_update(doc! { "used_token_hashes": presented_hash }, doc! { "$set": { "revoked": true } })
            .await
            .map_err(unavailable)?;
        Ok(if reused.is_some() { Rotation::ReuseDetected } else { Rotation::Invalid })
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
