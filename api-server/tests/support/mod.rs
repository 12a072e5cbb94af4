//! A test API: the real router over a fresh SQLite store, called with `oneshot`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use finagent_api_server::auth::password::{HashParams, Hasher};
use finagent_api_server::config::{Limits, Settings};
use finagent_api_server::guard::Guard;
use finagent_api_server::limits::rate::Limit;
use finagent_api_server::state::AppState;
use finagent_api_server::{app, readiness};
use finagent_core::UserId;
use finagent_core::account::Role;
use finagent_platform::metrics::Metrics;
use finagent_platform::store::sqlite::SqliteStore;
use finagent_platform::store::{AnyStore, UserStore};
use finagent_platform::testkit;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Limits no functional test reaches.
pub fn generous_limits() -> Limits {
    let open = Limit::per_second(100_000.0, 100_000);
    Limits { api: open, upload: open, login: open }
}

/// A running test API.
#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
}

/// A response, body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

/// A signed-in account.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: UserId,
    pub username: String,
    pub password: String,
    pub access: String,
    pub refresh: String,
}

static NAMES: AtomicU32 = AtomicU32::new(0);

/// A user name unique within the process.
pub fn fresh_name(prefix: &str) -> String {
    format!("{prefix}{}x{}", NAMES.fetch_add(1, Ordering::Relaxed), std::process::id() % 10_000)
}

impl TestApp {
    /// In-process guard, generous limits.
    pub async fn new() -> Self {
        let mut settings = Settings::for_tests();
        settings.limits = generous_limits();
        Self::with(Guard::memory(), settings).await
    }

    /// A chosen guard and settings.
    pub async fn with(guard: Guard, settings: Settings) -> Self {
        let directory = std::env::temp_dir().join(testkit::unique_name("finagent-api"));
        let store = SqliteStore::open(directory.join("db.sqlite3"), directory.join("blobs")).await.expect("sqlite");
        let hasher = Hasher::new(HashParams::default()).expect("hasher");
        let state = AppState::new(AnyStore::Sqlite(store), guard, hasher, settings, Metrics::new());
        let router = app(state.clone(), readiness(&state)).expect("router");
        Self { router, state }
    }

    /// Another replica: its own router and guard connection, the same store and settings.
    pub fn replica(&self, guard: Guard) -> Self {
        let state = AppState::new(
            self.state.store.clone(),
            guard,
            self.state.hasher.clone(),
            self.state.settings.clone(),
            Metrics::new(),
        );
        let router = app(state.clone(), readiness(&state)).expect("router");
        Self { router, state }
    }

    /// Sends a request; `credential` goes in `Authorization: Bearer`.
    pub async fn call(&self, method: Method, path: &str, credential: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(credential) = credential {
            request = request.header("authorization", format!("Bearer {credential}"));
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.expect("request")).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let json =
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply { status, headers, json }
    }

    /// Registers an account (with `role`, set in the store) and signs it in.
    pub async fn account(&self, prefix: &str, role: Role) -> Account {
        let username = fresh_name(prefix);
        let password = format!("{username} has a long passphrase");
        let reply = self
            .call(
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"username": username, "email": format!("{username}@example.com"), "password": password})),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json);
        let id: UserId = reply.json["id"].as_str().expect("id").parse().expect("uuid");
        if role != Role::User {
            let mut user = self.state.store.user(id).await.expect("store").expect("user");
            user.role = role;
            self.state.store.update_user(&user).await.expect("update");
        }
        let mut account = Account { id, username, password, access: String::new(), refresh: String::new() };
        self.sign_in(&mut account).await;
        account
    }

    /// Signs an account in again, replacing its tokens.
    pub async fn sign_in(&self, account: &mut Account) {
        let reply = self.login(&account.username, &account.password).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json);
        account.access = reply.json["access_token"].as_str().expect("access").to_owned();
        account.refresh = reply.json["refresh_token"].as_str().expect("refresh").to_owned();
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.call(Method::POST, "/api/auth/login", None, Some(json!({"username": username, "password": password})))
            .await
    }

    /// Creates an API key for a signed-in account.
    pub async fn api_key(&self, account: &Account) -> (String, String) {
        let reply = self
            .call(Method::POST, "/api/auth/api-keys", Some(&account.access), Some(json!({"name": "test key"})))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.json);
        (reply.json["key"].as_str().expect("key").to_owned(), reply.json["id"].as_str().expect("id").to_owned())
    }
}
