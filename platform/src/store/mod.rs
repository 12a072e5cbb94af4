//! Storage of receipts, their images and accounts (users, refresh-token sessions, API keys).
//!
//! [`ReceiptStore`] keeps receipt documents and moves them through `queued → processing → done |
//! failed`; [`BlobStore`] keeps the original images. [`mongo::MongoStore`] implements both on
//! MongoDB (documents in `receipts`, images in GridFS), with its indexes created idempotently at
//! start; [`sqlite::SqliteStore`] implements every trait on one SQLite file plus a blob folder, for
//! the single-machine mode. One contract suite (`tests/store_contract.rs`) runs against both. Writing a result is keyed by the receipt id, so a redelivered job overwrites its own
//! result and never duplicates it.

pub mod any;
pub mod mongo;
pub mod mongo_user;
pub mod query;
pub mod sqlite;

use chrono::{DateTime, NaiveDate, Utc};
use finagent_core::account::{ApiKey, Rotation, Session, User};
use finagent_core::insights::SpendAggregates;
use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};
use uuid::Uuid;

pub use any::AnyStore;
pub use query::{Position, ReceiptFilter, ReceiptQuery, SortOrder, Usage};

/// The error a store operation carries from its driver (SQLite, the MongoDB driver, the file
/// system) or, for a document that cannot be read back, from the decoder.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

/// Why a storage operation failed: which operation, and the underlying error as its source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the operation.
    #[error("the store failed to {operation}: {source}")]
    Unavailable {
        /// The store operation (a trait method's name, such as `insert_receipt_once`).
        operation: &'static str,
        source: Source,
    },
    /// Something with the same identity already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A stored document could not be written or read back.
    #[error("failed to encode or decode a stored {what}: {source}")]
    Corrupt {
        /// What was being encoded or decoded (a type's name, or a field).
        what: &'static str,
        source: Source,
    },
}

impl StoreError {
    /// `map_err` for a driver error in `operation`.
    pub fn unavailable<E: Into<Source>>(operation: &'static str) -> impl FnOnce(E) -> Self {
        move |error| Self::Unavailable { operation, source: error.into() }
    }

    /// `map_err` for a document of `what` that cannot be encoded or decoded.
    pub fn corrupt<E: Into<Source>>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |error| Self::Corrupt { what, source: error.into() }
    }
}

/// What [`ReceiptStore::insert_receipt_once`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Inserted {
    /// The receipt is new and stored.
    New,
    /// The owner already has a receipt with one of the keys: here it is; nothing was stored.
    Existing(Box<Receipt>),
    /// Storing it would pass a limit; nothing was stored.
    OverLimit(Exceeded),
}

/// The most an owner, and the whole instance, may store. Checked and counted in one step with the
/// insert, so concurrent uploads (on any number of replicas) cannot overshoot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StorageLimits {
    /// Receipts per owner.
    pub owner_receipts: u64,
    /// Image bytes per owner.
    pub owner_image_bytes: u64,
    /// Image bytes of every owner together.
    pub instance_image_bytes: u64,
}

impl StorageLimits {
    /// No limit at all.
    pub const NONE: Self =
        Self { owner_receipts: u64::MAX, owner_image_bytes: u64::MAX, instance_image_bytes: u64::MAX };

    /// Whether one more receipt of `bytes` fits in an owner's `usage`.
    pub fn owner_admits(&self, usage: Usage, bytes: u64) -> bool {
        usage.receipts < self.owner_receipts && usage.image_bytes.saturating_add(bytes) <= self.owner_image_bytes
    }

    /// Whether one more receipt of `bytes` fits in the instance's `usage`.
    pub fn instance_admits(&self, usage: Usage, bytes: u64) -> bool {
        usage.image_bytes.saturating_add(bytes) <= self.instance_image_bytes
    }
}

/// Which limit an insert would have passed, with the use at the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    /// The owner's receipts or image bytes.
    Owner(Usage),
    /// The instance's image bytes.
    Instance(Usage),
}

/// The usage row that counts every owner's receipts together.
pub const INSTANCE_USAGE_KEY: &str = "*";

/// The de-duplication keys of an upload: the owner's image digest, and their idempotency key.
pub fn dedup_keys(receipt: &Receipt) -> Vec<String> {
    let mut keys = vec![format!("image:{}:{}", receipt.owner_id, receipt.image_sha256)];
    if let Some(key) = &receipt.idempotency_key {
        keys.push(format!("idempotency:{}:{key}", receipt.owner_id));
    }
    keys
}

/// Receipt documents.
pub trait ReceiptStore: Send + Sync {
    /// Stores a new receipt; a second receipt with the same id is a conflict.
    fn insert_receipt(&self, receipt: &Receipt) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a new receipt unless its owner already has one with the same image or idempotency
    /// key ([`dedup_keys`]), atomically: of two concurrent identical uploads, one is stored and the
    /// other gets it back.
    /// It is stored only within `limits`, checked and counted atomically with the insert.
    fn insert_receipt_once(
        &self,
        receipt: &Receipt,
        limits: StorageLimits,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send;

    /// Every receipt still `queued` or `processing`, oldest first, whoever owns it: what an
    /// in-process queue lost when its process stopped.
    fn unfinished_receipts(&self) -> impl Future<Output = Result<Vec<Receipt>, StoreError>> + Send;

    /// One page of an owner's receipts: those the query's filter selects, in its order, after its
    /// position, at most its limit; read through an index that starts with the owner, so a page
    /// costs the same however many receipts the owner has.
    fn receipt_page(
        &self,
        owner: UserId,
        query: &ReceiptQuery,
    ) -> impl Future<Output = Result<Vec<Receipt>, StoreError>> + Send;

    /// How many of an owner's receipts the filter selects.
    fn count_receipts(
        &self,
        owner: UserId,
        filter: &ReceiptFilter,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// What an owner has stored, kept as running counts by every insert and delete.
    fn usage(&self, owner: UserId) -> impl Future<Output = Result<Usage, StoreError>> + Send;

    /// What every owner has stored together, kept likewise.
    fn instance_usage(&self) -> impl Future<Output = Result<Usage, StoreError>> + Send;

    /// The spend aggregates of an owner's insights over `from..=to`, computed by the store
    /// ([`finagent_core::insights::aggregate`] is the reference).
    fn spend_aggregates(
        &self,
        owner: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<SpendAggregates, StoreError>> + Send;

    /// Deletes an owner's receipt and its de-duplication keys; returns it (its blob is the
    /// caller's to delete), or `None` when the owner has no such receipt.
    fn delete_receipt(
        &self,
        owner: UserId,
        id: ReceiptId,
    ) -> impl Future<Output = Result<Option<Receipt>, StoreError>> + Send;

    /// Stores the owner's corrected result next to the original one; false when the owner has no
    /// such receipt.
    fn save_corrections(
        &self,
        owner: UserId,
        id: ReceiptId,
        corrected: &ReceiptResult,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

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

/// One change to a user, applied by the store to that field alone, so that two changes made at
/// the same time (a password change and an administrator disabling the account) both hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserChange {
    /// A new password hash.
    Password(String),
    /// Disabled or enabled.
    Disabled(bool),
    /// A new role.
    Role(finagent_core::account::Role),
    /// New reading preferences.
    Preferences(finagent_core::account::Preferences),
}

impl UserChange {
    /// Applies the change to a user in memory.
    pub fn apply(&self, user: &mut User) {
        match self {
            Self::Password(hash) => user.password_hash = hash.clone(),
            Self::Disabled(disabled) => user.disabled = *disabled,
            Self::Role(role) => user.role = *role,
            Self::Preferences(preferences) => user.preferences = preferences.clone(),
        }
    }
}

/// User accounts.
pub trait UserStore: Send + Sync {
    /// Creates a user; a taken user name is a conflict. Emails may be shared: nobody verified them.
    fn create_user(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A user by id.
    fn user(&self, id: UserId) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    /// A user by normalised user name.
    fn user_by_name(&self, username: &str) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
    /// Every user, ordered by user name.
    fn users(&self) -> impl Future<Output = Result<Vec<User>, StoreError>> + Send;
    /// Replaces a user's mutable fields (role, disabled, password hash, token validity).
    fn update_user(&self, user: &User) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Changes one field of a user atomically, and moves its token cut-off when `tokens_valid_after`
    /// is given; returns the user after the change, or `None` when there is no such user.
    fn change_user(
        &self,
        id: UserId,
        change: &UserChange,
        tokens_valid_after: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;
}

/// Refresh-token families.
pub trait SessionStore: Send + Sync {
    /// Starts a family.
    fn create_session(&self, session: &Session) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Presents a refresh token: rotates it, detects reuse (revoking the family), or rejects it.
    fn rotate_session(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Rotation, StoreError>> + Send;
    /// Revokes one family (logout).
    fn revoke_session(&self, family_id: Uuid) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Revokes every family of a user (disable, password change).
    fn revoke_user_sessions(&self, user_id: UserId) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// A user's live (not revoked, not expired at `now`) families, most recently used first.
    fn user_sessions(
        &self,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;
    /// Revokes one family of a user; false when the user has no such live family.
    fn revoke_user_session(
        &self,
        user_id: UserId,
        family_id: Uuid,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// API keys.
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key.
    fn create_api_key(&self, key: &ApiKey) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A live (not revoked) key by the hash of its value.
    fn api_key_by_hash(&self, key_hash: &str) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;
    /// An owner's keys, newest first.
    fn api_keys(&self, owner: UserId) -> impl Future<Output = Result<Vec<ApiKey>, StoreError>> + Send;
    /// Revokes an owner's live key; false when the owner has no such key or it is already revoked.
    fn revoke_api_key(&self, owner: UserId, id: Uuid) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Invitations to register.
pub trait InviteStore: Send + Sync {
    /// Stores an invite.
    fn create_invite(
        &self,
        invite: &finagent_core::account::Invite,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The invites not yet used or expired at `now`, newest first.
    fn invites(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<finagent_core::account::Invite>, StoreError>> + Send;
    /// Withdraws an invite; false when there is no such invite.
    fn delete_invite(&self, id: Uuid) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Uses the invite with this code digest, if it has not expired at `now`: it is removed and
    /// returned, atomically, so two registrations cannot both use it.
    fn take_invite(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<finagent_core::account::Invite>, StoreError>> + Send;
}

/// A revocation of the in-process guard, kept in the store so that it outlives a restart: a
/// token (`token:<jti>`), a session (`session:<family>`) or a user's cut-off (`user:<id>`, with
/// the cut-off in Unix milliseconds as `value`), until `until`, when it no longer matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// What is revoked.
    pub key: String,
    /// The user cut-off, or 0.
    pub value: i64,
    /// When it can be forgotten (the revoked tokens have expired by then).
    pub until: DateTime<Utc>,
}

/// Revocations of the single-machine mode, which has no Redis to keep them.
pub trait RevocationStore: Send + Sync {
    /// Stores a revocation; for a key already stored, the larger value and the later end win.
    fn save_revocation(&self, revocation: &Revocation) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The revocations still in force at `now` (forgetting the others).
    fn live_revocations(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<Revocation>, StoreError>> + Send;
}

/// Per-user merchant memory: what corrections taught, under the receipt's fingerprints (see
/// `finagent_extract::memory`). Both operations are keyed lookups on (owner, fingerprint), so
/// they cost the same however much a user has taught.
pub trait MerchantMemoryStore: Send + Sync {
    /// Remembers `merchant` under each of `keys` for `owner` (replacing what they held).
    fn remember_merchant(
        &self,
        owner: UserId,
        keys: &[String],
        merchant: &finagent_core::receipt::RememberedMerchant,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The most recently remembered merchant under any of `keys`, if any.
    fn recall_merchant(
        &self,
        owner: UserId,
        keys: &[String],
    ) -> impl Future<Output = Result<Option<finagent_core::receipt::RememberedMerchant>, StoreError>> + Send;
}

/// Webhooks and their deliveries.
pub trait WebhookStore: Send + Sync {
    /// Registers a webhook.
    fn create_webhook(
        &self,
        webhook: &finagent_core::webhook::Webhook,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// An owner's webhooks, oldest first.
    fn webhooks(
        &self,
        owner: UserId,
    ) -> impl Future<Output = Result<Vec<finagent_core::webhook::Webhook>, StoreError>> + Send;
    /// Removes an owner's webhook; false when they have no such webhook.
    fn delete_webhook(&self, owner: UserId, id: Uuid) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Replaces a webhook (its owner's, by id) if its stored `secret` is still `expected_secret`:
    /// a rotation and a re-seal racing each other cannot undo one another. False when it is gone
    /// or its secret changed meanwhile.
    fn replace_webhook(
        &self,
        webhook: &finagent_core::webhook::Webhook,
        expected_secret: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Every owner's webhooks by id, `limit` at a time after `after` (for re-sealing secrets after
    /// a key rotation).
    fn webhooks_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<finagent_core::webhook::Webhook>, StoreError>> + Send;
    /// Stores a delivery, replacing the one with its id.
    fn save_delivery(
        &self,
        delivery: &finagent_core::webhook::WebhookDelivery,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A webhook's latest deliveries, newest first.
    fn deliveries(
        &self,
        owner: UserId,
        webhook: Uuid,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError>> + Send;
    /// Takes up to `limit` pending deliveries due at `now`, whoever owns them, moving their next
    /// attempt to `now + lease` atomically, so that two senders never take the same one.
    fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError>> + Send;
}

/// Queues the event of a finished receipt for every webhook of its owner that wants it (at least
/// once: a job processed twice queues it twice, each with its own event id); returns how many.
pub async fn queue_receipt_event<S: ReceiptStore + WebhookStore>(
    store: &S,
    id: ReceiptId,
) -> Result<usize, StoreError> {
    let Some(receipt) = store.receipt(id, None).await? else { return Ok(0) };
    let webhooks = store.webhooks(receipt.owner_id).await?;
    if webhooks.is_empty() {
        return Ok(0);
    }
    let deliveries = finagent_core::webhook::deliveries_for(&webhooks, &receipt, Utc::now());
    for delivery in &deliveries {
        store.save_delivery(delivery).await?;
    }
    Ok(deliveries.len())
}
