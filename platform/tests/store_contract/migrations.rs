//! Databases written by earlier versions, migrated at open.

use chrono::{Duration, Utc};
use finagent_core::receipt::ReceiptStatus;
use finagent_core::{ReceiptId, UserId};
use finagent_platform::store::sqlite::SqliteStore;
use finagent_platform::store::{ReceiptFilter, ReceiptQuery, ReceiptStore, SortOrder, Usage, UserStore};
use finagent_platform::testkit;

use super::*;

/// A users table from before emails could be shared is rebuilt at open, keeping its rows.
#[tokio::test]
pub(crate) async fn sqlite_users_from_before_shared_emails_are_migrated() {
    let directory = std::env::temp_dir().join(testkit::unique_name("finagent-sqlite-emails"));
    std::fs::create_dir_all(&directory).expect("directory");
    let path = directory.join("finagent.sqlite");
    let alice = user("alice");
    {
        let db = rusqlite::Connection::open(&path).expect("open");
        db.execute_batch(
            "CREATE TABLE users (
               id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, email TEXT NOT NULL UNIQUE, document TEXT NOT NULL);",
        )
        .expect("old schema");
        db.execute(
            "INSERT INTO users (id, username, email, document) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                alice.id.to_string(),
                alice.username,
                alice.email,
                serde_json::to_string(&alice).expect("json")
            ],
        )
        .expect("old row");
    }
    let store = SqliteStore::open(&path, directory.join("blobs")).await.expect("migrated");
    assert_eq!(store.user(alice.id).await.expect("read"), Some(alice.clone()));
    let mut same_email = user("alicia");
    same_email.email = alice.email.clone();
    store.create_user(&same_email).await.expect("a shared email after the migration");
    drop(store);
    // Opening again changes nothing.
    let store = SqliteStore::open(&path, directory.join("blobs")).await.expect("opened again");
    assert_eq!(store.users().await.expect("list").len(), 2);
    std::fs::remove_dir_all(&directory).ok();
}

/// A database written before the key columns existed is migrated at open: its receipts list,
/// sort, filter and count as if they had been stored now.
#[tokio::test]
pub(crate) async fn sqlite_databases_from_before_the_key_columns_are_migrated() {
    let directory = std::env::temp_dir().join(testkit::unique_name("finagent-sqlite-old"));
    std::fs::create_dir_all(&directory).expect("directory");
    let path = directory.join("finagent.sqlite");
    let owner = UserId::new();
    let mut receipts = Vec::new();
    {
        let db = rusqlite::Connection::open(&path).expect("open");
        db.execute_batch(
            "CREATE TABLE receipts (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, status TEXT NOT NULL,
               image_sha256 TEXT NOT NULL, created_at TEXT NOT NULL, result_writes INTEGER NOT NULL DEFAULT 0,
               document TEXT NOT NULL);",
        )
        .expect("old schema");
        for (index, total) in ["5.00", "50.00", "12.00"].into_iter().enumerate() {
            let mut old = upload(owner, &format!("{index:064}"), None);
            old.created_at = Utc::now() + Duration::seconds(index as i64);
            old.status = ReceiptStatus::Done;
            old.result = Some(result(total));
            let mut document = serde_json::to_value(&old).expect("json");
            document.as_object_mut().expect("object").remove("image_bytes");
            db.execute(
                "INSERT INTO receipts (id, owner_id, status, image_sha256, created_at, document) VALUES (?1, ?2, 'done', ?3, ?4, ?5)",
                rusqlite::params![old.id.to_string(), owner.to_string(), old.image_sha256, old.created_at.to_rfc3339(), document.to_string()],
            )
            .expect("old row");
            old.image_bytes = 0;
            receipts.push(old);
        }
    }
    let store = SqliteStore::open(&path, directory.join("blobs")).await.expect("migrated");
    let by_total = ReceiptQuery { sort: SortOrder::Total, limit: 10, ..Default::default() };
    let listed: Vec<ReceiptId> =
        store.receipt_page(owner, &by_total).await.expect("page").iter().map(|r| r.id).collect();
    assert_eq!(listed, [receipts[1].id, receipts[2].id, receipts[0].id]);
    assert_eq!(store.usage(owner).await.expect("usage"), Usage { receipts: 3, image_bytes: 0 });
    let cheap = ReceiptFilter { max_total: Some("12.00".parse().expect("amount")), ..Default::default() };
    assert_eq!(store.count_receipts(owner, &cheap).await.expect("count"), 2);
    drop(store);
    // Opening again changes nothing.
    let store = SqliteStore::open(&path, directory.join("blobs")).await.expect("reopened");
    assert_eq!(store.count_receipts(owner, &ReceiptFilter::default()).await.expect("count"), 3);
}
