//! SQLite storage for the single-machine mode: one database file for documents and a folder for
//! image blobs.
//!
//! Each record is kept as its JSON model next to the columns its queries filter on, so the model
//! can grow without migrations while every query path has an index. The schema is created
//! idempotently at open. SQLite calls block, so they run on the blocking thread pool; one
//! connection behind a mutex serialises writers, which is what SQLite does anyway. Blobs are
//! written to a temporary file and renamed into place, so a crash never leaves half an image.

mod accounts;
mod insights;
mod memory;
mod receipts;
mod schema;
mod usage;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use finagent_core::{BlobKey, UserId};
use rusqlite::{Connection, OptionalExtension};

use super::{Source, StoreError};
use schema::{SCHEMA, allow_shared_emails, migrate};

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
pub(super) struct Versions(Arc<Mutex<std::collections::HashMap<UserId, u64>>>);

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

pub(super) fn failed<E: Into<Source>>(operation: &'static str) -> impl FnOnce(E) -> StoreError {
    StoreError::unavailable(operation)
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::corrupt(std::any::type_name::<T>()))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(StoreError::corrupt(std::any::type_name::<T>()))
}

/// The JSON document the query selects, decoded, if a row matches.
pub(super) fn document<T: serde::de::DeserializeOwned>(
    db: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> =
        db.query_row(sql, parameters, |row| row.get(0)).optional().map_err(failed("document"))?;
    text.as_deref().map(from_json).transpose()
}

/// Every JSON document the query selects, decoded, in the query's order.
pub(super) fn documents<T: serde::de::DeserializeOwned>(
    db: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError> {
    let mut statement = db.prepare(sql).map_err(failed("documents"))?;
    let texts: Vec<String> = statement
        .query_map(parameters, |row| row.get(0))
        .map_err(failed("documents"))?
        .collect::<Result<_, _>>()
        .map_err(failed("documents"))?;
    texts.iter().map(|text| from_json(text)).collect()
}

pub(super) fn conflict_or(error: rusqlite::Error, what: &str) -> StoreError {
    match error {
        rusqlite::Error::SqliteFailure(code, _) if code.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(what.to_owned())
        }
        other => failed("conflict_or")(other),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and the blob folder.
    pub async fn open(database: impl AsRef<Path>, blobs: impl AsRef<Path>) -> Result<Self, StoreError> {
        let database = database.as_ref().to_owned();
        let blobs = blobs.as_ref().to_owned();
        std::fs::create_dir_all(&blobs).map_err(failed("open"))?;
        if let Some(parent) = database.parent() {
            std::fs::create_dir_all(parent).map_err(failed("open"))?;
        }
        let connection = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let connection = Connection::open(&database).map_err(failed("open"))?;
            connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(failed("open"))?;
            connection.execute_batch(SCHEMA).map_err(failed("open"))?;
            let mut connection = connection;
            migrate(&mut connection)?;
            allow_shared_emails(&mut connection)?;
            Ok(connection)
        })
        .await
        .map_err(failed("open"))??;
        Ok(Self { connection: Arc::new(Mutex::new(connection)), blobs, versions: Versions::default() })
    }

    /// The version of `owner`'s receipts in this process (see [`Versions`]).
    pub fn receipts_version(&self, owner: UserId) -> Option<u64> {
        self.versions.get(owner)
    }

    /// Checks that the database file answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with(|db| db.query_row("SELECT 1", [], |_| Ok(())).map_err(failed("ping"))).await
    }

    async fn with<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut guard = connection
                .lock()
                .map_err(|_| failed("use the database connection")("a thread panicked while holding it"))?;
            work(&mut guard)
        })
        .await
        .map_err(failed("run a blocking database call"))?
    }

    /// Inserts one row; a unique key already taken is a conflict over `what`.
    async fn insert_row(
        &self,
        what: &'static str,
        sql: &'static str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<(), StoreError> {
        self.with(move |db| {
            db.execute(sql, rusqlite::params_from_iter(values)).map_err(|e| conflict_or(e, what))?;
            Ok(())
        })
        .await
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
            return Err(StoreError::corrupt("blob key")(format!("{:?} could leave the blob folder", key.as_str())));
        }
        Ok(self.blobs.join(key.as_str()))
    }
}
