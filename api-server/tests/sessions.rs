//! Sessions, passwords, roles and API keys, by their effects.

mod support;

use axum::http::{Method, StatusCode};
use finagent_core::account::Role;
use serde_json::json;
use support::TestApp;

async fn refresh(app: &TestApp, token: &str) -> support::Reply {
    app.call(Method::POST, "/api/auth/refresh", None, Some(json!({"refresh_token": token}))).await
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = TestApp::new().await;
    let account = app.account("rot", Role::User).await;
    let first = refresh(&app, &account.refresh).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.json);
    let second_refresh = first.json["refresh_token"].as_str().expect("refresh").to_owned();
    let second_access = first.json["access_token"].as_str().expect("access").to_owned();
    assert_ne!(second_refresh, account.refresh, "rotated");
    // The attacker replays the first token: refused, and the family is revoked...
    assert_eq!(refresh(&app, &account.refresh).await.status, StatusCode::UNAUTHORIZED);
    // ...so the legitimate holder's current token is dead too.
    assert_eq!(refresh(&app, &second_refresh).await.status, StatusCode::UNAUTHORIZED);
    // Other sessions of the same user are untouched.
    let mut other = account.clone();
    app.sign_in(&mut other).await;
    assert_eq!(refresh(&app, &other.refresh).await.status, StatusCode::OK);
    // The session's access tokens stop too.
    assert_eq!(
        app.call(Method::GET, "/api/auth/me", Some(&second_access), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refresh_reuse_after_several_rotations_is_detected() {
    let app = TestApp::new().await;
    let account = app.account("rot", Role::User).await;
    let mut tokens = vec![account.refresh.clone()];
    for _ in 0..3 {
        let reply = refresh(&app, tokens.last().expect("token")).await;
        assert_eq!(reply.status, StatusCode::OK);
        tokens.push(reply.json["refresh_token"].as_str().expect("refresh").to_owned());
    }
    assert_eq!(refresh(&app, &tokens[1]).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&app, &tokens[3]).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_at_once() {
    let app = TestApp::new().await;
    let laptop = app.account("pw", Role::User).await;
    let mut phone = laptop.clone();
    app.sign_in(&mut phone).await;
    let reply = app
        .call(
            Method::POST,
            "/api/auth/password",
            Some(&laptop.access),
            Some(json!({"current_password": laptop.password, "new_password": "an entirely new passphrase"})),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json);
    let fresh = reply.json["access_token"].as_str().expect("access");
    for token in [&laptop.access, &phone.access] {
        assert_eq!(app.call(Method::GET, "/api/auth/me", Some(token), None).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(refresh(&app, &phone.refresh).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(fresh), None).await.status, StatusCode::OK);
    assert_eq!(app.login(&laptop.username, &laptop.password).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&laptop.username, "an entirely new passphrase").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_and_a_good_new_one() {
    let app = TestApp::new().await;
    let account = app.account("pw", Role::User).await;
    for (current, new, why) in [
        ("wrong password!", "an entirely new passphrase", "current_password"),
        (account.password.as_str(), "password123", "common"),
        (account.password.as_str(), "short", "at least 8"),
    ] {
        let reply = app
            .call(
                Method::POST,
                "/api/auth/password",
                Some(&account.access),
                Some(json!({"current_password": current, "new_password": new})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{new}");
        assert!(reply.json["detail"].as_str().expect("detail").contains(why), "{:?}", reply.json);
    }
}

#[tokio::test]
async fn registration_validates_and_normalises() {
    let app = TestApp::new().await;
    let register = |username: &str, email: &str, password: &str| json!({"username": username, "email": email, "password": password});
    let reply = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(register("  Ann.Lee ", "Ann@Example.ORG", "a fine passphrase")),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(
        (reply.json["username"].as_str(), reply.json["email"].as_str()),
        (Some("ann.lee"), Some("ann@example.org"))
    );
    assert!(reply.json.get("password_hash").is_none());
    let taken = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(register("ANN.LEE", "other@example.org", "a fine passphrase")),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    // A taken email is not refused: registration never says which addresses have accounts.
    let shared = app
        .call(
            Method::POST,
            "/api/auth/register",
            None,
            Some(register("ann.other", "ann@example.org", "a fine passphrase")),
        )
        .await;
    assert_eq!(shared.status, StatusCode::CREATED, "{:?}", shared.json);
    for (body, field) in [
        (register("an", "a@example.org", "a fine passphrase"), "username"),
        (register("annie", "not-an-email", "a fine passphrase"), "email"),
        (register("annie", "a@example.org", "iloveyou"), "password"),
        (register("annie", "a@example.org", &"x".repeat(129)), "password"),
        (json!({"username": "annie"}), "missing field"),
    ] {
        let reply = app.call(Method::POST, "/api/auth/register", None, Some(body)).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(reply.json["detail"].as_str().expect("detail").contains(field), "{:?}", reply.json);
    }
    // Login is case-insensitive on the name.
    assert_eq!(app.login("ANN.lee", "a fine passphrase").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_role_change_applies_at_once() {
    let app = TestApp::new().await;
    let admin = app.account("root", Role::Admin).await;
    let mut target = app.account("promoted", Role::User).await;
    assert_eq!(
        app.call(Method::GET, "/api/admin/users", Some(&target.access), None).await.status,
        StatusCode::FORBIDDEN
    );
    let path = format!("/api/admin/users/{}/role", target.id);
    let reply = app.call(Method::PUT, &path, Some(&admin.access), Some(json!({"role": "admin"}))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json["role"], "admin");
    // The old token carried the old role: it is void; a new sign-in carries the new one.
    assert_eq!(
        app.call(Method::GET, "/api/auth/me", Some(&target.access), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.sign_in(&mut target).await;
    assert_eq!(app.call(Method::GET, "/api/admin/users", Some(&target.access), None).await.status, StatusCode::OK);
    // Demoting works the same way, and nobody can change their own role.
    let own = format!("/api/admin/users/{}/role", admin.id);
    let reply = app.call(Method::PUT, &own, Some(&admin.access), Some(json!({"role": "user"}))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = app.call(Method::PUT, &path, Some(&admin.access), Some(json!({"role": "root"}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = format!("/api/admin/users/{}/role", uuid::Uuid::now_v7());
    let missing = app.call(Method::PUT, &unknown, Some(&admin.access), Some(json!({"role": "user"}))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_keys_are_shown_once_stored_hashed_and_never_outrank_their_owner() {
    let app = TestApp::new().await;
    let admin = app.account("root", Role::Admin).await;
    let owner = app.account("keys", Role::User).await;
    let (key, id) = app.api_key(&owner).await;
    // Both header forms work.
    let request = axum::http::Request::get("/api/auth/me").header("x-api-key", &key).body(axum::body::Body::empty());
    assert_eq!(app.send(request.expect("request")).await.status, StatusCode::OK);
    // Listed without the key.
    let listed = app.call(Method::GET, "/api/auth/api-keys", Some(&owner.access), None).await;
    let text = listed.json.to_string();
    assert!(!text.contains(&key) && text.contains(&id) && text.contains(&key[..9]), "{text}");
    // Stored as a digest only.
    let stored = finagent_platform::store::ApiKeyStore::api_keys(&app.state.store, owner.id).await.expect("keys");
    assert!(stored.iter().all(|stored| stored.key_hash != key && stored.key_hash.len() == 64));
    // The key follows its owner's role (promoted, then demoted), and never administers.
    let role = format!("/api/admin/users/{}/role", owner.id);
    let role_of_key = || async { app.call(Method::GET, "/api/auth/me", Some(&key), None).await.json["role"].clone() };
    assert_eq!(role_of_key().await, "user");
    app.call(Method::PUT, &role, Some(&admin.access), Some(json!({"role": "admin"}))).await;
    assert_eq!(role_of_key().await, "admin");
    assert_eq!(app.call(Method::GET, "/api/admin/users", Some(&key), None).await.status, StatusCode::FORBIDDEN);
    app.call(Method::PUT, &role, Some(&admin.access), Some(json!({"role": "user"}))).await;
    assert_eq!(role_of_key().await, "user");
    // Revoked: dead at once; revoking again is a 404.
    let mut owner = owner;
    app.sign_in(&mut owner).await;
    let path = format!("/api/auth/api-keys/{id}");
    assert_eq!(app.call(Method::DELETE, &path, Some(&owner.access), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&key), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::DELETE, &path, Some(&owner.access), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.call(Method::DELETE, "/api/auth/api-keys/not-a-uuid", Some(&owner.access), None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer() {
    let app = TestApp::new().await;
    let account = app.account("same", Role::User).await;
    let wrong = app.login(&account.username, "not the right passphrase").await;
    let unknown = app.login("nobody-here", "not the right passphrase").await;
    let malformed = app.login("x", "not the right passphrase").await;
    for reply in [&wrong, &unknown, &malformed] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.json, wrong.json);
    }
}

#[tokio::test]
async fn repeated_failures_slow_an_account_down_but_never_lock_it() {
    let app = TestApp::new().await;
    let account = app.account("slow", Role::User).await;
    for _ in 0..finagent_api_server::limits::login::FREE_FAILURES {
        assert_eq!(app.login(&account.username, "a wrong passphrase").await.status, StatusCode::UNAUTHORIZED);
    }
    // The next attempt, even with the right password, must wait; it says how long.
    let reply = app.login(&account.username, &account.password).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers["retry-after"], "1");
    // After the delay the owner gets in, and the counter is cleared.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(app.login(&account.username, &account.password).await.status, StatusCode::OK);
    assert_eq!(app.login(&account.username, "a wrong passphrase").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn demo_users_exist_only_when_asked_for() {
    let app = TestApp::new().await;
    assert_eq!(app.login("demo", "demo123").await.status, StatusCode::UNAUTHORIZED);
    finagent_api_server::create_demo_users(&app.state).await.expect("demo users");
    finagent_api_server::create_demo_users(&app.state).await.expect("idempotent");
    assert_eq!(app.login("demo", "demo123").await.status, StatusCode::OK);
    let admin = app.login("admin", "admin123").await;
    let users = app.call(Method::GET, "/api/admin/users", admin.json["access_token"].as_str(), None).await;
    assert_eq!(users.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_ends_every_access_token_of_the_session() {
    let app = TestApp::new().await;
    let account = app.account("bye", Role::User).await;
    let rotated = refresh(&app, &account.refresh).await;
    let second_access = rotated.json["access_token"].as_str().expect("access").to_owned();
    let mut elsewhere = account.clone();
    app.sign_in(&mut elsewhere).await;
    assert_eq!(
        app.call(Method::POST, "/api/auth/logout", Some(&account.access), None).await.status,
        StatusCode::NO_CONTENT
    );
    // The same session's newer token is dead too; another session of the user is not.
    assert_eq!(
        app.call(Method::GET, "/api/auth/me", Some(&second_access), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&elsewhere.access), None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_reuse_also_ends_the_sessions_access_tokens() {
    let app = TestApp::new().await;
    let account = app.account("reuse", Role::User).await;
    let rotated = refresh(&app, &account.refresh).await;
    let thief_access = rotated.json["access_token"].as_str().expect("access").to_owned();
    assert_eq!(refresh(&app, &account.refresh).await.status, StatusCode::UNAUTHORIZED, "reuse detected");
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&thief_access), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_revokes_api_keys_and_wrong_guesses_back_off() {
    let app = TestApp::new().await;
    let account = app.account("keys", Role::User).await;
    let (key, _) = app.api_key(&account).await;
    let mut account = account;
    let change = |current: &str| json!({"current_password": current, "new_password": "a brand new passphrase"});
    for _ in 0..finagent_api_server::limits::login::FREE_FAILURES {
        let reply =
            app.call(Method::POST, "/api/auth/password", Some(&account.access), Some(change("a wrong guess!"))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let throttled =
        app.call(Method::POST, "/api/auth/password", Some(&account.access), Some(change(&account.password))).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let reply =
        app.call(Method::POST, "/api/auth/password", Some(&account.access), Some(change(&account.password))).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json);
    account.password = "a brand new passphrase".into();
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&key), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_attempts_sent_at_once_cannot_slip_past_the_back_off() {
    let app = TestApp::new().await;
    let account = app.account("burst", Role::User).await;
    let attempts = futures::future::join_all((0..12).map(|_| app.login(&account.username, "a wrong passphrase"))).await;
    let refused = attempts.iter().filter(|reply| reply.status == StatusCode::UNAUTHORIZED).count();
    let throttled = attempts.iter().filter(|reply| reply.status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((refused, throttled), (5, 7), "only the free failures are tried");
}

#[tokio::test]
async fn rotation_never_extends_the_session() {
    let app = TestApp::new().await;
    let account = app.account("life", Role::User).await;
    let login = app.login(&account.username, &account.password).await;
    let first_left = login.json["refresh_expires_in"].as_u64().expect("seconds");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let rotated = refresh(&app, login.json["refresh_token"].as_str().expect("refresh")).await;
    let left = rotated.json["refresh_expires_in"].as_u64().expect("seconds");
    assert!(left < first_left, "{left} should be below {first_left}");
}

/// A user sees their sessions (where and when each started, when it was last used, which one is
/// this one), ends one (its tokens stop at once) or every other one.
#[tokio::test]
async fn sessions_are_listed_and_ended_by_their_owner() {
    let app = TestApp::new().await;
    let laptop = app.account("devices", Role::User).await;
    let mut phone = laptop.clone();
    app.sign_in(&mut phone).await;
    let mut tablet = laptop.clone();
    let login = axum::http::Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .header("user-agent", "Tablet/1.0")
        .body(axum::body::Body::from(json!({"username": tablet.username, "password": tablet.password}).to_string()))
        .expect("request");
    let reply = app.send(login).await;
    tablet.access = reply.json["access_token"].as_str().expect("access").to_owned();
    tablet.refresh = reply.json["refresh_token"].as_str().expect("refresh").to_owned();

    let listed = app.call(Method::GET, "/api/auth/sessions", Some(&laptop.access), None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let sessions = listed.json.as_array().expect("list").clone();
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    assert_eq!(sessions.iter().filter(|session| session["current"] == true).count(), 1);
    assert!(sessions.iter().any(|session| session["user_agent"] == "Tablet/1.0"));
    assert!(sessions.iter().all(|session| session["created_at"].is_string() && session["last_used_at"].is_string()));
    let tablet_id = sessions.iter().find(|session| session["user_agent"] == "Tablet/1.0").expect("tablet")["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Another user cannot end it; the owner can, and its tokens stop at once.
    let stranger = app.account("devices", Role::User).await;
    let refused =
        app.call(Method::DELETE, &format!("/api/auth/sessions/{tablet_id}"), Some(&stranger.access), None).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let ended = app.call(Method::DELETE, &format!("/api/auth/sessions/{tablet_id}"), Some(&laptop.access), None).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call(Method::GET, "/api/auth/me", Some(&tablet.access), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh =
        app.call(Method::POST, "/api/auth/refresh", None, Some(json!({"refresh_token": tablet.refresh}))).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);

    // Signing out everywhere else keeps this session only.
    let others = app.call(Method::DELETE, "/api/auth/sessions", Some(&laptop.access), None).await;
    assert_eq!(others.json["ended"], 1, "{:?}", others.json);
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&phone.access), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&laptop.access), None).await.status, StatusCode::OK);
    let left = app.call(Method::GET, "/api/auth/sessions", Some(&laptop.access), None).await;
    assert_eq!(left.json.as_array().expect("list").len(), 1);
    // An API key cannot see or end sessions.
    let (key, _) = app.api_key(&laptop).await;
    assert_eq!(app.call(Method::GET, "/api/auth/sessions", Some(&key), None).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_session_older_than_the_users_cut_off_is_refused_at_refresh() {
    use finagent_platform::store::{UserChange, UserStore};
    let app = TestApp::new().await;
    let user = app.account("cut", Role::User).await;
    // A session that every-session endings meant to end but the store's revocation missed (it
    // was created while the ending ran): only the user's cut-off stands in its way.
    app.state
        .store
        .change_user(user.id, &UserChange::Role(Role::User), Some(chrono::Utc::now()))
        .await
        .expect("change")
        .expect("user");
    assert_eq!(refresh(&app, &user.refresh).await.status, StatusCode::UNAUTHORIZED);
    let mut again = user.clone();
    app.sign_in(&mut again).await;
    assert_eq!(refresh(&app, &again.refresh).await.status, StatusCode::OK, "a session started after it works");
}

fn with_registration(policy: finagent_api_server::config::Registration) -> finagent_api_server::config::Settings {
    let mut settings = finagent_api_server::config::Settings::for_tests();
    settings.limits = support::generous_limits();
    settings.registration = policy;
    settings
}

fn newcomer(name: &str, invite: Option<&str>) -> serde_json::Value {
    json!({"username": name, "email": format!("{name}@example.org"), "password": "a newcomer's passphrase", "invite_code": invite})
}

#[tokio::test]
async fn closed_registration_leaves_account_creation_to_administrators() {
    use finagent_api_server::config::Registration;
    // The administrator registered while registration was open; then it closed.
    let open = TestApp::with(finagent_api_server::guard::Guard::memory(), with_registration(Registration::Open)).await;
    let admin = open.account("boss", Role::Admin).await;
    let app = open.reconfigured(finagent_api_server::guard::Guard::memory(), with_registration(Registration::Closed));
    let policy = app.call(Method::GET, "/api/auth/registration", None, None).await;
    assert_eq!(policy.json, json!({"policy": "closed"}));
    let refused = app.call(Method::POST, "/api/auth/register", None, Some(newcomer("shut-out", None))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.json);
    assert!(refused.json["detail"].as_str().expect("detail").contains("closed"));
    let made = app
        .call(Method::POST, "/api/admin/users", Some(&admin.access), Some(json!({
            "username": "Made-By-Hand", "email": "hand@example.org", "password": "a handed-out passphrase", "role": "service"})))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.json);
    assert_eq!((made.json["username"].as_str(), made.json["role"].as_str()), (Some("made-by-hand"), Some("service")));
    let weak = app
        .call(
            Method::POST,
            "/api/admin/users",
            Some(&admin.access),
            Some(json!({
            "username": "weakling", "email": "w@example.org", "password": "password"})),
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY, "the password policy holds for administrators too");
    let login = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"username": "made-by-hand", "password": "a handed-out passphrase"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{:?}", login.json);
    let instance = app.call(Method::GET, "/api/admin/instance", Some(&admin.access), None).await;
    assert_eq!(instance.json["registration"], "closed");
    assert_eq!(instance.json["storage"]["receipts"], 0);
    assert!(instance.json["storage"].get("limit_image_bytes").is_none(), "no limit set: {:?}", instance.json);
}

#[tokio::test]
async fn invite_registration_spends_one_code_per_account_and_only_on_success() {
    use finagent_api_server::config::Registration;
    let mut settings = with_registration(Registration::Invite);
    settings.quota.instance_max_image_bytes = Some(10_000_000);
    let open = TestApp::with(finagent_api_server::guard::Guard::memory(), with_registration(Registration::Open)).await;
    let admin = open.account("host", Role::Admin).await;
    let app = open.reconfigured(finagent_api_server::guard::Guard::memory(), settings);
    assert_eq!(app.call(Method::GET, "/api/auth/registration", None, None).await.json["policy"], "invite");
    let register = |body: serde_json::Value| app.call(Method::POST, "/api/auth/register", None, Some(body));
    assert_eq!(register(newcomer("uninvited", None)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(register(newcomer("guesser", Some("inv_guessed"))).await.status, StatusCode::FORBIDDEN);

    let bad =
        app.call(Method::POST, "/api/admin/invites", Some(&admin.access), Some(json!({"expires_in_hours": 721}))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let made = app
        .call(
            Method::POST,
            "/api/admin/invites",
            Some(&admin.access),
            Some(json!({"note": "for Ana", "expires_in_hours": 2})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.json);
    let code = made.json["code"].as_str().expect("code").to_owned();
    assert!(code.starts_with("inv_") && code.len() > 30, "{code}");
    let listed = app.call(Method::GET, "/api/admin/invites", Some(&admin.access), None).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1));
    assert_eq!(listed.json[0]["note"], "for Ana");
    assert!(listed.json[0].get("code").is_none(), "the code is shown once");

    // A refused field does not spend the invite, nor does a name that is taken.
    let typo = register(
        json!({"username": "a", "email": "ana@example.org", "password": "ana's own passphrase", "invite_code": code}),
    );
    assert_eq!(typo.await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let clash = register(
        json!({"username": admin.username, "email": "x@example.org", "password": "ana's own passphrase", "invite_code": code}),
    );
    let clash = clash.await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{:?}", clash.json);
    let still = app.call(Method::GET, "/api/admin/invites", Some(&admin.access), None).await;
    assert_eq!(still.json.as_array().map(Vec::len), Some(1), "given back after the failed registration");

    assert_eq!(register(newcomer("ana", Some(&code))).await.status, StatusCode::CREATED);
    assert_eq!(register(newcomer("ana-again", Some(&code))).await.status, StatusCode::FORBIDDEN, "used once");
    let after = app.call(Method::GET, "/api/admin/invites", Some(&admin.access), None).await;
    assert_eq!(after.json, json!([]));

    // A withdrawn invite admits nobody.
    let second = app.call(Method::POST, "/api/admin/invites", Some(&admin.access), Some(json!({}))).await;
    let (id, code) = (second.json["id"].as_str().expect("id"), second.json["code"].as_str().expect("code"));
    let path = format!("/api/admin/invites/{id}");
    assert_eq!(app.call(Method::DELETE, &path, Some(&admin.access), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::DELETE, &path, Some(&admin.access), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(register(newcomer("late", Some(code))).await.status, StatusCode::FORBIDDEN);
    let instance = app.call(Method::GET, "/api/admin/instance", Some(&admin.access), None).await;
    assert_eq!(instance.json["registration"], "invite");
    assert_eq!(instance.json["storage"]["limit_image_bytes"], 10_000_000);
}
