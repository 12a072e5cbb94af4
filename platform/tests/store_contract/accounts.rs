//! Accounts: users, sessions and their refresh tokens, API keys and invites.

use chrono::{Duration, Utc};
use finagent_core::UserId;
use finagent_core::account::{ApiKey, Role, Rotation, Session, User};
use finagent_platform::store::{StoreError, UserChange};
use uuid::Uuid;

use super::*;

pub(crate) async fn users_are_unique_by_name_not_by_email(store: impl Store) {
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

pub(crate) async fn refresh_tokens_rotate_and_reuse_revokes_the_family(store: impl Store) {
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

pub(crate) async fn sessions_are_listed_for_their_user_and_ended_one_by_one(store: impl Store) {
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

pub(crate) async fn api_keys_belong_to_their_owner(store: impl Store) {
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

pub(crate) async fn user_changes_touch_only_their_field(store: impl Store) {
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

pub(crate) async fn an_invite_is_used_once_and_never_after_it_expires(store: impl Store) {
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
