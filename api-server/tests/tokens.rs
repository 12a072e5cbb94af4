//! Tokens that must be refused, each with a 401: forged, confused, expired, incomplete, of the
//! wrong kind, or revoked.

mod support;

use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use finagent_api_server::config::Settings;
use finagent_core::account::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support::{Account, TestApp};
use uuid::Uuid;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid access claims for `account`, to be spoiled one way or another.
fn claims(account: &Account) -> Value {
    let settings = Settings::for_tests();
    json!({
        "iss": settings.issuer, "aud": settings.audience, "sub": account.id.to_string(),
        "exp": now() + 600, "nbf": now() - 1, "iat": now() - 1, "jti": Uuid::now_v7(),
        "typ": "access", "role": "admin", "fam": Uuid::now_v7(),
    })
}

fn sign(claims: &Value, algorithm: Algorithm, typ: &str, key: &[u8]) -> String {
    let mut header = Header::new(algorithm);
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).expect("sign")
}

fn sign_valid(claims: &Value) -> String {
    sign(claims, Algorithm::HS256, "at+jwt", &Settings::for_tests().jwt_key)
}

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.call(Method::GET, "/api/auth/me", Some(token), None).await.status
}

async fn setup() -> (TestApp, Account) {
    let app = TestApp::new().await;
    let account = app.account("tok", Role::User).await;
    (app, account)
}

#[tokio::test]
async fn a_forged_token_with_every_claim_right_is_accepted_so_the_refusals_below_mean_something() {
    let (app, account) = setup().await;
    assert_eq!(me(&app, &sign_valid(&claims(&account))).await, StatusCode::OK);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (app, account) = setup().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&account).to_string());
    for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
        assert_eq!(me(&app, &token).await, StatusCode::UNAUTHORIZED, "{token}");
    }
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    let (app, account) = setup().await;
    let key = Settings::for_tests().jwt_key;
    // The same secret under another HMAC algorithm.
    for algorithm in [Algorithm::HS384, Algorithm::HS512] {
        let token = sign(&claims(&account), algorithm, "at+jwt", &key);
        assert_eq!(me(&app, &token).await, StatusCode::UNAUTHORIZED, "{algorithm:?}");
    }
    // An asymmetric algorithm named in the header over an HMAC signature.
    let valid = sign_valid(&claims(&account));
    let (_, rest) = valid.split_once('.').expect("jwt");
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"at+jwt"}"#);
    assert_eq!(me(&app, &format!("{header}.{rest}")).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bad_signature_is_refused() {
    let (app, account) = setup().await;
    let other_key = sign(&claims(&account), Algorithm::HS256, "at+jwt", b"another-key-of-thirty-two-bytes!!!!");
    assert_eq!(me(&app, &other_key).await, StatusCode::UNAUTHORIZED);
    let mut tampered = sign_valid(&claims(&account));
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(me(&app, &tampered).await, StatusCode::UNAUTHORIZED);
    // A payload swapped under a valid signature.
    let valid = sign_valid(&claims(&account));
    let parts: Vec<&str> = valid.split('.').collect();
    let mut changed = claims(&account);
    changed["sub"] = json!(Uuid::now_v7());
    let swapped = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(changed.to_string()), parts[2]);
    assert_eq!(me(&app, &swapped).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_audience_or_issuer_is_refused() {
    let (app, account) = setup().await;
    for (claim, value) in [("aud", "another-api"), ("iss", "someone-else")] {
        let mut spoiled = claims(&account);
        spoiled[claim] = json!(value);
        assert_eq!(me(&app, &sign_valid(&spoiled)).await, StatusCode::UNAUTHORIZED, "{claim}");
    }
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let (app, account) = setup().await;
    let mut spoiled = claims(&account);
    spoiled["exp"] = json!(now() - 120);
    spoiled["iat"] = json!(now() - 1000);
    spoiled["nbf"] = json!(now() - 1000);
    assert_eq!(me(&app, &sign_valid(&spoiled)).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let (app, account) = setup().await;
    let mut spoiled = claims(&account);
    spoiled["nbf"] = json!(now() + 300);
    assert_eq!(me(&app, &sign_valid(&spoiled)).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_missing_any_claim_is_refused() {
    let (app, account) = setup().await;
    for claim in ["iss", "aud", "sub", "exp", "nbf", "iat", "jti", "typ", "role", "fam"] {
        let mut spoiled = claims(&account);
        spoiled.as_object_mut().expect("object").remove(claim);
        assert_eq!(me(&app, &sign_valid(&spoiled)).await, StatusCode::UNAUTHORIZED, "without {claim}");
    }
}

#[tokio::test]
async fn a_refresh_token_used_as_an_access_token_is_refused_and_vice_versa() {
    let (app, account) = setup().await;
    assert_eq!(me(&app, &account.refresh).await, StatusCode::UNAUTHORIZED);
    // Right header type, wrong claim type, and the reverse.
    let mut refresh_claims = claims(&account);
    refresh_claims["typ"] = json!("refresh");
    assert_eq!(me(&app, &sign_valid(&refresh_claims)).await, StatusCode::UNAUTHORIZED);
    let key = Settings::for_tests().jwt_key;
    assert_eq!(me(&app, &sign(&claims(&account), Algorithm::HS256, "rt+jwt", &key)).await, StatusCode::UNAUTHORIZED);
    let reply = app.call(Method::POST, "/api/auth/refresh", None, Some(json!({"refresh_token": account.access}))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_is_refused_right_after_logout() {
    let (app, account) = setup().await;
    assert_eq!(me(&app, &account.access).await, StatusCode::OK);
    let reply = app.call(Method::POST, "/api/auth/logout", Some(&account.access), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(me(&app, &account.access).await, StatusCode::UNAUTHORIZED);
    // The session ended too: its refresh token is dead.
    let reply =
        app.call(Method::POST, "/api/auth/refresh", None, Some(json!({"refresh_token": account.refresh}))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_disabled_users_tokens_and_keys_are_refused() {
    let (app, account) = setup().await;
    let (key, _) = app.api_key(&account).await;
    let admin = app.account("boss", Role::Admin).await;
    assert_eq!(me(&app, &key).await, StatusCode::OK);
    let path = format!("/api/admin/users/{}/disable", account.id);
    assert_eq!(app.call(Method::POST, &path, Some(&admin.access), None).await.status, StatusCode::OK);
    assert_eq!(me(&app, &account.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&app, &key).await, StatusCode::UNAUTHORIZED);
    let refresh =
        app.call(Method::POST, "/api/auth/refresh", None, Some(json!({"refresh_token": account.refresh}))).await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&account.username, &account.password).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_authorization_headers_are_refused_not_ignored() {
    let (app, _) = setup().await;
    for value in ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer fa_unknownkey"] {
        let request =
            axum::http::Request::get("/api/auth/me").header("authorization", value).body(axum::body::Body::empty());
        let reply = app.send(request.expect("request")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
        assert_eq!(reply.headers["content-type"], "application/problem+json");
    }
}

#[tokio::test]
async fn a_key_rotation_keeps_sessions_while_the_old_key_is_listed_as_previous() {
    let (app, account) = setup().await;
    let settings = app.state.settings.clone();
    let mut rotated = settings.clone();
    rotated.jwt_key = b"the next signing key, thirty-two bytes or more".to_vec();
    rotated.jwt_previous_keys = vec![settings.jwt_key.clone()];
    let during = app.reconfigured(finagent_api_server::guard::Guard::memory(), rotated.clone());
    assert_eq!(me(&during, &account.access).await, StatusCode::OK, "a token of the previous key");
    // The refresh token too: the session goes on under the new key.
    let refreshed =
        during.call(Method::POST, "/api/auth/refresh", None, Some(json!({"refresh_token": account.refresh}))).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{:?}", refreshed.json);
    let new_access = refreshed.json["access_token"].as_str().expect("access").to_owned();
    assert_eq!(me(&app, &new_access).await, StatusCode::UNAUTHORIZED, "a replica without the new key refuses it");
    rotated.jwt_previous_keys.clear();
    let after = app.reconfigured(finagent_api_server::guard::Guard::memory(), rotated);
    assert_eq!(me(&after, &account.access).await, StatusCode::UNAUTHORIZED, "the old key is gone");
    assert_eq!(me(&after, &new_access).await, StatusCode::OK);
}
