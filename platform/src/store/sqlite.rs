//! SQLite storage for the single-machine mode: one database file for documents and a folder for
//! image blobs.
//!
//! Each record is kept as its JSON model next to the columns its queries filter on, so the model
//! can grow without migrations while every query path has an index. The schema is created
//! idempotently at open. SQLite calls block, so they run on the blocking thread pool; one
//! connection behind a mutex serialises writers, which is what SQLite does anyway. Blobs are
//! written to a temporary file and renamed into place, so a crash never leaves half an image.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use finagent_core::account::{ApiKey, Rotation, Session, User};
use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use finagent_core::insights::{
    GroupSums, MEDIAN_WINDOW, SpendAggregates, main_currency, median_of_recent, unusual_threshold,
};
use finagent_core::money::{Amount, Currency};
use rusqlite::types::Value;

use super::query::{IndexKeys, KeyValue, OrderKey, ReceiptFilter, ReceiptQuery, Usage};
use super::{
    ApiKeyStore, BlobStore, Exceeded, INSTANCE_USAGE_KEY, Inserted, ReceiptStore, SessionStore, StorageLimits,
    StoreError, UserChange, UserStore, dedup_keys,
};

const SCHEMA: &str = "
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
const RECEIPTS_TABLE: &str = "
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
const KEY_INDEXES: &str = "
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
const SCHEMA_VERSION: i64 = 3;

/// Counts every owner's receipts together in the usage row [`INSTANCE_USAGE_KEY`].
const INSTANCE_USAGE: &str = "DELETE FROM usage WHERE owner_id = '*';
     INSERT INTO usage (owner_id, receipts, image_bytes)
       SELECT '*', COUNT(*), COALESCE(SUM(image_bytes), 0) FROM receipts;";

/// Creates the receipts table, or rebuilds one from before the key columns existed (keeping
/// every row) and fills the keys and the usage counts from the stored documents, once.
fn migrate(db: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(failed)?;
    if version >= SCHEMA_VERSION {
        return db.execute_batch(KEY_INDEXES).map_err(failed);
    }
    if version == 2 {
        let transaction = db.transaction().map_err(failed)?;
        transaction.execute_batch(INSTANCE_USAGE).map_err(failed)?;
        transaction.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(failed)?;
        transaction.commit().map_err(failed)?;
        return db.execute_batch(KEY_INDEXES).map_err(failed);
    }
    let transaction = db.transaction().map_err(failed)?;
    let exists: bool = transaction
        .query_row("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'receipts'", [], |row| {
            row.get(0)
        })
        .map_err(failed)?;
    if exists {
        transaction
            .execute_batch(&format!(
                "ALTER TABLE receipts RENAME TO receipts_before_keys;
                 {RECEIPTS_TABLE}
                 INSERT INTO receipts (id, owner_id, status, image_sha256, created_at, result_writes, document)
                   SELECT id, owner_id, status, image_sha256, created_at, result_writes, document FROM receipts_before_keys;
                 DROP TABLE receipts_before_keys;"
            ))
            .map_err(failed)?;
        let stored: Vec<Receipt> = documents(&transaction, "SELECT document FROM receipts", [])?;
        for receipt in &stored {
            write_keys(&transaction, receipt)?;
        }
    } else {
        transaction.execute_batch(RECEIPTS_TABLE).map_err(failed)?;
    }
    transaction
        .execute_batch(
            "DROP INDEX IF EXISTS receipts_owner_created;
             DELETE FROM usage;
             INSERT INTO usage (owner_id, receipts, image_bytes)
               SELECT owner_id, COUNT(*), SUM(image_bytes) FROM receipts GROUP BY owner_id;",
        )
        .map_err(failed)?;
    transaction.execute_batch(INSTANCE_USAGE).map_err(failed)?;
    transaction.execute_batch(KEY_INDEXES).map_err(failed)?;
    transaction.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(failed)?;
    transaction.commit().map_err(failed)
}

/// Rebuilds a users table from before emails could be shared (its `email` column was unique),
/// keeping every row. An address nobody verified is no key: unique, it would let anyone hold
/// someone else's address and make registration say which addresses have accounts.
fn allow_shared_emails(db: &mut Connection) -> Result<(), StoreError> {
    let sql: Option<String> = db
        .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'users'", [], |row| row.get(0))
        .optional()
        .map_err(failed)?;
    if !sql.is_some_and(|sql| sql.contains("email TEXT NOT NULL UNIQUE")) {
        return Ok(());
    }
    let transaction = db.transaction().map_err(failed)?;
    transaction
        .execute_batch(
            "ALTER TABLE users RENAME TO users_with_unique_emails;
             CREATE TABLE users (
               id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL, document TEXT NOT NULL);
             INSERT INTO users (id, username, email, document)
               SELECT id, username, email, document FROM users_with_unique_emails;
             DROP TABLE users_with_unique_emails;",
        )
        .map_err(failed)?;
    transaction.commit().map_err(failed)
}

/// What a receipt counts for in insights: it is processed, with a date and a total.
#[derive(Clone, Debug, PartialEq)]
struct Spent {
    owner: String,
    date: String,
    currency: Option<String>,
    category: Option<String>,
    merchant_key: Option<String>,
    units: i64,
    image: String,
}

impl Spent {
    /// The spend of the row `id` as stored now.
    fn of_row(db: &Connection, id: &str) -> Result<Option<Self>, StoreError> {
        db.query_row(
            "SELECT owner_id, date, currency, category, merchant_key, total_units, image_sha256 FROM receipts
             WHERE id = ?1 AND date IS NOT NULL AND total_units IS NOT NULL",
            params![id],
            |row| {
                Ok(Self {
                    owner: row.get(0)?,
                    date: row.get(1)?,
                    currency: row.get(2)?,
                    category: row.get(3)?,
                    merchant_key: row.get(4)?,
                    units: row.get(5)?,
                    image: row.get(6)?,
                })
            },
        )
        .optional()
        .map_err(failed)
    }

    /// Adds (`sign` 1) or removes (-1) this spend in the owner's monthly sums.
    fn roll(&self, db: &Connection, sign: i64) -> Result<(), StoreError> {
        let key = params![
            self.owner,
            &self.date[..7],
            self.currency.as_deref().unwrap_or(""),
            self.category.as_deref().unwrap_or(""),
            self.merchant_key.as_deref().unwrap_or(""),
            sign * self.units,
            sign
        ];
        db.execute(
            "INSERT INTO spend_months (owner_id, month, currency, category, merchant_key, units, receipts)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO UPDATE SET units = units + excluded.units, receipts = receipts + excluded.receipts",
            key,
        )
        .map_err(failed)?;
        db.execute(
            "DELETE FROM spend_months WHERE owner_id = ?1 AND month = ?2 AND currency = ?3 AND category = ?4
                      AND merchant_key = ?5 AND receipts <= 0",
            params![
                self.owner,
                &self.date[..7],
                self.currency.as_deref().unwrap_or(""),
                self.category.as_deref().unwrap_or(""),
                self.merchant_key.as_deref().unwrap_or("")
            ],
        )
        .map_err(failed)?;
        Ok(())
    }

    /// Recomputes the duplicate flag of every receipt sharing this spend's image or sale.
    fn refresh_duplicates(&self, db: &Connection) -> Result<(), StoreError> {
        const FLAG: &str = "duplicate = (receipts.date IS NOT NULL AND receipts.total_units IS NOT NULL AND (
            EXISTS (SELECT 1 FROM receipts other INDEXED BY receipts_owner_image WHERE other.owner_id = receipts.owner_id
                      AND other.image_sha256 = receipts.image_sha256 AND other.id != receipts.id
                      AND other.date IS NOT NULL AND other.total_units IS NOT NULL)
            OR (receipts.merchant_key IS NOT NULL AND EXISTS (SELECT 1 FROM receipts other INDEXED BY receipts_sale
                      WHERE other.owner_id = receipts.owner_id AND other.merchant_key = receipts.merchant_key
                      AND other.date = receipts.date AND other.total_units = receipts.total_units
                      AND other.id != receipts.id))))";
        db.execute(
            &format!(
                "UPDATE receipts INDEXED BY receipts_owner_image SET {FLAG} WHERE owner_id = ?1 AND image_sha256 = ?2"
            ),
            params![self.owner, self.image],
        )
        .map_err(failed)?;
        if let Some(merchant) = &self.merchant_key {
            db.execute(
                &format!(
                    "UPDATE receipts INDEXED BY receipts_sale SET {FLAG}
                     WHERE owner_id = ?1 AND merchant_key = ?2 AND date = ?3 AND total_units = ?4"
                ),
                params![self.owner, merchant, self.date, self.units],
            )
            .map_err(failed)?;
        }
        Ok(())
    }
}

/// Takes a receipt out of its owner's insights before its row is deleted.
fn unspend(db: &Connection, id: &str) -> Result<Option<Spent>, StoreError> {
    let spent = Spent::of_row(db, id)?;
    if let Some(spent) = &spent {
        spent.roll(db, -1)?;
    }
    Ok(spent)
}

/// Writes a receipt's document, status and key columns to its row, and moves its spend in the
/// owner's monthly sums and duplicate flags when it changed.
fn write_keys(db: &Connection, receipt: &Receipt) -> Result<(), StoreError> {
    let id = receipt.id.to_string();
    let before = Spent::of_row(db, &id)?;
    let keys = IndexKeys::of(receipt);
    db.execute(
        "UPDATE receipts SET status = ?2, document = ?3, created_us = ?4, recency = ?5, date = ?6,
           merchant_lower = ?7, merchant_key = ?8, category = ?9, total_units = ?10, currency = ?11,
           sort_purchased = ?12, sort_total = ?13, sort_review = ?14, image_bytes = ?15
         WHERE id = ?1",
        params![
            id,
            receipt.status.as_str(),
            to_json(receipt)?,
            keys.created_us,
            -keys.created_us,
            keys.date_text(),
            keys.merchant_lower,
            keys.merchant_key,
            keys.category,
            keys.total_units,
            keys.currency,
            keys.sort_purchased,
            keys.sort_total,
            keys.sort_review,
            i64::try_from(receipt.image_bytes).unwrap_or(i64::MAX),
        ],
    )
    .map_err(failed)?;
    let after = Spent::of_row(db, &id)?;
    if before != after {
        for (spent, sign) in [(&before, -1), (&after, 1)] {
            if let Some(spent) = spent {
                spent.roll(db, sign)?;
                spent.refresh_duplicates(db)?;
            }
        }
    }
    Ok(())
}

/// Moves an owner's usage counts, and the instance's, by one receipt of `bytes`, up (`sign` 1) or
/// down (-1).
fn count_usage(db: &Connection, owner: &str, bytes: u64, sign: i64) -> Result<(), StoreError> {
    let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
    for row in [owner, INSTANCE_USAGE_KEY] {
        db.execute(
            "INSERT INTO usage (owner_id, receipts, image_bytes) VALUES (?1, MAX(?2, 0), MAX(?3, 0))
             ON CONFLICT (owner_id) DO UPDATE SET receipts = MAX(receipts + ?2, 0), image_bytes = MAX(image_bytes + ?3, 0)",
            params![row, sign, sign * bytes],
        )
        .map_err(failed)?;
    }
    Ok(())
}

/// The usage row of an owner, or of the instance ([`INSTANCE_USAGE_KEY`]).
fn usage_of(db: &Connection, key: &str) -> Result<Usage, StoreError> {
    db.query_row("SELECT receipts, image_bytes FROM usage WHERE owner_id = ?1", params![key], |row| {
        Ok(Usage { receipts: row.get::<_, i64>(0)?.max(0) as u64, image_bytes: row.get::<_, i64>(1)?.max(0) as u64 })
    })
    .optional()
    .map(Option::unwrap_or_default)
    .map_err(failed)
}

/// The limit one more receipt of `bytes` would pass, if any.
fn exceeded(db: &Connection, owner: &str, bytes: u64, limits: StorageLimits) -> Result<Option<Exceeded>, StoreError> {
    let mine = usage_of(db, owner)?;
    if !limits.owner_admits(mine, bytes) {
        return Ok(Some(Exceeded::Owner(mine)));
    }
    let all = usage_of(db, INSTANCE_USAGE_KEY)?;
    if !limits.instance_admits(all, bytes) {
        return Ok(Some(Exceeded::Instance(all)));
    }
    Ok(None)
}

/// The SQL condition and parameters of a filter, for an owner (parameter 1).
fn filter_sql(owner: String, filter: &ReceiptFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("owner_id = ?1");
    let mut values = vec![Value::Text(owner)];
    let mut push = |condition: &str, value: Value| {
        values.push(value);
        sql.push_str(&condition.replace('?', &format!("?{}", values.len())));
    };
    // Dates bound the `purchased` order's key too, so that order reads only the range's rows.
    if let Some(from) = filter.from {
        push(" AND date >= ?", Value::Text(from.to_string()));
        push(" AND sort_purchased <= ?", Value::Integer(-i64::from(from.num_days_from_ce())));
    }
    if let Some(to) = filter.to {
        push(" AND date <= ?", Value::Text(to.to_string()));
        push(" AND sort_purchased >= ?", Value::Integer(-i64::from(to.num_days_from_ce())));
    }
    if let Some(min) = filter.min_total {
        push(" AND total_units >= ?", Value::Integer(min.to_units()));
    }
    if let Some(max) = filter.max_total {
        push(" AND total_units <= ?", Value::Integer(max.to_units()));
    }
    if let Some(needle) = filter.merchant_needle() {
        push(" AND instr(merchant_lower, ?) > 0", Value::Text(needle));
    }
    if let Some(category) = filter.category {
        push(" AND category = ?", Value::Text(category.as_str().to_owned()));
    }
    if let Some(status) = filter.status {
        push(" AND status = ?", Value::Text(status.as_str().to_owned()));
    }
    (sql, values)
}

/// The column of an order's key.
fn column(key: OrderKey) -> &'static str {
    match key {
        OrderKey::CreatedUs => "created_us",
        OrderKey::Recency => "recency",
        OrderKey::SortPurchased => "sort_purchased",
        OrderKey::SortTotal => "sort_total",
        OrderKey::SortReview => "sort_review",
        OrderKey::Id => "id",
    }
}

/// A key's value as SQLite takes it.
fn sql_value(value: KeyValue) -> Value {
    match value {
        KeyValue::Integer(integer) => Value::Integer(integer),
        KeyValue::Real(real) => Value::Real(real),
        KeyValue::Id(id) => Value::Text(id.to_string()),
    }
}

/// Documents in SQLite, blobs in a folder.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    blobs: PathBuf,
    versions: Versions,
}

/// How many times each owner's receipts have changed since the store was opened: moved on after
/// every committed write to a receipt (insert, delete, status, result, corrections). The embedded
/// store has one process writing it (the all-in-one server and its OCR threads), so a copy of a
/// response made at a version is exact for as long as the version stays.
#[derive(Clone, Debug, Default)]
struct Versions(Arc<Mutex<std::collections::HashMap<UserId, u64>>>);

impl Versions {
    fn bump(&self, owner: UserId) {
        if let Ok(mut versions) = self.0.lock() {
            *versions.entry(owner).or_default() += 1;
        }
    }

    fn get(&self, owner: UserId) -> Option<u64> {
        self.0.lock().ok().map(|versions| versions.get(&owner).copied().unwrap_or(0))
    }
}

fn failed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The JSON document the query selects, decoded, if a row matches.
fn document<T: serde::de::DeserializeOwned>(
    db: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = db.query_row(sql, parameters, |row| row.get(0)).optional().map_err(failed)?;
    text.as_deref().map(from_json).transpose()
}

/// Every JSON document the query selects, decoded, in the query's order.
fn documents<T: serde::de::DeserializeOwned>(
    db: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError> {
    let mut statement = db.prepare(sql).map_err(failed)?;
    let texts: Vec<String> =
        statement.query_map(parameters, |row| row.get(0)).map_err(failed)?.collect::<Result<_, _>>().map_err(failed)?;
    texts.iter().map(|text| from_json(text)).collect()
}

fn conflict_or(error: rusqlite::Error, what: &str) -> StoreError {
    match error {
        rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(what.to_owned())
        }
        other => failed(other),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and the blob folder.
    pub async fn open(database: impl AsRef<Path>, blobs: impl AsRef<Path>) -> Result<Self, StoreError> {
        let database = database.as_ref().to_owned();
        let blobs = blobs.as_ref().to_owned();
        std::fs::create_dir_all(&blobs).map_err(failed)?;
        if let Some(parent) = database.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let connection = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let connection = Connection::open(&database).map_err(failed)?;
            connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(failed)?;
            connection.execute_batch(SCHEMA).map_err(failed)?;
            let mut connection = connection;
            migrate(&mut connection)?;
            allow_shared_emails(&mut connection)?;
            Ok(connection)
        })
        .await
        .map_err(failed)??;
        Ok(Self { connection: Arc::new(Mutex::new(connection)), blobs, versions: Versions::default() })
    }

    /// The version of `owner`'s receipts in this process (see [`Versions`]).
    pub fn receipts_version(&self, owner: UserId) -> Option<u64> {
        self.versions.get(owner)
    }

    /// Checks that the database file answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with(|db| db.query_row("SELECT 1", [], |_| Ok(())).map_err(failed)).await
    }

    async fn with<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection.lock().map_err(|_| failed("the database connection is poisoned"))?;
            work(&mut guard)
        })
        .await
        .map_err(failed)?
    }

    fn blob_path(&self, key: &BlobKey) -> Result<PathBuf, StoreError> {
        let safe = !key.as_str().is_empty()
            && key.as_str().split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !safe {
            return Err(StoreError::Corrupt(format!("unsafe blob key {:?}", key.as_str())));
        }
        Ok(self.blobs.join(key.as_str()))
    }
}

/// A receipt as its row: the indexed columns and the JSON document.
struct ReceiptRow {
    id: String,
    owner: String,
    status: &'static str,
    sha: String,
    created: String,
    document: String,
    receipt: Receipt,
}

impl ReceiptRow {
    fn of(receipt: &Receipt) -> Result<Self, StoreError> {
        Ok(Self {
            id: receipt.id.to_string(),
            owner: receipt.owner_id.to_string(),
            status: receipt.status.as_str(),
            sha: receipt.image_sha256.clone(),
            created: receipt.created_at.to_rfc3339(),
            document: to_json(receipt)?,
            receipt: receipt.clone(),
        })
    }

    /// Inserts the row with its keys and counts it in the owner's usage; a receipt with the same
    /// id is a conflict.
    fn insert(&self, db: &Connection) -> Result<(), StoreError> {
        db.execute(
            "INSERT INTO receipts (id, owner_id, status, image_sha256, created_at, document) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![self.id, self.owner, self.status, self.sha, self.created, self.document],
        )
        .map_err(|e| conflict_or(e, &format!("receipt {}", self.id)))?;
        write_keys(db, &self.receipt)?;
        count_usage(db, &self.owner, self.receipt.image_bytes, 1)
    }
}

impl ReceiptStore for SqliteStore {
    async fn insert_receipt(&self, receipt: &Receipt) -> Result<(), StoreError> {
        let row = ReceiptRow::of(receipt)?;
        let (versions, owner) = (self.versions.clone(), receipt.owner_id);
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            row.insert(&transaction)?;
            transaction.commit().map_err(failed)?;
            versions.bump(owner);
            Ok(())
        })
        .await
    }

    async fn insert_receipt_once(&self, receipt: &Receipt, limits: StorageLimits) -> Result<Inserted, StoreError> {
        let keys = dedup_keys(receipt);
        let row = ReceiptRow::of(receipt)?;
        let (versions, owner) = (self.versions.clone(), receipt.owner_id);
        self.with(move |db| {
            // Immediate: the write lock is taken before the limits are read, even were another
            // process to open the file.
            let transaction = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(failed)?;
            for key in &keys {
                let existing: Option<String> = transaction
                    .query_row("SELECT receipt_id FROM receipt_keys WHERE key = ?1", params![key], |row| row.get(0))
                    .optional()
                    .map_err(failed)?;
                if let Some(existing) = existing {
                    let found = document::<Receipt>(
                        &transaction,
                        "SELECT document FROM receipts WHERE id = ?1",
                        params![existing],
                    )?;
                    if let Some(found) = found {
                        return Ok(Inserted::Existing(Box::new(found)));
                    }
                }
            }
            // In the same write transaction as the insert: no other write runs in between.
            if let Some(exceeded) = exceeded(&transaction, &row.owner, row.receipt.image_bytes, limits)? {
                return Ok(Inserted::OverLimit(exceeded));
            }
            row.insert(&transaction)?;
            for key in &keys {
                transaction
                    .execute(
                        "INSERT OR REPLACE INTO receipt_keys (key, receipt_id) VALUES (?1, ?2)",
                        params![key, row.id],
                    )
                    .map_err(failed)?;
            }
            transaction.commit().map_err(failed)?;
            versions.bump(owner);
            Ok(Inserted::New)
        })
        .await
    }

    async fn unfinished_receipts(&self) -> Result<Vec<Receipt>, StoreError> {
        self.with(|db| {
            documents(
                db,
                "SELECT document FROM receipts WHERE status IN ('queued', 'processing') ORDER BY created_at, id",
                [],
            )
        })
        .await
    }

    async fn delete_receipt(&self, owner: UserId, id: ReceiptId) -> Result<Option<Receipt>, StoreError> {
        let (versions, owner_id) = (self.versions.clone(), owner);
        let (owner, id) = (owner.to_string(), id.to_string());
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let found = document::<Receipt>(
                &transaction,
                "SELECT document FROM receipts WHERE id = ?1 AND owner_id = ?2",
                params![id, owner],
            )?;
            if let Some(found) = &found {
                let spent = unspend(&transaction, &id)?;
                transaction.execute("DELETE FROM receipt_keys WHERE receipt_id = ?1", params![id]).map_err(failed)?;
                transaction.execute("DELETE FROM receipts WHERE id = ?1", params![id]).map_err(failed)?;
                if let Some(spent) = spent {
                    spent.refresh_duplicates(&transaction)?;
                }
                count_usage(&transaction, &owner, found.image_bytes, -1)?;
                transaction.commit().map_err(failed)?;
                versions.bump(owner_id);
            }
            Ok(found)
        })
        .await
    }

    async fn save_corrections(
        &self,
        owner: UserId,
        id: ReceiptId,
        corrected: &ReceiptResult,
    ) -> Result<bool, StoreError> {
        let (versions, owner_id) = (self.versions.clone(), owner);
        let (owner, id, corrected) = (owner.to_string(), id.to_string(), corrected.clone());
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let Some(mut receipt) = document::<Receipt>(
                &transaction,
                "SELECT document FROM receipts WHERE id = ?1 AND owner_id = ?2",
                params![id, owner],
            )?
            else {
                return Ok(false);
            };
            receipt.corrected = Some(corrected);
            receipt.updated_at = Utc::now();
            write_keys(&transaction, &receipt)?;
            transaction.commit().map_err(failed)?;
            versions.bump(owner_id);
            Ok(true)
        })
        .await
    }

    async fn receipt(&self, id: ReceiptId, owner: Option<UserId>) -> Result<Option<Receipt>, StoreError> {
        let (id, owner) = (id.to_string(), owner.map(|o| o.to_string()));
        self.with(move |db| {
            document(
                db,
                "SELECT document FROM receipts WHERE id = ?1 AND (?2 IS NULL OR owner_id = ?2)",
                params![id, owner],
            )
        })
        .await
    }

    async fn set_status(&self, id: ReceiptId, next: ReceiptStatus, failure: Option<&str>) -> Result<bool, StoreError> {
        let (id, failure) = (id.to_string(), failure.map(str::to_owned));
        let versions = self.versions.clone();
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let Some(mut receipt) =
                document::<Receipt>(&transaction, "SELECT document FROM receipts WHERE id = ?1", params![id])?
            else {
                return Ok(false);
            };
            if !receipt.status.can_become(next) {
                return Ok(false);
            }
            receipt.status = next;
            receipt.updated_at = Utc::now();
            if failure.is_some() {
                receipt.failure = failure;
            }
            write_keys(&transaction, &receipt)?;
            transaction.commit().map_err(failed)?;
            versions.bump(receipt.owner_id);
            Ok(true)
        })
        .await
    }

    async fn store_result(&self, id: ReceiptId, result: &ReceiptResult) -> Result<(), StoreError> {
        let (id, result) = (id.to_string(), result.clone());
        let versions = self.versions.clone();
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let Some(mut receipt) =
                document::<Receipt>(&transaction, "SELECT document FROM receipts WHERE id = ?1", params![id])?
            else {
                return Ok(());
            };
            if receipt.status == ReceiptStatus::Failed {
                return Ok(());
            }
            receipt.status = ReceiptStatus::Done;
            receipt.result = Some(result);
            receipt.failure = None;
            receipt.updated_at = Utc::now();
            transaction
                .execute("UPDATE receipts SET result_writes = result_writes + 1 WHERE id = ?1", params![id])
                .map_err(failed)?;
            write_keys(&transaction, &receipt)?;
            transaction.commit().map_err(failed)?;
            versions.bump(receipt.owner_id);
            Ok(())
        })
        .await
    }

    async fn receipt_page(&self, owner: UserId, query: &ReceiptQuery) -> Result<Vec<Receipt>, StoreError> {
        let (mut condition, mut values) = filter_sql(owner.to_string(), &query.filter);
        let keys: Vec<&str> = query.sort.keys().iter().copied().map(column).collect();
        if let Some(after) = &query.after {
            let bounds: Vec<Value> = after.bounds(query.sort).into_iter().map(sql_value).collect();
            let first = values.len() + 1;
            let placeholders: Vec<String> = (first..first + bounds.len()).map(|n| format!("?{n}")).collect();
            condition.push_str(&format!(" AND ({}) > ({})", keys.join(", "), placeholders.join(", ")));
            values.extend(bounds);
        }
        let sql = format!(
            "SELECT document FROM receipts INDEXED BY receipts_{} WHERE {condition} ORDER BY {} LIMIT {}",
            query.sort.as_str(),
            keys.join(", "),
            query.limit
        );
        self.with(move |db| documents(db, &sql, rusqlite::params_from_iter(values))).await
    }

    async fn count_receipts(&self, owner: UserId, filter: &ReceiptFilter) -> Result<u64, StoreError> {
        let (condition, values) = filter_sql(owner.to_string(), filter);
        let sql = format!("SELECT COUNT(*) FROM receipts WHERE {condition}");
        self.with(move |db| {
            db.query_row(&sql, rusqlite::params_from_iter(values), |row| row.get::<_, i64>(0))
                .map(|count| count.max(0) as u64)
                .map_err(failed)
        })
        .await
    }

    async fn usage(&self, owner: UserId) -> Result<Usage, StoreError> {
        let owner = owner.to_string();
        self.with(move |db| usage_of(db, &owner)).await
    }

    async fn instance_usage(&self) -> Result<Usage, StoreError> {
        self.with(move |db| usage_of(db, INSTANCE_USAGE_KEY)).await
    }

    async fn spend_aggregates(
        &self,
        owner: UserId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<SpendAggregates, StoreError> {
        let owner = owner.to_string();
        self.with(move |db| spend_aggregates(db, &owner, from, to)).await
    }
}

/// The whole months within `from..=to` (their first and last day), if any.
fn whole_months(from: NaiveDate, to: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let first = if from.day() == 1 { from } else { from.checked_add_months(chrono::Months::new(1))?.with_day(1)? };
    let after_last = to.succ_opt()?;
    let last = if after_last.day() == 1 { to } else { to.with_day(1)?.pred_opt()? };
    (first <= last).then_some((first, last))
}

/// Adds a group row (month, currency, category, merchant key, units, receipts) to the sums, or
/// to the receipts in another currency.
fn add_group(
    aggregates: &mut SpendAggregates,
    sums: &mut GroupSums,
    code: Option<&str>,
    row: (String, Option<String>, Option<String>, Option<String>, i64, i64),
) {
    let (month, currency, category, merchant, units, count) = row;
    let count = count.max(0) as usize;
    // Receipts without a currency count in the main one.
    if currency.as_deref().is_some_and(|currency| Some(currency) != code) {
        aggregates.other_currency_receipts += count;
        return;
    }
    sums.add(month, category.as_deref(), merchant.as_deref(), units, count);
}

/// Empty text (how the monthly sums store "none") as `None`.
fn some_text(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// The insights of an owner over `from..=to`: whole months from the running monthly sums, the
/// partial months at the ends from the range index, duplicates from the rows flagged as they were
/// written, the median from the most recent purchases, and unusual totals from the totals index.
/// None of it reads more than the range's partial months, however long the history.
fn spend_aggregates(
    db: &Connection,
    owner: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<SpendAggregates, StoreError> {
    let counts: Vec<(Option<Currency>, usize)> = {
        let mut statement = db
            .prepare_cached("SELECT currency, SUM(receipts) FROM spend_months WHERE owner_id = ?1 GROUP BY currency")
            .map_err(failed)?;
        let rows = statement
            .query_map(params![owner], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
            .map_err(failed)?;
        let mut counts = Vec::new();
        for row in rows {
            let (code, count) = row.map_err(failed)?;
            counts.push((some_text(code).and_then(|code| code.parse().ok()), count.max(0) as usize));
        }
        counts
    };
    let currency = main_currency(&counts);
    let code = currency.map(|currency| currency.to_string());
    let mut aggregates = SpendAggregates { currency, ..Default::default() };
    let mut sums = GroupSums::default();

    let whole = whole_months(from, to);
    if let Some((first, last)) = whole {
        let mut statement = db
            .prepare_cached(
                "SELECT month, currency, category, merchant_key, units, receipts FROM spend_months
                 WHERE owner_id = ?1 AND month >= ?2 AND month <= ?3",
            )
            .map_err(failed)?;
        let mut rows = statement
            .query(params![owner, first.to_string()[..7].to_owned(), last.to_string()[..7].to_owned()])
            .map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            let group = (
                row.get::<_, String>(0).map_err(failed)?,
                some_text(row.get(1).map_err(failed)?),
                some_text(row.get(2).map_err(failed)?),
                some_text(row.get(3).map_err(failed)?),
                row.get(4).map_err(failed)?,
                row.get(5).map_err(failed)?,
            );
            add_group(&mut aggregates, &mut sums, code.as_deref(), group);
        }
    }
    let partial: Vec<(NaiveDate, NaiveDate)> = match whole {
        None => vec![(from, to)],
        Some((first, last)) => {
            let mut ends = Vec::new();
            if let Some(before) = first.pred_opt().filter(|before| from <= *before) {
                ends.push((from, before));
            }
            if let Some(after) = last.succ_opt().filter(|after| *after <= to) {
                ends.push((after, to));
            }
            ends
        }
    };
    for (start, end) in partial {
        let mut statement = db
            .prepare_cached(
                "SELECT substr(date, 1, 7), currency, category, merchant_key, SUM(total_units), COUNT(*)
                 FROM receipts INDEXED BY receipts_spend
                 WHERE owner_id = ?1 AND date >= ?2 AND date <= ?3 AND total_units IS NOT NULL
                 GROUP BY 1, 2, 3, 4",
            )
            .map_err(failed)?;
        let mut rows = statement.query(params![owner, start.to_string(), end.to_string()]).map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            let group = (
                row.get(0).map_err(failed)?,
                row.get(1).map_err(failed)?,
                row.get(2).map_err(failed)?,
                row.get(3).map_err(failed)?,
                row.get(4).map_err(failed)?,
                row.get(5).map_err(failed)?,
            );
            add_group(&mut aggregates, &mut sums, code.as_deref(), group);
        }
    }
    let [by_month, by_category, by_merchant] = sums.into_spends();
    (aggregates.by_month, aggregates.by_category, aggregates.by_merchant) = (by_month, by_category, by_merchant);

    // Same money: no currency, or the main one.
    let same_money = "(currency IS NULL OR currency = ?2)";
    {
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT id, image_sha256, merchant_key, date, total_units FROM receipts INDEXED BY receipts_duplicates
                 WHERE owner_id = ?1 AND duplicate = 1 AND date >= ?3 AND date <= ?4 AND total_units IS NOT NULL
                   AND {same_money}"
            ))
            .map_err(failed)?;
        let rows = statement
            .query_map(params![owner, code, from.to_string(), to.to_string()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .map_err(failed)?;
        let mut images: std::collections::BTreeMap<String, Vec<ReceiptId>> = Default::default();
        let mut sales: std::collections::BTreeMap<(String, String, i64), Vec<ReceiptId>> = Default::default();
        for row in rows {
            let (id, image, merchant, date, units) = row.map_err(failed)?;
            let id: ReceiptId = id.parse().map_err(|_| StoreError::Corrupt(format!("receipt id {id:?}")))?;
            images.entry(image).or_default().push(id);
            if let Some(merchant) = merchant {
                sales.entry((merchant, date, units)).or_default().push(id);
            }
        }
        aggregates.same_image = images.into_values().filter(|group| group.len() > 1).collect();
        aggregates.same_sale = sales.into_values().filter(|group| group.len() > 1).collect();
    }
    let recent: Vec<i64> = {
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT total_units FROM receipts INDEXED BY receipts_purchased
                 WHERE owner_id = ?1 AND date IS NOT NULL AND total_units IS NOT NULL AND {same_money}
                 ORDER BY sort_purchased, recency, id LIMIT ?3"
            ))
            .map_err(failed)?;
        let rows = statement.query_map(params![owner, code, MEDIAN_WINDOW as i64], |row| row.get(0)).map_err(failed)?;
        rows.collect::<Result<_, _>>().map_err(failed)?
    };
    aggregates.median = median_of_recent(recent);
    if let Some(threshold) = aggregates.median.and_then(unusual_threshold) {
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT id, total_units FROM receipts INDEXED BY receipts_totals
                 WHERE owner_id = ?1 AND total_units > ?5 AND date >= ?3 AND date <= ?4 AND {same_money}"
            ))
            .map_err(failed)?;
        let rows = statement
            .query_map(params![owner, code, from.to_string(), to.to_string(), threshold.to_units()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(failed)?;
        for row in rows {
            let (id, units) = row.map_err(failed)?;
            let id = id.parse().map_err(|_| StoreError::Corrupt(format!("receipt id {id:?}")))?;
            aggregates.unusual.push((id, Amount::from_units(units)));
        }
    }
    Ok(aggregates.normalized())
}

impl BlobStore for SqliteStore {
    async fn put_blob(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.blob_path(key)?;
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(failed)?;
            }
            let temporary = path.with_extension(format!("partial-{}", Uuid::new_v4()));
            std::fs::write(&temporary, &bytes).map_err(failed)?;
            std::fs::rename(&temporary, &path).map_err(failed)
        })
        .await
        .map_err(failed)?
    }

    async fn blob(&self, key: &BlobKey) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.blob_path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(failed(error)),
        }
    }

    async fn delete_blob(&self, key: &BlobKey) -> Result<(), StoreError> {
        let path = self.blob_path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(failed(error)),
        }
    }
}

impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let (id, name, email, document) =
            (user.id.to_string(), user.username.clone(), user.email.clone(), to_json(user)?);
        self.with(move |db| {
            db.execute(
                "INSERT INTO users (id, username, email, document) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, email, document],
            )
            .map_err(|e| conflict_or(e, "user name"))?;
            Ok(())
        })
        .await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let id = id.to_string();
        self.with(move |db| document(db, "SELECT document FROM users WHERE id = ?1", params![id])).await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        let username = username.to_owned();
        self.with(move |db| document(db, "SELECT document FROM users WHERE username = ?1", params![username])).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with(|db| documents(db, "SELECT document FROM users ORDER BY username", [])).await
    }

    async fn update_user(&self, user: &User) -> Result<bool, StoreError> {
        let (id, name, email, document) =
            (user.id.to_string(), user.username.clone(), user.email.clone(), to_json(user)?);
        self.with(move |db| {
            let changed = db
                .execute(
                    "UPDATE users SET username = ?2, email = ?3, document = ?4 WHERE id = ?1",
                    params![id, name, email, document],
                )
                .map_err(|e| conflict_or(e, "user name"))?;
            Ok(changed == 1)
        })
        .await
    }

    async fn change_user(
        &self,
        id: UserId,
        change: &UserChange,
        tokens_valid_after: Option<DateTime<Utc>>,
    ) -> Result<Option<User>, StoreError> {
        let (id, change) = (id.to_string(), change.clone());
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let Some(mut user) =
                document::<User>(&transaction, "SELECT document FROM users WHERE id = ?1", params![id])?
            else {
                return Ok(None);
            };
            change.apply(&mut user);
            if let Some(after) = tokens_valid_after {
                user.tokens_valid_after = user.tokens_valid_after.max(after);
            }
            transaction
                .execute("UPDATE users SET document = ?2 WHERE id = ?1", params![id, to_json(&user)?])
                .map_err(failed)?;
            transaction.commit().map_err(failed)?;
            Ok(Some(user))
        })
        .await
    }
}

impl SessionStore for SqliteStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        let (family, user, current, document) = (
            session.family_id.to_string(),
            session.user_id.to_string(),
            session.current_token_hash.clone(),
            to_json(session)?,
        );
        self.with(move |db| {
            db.execute(
                "INSERT INTO sessions (family_id, user_id, current_token_hash, revoked, document) VALUES (?1, ?2, ?3, 0, ?4)",
                params![family, user, current, document],
            )
            .map_err(|e| conflict_or(e, "session"))?;
            Ok(())
        })
        .await
    }

    async fn rotate_session(
        &self,
        presented_hash: &str,
        next_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let (presented, next) = (presented_hash.to_owned(), next_hash.to_owned());
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let current: Option<(String, String)> = transaction
                .query_row(
                    "SELECT family_id, document FROM sessions WHERE current_token_hash = ?1",
                    params![presented],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(failed)?;
            if let Some((family, document)) = current {
                let mut session: Session = from_json(&document)?;
                if session.revoked || session.expires_at <= now {
                    return Ok(Rotation::Invalid);
                }
                session.current_token_hash = next.clone();
                session.last_used_at = Some(now);
                transaction
                    .execute(
                        "UPDATE sessions SET current_token_hash = ?2, document = ?3 WHERE family_id = ?1",
                        params![family, next, to_json(&session)?],
                    )
                    .map_err(failed)?;
                transaction
                    .execute(
                        "INSERT INTO used_refresh_tokens (token_hash, family_id) VALUES (?1, ?2)",
                        params![presented, family],
                    )
                    .map_err(failed)?;
                transaction.commit().map_err(failed)?;
                return Ok(Rotation::Rotated(session));
            }
            let reused: Option<String> = transaction
                .query_row(
                    "SELECT family_id FROM used_refresh_tokens WHERE token_hash = ?1",
                    params![presented],
                    |row| row.get(0),
                )
                .optional()
                .map_err(failed)?;
            let Some(family) = reused else { return Ok(Rotation::Invalid) };
            revoke_family(&transaction, &family)?;
            transaction.commit().map_err(failed)?;
            Ok(Rotation::ReuseDetected)
        })
        .await
    }

    async fn revoke_session(&self, family_id: Uuid) -> Result<(), StoreError> {
        let family = family_id.to_string();
        self.with(move |db| revoke_family(db, &family)).await
    }

    async fn user_sessions(&self, user_id: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StoreError> {
        let user = user_id.to_string();
        let mut live: Vec<Session> = self
            .with(move |db| {
                documents(db, "SELECT document FROM sessions WHERE user_id = ?1 AND revoked = 0", params![user])
            })
            .await?;
        live.retain(|session| !session.revoked && session.expires_at > now);
        live.sort_by_key(|session| std::cmp::Reverse(session.last_used_at.unwrap_or(session.created_at)));
        Ok(live)
    }

    async fn revoke_user_session(&self, user_id: UserId, family_id: Uuid) -> Result<bool, StoreError> {
        let (user, family) = (user_id.to_string(), family_id.to_string());
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let found: Option<String> = transaction
                .query_row(
                    "SELECT family_id FROM sessions WHERE family_id = ?1 AND user_id = ?2 AND revoked = 0",
                    params![family, user],
                    |row| row.get(0),
                )
                .optional()
                .map_err(failed)?;
            let Some(family) = found else { return Ok(false) };
            revoke_family(&transaction, &family)?;
            transaction.commit().map_err(failed)?;
            Ok(true)
        })
        .await
    }

    async fn revoke_user_sessions(&self, user_id: UserId) -> Result<u64, StoreError> {
        let user = user_id.to_string();
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let families: Vec<String> = {
                let mut statement = transaction
                    .prepare("SELECT family_id FROM sessions WHERE user_id = ?1 AND revoked = 0")
                    .map_err(failed)?;
                statement
                    .query_map(params![user], |row| row.get(0))
                    .map_err(failed)?
                    .collect::<Result<_, _>>()
                    .map_err(failed)?
            };
            for family in &families {
                revoke_family(&transaction, family)?;
            }
            transaction.commit().map_err(failed)?;
            Ok(u64::try_from(families.len()).unwrap_or(u64::MAX))
        })
        .await
    }
}

fn revoke_family(db: &Connection, family: &str) -> Result<(), StoreError> {
    let Some(mut session) =
        document::<Session>(db, "SELECT document FROM sessions WHERE family_id = ?1", params![family])?
    else {
        return Ok(());
    };
    session.revoked = true;
    db.execute(
        "UPDATE sessions SET revoked = 1, document = ?2 WHERE family_id = ?1",
        params![family, to_json(&session)?],
    )
    .map_err(failed)?;
    Ok(())
}

impl ApiKeyStore for SqliteStore {
    async fn create_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let (id, owner, hash, created, document) = (
            key.id.to_string(),
            key.owner_id.to_string(),
            key.key_hash.clone(),
            key.created_at.to_rfc3339(),
            to_json(key)?,
        );
        self.with(move |db| {
            db.execute(
                "INSERT INTO api_keys (id, owner_id, key_hash, revoked, created_at, document) VALUES (?1, ?2, ?3, 0, ?4, ?5)",
                params![id, owner, hash, created, document],
            )
            .map_err(|e| conflict_or(e, "api key"))?;
            Ok(())
        })
        .await
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = key_hash.to_owned();
        self.with(move |db| {
            document(db, "SELECT document FROM api_keys WHERE key_hash = ?1 AND revoked = 0", params![hash])
        })
        .await
    }

    async fn api_keys(&self, owner: UserId) -> Result<Vec<ApiKey>, StoreError> {
        let owner = owner.to_string();
        self.with(move |db| {
            let mut statement = db
                .prepare("SELECT document FROM api_keys WHERE owner_id = ?1 ORDER BY created_at DESC")
                .map_err(failed)?;
            let documents: Vec<String> = statement
                .query_map(params![owner], |row| row.get(0))
                .map_err(failed)?
                .collect::<Result<_, _>>()
                .map_err(failed)?;
            documents.iter().map(|document| from_json(document)).collect()
        })
        .await
    }

    async fn revoke_api_key(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        let (owner, id) = (owner.to_string(), id.to_string());
        self.with(move |db| {
            let Some(mut key) = document::<ApiKey>(
                db,
                "SELECT document FROM api_keys WHERE id = ?1 AND owner_id = ?2",
                params![id, owner],
            )?
            else {
                return Ok(false);
            };
            if key.revoked {
                return Ok(false);
            }
            key.revoked = true;
            db.execute("UPDATE api_keys SET revoked = 1, document = ?2 WHERE id = ?1", params![id, to_json(&key)?])
                .map_err(failed)?;
            Ok(true)
        })
        .await
    }
}

impl super::RevocationStore for SqliteStore {
    async fn save_revocation(&self, revocation: &super::Revocation) -> Result<(), StoreError> {
        let (key, value, until) = (revocation.key.clone(), revocation.value, revocation.until.timestamp_millis());
        self.with(move |db| {
            db.execute(
                "INSERT INTO revocations (key, value, until_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value), until_ms = MAX(until_ms, excluded.until_ms)",
                params![key, value, until],
            )
            .map_err(failed)?;
            Ok(())
        })
        .await
    }

    async fn live_revocations(&self, now: DateTime<Utc>) -> Result<Vec<super::Revocation>, StoreError> {
        let now = now.timestamp_millis();
        self.with(move |db| {
            db.execute("DELETE FROM revocations WHERE until_ms <= ?1", params![now]).map_err(failed)?;
            let mut statement = db.prepare("SELECT key, value, until_ms FROM revocations").map_err(failed)?;
            let rows = statement
                .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)))
                .map_err(failed)?;
            let mut live = Vec::new();
            for row in rows {
                let (key, value, until) = row.map_err(failed)?;
                let until = DateTime::from_timestamp_millis(until).unwrap_or_default();
                live.push(super::Revocation { key, value, until });
            }
            Ok(live)
        })
        .await
    }
}

fn delivery_status(status: finagent_core::webhook::DeliveryStatus) -> &'static str {
    match status {
        finagent_core::webhook::DeliveryStatus::Pending => "pending",
        finagent_core::webhook::DeliveryStatus::Delivered => "delivered",
        finagent_core::webhook::DeliveryStatus::Failed => "failed",
    }
}

impl super::MerchantMemoryStore for SqliteStore {
    async fn remember_merchant(
        &self,
        owner: UserId,
        keys: &[String],
        merchant: &finagent_core::receipt::RememberedMerchant,
    ) -> Result<(), StoreError> {
        let (owner, keys, document) = (owner.to_string(), keys.to_vec(), to_json(merchant)?);
        let now = Utc::now().timestamp_micros();
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            for key in &keys {
                transaction
                    .execute(
                        "INSERT INTO merchant_memory (owner_id, key, updated_us, document) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (owner_id, key) DO UPDATE SET updated_us = excluded.updated_us, document = excluded.document",
                        params![owner, key, now, document],
                    )
                    .map_err(failed)?;
            }
            transaction.commit().map_err(failed)
        })
        .await
    }

    async fn recall_merchant(
        &self,
        owner: UserId,
        keys: &[String],
    ) -> Result<Option<finagent_core::receipt::RememberedMerchant>, StoreError> {
        let (owner, keys) = (owner.to_string(), keys.to_vec());
        let found: Option<String> = self
            .with(move |db| {
                let mut best: Option<(i64, String)> = None;
                let mut statement = db
                    .prepare_cached("SELECT updated_us, document FROM merchant_memory WHERE owner_id = ?1 AND key = ?2")
                    .map_err(failed)?;
                for key in &keys {
                    let row = statement
                        .query_row(params![owner, key], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
                        .optional()
                        .map_err(failed)?;
                    if let Some(row) = row
                        && best.as_ref().is_none_or(|(updated, _)| row.0 > *updated)
                    {
                        best = Some(row);
                    }
                }
                Ok(best.map(|(_, document)| document))
            })
            .await?;
        found.map(|document| from_json(&document)).transpose()
    }
}

impl super::InviteStore for SqliteStore {
    async fn create_invite(&self, invite: &finagent_core::account::Invite) -> Result<(), StoreError> {
        let (id, hash, created, expires, document) = (
            invite.id.to_string(),
            invite.code_hash.clone(),
            invite.created_at.timestamp_millis(),
            invite.expires_at.timestamp_millis(),
            to_json(invite)?,
        );
        self.with(move |db| {
            db.execute(
                "INSERT INTO invites (id, code_hash, created_ms, expires_ms, document) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, hash, created, expires, document],
            )
            .map_err(|e| conflict_or(e, "invite"))?;
            Ok(())
        })
        .await
    }

    async fn invites(&self, now: DateTime<Utc>) -> Result<Vec<finagent_core::account::Invite>, StoreError> {
        let now = now.timestamp_millis();
        self.with(move |db| {
            documents(
                db,
                "SELECT document FROM invites WHERE expires_ms > ?1 ORDER BY created_ms DESC, id",
                params![now],
            )
        })
        .await
    }

    async fn delete_invite(&self, id: Uuid) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.with(move |db| Ok(db.execute("DELETE FROM invites WHERE id = ?1", params![id]).map_err(failed)? == 1))
            .await
    }

    async fn take_invite(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<finagent_core::account::Invite>, StoreError> {
        let (hash, now) = (code_hash.to_owned(), now.timestamp_millis());
        self.with(move |db| {
            let transaction = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(failed)?;
            let found: Option<finagent_core::account::Invite> = document(
                &transaction,
                "SELECT document FROM invites WHERE code_hash = ?1 AND expires_ms > ?2",
                params![hash, now],
            )?;
            if let Some(invite) = &found {
                transaction
                    .execute("DELETE FROM invites WHERE id = ?1", params![invite.id.to_string()])
                    .map_err(failed)?;
            }
            transaction.commit().map_err(failed)?;
            Ok(found)
        })
        .await
    }
}

impl super::WebhookStore for SqliteStore {
    async fn create_webhook(&self, webhook: &finagent_core::webhook::Webhook) -> Result<(), StoreError> {
        let (id, owner, created, document) = (
            webhook.id.to_string(),
            webhook.owner_id.to_string(),
            webhook.created_at.timestamp_millis(),
            to_json(webhook)?,
        );
        self.with(move |db| {
            db.execute(
                "INSERT INTO webhooks (id, owner_id, created_ms, document) VALUES (?1, ?2, ?3, ?4)",
                params![id, owner, created, document],
            )
            .map_err(|e| conflict_or(e, "webhook"))?;
            Ok(())
        })
        .await
    }

    async fn webhooks(&self, owner: UserId) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        let owner = owner.to_string();
        self.with(move |db| {
            documents(db, "SELECT document FROM webhooks WHERE owner_id = ?1 ORDER BY created_ms, id", params![owner])
        })
        .await
    }

    async fn delete_webhook(&self, owner: UserId, id: Uuid) -> Result<bool, StoreError> {
        let (owner, id) = (owner.to_string(), id.to_string());
        self.with(move |db| {
            let deleted = db
                .execute("DELETE FROM webhooks WHERE id = ?1 AND owner_id = ?2", params![id, owner])
                .map_err(failed)?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn replace_webhook(
        &self,
        webhook: &finagent_core::webhook::Webhook,
        expected_secret: &str,
    ) -> Result<bool, StoreError> {
        let (id, owner, document) = (webhook.id.to_string(), webhook.owner_id.to_string(), to_json(webhook)?);
        let expected = expected_secret.to_owned();
        self.with(move |db| {
            let replaced = db
                .execute(
                    "UPDATE webhooks SET document = ?1
                     WHERE id = ?2 AND owner_id = ?3 AND json_extract(document, '$.secret') = ?4",
                    params![document, id, owner, expected],
                )
                .map_err(failed)?;
            Ok(replaced == 1)
        })
        .await
    }

    async fn webhooks_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<finagent_core::webhook::Webhook>, StoreError> {
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |db| {
            documents(db, "SELECT document FROM webhooks WHERE id > ?1 ORDER BY id LIMIT ?2", params![after, limit])
        })
        .await
    }

    async fn save_delivery(&self, delivery: &finagent_core::webhook::WebhookDelivery) -> Result<(), StoreError> {
        let values = (
            delivery.id.to_string(),
            delivery.webhook_id.to_string(),
            delivery.owner_id.to_string(),
            delivery_status(delivery.status),
            delivery.next_attempt_at.timestamp_millis(),
            delivery.created_at.timestamp_millis(),
            to_json(delivery)?,
        );
        self.with(move |db| {
            db.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, owner_id, status, next_attempt_ms, created_ms, document)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, next_attempt_ms = excluded.next_attempt_ms,
                   document = excluded.document",
                params![values.0, values.1, values.2, values.3, values.4, values.5, values.6],
            )
            .map_err(failed)?;
            Ok(())
        })
        .await
    }

    async fn deliveries(
        &self,
        owner: UserId,
        webhook: Uuid,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        let (owner, webhook) = (owner.to_string(), webhook.to_string());
        self.with(move |db| {
            documents(
                db,
                "SELECT document FROM webhook_deliveries WHERE webhook_id = ?1 AND owner_id = ?2
                 ORDER BY created_ms DESC, id DESC LIMIT ?3",
                params![webhook, owner, limit],
            )
        })
        .await
    }

    async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<finagent_core::webhook::WebhookDelivery>, StoreError> {
        let now_ms = now.timestamp_millis();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(1));
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed)?;
            let mut due: Vec<finagent_core::webhook::WebhookDelivery> = documents(
                &transaction,
                "SELECT document FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_ms <= ?1
                 ORDER BY next_attempt_ms LIMIT ?2",
                params![now_ms, limit],
            )?;
            for delivery in &mut due {
                delivery.next_attempt_at = until;
                transaction
                    .execute(
                        "UPDATE webhook_deliveries SET next_attempt_ms = ?2, document = ?3 WHERE id = ?1",
                        params![delivery.id.to_string(), until.timestamp_millis(), to_json(delivery)?],
                    )
                    .map_err(failed)?;
            }
            transaction.commit().map_err(failed)?;
            Ok(due)
        })
        .await
    }
}
