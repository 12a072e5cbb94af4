//! One storage contract, two backends: each case runs against MongoDB (the harness's
//! MongoDB-wire server, a fresh database per case) and SQLite (a fresh file per case).

use chrono::NaiveDate;
use chrono::{Duration, Utc};
use finagent_core::account::{ApiKey, Role, Rotation, Session, User};
use finagent_core::insights::{SpendAggregates, SpendRecord, aggregate};
use finagent_core::money::{Amount, Currency};
use finagent_core::receipt::Category;
use finagent_core::receipt::{EngineInfo, Merchant, Receipt, ReceiptResult, ReceiptStatus, Timings};
use finagent_core::{BlobKey, ReceiptId, UserId};
use finagent_platform::store::mongo::MongoStore;
use finagent_platform::store::query::page_in_memory;
use finagent_platform::store::sqlite::SqliteStore;
use finagent_platform::store::{
    ApiKeyStore, BlobStore, Exceeded, Inserted, Position, ReceiptFilter, ReceiptQuery, ReceiptStore, SessionStore,
    SortOrder, StorageLimits, StoreError, Usage, UserChange, UserStore,
};
use finagent_platform::testkit;
use uuid::Uuid;

trait Store:
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

async fn mongo() -> Option<MongoStore> {
    let url = testkit::mongodb_url()?;
    Some(MongoStore::connect(&url, &testkit::unique_name("store").replace('-', "_")).await.expect("mongodb"))
}

async fn sqlite() -> SqliteStore {
    let directory = std::env::temp_dir().join(testkit::unique_name("finagent-sqlite"));
    SqliteStore::open(directory.join("finagent.sqlite"), directory.join("blobs")).await.expect("sqlite")
}

fn receipt(owner: UserId) -> Receipt {
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

fn result(total: &str) -> ReceiptResult {
    ReceiptResult {
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

fn user(name: &str) -> User {
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

async fn receipts_move_through_their_lifecycle(store: impl Store) {
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
    assert_eq!(done.result.and_then(|r| r.total).map(|t| t.to_string()).as_deref(), Some("9.00"));
    assert!(!store.set_status(receipt.id, ReceiptStatus::Processing, None).await.expect("status"), "done stays done");

    let poisoned = self::receipt(owner);
    store.insert_receipt(&poisoned).await.expect("insert");
    assert!(store.set_status(poisoned.id, ReceiptStatus::Failed, Some("not a supported image")).await.expect("status"));
    let failed = store.receipt(poisoned.id, None).await.expect("read").expect("exists");
    assert_eq!((failed.status, failed.failure.as_deref()), (ReceiptStatus::Failed, Some("not a supported image")));
}

async fn blobs_round_trip(store: impl Store) {
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

async fn users_are_unique_by_name_not_by_email(store: impl Store) {
    let alice = user("alice");
    store.create_user(&alice).await.expect("create");
    let mut clash = user("alice");
    clash.email = "other@example.com".to_owned();
    assert!(matches!(store.create_user(&clash).await, Err(StoreError::Conflict(_))));
    // Nobody verified the address: another account may give it too.
    let mut same_email = user("alicia");
    same_email.email = alice.email.clone();
    store.create_user(&same_email).await.expect("a shared email");
    store.create_user(&user("bob")).await.expect("create");
    assert_eq!(store.user_by_name("alice").await.expect("read"), Some(alice.clone()));
    assert_eq!(store.user(alice.id).await.expect("read"), Some(alice.clone()));
    let names: Vec<String> = store.users().await.expect("list").into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["alice", "alicia", "bob"]);
    let promoted = User { role: Role::Admin, disabled: true, ..alice.clone() };
    assert!(store.update_user(&promoted).await.expect("update"));
    assert_eq!(store.user(alice.id).await.expect("read"), Some(promoted));
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(store: impl Store) {
    let now = Utc::now();
    let user_id = UserId::new();
    let session = Session {
        family_id: Uuid::new_v4(),
        user_id,
        current_token_hash: "t1".to_owned(),
        created_at: now,
        expires_at: now + Duration::days(14),
        revoked: false,
        last_used_at: None,
        client_address: Some("203.0.113.5".to_owned()),
        user_agent: Some("curl/8".to_owned()),
    };
    store.create_session(&session).await.expect("create");
    let rotated = store.rotate_session("t1", "t2", now).await.expect("rotate");
    assert!(
        matches!(&rotated, Rotation::Rotated(s) if s.current_token_hash == "t2" && s.family_id == session.family_id)
    );
    assert_eq!(store.rotate_session("unknown", "x", now).await.expect("rotate"), Rotation::Invalid);
    assert_eq!(store.rotate_session("t1", "t3", now).await.expect("rotate"), Rotation::ReuseDetected, "t1 was used");
    assert_eq!(store.rotate_session("t2", "t4", now).await.expect("rotate"), Rotation::Invalid, "family revoked");

    let other = Session { family_id: Uuid::new_v4(), current_token_hash: "u1".to_owned(), ..session.clone() };
    store.create_session(&other).await.expect("create");
    assert_eq!(
        store.rotate_session("u1", "u2", now + Duration::days(15)).await.expect("rotate"),
        Rotation::Invalid,
        "expired"
    );
    assert_eq!(store.revoke_user_sessions(user_id).await.expect("revoke all"), 1);
    assert_eq!(store.rotate_session("u1", "u2", now).await.expect("rotate"), Rotation::Invalid);

    let third = Session { family_id: Uuid::new_v4(), current_token_hash: "v1".to_owned(), ..session };
    store.create_session(&third).await.expect("create");
    store.revoke_session(third.family_id).await.expect("logout");
    assert_eq!(store.rotate_session("v1", "v2", now).await.expect("rotate"), Rotation::Invalid);
}

async fn sessions_are_listed_for_their_user_and_ended_one_by_one(store: impl Store) {
    let now = Utc::now();
    let (ann, bob) = (UserId::new(), UserId::new());
    let session = |user: UserId, token: &str, started: i64| Session {
        family_id: Uuid::new_v4(),
        user_id: user,
        current_token_hash: token.to_owned(),
        created_at: now - Duration::minutes(started),
        expires_at: now + Duration::days(14),
        revoked: false,
        last_used_at: None,
        client_address: Some("198.51.100.7".to_owned()),
        user_agent: Some("Firefox".to_owned()),
    };
    let (old, new, theirs) = (session(ann, "a1", 60), session(ann, "b1", 30), session(bob, "c1", 10));
    for session in [&old, &new, &theirs] {
        store.create_session(session).await.expect("create");
    }
    let expired = Session { expires_at: now - Duration::minutes(1), ..session(ann, "d1", 90) };
    store.create_session(&expired).await.expect("create");
    let listed: Vec<Uuid> = store.user_sessions(ann, now).await.expect("list").iter().map(|s| s.family_id).collect();
    assert_eq!(listed, [new.family_id, old.family_id], "live ones, most recent first");
    // Using the old one moves it first and records when.
    store.rotate_session("a1", "a2", now).await.expect("rotate");
    let listed = store.user_sessions(ann, now).await.expect("list");
    assert_eq!(listed[0].family_id, old.family_id);
    assert_eq!(listed[0].last_used_at.map(|at| at.timestamp()), Some(now.timestamp()));
    assert_eq!(listed[0].user_agent.as_deref(), Some("Firefox"));
    assert!(!store.revoke_user_session(bob, old.family_id).await.expect("revoke"), "not bob's");
    assert!(store.revoke_user_session(ann, old.family_id).await.expect("revoke"));
    assert!(!store.revoke_user_session(ann, old.family_id).await.expect("revoke"), "already ended");
    let listed: Vec<Uuid> = store.user_sessions(ann, now).await.expect("list").iter().map(|s| s.family_id).collect();
    assert_eq!(listed, [new.family_id]);
    assert_eq!(store.rotate_session("a2", "a3", now).await.expect("rotate"), Rotation::Invalid, "ended");
    assert_eq!(store.user_sessions(bob, now).await.expect("list").len(), 1);
}

async fn webhook_deliveries_are_claimed_once_and_listed_newest_first(store: impl Store) {
    use finagent_core::webhook::{DeliveryStatus, Webhook, WebhookDelivery};
    let (owner, other) = (UserId::new(), UserId::new());
    let webhook = Webhook {
        id: Uuid::now_v7(),
        owner_id: owner,
        url: "https://example.com/hook".into(),
        secret: "whsec_x".into(),
        previous_secret: None,
        previous_secret_expires_at: None,
        events: vec!["receipt.done".into()],
        created_at: Utc::now(),
    };
    store.create_webhook(&webhook).await.expect("create");
    assert_eq!(store.webhooks(owner).await.expect("list"), std::slice::from_ref(&webhook));
    assert!(store.webhooks(other).await.expect("list").is_empty());
    let now = Utc::now();
    let delivery = |minutes_ago: i64| WebhookDelivery {
        id: Uuid::now_v7(),
        webhook_id: webhook.id,
        owner_id: owner,
        event: "receipt.done".into(),
        payload: "{}".into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: now - Duration::minutes(minutes_ago),
        last_status: None,
        last_error: None,
        created_at: now - Duration::minutes(minutes_ago),
        delivered_at: None,
    };
    let (due, later) = (delivery(2), WebhookDelivery { next_attempt_at: now + Duration::minutes(5), ..delivery(1) });
    store.save_delivery(&due).await.expect("save");
    store.save_delivery(&later).await.expect("save");
    let lease = std::time::Duration::from_secs(60);
    let claimed = store.claim_due_deliveries(now, lease, 10).await.expect("claim");
    assert_eq!(claimed.iter().map(|d| d.id).collect::<Vec<_>>(), [due.id], "only the due one");
    assert!(store.claim_due_deliveries(now, lease, 10).await.expect("claim").is_empty(), "leased: not claimed twice");
    let done = WebhookDelivery { status: DeliveryStatus::Delivered, attempts: 1, ..claimed[0].clone() };
    store.save_delivery(&done).await.expect("record");
    let later_still = now + Duration::minutes(10);
    let next = store.claim_due_deliveries(later_still, lease, 10).await.expect("claim");
    assert_eq!(next.iter().map(|d| d.id).collect::<Vec<_>>(), [later.id], "delivered ones are never claimed again");
    let listed = store.deliveries(owner, webhook.id, 10).await.expect("history");
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [later.id, due.id], "newest first");
    assert_eq!(listed[1].status, DeliveryStatus::Delivered);
    assert!(store.deliveries(other, webhook.id, 10).await.expect("history").is_empty(), "only the owner's");
    assert!(!store.delete_webhook(other, webhook.id).await.expect("delete"));
    assert!(store.delete_webhook(owner, webhook.id).await.expect("delete"));
    assert!(store.webhooks(owner).await.expect("list").is_empty());
}

async fn a_webhook_is_replaced_only_while_its_secret_is_unchanged(store: impl Store) {
    use finagent_core::webhook::Webhook;
    let (owner, other) = (UserId::new(), UserId::new());
    let webhook = |secret: &str| Webhook {
        id: Uuid::now_v7(),
        owner_id: owner,
        url: "https://example.com/hook".into(),
        secret: secret.into(),
        previous_secret: None,
        previous_secret_expires_at: None,
        events: vec!["receipt.done".into()],
        created_at: Utc::now(),
    };
    let (first, second) = (webhook("sealed-a"), webhook("sealed-b"));
    store.create_webhook(&first).await.expect("create");
    store.create_webhook(&second).await.expect("create");
    let rotated = Webhook {
        secret: "sealed-c".into(),
        previous_secret: Some("sealed-a".into()),
        previous_secret_expires_at: Some(Utc::now() + Duration::hours(24)),
        ..first.clone()
    };
    assert!(
        !store.replace_webhook(&Webhook { owner_id: other, ..rotated.clone() }, "sealed-a").await.expect("replace"),
        "another owner's"
    );
    assert!(store.replace_webhook(&rotated, "sealed-a").await.expect("replace"));
    // A re-seal that read the old secret lost the race: it changes nothing.
    let stale = Webhook { secret: "sealed-a2".into(), ..first.clone() };
    assert!(!store.replace_webhook(&stale, "sealed-a").await.expect("replace"));
    let listed = store.webhooks(owner).await.expect("list");
    assert_eq!(listed, [rotated.clone(), second.clone()]);
    // Paged by id across owners.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.webhooks_after(after, 1).await.expect("page");
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.into_iter().filter(|hook| hook.owner_id == owner).map(|hook| hook.id));
    }
    assert_eq!(seen, [first.id, second.id]);
}

async fn api_keys_belong_to_their_owner(store: impl Store) {
    let owner = UserId::new();
    let key = |name: &str, hash: &str, age: i64| ApiKey {
        id: Uuid::new_v4(),
        owner_id: owner,
        name: name.to_owned(),
        prefix: hash[..2].to_owned(),
        key_hash: hash.to_owned(),
        created_at: Utc::now() - Duration::minutes(age),
        revoked: false,
        expires_at: None,
        scope: Default::default(),
    };
    let (old, new) = (key("ci", "h1h1", 10), key("laptop", "h2h2", 1));
    store.create_api_key(&old).await.expect("create");
    store.create_api_key(&new).await.expect("create");
    assert!(matches!(store.create_api_key(&key("dup", "h1h1", 0)).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.api_key_by_hash("h1h1").await.expect("read"), Some(old.clone()));
    let names: Vec<String> = store.api_keys(owner).await.expect("list").into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["laptop", "ci"]);
    assert!(!store.revoke_api_key(UserId::new(), old.id).await.expect("revoke"), "only the owner revokes");
    assert!(store.revoke_api_key(owner, old.id).await.expect("revoke"));
    assert!(!store.revoke_api_key(owner, old.id).await.expect("revoke"), "a revoked key is not revoked twice");
    assert_eq!(store.api_key_by_hash("h1h1").await.expect("read"), None, "a revoked key is rejected");
}

fn upload(owner: UserId, sha: &str, key: Option<&str>) -> Receipt {
    let mut receipt = receipt(owner);
    receipt.image_sha256 = sha.to_owned();
    receipt.idempotency_key = key.map(str::to_owned);
    receipt
}

async fn uploads_are_deduplicated_per_owner_by_image_and_idempotency_key(store: impl Store) {
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

async fn concurrent_identical_uploads_store_one_receipt(store: impl Store) {
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

async fn receipts_list_newest_first_and_corrections_keep_the_original(store: impl Store) {
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

async fn unfinished_receipts_are_found_across_owners(store: impl Store) {
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

async fn user_changes_touch_only_their_field(store: impl Store) {
    let ann = user("ann");
    store.create_user(&ann).await.expect("create");
    // A stale copy read before the disable must not undo it: changes go field by field.
    let later = ann.tokens_valid_after + Duration::seconds(5);
    let disabled =
        store.change_user(ann.id, &UserChange::Disabled(true), Some(later)).await.expect("disable").expect("user");
    assert!(disabled.disabled);
    let rehashed =
        store.change_user(ann.id, &UserChange::Password("$new".into()), None).await.expect("hash").expect("user");
    assert!(rehashed.disabled, "the password change kept the disable");
    assert_eq!(rehashed.password_hash, "$new");
    assert_eq!(rehashed.tokens_valid_after, later);
    let promoted = store.change_user(ann.id, &UserChange::Role(Role::Admin), None).await.expect("role").expect("user");
    assert_eq!((promoted.role, promoted.disabled, promoted.password_hash.as_str()), (Role::Admin, true, "$new"));
    assert_eq!(store.user(ann.id).await.expect("read"), Some(promoted));
    assert_eq!(store.change_user(UserId::new(), &UserChange::Disabled(true), None).await.expect("missing"), None);
}

/// A deterministic mix of receipts for one owner: dated and undated, priced and not, several
/// merchants (in different spellings), categories and currencies, duplicates, unusual totals,
/// corrections, failures and receipts still queued; stored through the trait like uploads.
async fn seed_mixed(store: &impl Store, owner: UserId, count: u32) -> Vec<Receipt> {
    let merchants = [Some("Kedai Papan"), Some("KEDAI  PAPAN"), Some("99 Speed Mart"), Some("Café Ümlaut"), None];
    let categories = [Some(Category::Groceries), Some(Category::Dining), None, Some(Category::Hardware)];
    let base = Utc::now() - Duration::days(30);
    let mut seed = 7u64;
    let mut next = move |modulus: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % modulus
    };
    for index in 0..count {
        let mut receipt = upload(owner, &format!("{:064x}", index % (count - 3)), None);
        // A few uploads share a second (equal keys are ordered by id).
        receipt.created_at = base + Duration::seconds(i64::from(index / 3));
        receipt.image_bytes = 100 + u64::from(index);
        // Bypass de-duplication for the images that repeat on purpose.
        store.insert_receipt(&receipt).await.expect("insert");
        match next(10) {
            0 => {
                store.set_status(receipt.id, ReceiptStatus::Failed, Some("unreadable")).await.expect("fail");
                continue;
            }
            1 => continue,
            _ => {}
        }
        let mut extracted = result("0");
        extracted.merchant.name = merchants[next(5) as usize].map(str::to_owned);
        extracted.date = (next(6) > 0)
            .then(|| NaiveDate::from_ymd_opt(2024, 1 + next(12) as u32, 1 + next(3) as u32).expect("date"));
        extracted.total = (next(7) > 0).then(|| {
            let cents = if next(15) == 0 { 90_000 + next(1000) } else { 500 + next(5) * 250 };
            Amount::from_minor(cents as i64, 2)
        });
        extracted.currency = match next(8) {
            0 => Some(Currency::EUR),
            1 => None,
            _ => Some(Currency::MYR),
        };
        extracted.category = categories[next(4) as usize];
        extracted.confidence.total = Some(next(100) as f64 / 100.0);
        extracted.confidence.merchant_name = Some(0.9);
        extracted.confidence.date = Some(0.8);
        store.store_result(receipt.id, &extracted).await.expect("result");
        if next(6) == 0 {
            let mut corrected = extracted.clone();
            corrected.merchant.name = Some("Corrected Shop".to_owned());
            corrected.total = Some(Amount::from_minor(1234, 2));
            corrected.date = Some(NaiveDate::from_ymd_opt(2024, 6, 15).expect("date"));
            assert!(store.save_corrections(owner, receipt.id, &corrected).await.expect("correct"));
        }
    }
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let query = ReceiptQuery { after, limit: 50, ..Default::default() };
        let page = store.receipt_page(owner, &query).await.expect("page");
        after = page.last().map(|receipt| Position::of(SortOrder::Newest, receipt));
        let done = page.len() < 50;
        stored.extend(page);
        if done {
            break;
        }
    }
    assert_eq!(stored.len(), count as usize, "every receipt is listed once");
    stored
}

fn filters() -> Vec<ReceiptFilter> {
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2024, m, d).expect("date");
    vec![
        ReceiptFilter::default(),
        ReceiptFilter { from: Some(day(3, 1)), to: Some(day(8, 31)), ..Default::default() },
        ReceiptFilter { merchant: Some("papan".into()), ..Default::default() },
        ReceiptFilter { merchant: Some("ÜMLAUT".into()), ..Default::default() },
        ReceiptFilter { merchant: Some("a.*".into()), ..Default::default() },
        ReceiptFilter { category: Some(Category::Dining), status: Some(ReceiptStatus::Done), ..Default::default() },
        ReceiptFilter {
            min_total: Some("10.00".parse().expect("amount")),
            max_total: Some("900.00".parse().expect("amount")),
            ..Default::default()
        },
        ReceiptFilter { status: Some(ReceiptStatus::Failed), ..Default::default() },
    ]
}

async fn pages_match_the_reference_for_every_filter_and_order(store: impl Store) {
    let owner = UserId::new();
    let stored = seed_mixed(&store, owner, 90).await;
    seed_mixed(&store, UserId::new(), 10).await;
    for filter in filters() {
        let expected_count = stored.iter().filter(|receipt| filter.matches(receipt)).count() as u64;
        assert_eq!(store.count_receipts(owner, &filter).await.expect("count"), expected_count, "{filter:?}");
        for sort in SortOrder::ALL {
            let mut after = None;
            let mut pages = 0;
            loop {
                let query = ReceiptQuery { filter: filter.clone(), sort, after, limit: 7 };
                let got: Vec<ReceiptId> =
                    store.receipt_page(owner, &query).await.expect("page").iter().map(|r| r.id).collect();
                let want: Vec<ReceiptId> = page_in_memory(&stored, &query).iter().map(|r| r.id).collect();
                assert_eq!(got, want, "{sort:?} {filter:?} page {pages}");
                let Some(last) = want.last() else { break };
                let last = stored.iter().find(|receipt| receipt.id == *last).expect("stored");
                after = Some(Position::of(sort, last));
                pages += 1;
            }
        }
    }
}

fn spend_records(receipts: &[Receipt]) -> Vec<SpendRecord> {
    receipts
        .iter()
        .filter(|receipt| receipt.status == ReceiptStatus::Done)
        .filter_map(|receipt| {
            let result = receipt.effective_result()?;
            Some(SpendRecord {
                receipt_id: receipt.id,
                date: result.date?,
                merchant: result.merchant.name.clone(),
                category: result.category,
                total: result.total?,
                currency: result.currency,
                image_sha256: receipt.image_sha256.clone(),
            })
        })
        .collect()
}

async fn spend_aggregates_match_the_reference(store: impl Store) {
    let owner = UserId::new();
    let stored = seed_mixed(&store, owner, 120).await;
    let records = spend_records(&stored);
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2024, m, d).expect("date");
    for (from, to) in
        [(day(1, 1), day(12, 31)), (day(3, 1), day(5, 31)), (day(6, 15), day(6, 15)), (day(12, 30), day(12, 31))]
    {
        let got = store.spend_aggregates(owner, from, to).await.expect("aggregates");
        let want = aggregate(&records, from, to);
        assert_eq!(got, want, "{from}..{to}");
    }
    let year = store.spend_aggregates(owner, day(1, 1), day(12, 31)).await.expect("aggregates");
    assert!(
        year.median.is_some() && !year.unusual.is_empty() && !year.same_image.is_empty() && !year.same_sale.is_empty(),
        "the mix exercises every part: {year:?}"
    );
    assert!(year.other_currency_receipts > 0 && year.by_merchant.len() > 2);
    let nobody = store.spend_aggregates(UserId::new(), day(1, 1), day(12, 31)).await.expect("aggregates");
    assert_eq!(nobody, SpendAggregates::default());
}

async fn usage_counts_every_insert_and_delete(store: impl Store) {
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

async fn concurrent_uploads_stay_within_the_owner_and_instance_limits(store: impl Store) {
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

async fn an_invite_is_used_once_and_never_after_it_expires(store: impl Store) {
    use finagent_core::account::Invite;
    let admin = UserId::new();
    let now = Utc::now();
    let invite = |hash: &str, made_ago: i64, lasts: i64| Invite {
        id: Uuid::now_v7(),
        code_hash: hash.into(),
        note: format!("for {hash}"),
        created_by: admin,
        created_at: now - Duration::minutes(made_ago),
        expires_at: now - Duration::minutes(made_ago) + Duration::minutes(lasts),
    };
    let (older, newer, stale) = (invite("h1", 10, 60), invite("h2", 5, 60), invite("h3", 120, 60));
    for one in [&older, &newer, &stale] {
        store.create_invite(one).await.expect("create");
    }
    assert!(
        matches!(store.create_invite(&invite("h1", 0, 60)).await, Err(StoreError::Conflict(_))),
        "codes are unique"
    );
    assert_eq!(store.invites(now).await.expect("list"), [newer.clone(), older.clone()], "live ones, newest first");
    assert_eq!(store.take_invite("h3", now).await.expect("take"), None, "expired");
    assert_eq!(store.take_invite("nope", now).await.expect("take"), None);
    // Two registrations race for one invite: exactly one gets it.
    let racing: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_invite("h1", Utc::now()).await.expect("take") })
        })
        .collect();
    let mut winners = Vec::new();
    for task in racing {
        winners.extend(task.await.expect("task"));
    }
    assert_eq!(winners, std::slice::from_ref(&older));
    assert!(store.delete_invite(newer.id).await.expect("delete"));
    assert!(!store.delete_invite(newer.id).await.expect("delete"), "already withdrawn");
    assert_eq!(store.take_invite("h2", now).await.expect("take"), None, "withdrawn");
    assert!(store.invites(now).await.expect("list").is_empty());
}

async fn merchant_memory_recalls_the_latest_match_of_its_owner_only(store: impl Store) {
    use finagent_core::receipt::{Category, RememberedMerchant};
    let (owner, other) = (UserId::new(), UserId::new());
    let keys = |list: &[&str]| list.iter().map(|key| (*key).to_owned()).collect::<Vec<_>>();
    assert_eq!(store.recall_merchant(owner, &keys(&["tel:4252522123"])).await.expect("recall"), None);
    assert_eq!(store.recall_merchant(owner, &[]).await.expect("recall nothing"), None);
    let sushi = RememberedMerchant { name: Some("Sushi Man".to_owned()), category: Some(Category::Dining) };
    store.remember_merchant(owner, &keys(&["tel:4252522123", "line:SUSHIMAN"]), &sushi).await.expect("remember");
    assert_eq!(
        store.recall_merchant(owner, &keys(&["line:OTHER", "tel:4252522123"])).await.expect("recall"),
        Some(sushi.clone())
    );
    assert_eq!(store.recall_merchant(other, &keys(&["tel:4252522123"])).await.expect("recall"), None, "per user");
    // A later correction under a shared key wins.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let renamed = RememberedMerchant { name: Some("Sushi Man Everett".to_owned()), category: None };
    store.remember_merchant(owner, &keys(&["line:SUSHIMAN"]), &renamed).await.expect("remember again");
    assert_eq!(
        store.recall_merchant(owner, &keys(&["tel:4252522123", "line:SUSHIMAN"])).await.expect("recall"),
        Some(renamed)
    );

    // Account preferences are kept with the user.
    let mut user = user(&format!("pref{}", &owner.to_string()[..8]));
    user.preferences =
        finagent_core::account::Preferences { country: Some("DE".to_owned()), currency: Some("EUR".to_owned()) };
    store.create_user(&user).await.expect("create");
    assert_eq!(store.user(user.id).await.expect("read").expect("exists").preferences, user.preferences);
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

/// A users table from before emails could be shared is rebuilt at open, keeping its rows.
#[tokio::test]
async fn sqlite_users_from_before_shared_emails_are_migrated() {
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
async fn sqlite_databases_from_before_the_key_columns_are_migrated() {
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
