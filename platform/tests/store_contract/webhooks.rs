//! Webhooks and their deliveries, and the merchant memory.

use chrono::{Duration, Utc};
use finagent_core::UserId;
use uuid::Uuid;

use super::*;

pub(crate) async fn webhook_deliveries_are_claimed_once_and_listed_newest_first(store: impl Store) {
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

pub(crate) async fn a_webhook_is_replaced_only_while_its_secret_is_unchanged(store: impl Store) {
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

pub(crate) async fn merchant_memory_recalls_the_latest_match_of_its_owner_only(store: impl Store) {
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
