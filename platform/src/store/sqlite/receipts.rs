//! Receipts and their blobs: one row per receipt with the columns its queries filter and sort on.

use chrono::{Datelike, NaiveDate, Utc};
use finagent_core::insights::SpendAggregates;
use finagent_core::receipt::{Receipt, ReceiptResult, ReceiptStatus};
use finagent_core::{BlobKey, ReceiptId, UserId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::insights::spend_aggregates;
use super::usage::{count_usage, exceeded, unspend, usage_of, write_keys};
use super::{SqliteStore, conflict_or, document, documents, failed, to_json};
use crate::store::query::{KeyValue, OrderKey, ReceiptFilter, ReceiptQuery, Usage};
use crate::store::{BlobStore, INSTANCE_USAGE_KEY, Inserted, ReceiptStore, StorageLimits, StoreError, dedup_keys};

/// The SQL condition and parameters of a filter, for an owner (parameter 1).
pub(super) fn filter_sql(owner: String, filter: &ReceiptFilter) -> (String, Vec<Value>) {
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
pub(super) fn column(key: OrderKey) -> &'static str {
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
pub(super) fn sql_value(value: KeyValue) -> Value {
    match value {
        KeyValue::Integer(integer) => Value::Integer(integer),
        KeyValue::Real(real) => Value::Real(real),
        KeyValue::Id(id) => Value::Text(id.to_string()),
    }
}

/// A receipt as its row: the indexed columns and the JSON document.
pub(super) struct ReceiptRow {
    id: String,
    owner: String,
    status: &'static str,
    sha: String,
    created: String,
    document: String,
    receipt: Receipt,
}

impl ReceiptRow {
    pub(super) fn of(receipt: &Receipt) -> Result<Self, StoreError> {
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
    pub(super) fn insert(&self, db: &Connection) -> Result<(), StoreError> {
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
            let transaction = db.transaction().map_err(failed("insert_receipt"))?;
            row.insert(&transaction)?;
            transaction.commit().map_err(failed("insert_receipt"))?;
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
            let transaction = db
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(failed("insert_receipt_once"))?;
            for key in &keys {
                let existing: Option<String> = transaction
                    .query_row("SELECT receipt_id FROM receipt_keys WHERE key = ?1", params![key], |row| row.get(0))
                    .optional()
                    .map_err(failed("insert_receipt_once"))?;
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
                    .map_err(failed("insert_receipt_once"))?;
            }
            transaction.commit().map_err(failed("insert_receipt_once"))?;
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
            let transaction = db.transaction().map_err(failed("delete_receipt"))?;
            let found = document::<Receipt>(
                &transaction,
                "SELECT document FROM receipts WHERE id = ?1 AND owner_id = ?2",
                params![id, owner],
            )?;
            if let Some(found) = &found {
                let spent = unspend(&transaction, &id)?;
                transaction
                    .execute("DELETE FROM receipt_keys WHERE receipt_id = ?1", params![id])
                    .map_err(failed("delete_receipt"))?;
                transaction
                    .execute("DELETE FROM receipts WHERE id = ?1", params![id])
                    .map_err(failed("delete_receipt"))?;
                if let Some(spent) = spent {
                    spent.refresh_duplicates(&transaction)?;
                }
                count_usage(&transaction, &owner, found.image_bytes, -1)?;
                transaction.commit().map_err(failed("delete_receipt"))?;
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
        let corrected = corrected.clone();
        self.update_receipt("save_corrections", id, Some(owner), move |receipt, _| {
            receipt.corrected = Some(corrected);
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
        let failure = failure.map(str::to_owned);
        self.update_receipt("set_status", id, None, move |receipt, _| {
            if !receipt.status.can_become(next) {
                return Ok(false);
            }
            receipt.status = next;
            if failure.is_some() {
                receipt.failure = failure;
            }
            Ok(true)
        })
        .await
    }

    async fn store_result(&self, id: ReceiptId, result: &ReceiptResult) -> Result<(), StoreError> {
        let result = result.clone();
        self.update_receipt("store_result", id, None, move |receipt, transaction| {
            if receipt.status == ReceiptStatus::Failed {
                return Ok(false);
            }
            receipt.status = ReceiptStatus::Done;
            receipt.result = Some(result);
            receipt.failure = None;
            transaction
                .execute(
                    "UPDATE receipts SET result_writes = result_writes + 1 WHERE id = ?1",
                    params![receipt.id.to_string()],
                )
                .map_err(failed("store_result"))?;
            Ok(true)
        })
        .await
        .map(|_| ())
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
                .map_err(failed("count_receipts"))
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

impl BlobStore for SqliteStore {
    async fn put_blob(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.blob_path(key)?;
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(failed("put_blob"))?;
            }
            let temporary = path.with_extension(format!("partial-{}", Uuid::new_v4()));
            std::fs::write(&temporary, &bytes).map_err(failed("put_blob"))?;
            std::fs::rename(&temporary, &path).map_err(failed("put_blob"))
        })
        .await
        .map_err(failed("put_blob"))?
    }

    async fn blob(&self, key: &BlobKey) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.blob_path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(failed("blob")(error)),
        }
    }

    async fn delete_blob(&self, key: &BlobKey) -> Result<(), StoreError> {
        let path = self.blob_path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(failed("delete_blob")(error)),
        }
    }
}

impl SqliteStore {
    /// Reads a receipt (the owner's, when `owner` is given), lets `change` edit it in the same
    /// transaction, and writes it back with its keys when `change` says so. Whether it was written.
    async fn update_receipt<F>(
        &self,
        operation: &'static str,
        id: ReceiptId,
        owner: Option<UserId>,
        change: F,
    ) -> Result<bool, StoreError>
    where
        F: FnOnce(&mut Receipt, &rusqlite::Transaction<'_>) -> Result<bool, StoreError> + Send + 'static,
    {
        let (id, owner) = (id.to_string(), owner.map(|owner| owner.to_string()));
        let versions = self.versions.clone();
        self.with(move |db| {
            let transaction = db.transaction().map_err(failed(operation))?;
            let Some(mut receipt) = document::<Receipt>(
                &transaction,
                "SELECT document FROM receipts WHERE id = ?1 AND (?2 IS NULL OR owner_id = ?2)",
                params![id, owner],
            )?
            else {
                return Ok(false);
            };
            if !change(&mut receipt, &transaction)? {
                return Ok(false);
            }
            receipt.updated_at = Utc::now();
            write_keys(&transaction, &receipt)?;
            transaction.commit().map_err(failed(operation))?;
            versions.bump(receipt.owner_id);
            Ok(true)
        })
        .await
    }
}
