//! The copies the API keeps in front of the store never outlive a write.
//!
//! Across two real `api-server` processes sharing Redis and one store, where each keeps its own
//! copies of users' records and usage: a user disabled on one is refused at once on the other, a
//! revoked session or API key likewise, and the quota figures one serves are exact after an upload
//! and a deletion made on the other. In one process, the kept answers to receipt reads follow
//! every kind of write: a stored OCR result, a correction, a deletion.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::{Method, StatusCode};
use finagent_core::account::Role;
use finagent_platform::store::ReceiptStore;
use serde_json::{Value, json};
use support::server::Server;
use support::{TestApp, result};

/// A request through `curl`: the status and the body as JSON (`Null` when it is not JSON).
fn call(server: &Server, method: &str, path: &str, credential: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut command = Command::new("curl");
    command.args(["-s", "-X", method, "-w", "\n%{http_code}", &format!("{}{path}", server.url)]);
    if let Some(credential) = credential {
        command.args(["-H", &format!("authorization: Bearer {credential}")]);
    }
    if let Some(body) = body {
        command.args(["-H", "content-type: application/json", "-d", &body.to_string()]);
    }
    answer(command)
}

fn answer(mut command: Command) -> (u16, Value) {
    let output = command.output().expect("curl runs");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (status.parse().expect("a status"), serde_json::from_str(body).unwrap_or(Value::Null))
}

fn upload(server: &Server, token: &str, image: &Path) -> (u16, Value) {
    let mut command = Command::new("curl");
    command.args(["-s", "-w", "\n%{http_code}", &format!("{}/api/ocr/process", server.url)]).args([
        "-H",
        &format!("authorization: Bearer {token}"),
        "-F",
        &format!("file=@{}", image.display()),
    ]);
    answer(command)
}

fn sign_in(server: &Server, username: &str, password: &str) -> Value {
    let (status, login) =
        call(server, "POST", "/api/auth/login", None, Some(json!({"username": username, "password": password})));
    assert_eq!(status, 200, "{login}");
    login
}

fn register(server: &Server, username: &str) -> String {
    let password = format!("{username} has a long passphrase");
    let body = json!({"username": username, "email": format!("{username}@example.com"), "password": password});
    assert_eq!(call(server, "POST", "/api/auth/register", None, Some(body)).0, 201);
    sign_in(server, username, &password)["access_token"].as_str().expect("token").to_owned()
}

/// Two API processes on one data folder and one Redis, with an administrator `boss`; `None` when
/// this run has no Redis.
fn two_processes() -> Option<(Server, Server, PathBuf)> {
    let Some(redis) = finagent_platform::testkit::redis_url() else {
        eprintln!("skipped: no test Redis (FINAGENT_TEST_REDIS_URL)");
        return None;
    };
    let data = std::env::temp_dir().join(finagent_platform::testkit::unique_name("finagent-caches"));
    let created = Command::new(env!("CARGO_BIN_EXE_api-server"))
        .args(["create-admin", "--username", "boss", "--email", "boss@example.com"])
        .env("ADMIN_PASSWORD", "the boss's long passphrase")
        .env("DATA_DIR", &data)
        .env_remove("MONGODB_URL")
        .status()
        .expect("create-admin runs");
    assert!(created.success());
    let instance = finagent_platform::testkit::unique_name("caches").replace('_', "-");
    let environment = [
        ("REDIS_URL", redis.as_str()),
        ("FINAGENT_INSTANCE", instance.as_str()),
        ("JWT_SECRET_KEY", "one signing key for both processes, 32+ bytes"),
        ("OCR_WORKERS", "0"),
    ];
    let one = Server::start_on(data.clone(), &environment);
    let other = Server::start_on(data.clone(), &environment);
    Some((one, other, data))
}

#[test]
fn a_user_disabled_on_one_process_is_refused_at_once_on_the_other() {
    let Some((one, other, data)) = two_processes() else { return };
    let token = register(&one, "disabled");
    let (status, me) = call(&other, "GET", "/api/auth/me", Some(&token), None);
    assert_eq!(status, 200, "{me}");
    let boss = sign_in(&one, "boss", "the boss's long passphrase")["access_token"].as_str().expect("token").to_owned();
    let path = format!("/api/admin/users/{}/disable", me["id"].as_str().expect("id"));
    assert_eq!(call(&one, "POST", &path, Some(&boss), None).0, 200);
    assert_eq!(call(&other, "GET", "/api/auth/me", Some(&token), None).0, 401);
    assert_eq!(call(&other, "GET", "/api/receipts", Some(&token), None).0, 401);
    drop((one, other));
    std::fs::remove_dir_all(data).ok();
}

#[test]
fn a_session_or_key_revoked_on_one_process_is_refused_at_once_on_the_other() {
    let Some((one, other, data)) = two_processes() else { return };
    let token = register(&one, "revoked");
    let (status, key) = call(
        &one,
        "POST",
        "/api/auth/api-keys",
        Some(&token),
        Some(json!({"name": "integration", "scope": "read_only"})),
    );
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().expect("key").to_owned();
    assert_eq!(call(&other, "GET", "/api/auth/me", Some(&secret), None).0, 200);
    assert_eq!(call(&other, "GET", "/api/auth/me", Some(&token), None).0, 200);

    let path = format!("/api/auth/api-keys/{}", key["id"].as_str().expect("key id"));
    assert_eq!(call(&one, "DELETE", &path, Some(&token), None).0, 204);
    assert_eq!(call(&other, "GET", "/api/auth/me", Some(&secret), None).0, 401);

    assert_eq!(call(&one, "POST", "/api/auth/logout", Some(&token), None).0, 204);
    assert_eq!(call(&other, "GET", "/api/auth/me", Some(&token), None).0, 401);
    drop((one, other));
    std::fs::remove_dir_all(data).ok();
}

#[test]
fn quota_figures_are_exact_on_one_process_after_an_upload_and_a_deletion_on_the_other() {
    let Some((one, other, data)) = two_processes() else { return };
    let token = register(&one, "quota");
    let used = |server: &Server| {
        let (status, me) = call(server, "GET", "/api/auth/me", Some(&token), None);
        assert_eq!(status, 200, "{me}");
        (
            me["quota"]["receipts"]["used"].as_u64().expect("receipts"),
            me["quota"]["image_bytes"]["used"].as_u64().expect("bytes"),
        )
    };
    assert_eq!(used(&other), (0, 0));
    assert_eq!(used(&other), (0, 0), "the second answer is the kept one");
    let image = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../ocr-worker/tests/fixtures/receipts/000.jpg"));
    let size = std::fs::metadata(&image).expect("fixture").len();
    let (status, task) = upload(&one, &token, &image);
    assert_eq!(status, 202, "{task}");
    assert_eq!(used(&other), (1, size), "after an upload on the other process");
    let path = format!("/api/receipts/{}", task["task_id"].as_str().expect("task id"));
    assert_eq!(call(&one, "DELETE", &path, Some(&token), None).0, 204);
    assert_eq!(used(&other), (0, 0), "after a deletion on the other process");
    drop((one, other));
    std::fs::remove_dir_all(data).ok();
}

#[tokio::test]
async fn kept_receipt_reads_follow_every_write() {
    let app = TestApp::new().await;
    let mut account = app.account("reads", Role::User).await;
    app.sign_in(&mut account).await;
    let id = app.processed_receipt(&account, &result("12.50", "2026-11-02", "FIRST SHOP")).await;
    let read = |path: String| {
        let app = app.clone();
        let access = account.access.clone();
        async move { app.call(Method::GET, &path, Some(&access), None).await }
    };
    let list = || read("/api/receipts?limit=20".into());
    let merchant_in_list = |reply: &support::Reply| reply.json["items"][0]["result"]["merchant"]["name"].clone();

    assert_eq!(merchant_in_list(&list().await), "FIRST SHOP");
    assert_eq!(merchant_in_list(&list().await), "FIRST SHOP");
    assert!(app.state.reads.bytes() > 0, "the list answer is kept");

    // A new OCR result, stored as an OCR thread stores it: straight into the store.
    app.state.store.store_result(id, &result("14.00", "2026-11-02", "SECOND SHOP")).await.expect("result");
    assert_eq!(merchant_in_list(&list().await), "SECOND SHOP");
    assert_eq!(read(format!("/api/receipts/{id}")).await.json["result"]["total"], "14.00");

    let insights = || read("/api/insights/summary?from=2026-11-01&to=2026-11-30".into());
    let november = |reply: support::Reply| reply.json["by_month"][0]["total"].clone();
    assert_eq!(november(insights().await), "14.00");
    let correction = json!({"merchant_name": "CORRECTED SHOP", "total": "15.25"});
    let reply = app.call(Method::PATCH, &format!("/api/receipts/{id}"), Some(&account.access), Some(correction)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json);
    assert_eq!(merchant_in_list(&list().await), "CORRECTED SHOP");
    assert_eq!(november(insights().await), "15.25");

    assert_eq!(read(format!("/api/receipts/{id}/image")).await.status, StatusCode::OK);
    let reply = app.call(Method::DELETE, &format!("/api/receipts/{id}"), Some(&account.access), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(list().await.json["items"], json!([]));
    assert_eq!(read(format!("/api/receipts/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(read(format!("/api/receipts/{id}/image")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_kept_list_is_gzipped_once_for_clients_that_take_gzip() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::io::Read;
    use tower::ServiceExt;

    let app = TestApp::new().await;
    let mut account = app.account("gzipped", Role::User).await;
    app.sign_in(&mut account).await;
    for shop in ["ONE SHOP", "TWO SHOP", "THREE SHOP"] {
        app.processed_receipt(&account, &result("9.90", "2026-11-03", shop)).await;
    }
    let plain = app.call(Method::GET, "/api/receipts?limit=20", Some(&account.access), None).await;
    for _ in 0..2 {
        let request = Request::get("/api/receipts?limit=20")
            .header("authorization", format!("Bearer {}", account.access))
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .expect("request");
        let response = app.router.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        assert!(response.headers().get_all("vary").iter().any(|value| value == "accept-encoding"));
        let gzipped = response.into_body().collect().await.expect("body").to_bytes();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gzipped[..]).read_to_string(&mut text).expect("one gzip stream");
        assert_eq!(serde_json::from_str::<Value>(&text).expect("json"), plain.json);
    }
}
