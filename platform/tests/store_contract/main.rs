//! One storage contract, two backends: each case runs against MongoDB (the harness's
//! MongoDB-wire server, a fresh database per case) and SQLite (a fresh file per case).

mod accounts;
mod migrations;
mod queries;
mod webhooks;

use chrono::{Duration, Utc};
use finagent_core::account::{Role, User};
use finagent_core::receipt::{EngineInfo, Merchant, Receipt, ReceiptFields, ReceiptResult, ReceiptStatus, Timings};
use finagent_core::{BlobKey, ReceiptId, UserId};
use finagent_platform::store::mongo::MongoStore;
use finagent_platform::store::sqlite::SqliteStore;
use finagent_platform::store::{
    ApiKeyStore, BlobStore, Exceeded, Inserted, ReceiptFilter, ReceiptQuery, ReceiptStore, SessionStore, StorageLimits,
    StoreError, Usage, UserStore,
};
use finagent_platform::testkit;

use accounts::*;
use queries::*;
use webhooks::*;

pub(crate) trait Store:
    ReceiptStore
    + BlobStore
    + UserStore
    + SessionStore
    + ApiKeyStore
    + finagent_platform::store::WebhookStore
    + finagent_platform::store::MerchantMemoryStore
    + finagent_platform::store::InviteStore
    + Clone
    + 'static
{
}

impl<
    T: ReceiptStore
        + BlobStore
        + UserStore
        + SessionStore
        + ApiKeyStore
        + finagent_platform::store::WebhookStore
        + finagent_platform::store::MerchantMemoryStore
        + finagent_platform::store::InviteStore
        + Clone
        + 'static,
> Store for T
{
}

pub(crate) async fn mongo() -> Option<MongoStore> {
    let url = testkit::mongodb_url()?;
    Some(MongoStore::connect(&url, &testkit::unique_name("store").replace('-', "_")).await.expect("mongodb"))
}

pub(crate) async fn sqlite() -> SqliteStore {
    let directory = std::env::temp_dir().join(testkit::unique_name("finagent-sqlite"));
    SqliteStore::open(directory.join("finagent.sqlite"), directory.join("blobs")).await.expect("sqlite")
}

pub(crate) fn receipt(owner: UserId) -> Receipt {
    let id = ReceiptId::new();
    let now = Utc::now();
    Receipt {
        id,
        owner_id: owner,
        status: ReceiptStatus::Queued,
        blob_key: BlobKey::for_receipt(id),
        image_sha256: "ab".repeat(32),
        file_name: Some("lunch.jpg".to_owned()),
        content_type: "image/jpeg".to_owned(),
        created_at: now,
        updated_at: now,
        failure: None,
        result: None,
        corrected: None,
        idempotency_key: None,
        image_bytes: 1000,
    }
}

pub(crate) fn result(total: &str) -> ReceiptResult {
    ReceiptResult {
        fields: ReceiptFields {
            merchant: Merchant { name: Some("KEDAI".to_owned()), address: None },
            date: None,
            date_order: None,
            currency: None,
            subtotal: None,
            tax: None,
            tip: None,
            total: Some(total.parse().expect("amount")),
            payment_method: None,
            category: None,
            line_items: vec![],
        },
        confidence: Default::default(),
        text: "KEDAI".to_owned(),
        engine: EngineInfo { name: "tesseract".to_owned(), version: "5.3.0".to_owned() },
        timings: Timings::default(),
        layout: None,
        country: None,
        locale: None,
        debug: None,
    }
}

pub(crate) fn user(name: &str) -> User {
    User {
        id: UserId::new(),
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role: Role::User,
        disabled: false,
        tokens_valid_after: Utc::now(),
        created_at: Utc::now(),
        preferences: Default::default(),
    }
}

pub(crate) async fn receipts_move_through_their_lifecycle(store: impl Store) {
    let owner = UserId::new();
    let receipt = receipt(owner);
    store.insert_receipt(&receipt).await.expect("insert");
    assert!(matches!(store.insert_receipt(&receipt).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.receipt(receipt.id, Some(owner)).await.expect("read"), Some(receipt.clone()));
    assert_eq!(store.receipt(receipt.id, Some(UserId::new())).await.expect("read"), None, "invisible to others");
    assert!(store.set_status(receipt.id, ReceiptStatus::Processing, None).await.expect("status"));
    store.store_result(receipt.id, &result("9.00")).await.expect("result");
    store.store_result(receipt.id, &result("9.00")).await.expect("a redelivery overwrites");
    let done = store.receipt(receipt.id, None).await.expect("read").expect("exists");
    assert_eq!(done.status, ReceiptStatus::Done);
    assert_eq!(done.result.and_then(|r| r.fields.total).map(|t| t.to_string()).as_deref(), Some("9.00"));
    assert!(!store.set_status(receipt.id, ReceiptStatus::Processing, None).await.expect("status"), "done stays done");

    let poisoned = self::receipt(owner);
    store.insert_receipt(&poisoned).await.expect("insert");
    assert!(store.set_status(poisoned.id, ReceiptStatus::Failed, Some("not a supported image")).await.expect("status"));
    let failed = store.receipt(poisoned.id, None).await.expect("read").expect("exists");
    assert_eq!((failed.status, failed.failure.as_deref()), (ReceiptStatus::Failed, Some("not a supported image")));
}

pub(crate) async fn blobs_round_trip(store: impl Store) {
    let key = BlobKey::for_receipt(ReceiptId::new());
    assert_eq!(store.blob(&key).await.expect("read"), None);
    let image: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    store.put_blob(&key, &image).await.expect("put");
    assert_eq!(store.blob(&key).await.expect("read"), Some(image));
    store.put_blob(&key, b"replaced").await.expect("replace");
    assert_eq!(store.blob(&key).await.expect("read").as_deref(), Some(&b"replaced"[..]));
    store.delete_blob(&key).await.expect("delete");
    store.delete_blob(&key).await.expect("deleting twice is fine");
    assert_eq!(store.blob(&key).await.expect("read"), None);
}

pub(crate) fn upload(owner: UserId, sha: &str, key: Option<&str>) -> Receipt {
    let mut receipt = receipt(owner);
    receipt.image_sha256 = sha.to_owned();
    receipt.idempotency_key = key.map(str::to_owned);
    receipt
}

pub(crate) async fn uploads_are_deduplicated_per_owner_by_image_and_idempotency_key(store: impl Store) {
    let (owner, other) = (UserId::new(), UserId::new());
    let first = upload(owner, &"01".repeat(32), Some("key-1"));
    assert_eq!(store.insert_receipt_once(&first, StorageLimits::NONE).await.expect("insert"), Inserted::New);
    // The same image again: the first receipt comes back, nothing new is stored.
    let again = upload(owner, &"01".repeat(32), None);
    assert_eq!(
        store.insert_receipt_once(&again, StorageLimits::NONE).await.expect("insert"),
        Inserted::Existing(Box::new(first.clone()))
    );
    // The same idempotency key with another image: the first receipt too.
    let retried = upload(owner, &"02".repeat(32), Some("key-1"));
    assert_eq!(
        store.insert_receipt_once(&retried, StorageLimits::NONE).await.expect("insert"),
        Inserted::Existing(Box::new(first.clone()))
    );
    // Another owner with the same image and key is a stranger.
    let stranger = upload(other, &"01".repeat(32), Some("key-1"));
    assert_eq!(store.insert_receipt_once(&stranger, StorageLimits::NONE).await.expect("insert"), Inserted::New);
    assert_eq!(store.count_receipts(owner, &ReceiptFilter::default()).await.expect("count"), 1);
    // Deleting frees the keys.
    assert_eq!(store.delete_receipt(other, first.id).await.expect("delete"), None, "only the owner deletes");
    assert_eq!(store.delete_receipt(owner, first.id).await.expect("delete").map(|r| r.id), Some(first.id));
    assert_eq!(store.receipt(first.id, None).await.expect("read"), None);
    assert_eq!(store.insert_receipt_once(&again, StorageLimits::NONE).await.expect("insert"), Inserted::New);
}

pub(crate) async fn concurrent_identical_uploads_store_one_receipt(store: impl Store) {
    let owner = UserId::new();
    let uploads: Vec<_> = (0..4)
        .map(|_| {
            let (store, receipt) = (store.clone(), upload(owner, &"03".repeat(32), None));
            tokio::spawn(async move { store.insert_receipt_once(&receipt, StorageLimits::NONE).await.expect("insert") })
        })
        .collect();
    let mut new = 0;
    for upload in uploads {
        if upload.await.expect("task") == Inserted::New {
            new += 1;
        }
    }
    assert_eq!(new, 1);
    assert_eq!(store.count_receipts(owner, &ReceiptFilter::default()).await.expect("count"), 1);
}

pub(crate) async fn receipts_list_newest_first_and_corrections_keep_the_original(store: impl Store) {
    let owner = UserId::new();
    let mut ids = Vec::new();
    for index in 0..3u8 {
        let mut receipt = upload(owner, &format!("{index:02}").repeat(32), None);
        receipt.created_at = Utc::now() + Duration::seconds(i64::from(index));
        store.insert_receipt(&receipt).await.expect("insert");
        ids.push(receipt.id);
    }
    store.insert_receipt(&receipt(UserId::new())).await.expect("someone else's");
    let newest = ReceiptQuery { limit: 10, ..Default::default() };
    let listed: Vec<ReceiptId> = store.receipt_page(owner, &newest).await.expect("list").iter().map(|r| r.id).collect();
    assert_eq!(listed, [ids[2], ids[1], ids[0]]);
    store.store_result(ids[0], &result("10.00")).await.expect("result");
    assert!(!store.save_corrections(UserId::new(), ids[0], &result("12.00")).await.expect("save"), "only the owner");
    assert!(store.save_corrections(owner, ids[0], &result("12.00")).await.expect("save"));
    let stored = store.receipt(ids[0], Some(owner)).await.expect("read").expect("exists");
    assert_eq!(stored.result, Some(result("10.00")), "the original extraction is kept");
    assert_eq!(stored.effective_result(), Some(&result("12.00")));
    // A redelivered job overwriting the result keeps the corrections.
    store.store_result(ids[0], &result("10.00")).await.expect("result again");
    let stored = store.receipt(ids[0], Some(owner)).await.expect("read").expect("exists");
    assert_eq!(stored.corrected, Some(result("12.00")));
}

pub(crate) async fn unfinished_receipts_are_found_across_owners(store: impl Store) {
    let (first, second) = (receipt(UserId::new()), receipt(UserId::new()));
    let done = receipt(UserId::new());
    for receipt in [&first, &second, &done] {
        store.insert_receipt(receipt).await.expect("insert");
    }
    store.set_status(second.id, ReceiptStatus::Processing, None).await.expect("processing");
    store.store_result(done.id, &result("1.00")).await.expect("done");
    let unfinished: Vec<ReceiptId> = store.unfinished_receipts().await.expect("list").iter().map(|r| r.id).collect();
    assert!(unfinished.contains(&first.id) && unfinished.contains(&second.id), "{unfinished:?}");
    assert!(!unfinished.contains(&done.id));
}

pub(crate) async fn usage_counts_every_insert_and_delete(store: impl Store) {
    let owner = UserId::new();
    assert_eq!(store.usage(owner).await.expect("usage"), Usage::default());
    let mut first = upload(owner, &"0a".repeat(32), None);
    first.image_bytes = 1_500;
    let mut second = upload(owner, &"0b".repeat(32), None);
    second.image_bytes = 2_500;
    store.insert_receipt(&first).await.expect("insert");
    assert_eq!(store.insert_receipt_once(&second, StorageLimits::NONE).await.expect("insert"), Inserted::New);
    assert_eq!(
        store.insert_receipt_once(&second.clone(), StorageLimits::NONE).await.expect("again"),
        Inserted::Existing(Box::new(second.clone()))
    );
    assert_eq!(store.usage(owner).await.expect("usage"), Usage { receipts: 2, image_bytes: 4_000 });
    store.delete_receipt(owner, first.id).await.expect("delete");
    store.delete_receipt(owner, first.id).await.expect("deleting twice");
    assert_eq!(store.usage(owner).await.expect("usage"), Usage { receipts: 1, image_bytes: 2_500 });
    assert_eq!(store.usage(UserId::new()).await.expect("usage"), Usage::default(), "others are apart");
}

pub(crate) async fn concurrent_uploads_stay_within_the_owner_and_instance_limits(store: impl Store) {
    let (owner, other) = (UserId::new(), UserId::new());
    let limits = StorageLimits { owner_receipts: 3, owner_image_bytes: u64::MAX, instance_image_bytes: u64::MAX };
    let sized = |owner: UserId, n: usize, bytes: u64| {
        let mut receipt = upload(owner, &format!("{n:064x}"), None);
        receipt.image_bytes = bytes;
        receipt
    };
    // Ten at once against a limit of three: exactly three are stored, whatever the interleaving.
    let racing: Vec<_> = (0..10)
        .map(|n| {
            let (store, receipt) = (store.clone(), sized(owner, n, 100));
            tokio::spawn(async move { store.insert_receipt_once(&receipt, limits).await.expect("insert") })
        })
        .collect();
    let mut outcomes = (0, 0);
    for task in racing {
        match task.await.expect("task") {
            Inserted::New => outcomes.0 += 1,
            Inserted::OverLimit(Exceeded::Owner(usage)) => {
                assert!(usage.receipts >= 3, "{usage:?}");
                outcomes.1 += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(outcomes, (3, 7));
    assert_eq!(store.usage(owner).await.expect("usage"), Usage { receipts: 3, image_bytes: 300 });
    assert_eq!(store.count_receipts(owner, &ReceiptFilter::default()).await.expect("count"), 3);
    // An upload stored before comes back even at the limit.
    let stored = store.receipt_page(owner, &ReceiptQuery { limit: 10, ..ReceiptQuery::default() }).await.expect("page")
        [0]
    .clone();
    let replay = upload(owner, &stored.image_sha256, None);
    assert!(matches!(store.insert_receipt_once(&replay, limits).await.expect("replay"), Inserted::Existing(_)));

    // Bytes per owner: 250 + 250 fits in 600, a third does not; one byte over is over.
    let bytes = StorageLimits { owner_receipts: 10, owner_image_bytes: 600, instance_image_bytes: u64::MAX };
    assert_eq!(store.insert_receipt_once(&sized(other, 20, 250), bytes).await.expect("insert"), Inserted::New);
    assert_eq!(store.insert_receipt_once(&sized(other, 21, 350), bytes).await.expect("insert"), Inserted::New);
    let over = store.insert_receipt_once(&sized(other, 22, 1), bytes).await.expect("insert");
    assert_eq!(over, Inserted::OverLimit(Exceeded::Owner(Usage { receipts: 2, image_bytes: 600 })));

    // The instance: every owner's bytes together (900 now), whoever uploads.
    assert_eq!(store.instance_usage().await.expect("instance"), Usage { receipts: 5, image_bytes: 900 });
    let full = StorageLimits { owner_receipts: 10, owner_image_bytes: u64::MAX, instance_image_bytes: 1_000 };
    let newcomer = UserId::new();
    let refused = store.insert_receipt_once(&sized(newcomer, 30, 101), full).await.expect("insert");
    assert_eq!(refused, Inserted::OverLimit(Exceeded::Instance(Usage { receipts: 5, image_bytes: 900 })));
    assert_eq!(store.usage(newcomer).await.expect("usage"), Usage::default(), "a refusal reserves nothing");
    assert_eq!(store.insert_receipt_once(&sized(newcomer, 31, 100), full).await.expect("insert"), Inserted::New);
    // Deleting gives the room back to the owner and to the instance.
    let first = store.receipt_page(other, &ReceiptQuery { limit: 10, ..ReceiptQuery::default() }).await.expect("page")
        [0]
    .clone();
    store.delete_receipt(other, first.id).await.expect("delete");
    assert_eq!(store.instance_usage().await.expect("instance").image_bytes, 1_000 - first.image_bytes);
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod contract_mongo {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = super::mongo().await else { return };
                    super::$case(store).await;
                }
            )*
        }
        mod contract_sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::sqlite().await).await;
                }
            )*
        }
    };
}

contract!(
    receipts_move_through_their_lifecycle,
    blobs_round_trip,
    users_are_unique_by_name_not_by_email,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    api_keys_belong_to_their_owner,
    uploads_are_deduplicated_per_owner_by_image_and_idempotency_key,
    concurrent_identical_uploads_store_one_receipt,
    receipts_list_newest_first_and_corrections_keep_the_original,
    unfinished_receipts_are_found_across_owners,
    user_changes_touch_only_their_field,
    pages_match_the_reference_for_every_filter_and_order,
    spend_aggregates_match_the_reference,
    usage_counts_every_insert_and_delete,
    sessions_are_listed_for_their_user_and_ended_one_by_one,
    webhook_deliveries_are_claimed_once_and_listed_newest_first,
    a_webhook_is_replaced_only_while_its_secret_is_unchanged,
    concurrent_uploads_stay_within_the_owner_and_instance_limits,
    an_invite_is_used_once_and_never_after_it_expires,
    merchant_memory_recalls_the_latest_match_of_its_owner_only,
);
