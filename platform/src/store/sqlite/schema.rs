//! The schema, created idempotently at open, and the migrations between its versions.

use finagent_core::receipt::Receipt;
use rusqlite::{Connection, OptionalExtension};

use super::usage::write_keys;
use super::{documents, failed};
use crate::store::StoreError;

pub(super) const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS receipt_keys (key TEXT PRIMARY KEY, receipt_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS receipt_keys_receipt ON receipt_keys (receipt_id);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL, document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  family_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, current_token_hash TEXT NOT NULL,
  revoked INTEGER NOT NULL, document TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_current ON sessions (current_token_hash);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS used_refresh_tokens (
  token_hash TEXT PRIMARY KEY, family_id TEXT NOT NULL REFERENCES sessions (family_id));
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, revoked INTEGER NOT NULL,
  created_at TEXT NOT NULL, document TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS api_keys_owner ON api_keys (owner_id, created_at);
CREATE TABLE IF NOT EXISTS usage (
  owner_id TEXT PRIMARY KEY, receipts INTEGER NOT NULL, image_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS invites (
  id TEXT PRIMARY KEY, code_hash TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
  document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, created_ms INTEGER NOT NULL, document TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhooks_owner ON webhooks (owner_id, created_ms);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL, owner_id TEXT NOT NULL, status TEXT NOT NULL,
  next_attempt_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, document TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
CREATE INDEX IF NOT EXISTS webhook_deliveries_of ON webhook_deliveries (webhook_id, created_ms);
CREATE TABLE IF NOT EXISTS revocations (key TEXT PRIMARY KEY, value INTEGER NOT NULL, until_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS merchant_memory (
    owner_id TEXT NOT NULL, key TEXT NOT NULL, updated_us INTEGER NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (owner_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend_months (
  owner_id TEXT NOT NULL, month TEXT NOT NULL, currency TEXT NOT NULL, category TEXT NOT NULL,
  merchant_key TEXT NOT NULL, units INTEGER NOT NULL, receipts INTEGER NOT NULL,
  PRIMARY KEY (owner_id, month, currency, category, merchant_key)) WITHOUT ROWID;
";

/// Receipts: the columns their queries filter, sort and group on ([`IndexKeys`]), then the JSON
/// document last, so that reading a key never walks the document's overflow pages.
pub(super) const RECEIPTS_TABLE: &str = "
CREATE TABLE receipts (
  id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, status TEXT NOT NULL, image_sha256 TEXT NOT NULL,
  created_at TEXT NOT NULL, result_writes INTEGER NOT NULL DEFAULT 0,
  created_us INTEGER NOT NULL DEFAULT 0, recency INTEGER NOT NULL DEFAULT 0, date TEXT, merchant_lower TEXT,
  merchant_key TEXT, category TEXT, total_units INTEGER, currency TEXT,
  sort_purchased INTEGER NOT NULL DEFAULT 0, sort_total INTEGER NOT NULL DEFAULT 0,
  sort_review REAL NOT NULL DEFAULT 0, image_bytes INTEGER NOT NULL DEFAULT 0,
  duplicate INTEGER NOT NULL DEFAULT 0,
  document TEXT NOT NULL);
";

/// One index per order of the list, and for insights: the spend of a date range, totals (for
/// unusual amounts), sales (to find duplicates as they are written) and the duplicates themselves;
/// every one starts with the owner.
pub(super) const KEY_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS receipts_owner_image ON receipts (owner_id, image_sha256);
CREATE INDEX IF NOT EXISTS receipts_status ON receipts (status);
CREATE INDEX IF NOT EXISTS receipts_newest ON receipts (owner_id, recency, id);
CREATE INDEX IF NOT EXISTS receipts_oldest ON receipts (owner_id, created_us, id);
CREATE INDEX IF NOT EXISTS receipts_purchased ON receipts (owner_id, sort_purchased, recency, id, currency, total_units, date);
CREATE INDEX IF NOT EXISTS receipts_total ON receipts (owner_id, sort_total, recency, id);
CREATE INDEX IF NOT EXISTS receipts_review ON receipts (owner_id, sort_review, recency, id);
CREATE INDEX IF NOT EXISTS receipts_spend ON receipts
  (owner_id, date, currency, total_units, category, merchant_key, image_sha256, id);
CREATE INDEX IF NOT EXISTS receipts_totals ON receipts (owner_id, total_units, currency, date, id);
CREATE INDEX IF NOT EXISTS receipts_sale ON receipts (owner_id, merchant_key, date, total_units);
CREATE INDEX IF NOT EXISTS receipts_duplicates ON receipts (owner_id, date) WHERE duplicate = 1;
";

/// `PRAGMA user_version` once the key columns are filled (2) and the instance's usage is counted (3).
pub(super) const SCHEMA_VERSION: i64 = 3;

/// Counts every owner's receipts together in the usage row [`INSTANCE_USAGE_KEY`].
pub(super) const INSTANCE_USAGE: &str = "DELETE FROM usage WHERE owner_id = '*';
     INSERT INTO usage (owner_id, receipts, image_bytes)
       SELECT '*', COUNT(*), COALESCE(SUM(image_bytes), 0) FROM receipts;";

/// Creates the receipts table, or rebuilds one from before the key columns existed (keeping
/// every row) and fills the keys and the usage counts from the stored documents, once.
pub(super) fn migrate(db: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(failed("migrate"))?;
    if version >= SCHEMA_VERSION {
        return db.execute_batch(KEY_INDEXES).map_err(failed("migrate"));
    }
    if version == 2 {
        let transaction = db.transaction().map_err(failed("migrate"))?;
        transaction.execute_batch(INSTANCE_USAGE).map_err(failed("migrate"))?;
        transaction.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(failed("migrate"))?;
        transaction.commit().map_err(failed("migrate"))?;
        return db.execute_batch(KEY_INDEXES).map_err(failed("migrate"));
    }
    let transaction = db.transaction().map_err(failed("migrate"))?;
    let exists: bool = transaction
        .query_row("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'receipts'", [], |row| {
            row.get(0)
        })
        .map_err(failed("migrate"))?;
    if exists {
        transaction
            .execute_batch(&format!(
                "ALTER TABLE receipts RENAME TO receipts_before_keys;
                 {RECEIPTS_TABLE}
                 INSERT INTO receipts (id, owner_id, status, image_sha256, created_at, result_writes, document)
                   SELECT id, owner_id, status, image_sha256, created_at, result_writes, document FROM receipts_before_keys;
                 DROP TABLE receipts_before_keys;"
            ))
            .map_err(failed("migrate"))?;
        let stored: Vec<Receipt> = documents(&transaction, "SELECT document FROM receipts", [])?;
        for receipt in &stored {
            write_keys(&transaction, receipt)?;
        }
    } else {
        transaction.execute_batch(RECEIPTS_TABLE).map_err(failed("migrate"))?;
    }
    transaction
        .execute_batch(
            "DROP INDEX IF EXISTS receipts_owner_created;
             DELETE FROM usage;
             INSERT INTO usage (owner_id, receipts, image_bytes)
               SELECT owner_id, COUNT(*), SUM(image_bytes) FROM receipts GROUP BY owner_id;",
        )
        .map_err(failed("migrate"))?;
    transaction.execute_batch(INSTANCE_USAGE).map_err(failed("migrate"))?;
    transaction.execute_batch(KEY_INDEXES).map_err(failed("migrate"))?;
    transaction.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(failed("migrate"))?;
    transaction.commit().map_err(failed("migrate"))
}

/// Rebuilds a users table from before emails could be shared (its `email` column was unique),
/// keeping every row. An address nobody verified is no key: unique, it would let anyone hold
/// someone else's address and make registration say which addresses have accounts.
pub(super) fn allow_shared_emails(db: &mut Connection) -> Result<(), StoreError> {
    let sql: Option<String> = db
        .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'", [], |row| row.get(0))
        .optional()
        .map_err(failed("allow_shared_emails"))?;
    if !sql.is_some_and(|sql| sql.contains("email TEXT NOT NULL UNIQUE")) {
        return Ok(());
    }
    let transaction = db.transaction().map_err(failed("allow_shared_emails"))?;
    transaction
        .execute_batch(
            "ALTER TABLE users RENAME TO users_with_unique_emails;
             CREATE TABLE users (
               id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL, document TEXT NOT NULL);
             INSERT INTO users (id, username, email, document)
               SELECT id, username, email, document FROM users_with_unique_emails;
             DROP TABLE users_with_unique_emails;",
        )
        .map_err(failed("allow_shared_emails"))?;
    transaction.commit().map_err(failed("allow_shared_emails"))
}
