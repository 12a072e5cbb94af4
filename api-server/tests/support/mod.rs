//! A test API: the real router over a fresh SQLite store, called with `oneshot`.
#![allow(dead_code)]

use std::sync::Arc;
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
use finagent_core::account::Role;
use finagent_core::receipt::{Category, EngineInfo, Merchant, ReceiptFields, ReceiptResult, Timings};
use finagent_core::{ReceiptId, UserId};
use finagent_platform::metrics::Metrics;
use finagent_platform::queue::memory::MemoryQueue;
use finagent_platform::queue::{AnyQueue, QueuePolicy};
use finagent_platform::store::sqlite::SqliteStore;
use finagent_platform::store::{AnyStore, ReceiptStore, UserStore};
use finagent_platform::testkit;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Limits no functional test reaches.
pub fn generous_limits() -> Limits {
    let open = Limit::per_second(100_000.0, 100_000);
    Limits { api: open, upload: open, login: open, login_address: open, address: open }
}

/// A running test API.
#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    /// The embedded store's folder (`db.sqlite3` and `blobs/`).
    pub data: std::path::PathBuf,
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

    /// A chosen guard, settings and queue.
    pub async fn with_queue(guard: Guard, settings: Settings, queue: AnyQueue) -> Self {
        let mut test = Self::with(guard, settings).await;
        test.state = AppState::new(
            test.state.store.clone(),
            queue,
            test.state.guard.clone(),
            test.state.hasher.clone(),
            test.state.settings.clone(),
            Metrics::new(),
            0,
        );
        test.router = app(test.state.clone(), readiness(&test.state)).expect("router");
        test
    }

    /// A chosen guard and settings.
    pub async fn with(guard: Guard, settings: Settings) -> Self {
        let directory = std::env::temp_dir().join(testkit::unique_name("finagent-api"));
        let store = SqliteStore::open(directory.join("db.sqlite3"), directory.join("blobs")).await.expect("sqlite");
        let hasher = Hasher::new(HashParams::default()).expect("hasher");
        let queue = AnyQueue::Memory(Arc::new(MemoryQueue::new(QueuePolicy::default())));
        let state = AppState::new(AnyStore::Sqlite(store), queue, guard, hasher, settings, Metrics::new(), 0);
        let router = app(state.clone(), readiness(&state)).expect("router");
        Self { router, state, data: directory }
    }

    /// Another replica: its own router and guard connection, the same store and settings.
    pub fn replica(&self, guard: Guard) -> Self {
        self.reconfigured(guard, self.state.settings.clone())
    }

    /// Another replica on the same store and queue, with other settings.
    pub fn reconfigured(&self, guard: Guard, settings: Settings) -> Self {
        let state = AppState::new(
            self.state.store.clone(),
            self.state.queue.clone(),
            guard,
            self.state.hasher.clone(),
            settings,
            Metrics::new(),
            0,
        );
        let router = app(state.clone(), readiness(&state)).expect("router");
        Self { router, state, data: self.data.clone() }
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

/// A small valid PNG, different for each `seed`.
pub fn png(seed: u32) -> Vec<u8> {
    let mut image = image::GrayImage::from_pixel(64, 48, image::Luma([255]));
    for (index, byte) in seed.to_le_bytes().iter().enumerate() {
        image.put_pixel(index as u32, 0, image::Luma([*byte]));
    }
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).expect("png");
    bytes
}

static SEEDS: AtomicU32 = AtomicU32::new(1);

/// A PNG no other call in this process returns.
pub fn unique_png() -> Vec<u8> {
    png(SEEDS.fetch_add(1, Ordering::Relaxed) ^ (std::process::id() << 16))
}

/// A multipart body with one `file` field.
pub fn multipart(bytes: &[u8], file_name: &str) -> (String, Vec<u8>) {
    let boundary = "finagent-test-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A result as a worker would store it.
pub fn result(total: &str, date: &str, merchant: &str) -> ReceiptResult {
    ReceiptResult {
        fields: ReceiptFields {
            merchant: Merchant { name: Some(merchant.to_owned()), address: None },
            date: Some(date.parse().expect("date")),
            date_order: None,
            currency: Some("MYR".parse().expect("currency")),
            subtotal: None,
            tax: None,
            tip: None,
            total: Some(total.parse().expect("amount")),
            payment_method: None,
            category: Some(Category::Groceries),
            line_items: vec![],
        },
        confidence: Default::default(),
        text: merchant.to_owned(),
        engine: EngineInfo { name: "tesseract".to_owned(), version: "5.3.0".to_owned() },
        timings: Timings::default(),
        layout: None,
        country: None,
        locale: None,
        debug: None,
    }
}

impl TestApp {
    /// Uploads an image with a credential and optional idempotency key.
    pub async fn upload(&self, credential: Option<&str>, bytes: &[u8], key: Option<&str>) -> Reply {
        let (content_type, body) = multipart(bytes, "receipt.png");
        let mut request = Request::post("/api/ocr/process").header("content-type", content_type);
        if let Some(credential) = credential {
            request = request.header("authorization", format!("Bearer {credential}"));
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        self.send(request.body(Body::from(body)).expect("request")).await
    }

    /// Uploads a fresh image as `account` and stores a result for it, as a worker would.
    pub async fn processed_receipt(&self, account: &Account, result: &ReceiptResult) -> ReceiptId {
        let reply = self.upload(Some(&account.access), &unique_png(), None).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.json);
        let id: ReceiptId = reply.json["task_id"].as_str().expect("task id").parse().expect("uuid");
        self.state.store.store_result(id, result).await.expect("result");
        id
    }
}
pub mod server;
