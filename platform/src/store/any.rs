//! [`AnyStore`]: the store a process chose at start, MongoDB or the embedded SQLite file.
//!
//! The store traits use `async fn`, so they are not object-safe; this enum dispatches to the one
//! backend a process runs on, which keeps handlers free of type parameters.

use chrono::{DateTime, NaiveDate, Utc};
use finagent_core::account::{ApiKey, Rotation, Session, User};
use finagent_core::insights::SpendAggregates;
use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};
use uuid::Uuid;

use super::mongo::MongoStore;
use super::query::{ReceiptFilter, ReceiptQuery, Usage};
use super::sqlite::SqliteStore;
use super::{
    ApiKeyStore, BlobStore, Inserted, ReceiptStore, SessionStore, StorageLimits, StoreError, UserChange, UserStore,
};

/// One of the store backends.
#[derive(Clone, Debug)]
pub enum AnyStore {
    /// MongoDB with GridFS, for the platform.
    Mongo(MongoStore),
    /// One SQLite file and a blob folder, for a single machine.
    Sqlite(SqliteStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Mongo($store) => $call.await,
            AnyStore::Sqlite($store) => $call.await,
        }
    };
}

impl AnyStore {
    /// Which backend this is, for logs and `/readyz`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mongo(_) => "mongodb",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// The version of `owner`'s receipts, when this backend keeps one: every committed write to
    /// one of their receipts moves it on, so a response made from them at one version is exact
    /// while it stays. The embedded store keeps it (it has one writing process); MongoDB, shared by
    /// the API replicas and the workers, does not.
    pub fn receipts_version(&self, owner: UserId) -> Option<u64> {
        match self {
            Self::Mongo(_) => None,
            Self::Sqlite(store) => store.receipts_version(owner),
        }
    }

    /// Checks that the backend answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Mongo(store) => store.ping().await,
            Self::Sqlite(store) => store.ping().await,
        }
    }
}

impl ReceiptStore for AnyStore {
    async fn insert_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        dispatch!(self, store => store.insert_receipt(receipt))
    }
    async fn insert_receipt_once(&self, receipt: &Receipt, limits: StorageLimits) -> Result<Inserted, StoreError> {
        dispatch!(self, store => store.insert_receipt_once(receipt, limits))
    }
    async fn unfinished_receipts(&self) -> Result<Vec<Receipt>, StoreError> {
        dispatch!(self, store => store.unfinished_receipts())
    }
    async fn receipt_page(&self, owner: UserId, query: &ReceiptQuery) -> Result<Vec<Receipt>, StoreError> {
        dispatch!(self, store => store.receipt_page(owner, query))
    }
    async fn count_receipts(&self, owner: UserId, filter: &ReceiptFilter) -> Result<u64, StoreError> {
        dispatch!(self, store => store.count_receipts(owner, filter))
    }
    async fn usage(&self, owner: UserId) -> Result<Usage, StoreError> {
        dispatch!(self, store => store.usage(owner))
    }
    async fn instance_usage(&self) -> Result<Usage, StoreError> {
        dispatch!(self, store => store.instance_usage())
    }
    async fn spend_aggregates(
        &self,
        owner: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SpendAggregates, StoreError> {
        dispatch!(self, store => store.spend_aggregates(owner, from, to))
    }
    async fn delete_receipt(&self, owner: UserId, id: ReceiptId) -> Result<Option<Receipt>, StoreError> {
        dispatch!(self, store => store.delete_receipt(owner, id))
    }
    async fn save_corrections(
        &self,
        owner: UserId,
        id: ReceiptId,
        corrected: &ReceiptResult,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.save_corrections(owner, id, corrected))
    }
    async fn receipt(&self, id: ReceiptId, owner: Option<UserId>) -> Result<Option<Receipt>, StoreError> {
        dispatch!(self, store => store.receipt(id, owner))
    }
    async fn set_status(&self, id: ReceiptId, next: ReceiptStatus, failure: Option<&str>) -> Result<bool, StoreError> {
        dispatch!(self, store => store.set_status(id, next, failure))
    }
    async fn store_result(&self, id: ReceiptId, result: &ReceiptResult) -> Result<(), StoreError> {
        dispatch!(self, store => store.store_result(id, result))
    }
}

impl BlobStore for AnyStore {
    async fn put_blob(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), StoreError> {
        dispatch!(self, store => store.put_blob(key, bytes))
    }
    async fn blob(&self, key: &BlobKey) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, store => store.blob(key))
    }
    async fn delete_blob(&self, key: &BlobKey) -> Result<(), StoreError> {
        dispatch!(self, store => store.delete_blob(key))
    }
}

impl UserStore for AnyStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        dispatch!(self, store => store.create_user(user))
    }
    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        dispatch!(self, store => store.user(id))
    }
    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        dispatch!(self, store => store.user_by_name(username))
    }
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        dispatch!(self, store => store.users())
    }
    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        dispatch!(self, store => store.update_user(user))
    }
    async fn change_user(
        &self,
        id: UserId,
        change: &UserChange,
        tokens_valid_after: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError> {
        dispatch!(self, store => store.change_user(id, change, tokens_valid_after))
    }
}

impl SessionStore for AnyStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        dispatch!(self, store => store.create_session(session))
    }
    async fn rotate_session(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        dispatch!(self, store => store.rotate_session(presented_hash, next_hash, now))
    }
    async fn revoke_session(&self, family_id: Uuid) -> Result<(), StoreError> {
        dispatch!(self, store => store.revoke_session(family_id))
    }
    async fn revoke_user_sessions(&self, user_id: UserId) -> Result<u64, StoreError> {
        dispatch!(self, store => store.revoke_user_sessions(user_id))
    }
    async fn user_sessions(&self, user_id: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        dispatch!(self, store => store.user_sessions(user_id, now))
    }
    async fn revoke_user_session(&self, user_id: UserId, family_id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self, store => store.revoke_user_session(user_id, family_id))
    }
}

impl ApiKeyStore for AnyStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        dispatch!(self, store => store.create_api_key(key))
    }
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        dispatch!(self, store => store.api_key_by_hash(key_hash))
    }
    async fn api_keys(&self, owner: UserId) -> Result<Vec<ApiKey>, StoreError> {
        dispatch!(self, store => store.api_keys(owner))
    }
    async fn revoke_api_key(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self, store => store.revoke_api_key(owner, id))
    }
}

impl super::RevocationStore for AnyStore {
    async fn save_revocation(&self, revocation: &super::Revocation) -> Result<(), StoreError> {
        dispatch!(self, store => store.save_revocation(revocation))
    }
    async fn live_revocations(&self, now: DateTime<Utc>) -> Result<Vec<super::Revocation>, StoreError> {
        dispatch!(self, store => store.live_revocations(now))
    }
}

impl super::MerchantMemoryStore for AnyStore {
    async fn remember_merchant(
        &self,
        owner: UserId,
        keys: &[String],
        merchant: &finagent_core::receipt::RememberedMerchant,
    ) -> Result<(), StoreError> {
        dispatch!(self, store => store.remember_merchant(owner, keys, merchant))
    }
    async fn recall_merchant(
        &self,
        owner: UserId,
        keys: &[String],
    ) -> Result<Option<finagent_core::receipt::RememberedMerchant>, StoreError> {
        dispatch!(self, store => store.recall_merchant(owner, keys))
    }
}

impl super::InviteStore for AnyStore {
    async fn create_invite(&self, invite: &finagent_core::account::Invite) -> Result<(), StoreError> {
        dispatch!(self, store => store.create_invite(invite))
    }
    async fn invites(&self, now: DateTime<Utc>) -> Result<Vec<finagent_core::account::Invite>, StoreError> {
        dispatch!(self, store => store.invites(now))
    }
    async fn delete_invite(&self, id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self, store => store.delete_invite(id))
    }
    async fn take_invite(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<finagent_core::account::Invite>, StoreError> {
        dispatch!(self, store => store.take_invite(code_hash, now))
    }
}

impl super::WebhookStore for AnyStore {
    async fn create_webhook(&self, webhook: &finagent_core::webhook::Webhook) -> Result<(), StoreError> {
        dispatch!(self, store => store.create_webhook(webhook))
    }
    async fn webhooks(&self, owner: UserId) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        dispatch!(self, store => store.webhooks(owner))
    }
    async fn delete_webhook(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        dispatch!(self, store => store.delete_webhook(owner, id))
    }
    async fn replace_webhook(
        &self,
        webhook: &finagent_core::webhook::Webhook,
        expected_secret: &str,
    ) -> Result<bool, StoreError> {
        dispatch!(self, store => store.replace_webhook(webhook, expected_secret))
    }
    async fn webhooks_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        dispatch!(self, store => store.webhooks_after(after, limit))
    }
    async fn save_delivery(&self, delivery: &finagent_core::webhook::WebhookDelivery) -> Result<(), StoreError> {
        dispatch!(self, store => store.save_delivery(delivery))
    }
    async fn deliveries(
        &self,
        owner: UserId,
        webhook: Uuid,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        dispatch!(self, store => store.deliveries(owner, webhook, limit))
    }
    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        dispatch!(self, store => store.claim_due_deliveries(now, lease, limit))
    }
}
