//! Storage of receipts and their images.
//!
//! [`ReceiptStore`] keeps receipt documents and moves them through `queued → processing → done |
//! failed`; [`BlobStore`] keeps the original images. [`mongo::MongoStore`] implements both on
//! MongoDB (documents in `receipts`, images in GridFS), with its indexes created idempotently at
//! start. Writing a result is keyed by the receipt id, so a redelivered job overwrites its own
//! result and never duplicates it.

pub mod mongo;

use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the operation.
    #[error("failed to reach the store: {0}")]
    Unavailable(String),
    /// Something with the same identity already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A stored document could not be read back.
    #[error("failed to decode a stored document: {0}")]
    Corrupt(String),
}

/// Receipt documents.
pub trait ReceiptStore: Send + Sync {
    /// Stores a new receipt; a second receipt with the same id is a conflict.
    fn insert_receipt(&self, receipt: &Receipt) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A receipt by id, only if `owner` owns it (or any owner when `None`, for services).
    fn receipt(
        &self,
        id: ReceiptId,
        owner: Option<UserId>,
    ) -> impl Future<Output = Result<Option<Receipt>, StoreError>> + Send;

    /// Moves a receipt to `next` when its current status allows it; returns whether it moved.
    fn set_status(
        &self,
        id: ReceiptId,
        next: ReceiptStatus,
        failure: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stores the result and marks the receipt done (idempotent: overwrites, never duplicates).
    fn store_result(
        &self,
        id: ReceiptId,
        result: &ReceiptResult,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Image blobs.
pub trait BlobStore: Send + Sync {
    /// Stores bytes under a key, replacing what was there.
    fn put_blob(&self, key: &BlobKey, bytes: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The bytes under a key, if any.
    fn blob(&self, key: &BlobKey) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Removes a blob; removing a missing blob is not an error.
    fn delete_blob(&self, key: &BlobKey) -> impl Future<Output = Result<(), StoreError>> + Send;
}
