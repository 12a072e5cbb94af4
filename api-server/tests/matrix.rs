//! Every route, called as every kind of caller, with the status each must get. The matrix is
//! checked against the OpenAPI document, so a route added without a row here fails the test.

mod support;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use finagent_core::account::Role;
use serde_json::{Value, json};
use support::{Account, TestApp, fresh_name};

/// The callers of the matrix, in column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    User,
    /// Another ordinary user, for object-level checks on the first user's objects.
    OtherUser,
    Admin,
    Service,
    /// The first user's API key.
    UserKey,
    /// An administrator's API key: acts with its owner's role, except for administration.
    AdminKey,
}

const CALLERS: [Caller; 7] = [
    Caller::Anonymous,
    Caller::User,
    Caller::OtherUser,
    Caller::Admin,
    Caller::Service,
    Caller::UserKey,
    Caller::AdminKey,
];

/// What a row needs created fresh for each call.
#[derive(Clone, Copy, Debug)]
enum Target {
    Nothing,
    /// An API key of the first user; `{id}` is its id.
    UserApiKey,
    /// A fresh ordinary user; `{id}` is their id.
    Victim,
    /// A processed receipt of the first user; `{id}` is its id.
    UserReceipt,
    /// A signed-in session of the first user (not the caller's); `{id}` is its id.
    UserSession,
    /// A webhook of the first user; `{id}` is its id.
    UserWebhook,
    /// An invite an administrator made; `{id}` is its id.
    AdminInvite,
}

struct Row {
    method: Method,
    path: &'static str,
    target: Target,
    /// Statuses in the order of [`CALLERS`].
    expected: [u16; 7],
}

fn row(method: Method, path: &'static str, target: Target, expected: [u16; 7]) -> Row {
    Row { method, path, target, expected }
}

fn matrix() -> Vec<Row> {
    use Target::*;
    vec![
        //                                                               anon user other admin service ukey akey
        row(Method::GET, "/", Nothing, [200, 200, 200, 200, 200, 200, 200]),
        row(Method::GET, "/healthz", Nothing, [200, 200, 200, 200, 200, 200, 200]),
        row(Method::GET, "/readyz", Nothing, [200, 200, 200, 200, 200, 200, 200]),
        row(Method::GET, "/openapi.json", Nothing, [200, 200, 200, 200, 200, 200, 200]),
        row(Method::GET, "/docs", Nothing, [200, 200, 200, 200, 200, 200, 200]),
        row(Method::POST, "/api/auth/register", Nothing, [201, 201, 201, 201, 201, 201, 201]),
        row(Method::POST, "/api/auth/login", Nothing, [200, 200, 200, 200, 200, 200, 200]),
        row(Method::POST, "/api/auth/refresh", Nothing, [200, 200, 200, 200, 200, 200, 200]),
        row(Method::POST, "/api/auth/logout", Nothing, [401, 204, 204, 204, 204, 403, 403]),
        // The web app's routes act on the refresh cookie and need the CSRF token: bearer tokens
        // and API keys give nothing there (tests/web.rs covers them with the cookie and token).
        row(Method::POST, "/api/auth/browser/login", Nothing, [403, 403, 403, 403, 403, 403, 403]),
        row(Method::POST, "/api/auth/browser/refresh", Nothing, [403, 403, 403, 403, 403, 403, 403]),
        row(Method::POST, "/api/auth/browser/logout", Nothing, [403, 403, 403, 403, 403, 403, 403]),
        row(Method::POST, "/api/auth/browser/password", Nothing, [401, 403, 403, 403, 403, 403, 403]),
        row(Method::GET, "/api/auth/me", Nothing, [401, 200, 200, 200, 200, 200, 200]),
        row(Method::PATCH, "/api/auth/me", Nothing, [401, 200, 200, 200, 200, 200, 200]),
        row(Method::POST, "/api/auth/password", Nothing, [401, 200, 200, 200, 200, 403, 403]),
        row(Method::GET, "/api/auth/sessions", Nothing, [401, 200, 200, 200, 200, 403, 403]),
        row(Method::DELETE, "/api/auth/sessions", Nothing, [401, 200, 200, 200, 200, 403, 403]),
        row(Method::DELETE, "/api/auth/sessions/{id}", UserSession, [401, 204, 404, 404, 404, 403, 403]),
        row(Method::POST, "/api/auth/api-keys", Nothing, [401, 201, 201, 201, 201, 403, 403]),
        row(Method::GET, "/api/auth/api-keys", Nothing, [401, 200, 200, 200, 200, 403, 403]),
        row(Method::DELETE, "/api/auth/api-keys/{id}", UserApiKey, [401, 204, 404, 404, 404, 403, 403]),
        // Administration needs the admin role and a session: an administrator's key cannot.
        row(Method::GET, "/api/admin/users", Nothing, [401, 403, 403, 200, 403, 403, 403]),
        row(Method::POST, "/api/admin/users", Nothing, [401, 403, 403, 201, 403, 403, 403]),
        row(Method::GET, "/api/admin/instance", Nothing, [401, 403, 403, 200, 403, 403, 403]),
        row(Method::POST, "/api/admin/invites", Nothing, [401, 403, 403, 201, 403, 403, 403]),
        row(Method::GET, "/api/admin/invites", Nothing, [401, 403, 403, 200, 403, 403, 403]),
        row(Method::DELETE, "/api/admin/invites/{id}", AdminInvite, [401, 403, 403, 204, 403, 403, 403]),
        row(Method::GET, "/api/auth/registration", Nothing, [200, 200, 200, 200, 200, 200, 200]),
        row(Method::POST, "/api/admin/users/{id}/disable", Victim, [401, 403, 403, 200, 403, 403, 403]),
        row(Method::POST, "/api/admin/users/{id}/enable", Victim, [401, 403, 403, 200, 403, 403, 403]),
        row(Method::PUT, "/api/admin/users/{id}/role", Victim, [401, 403, 403, 200, 403, 403, 403]),
        // Receipts are private: administrators and other users cannot tell one exists (404).
        row(Method::POST, "/api/ocr/process", Nothing, [401, 202, 202, 202, 202, 202, 202]),
        row(Method::GET, "/api/ocr/status/{id}", UserReceipt, [401, 200, 404, 404, 404, 200, 404]),
        row(Method::GET, "/api/ocr/result/{id}", UserReceipt, [401, 200, 404, 404, 404, 200, 404]),
        row(Method::GET, "/api/ocr/health", Nothing, [401, 200, 200, 200, 200, 200, 200]),
        row(Method::GET, "/api/receipts", Nothing, [401, 200, 200, 200, 200, 200, 200]),
        row(Method::GET, "/api/receipts/export.csv", Nothing, [401, 200, 200, 200, 200, 200, 200]),
        row(Method::GET, "/api/receipts/{id}", UserReceipt, [401, 200, 404, 404, 404, 200, 404]),
        row(Method::GET, "/api/receipts/{id}/image", UserReceipt, [401, 200, 404, 404, 404, 200, 404]),
        // A PDF's preview: the matrix's receipt is a PNG, so nobody gets one, its owner included.
        row(Method::GET, "/api/receipts/{id}/preview", UserReceipt, [401, 404, 404, 404, 404, 404, 404]),
        row(Method::PATCH, "/api/receipts/{id}", UserReceipt, [401, 200, 404, 404, 404, 200, 404]),
        row(Method::DELETE, "/api/receipts/{id}", UserReceipt, [401, 204, 404, 404, 404, 204, 404]),
        row(Method::GET, "/api/insights/summary", Nothing, [401, 200, 200, 200, 200, 200, 200]),
        // Webhooks are private like receipts; integrations register them with API keys.
        row(Method::POST, "/api/webhooks", Nothing, [401, 201, 201, 201, 201, 201, 201]),
        row(Method::GET, "/api/webhooks", Nothing, [401, 200, 200, 200, 200, 200, 200]),
        row(Method::DELETE, "/api/webhooks/{id}", UserWebhook, [401, 204, 404, 404, 404, 204, 404]),
        row(Method::GET, "/api/webhooks/{id}/deliveries", UserWebhook, [401, 200, 404, 404, 404, 200, 404]),
        row(Method::POST, "/api/webhooks/{id}/secret", UserWebhook, [401, 200, 404, 404, 404, 200, 404]),
    ]
}

struct Cast {
    user: Account,
    other: Account,
    admin: Account,
    service: Account,
    user_key: String,
    admin_key: String,
}

impl Cast {
    async fn new(app: &TestApp) -> Self {
        let user = app.account("user", Role::User).await;
        let admin = app.account("admin", Role::Admin).await;
        let user_key = app.api_key(&user).await.0;
        let admin_key = app.api_key(&admin).await.0;
        Self {
            other: app.account("other", Role::User).await,
            service: app.account("service", Role::Service).await,
            user,
            admin,
            user_key,
            admin_key,
        }
    }

    /// The credential of a caller: a fresh session each time (some rows end sessions).
    async fn credential(&mut self, app: &TestApp, caller: Caller) -> Option<String> {
        let account = match caller {
            Caller::Anonymous => return None,
            // A fresh key each time: a password change in an earlier row revokes its user's keys.
            Caller::UserKey => {
                app.sign_in(&mut self.user).await;
                self.user_key = fresh_key(app, &self.user).await;
                return Some(self.user_key.clone());
            }
            Caller::AdminKey => {
                app.sign_in(&mut self.admin).await;
                self.admin_key = fresh_key(app, &self.admin).await;
                return Some(self.admin_key.clone());
            }
            Caller::User => &mut self.user,
            Caller::OtherUser => &mut self.other,
            Caller::Admin => &mut self.admin,
            Caller::Service => &mut self.service,
        };
        app.sign_in(account).await;
        Some(account.access.clone())
    }

    fn password_of(&self, caller: Caller) -> &str {
        match caller {
            Caller::OtherUser => &self.other.password,
            Caller::Admin => &self.admin.password,
            Caller::Service => &self.service.password,
            _ => &self.user.password,
        }
    }
}

/// A new API key of an account, its older ones revoked (an account holds at most 25 live keys).
async fn fresh_key(app: &TestApp, account: &Account) -> String {
    let keys = app.call(Method::GET, "/api/auth/api-keys", Some(&account.access), None).await;
    for key in keys.json.as_array().into_iter().flatten() {
        let id = key["id"].as_str().expect("id");
        app.call(Method::DELETE, &format!("/api/auth/api-keys/{id}"), Some(&account.access), None).await;
    }
    app.api_key(account).await.0
}

/// A webhook on an address that resolves publicly (it is never called: no receipt finishes here).
fn webhook_body() -> Value {
    json!({"url": "https://93.184.216.34/hooks/receipts"})
}

async fn body_for(app: &TestApp, cast: &mut Cast, row: &Row, caller: Caller) -> Option<Value> {
    match (row.method.as_str(), row.path) {
        ("POST", "/api/auth/register") => {
            let name = fresh_name("new");
            Some(
                json!({"username": name, "email": format!("{name}@example.org"), "password": "a long enough passphrase"}),
            )
        }
        ("POST", "/api/auth/login" | "/api/auth/browser/login") => {
            Some(json!({"username": cast.user.username, "password": cast.user.password}))
        }
        ("POST", "/api/auth/refresh") => {
            app.sign_in(&mut cast.user).await;
            Some(json!({"refresh_token": cast.user.refresh}))
        }
        // The same password again: allowed, and it keeps the cast's passwords valid.
        ("POST", "/api/auth/password" | "/api/auth/browser/password") => {
            let password = cast.password_of(caller);
            Some(json!({"current_password": password, "new_password": password}))
        }
        ("POST", "/api/auth/api-keys") => Some(json!({"name": "matrix"})),
        ("PUT", "/api/admin/users/{id}/role") => Some(json!({"role": "service"})),
        ("POST", "/api/admin/users") => {
            let name = fresh_name("made");
            Some(
                json!({"username": name, "email": format!("{name}@example.org"), "password": "a long enough passphrase"}),
            )
        }
        ("POST", "/api/admin/invites") => Some(json!({"note": "matrix"})),
        ("POST", "/api/webhooks") => Some(webhook_body()),
        ("PATCH", "/api/receipts/{id}") => Some(json!({"total": "13.00"})),
        ("PATCH", "/api/auth/me") => Some(json!({"country": "DE"})),
        _ => None,
    }
}

async fn target_id(app: &TestApp, cast: &mut Cast, target: Target) -> Option<String> {
    match target {
        Target::Nothing => None,
        Target::UserApiKey => {
            app.sign_in(&mut cast.user).await;
            Some(app.api_key(&cast.user).await.1)
        }
        Target::Victim => Some(app.account("victim", Role::User).await.id.to_string()),
        Target::UserWebhook => {
            app.sign_in(&mut cast.user).await;
            // A fresh one each time, the older ones deleted (a user holds at most 10).
            let existing = app.call(Method::GET, "/api/webhooks", Some(&cast.user.access), None).await;
            for webhook in existing.json.as_array().into_iter().flatten() {
                let path = format!("/api/webhooks/{}", webhook["id"].as_str().expect("id"));
                app.call(Method::DELETE, &path, Some(&cast.user.access), None).await;
            }
            let created = app.call(Method::POST, "/api/webhooks", Some(&cast.user.access), Some(webhook_body())).await;
            assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
            Some(created.json["id"].as_str().expect("id").to_owned())
        }
        Target::AdminInvite => {
            app.sign_in(&mut cast.admin).await;
            let made = app.call(Method::POST, "/api/admin/invites", Some(&cast.admin.access), Some(json!({}))).await;
            assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.json);
            Some(made.json["id"].as_str().expect("id").to_owned())
        }
        Target::UserSession => {
            let mut other_device = cast.user.clone();
            app.sign_in(&mut other_device).await;
            let sessions = app.call(Method::GET, "/api/auth/sessions", Some(&other_device.access), None).await;
            let current = sessions.json.as_array().into_iter().flatten().find(|session| session["current"] == true);
            Some(current.expect("the new session is listed")["id"].as_str().expect("id").to_owned())
        }
        Target::UserReceipt => {
            app.sign_in(&mut cast.user).await;
            let result = support::result("12.50", "2024-03-01", "KEDAI MAJU");
            Some(app.processed_receipt(&cast.user, &result).await.to_string())
        }
    }
}

#[tokio::test]
async fn matrix_covers_every_route_and_caller() {
    let app = TestApp::new().await;
    let mut cast = Cast::new(&app).await;
    let mut failures = Vec::new();
    for row in matrix() {
        for (caller, expected) in CALLERS.iter().zip(row.expected) {
            let id = target_id(&app, &mut cast, row.target).await;
            let path = id.map_or(row.path.to_owned(), |id| row.path.replace("{id}", &id));
            let body = body_for(&app, &mut cast, &row, *caller).await;
            let credential = cast.credential(&app, *caller).await;
            let reply = if row.path == "/api/ocr/process" {
                app.upload(credential.as_deref(), &support::unique_png(), None).await
            } else {
                app.call(row.method.clone(), &path, credential.as_deref(), body).await
            };
            if reply.status.as_u16() != expected {
                failures.push(format!(
                    "{} {} as {caller:?}: expected {expected}, got {} {}",
                    row.method, row.path, reply.status, reply.json
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} cells differ:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn matrix_lists_every_route_of_the_openapi_document() {
    let document = serde_json::to_value(finagent_api_server::openapi_document()).expect("json");
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|key| ["get", "put", "post", "delete", "patch"].contains(&key.as_str()))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let covered: BTreeSet<(String, String)> =
        matrix().iter().map(|row| (row.method.as_str().to_owned(), row.path.to_owned())).collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(missing.is_empty(), "routes missing from the matrix: {missing:?}");
    assert!(documented.len() >= 13, "the document lists only {} operations", documented.len());
}

#[tokio::test]
async fn matrix_rows_that_are_not_documented_still_exist() {
    // Rows outside the document (operational routes) must answer, not 404: a typo in the matrix
    // would otherwise pass as "route exists".
    let app = TestApp::new().await;
    for row in matrix().iter().filter(|row| matches!(row.target, Target::Nothing)) {
        let reply = app.call(row.method.clone(), row.path, None, None).await;
        assert_ne!(reply.status, StatusCode::NOT_FOUND, "{} {}", row.method, row.path);
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{} {}", row.method, row.path);
    }
}
