//! Webhooks end to end: the real all-in-one server reads a real receipt and POSTs the signed
//! event to a receiver on this machine, retrying after the receiver's first failure; and the
//! routes refuse internal targets unless configured.

mod support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, StatusCode};
use finagent_core::account::Role;
use serde_json::{Value, json};
use support::TestApp;
use support::server::Server;

/// What the receiver saw: each request's headers and body, and how many to fail first.
#[derive(Default)]
struct Received {
    requests: Vec<(HeaderMap, String)>,
    fail_first: usize,
}

async fn receiver(received: Arc<Mutex<Received>>) -> String {
    let router = axum::Router::new().route(
        "/hooks/receipts",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let received = Arc::clone(&received);
            async move {
                let mut received = received.lock().expect("lock");
                received.requests.push((headers, body));
                if received.requests.len() <= received.fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    format!("http://{address}/hooks/receipts")
}

fn curl(arguments: &[&str]) -> Value {
    let output = Command::new("curl").arg("-s").args(arguments).output().expect("curl");
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_a_signed_event_when_a_receipt_is_read_and_retry_after_a_failure() {
    let received = Arc::new(Mutex::new(Received { fail_first: 1, ..Default::default() }));
    let url = receiver(Arc::clone(&received)).await;
    let server = Server::start(&[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"), ("WEBHOOK_RETRY_BASE_SECONDS", "1")]);
    let account = json!({"username": "hooked", "email": "hooked@example.com", "password": "a hooked passphrase"});
    server.post_json("/api/auth/register", &account);
    let login: Value = serde_json::from_str(
        &server.post_json("/api/auth/login", &json!({"username": "hooked", "password": "a hooked passphrase"})),
    )
    .expect("json");
    let token = login["access_token"].as_str().expect("token").to_owned();
    let bearer = format!("authorization: Bearer {token}");
    let register = |body: Value| {
        curl(&[
            &format!("{}/api/webhooks", server.url),
            "-H",
            &bearer,
            "-H",
            "content-type: application/json",
            "-d",
            &body.to_string(),
        ])
    };
    let webhook = register(json!({"url": url, "events": ["receipt.done"]}));
    let secret = webhook["secret"].as_str().expect("secret").to_owned();
    let webhook_id = webhook["id"].as_str().expect("id").to_owned();
    // A second webhook that wants failures only gets nothing from a receipt that is read.
    let failures_only =
        register(json!({"url": url.replace("/hooks/receipts", "/failures"), "events": ["receipt.failed"]}));
    assert!(failures_only["id"].is_string(), "{failures_only}");

    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../ocr-worker/tests/fixtures/receipts/000.jpg");
    let task = curl(&[&format!("{}/api/ocr/process", server.url), "-H", &bearer, "-F", &format!("file=@{fixture}")]);
    let receipt_id = task["task_id"].as_str().expect("task").to_owned();

    let started = Instant::now();
    loop {
        if received.lock().expect("lock").requests.len() >= 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "no retried delivery after 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (headers, body) = received.lock().expect("lock").requests[1].clone();
    let header = |name: &str| headers[name].to_str().expect("ascii").to_owned();
    let timestamp: i64 = header("x-finagent-timestamp").parse().expect("timestamp");
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 120, "a current timestamp");
    assert_eq!(
        header("x-finagent-signature"),
        finagent_api_server::webhooks::sender::signature(&secret, timestamp, &body)
    );
    assert_eq!(header("x-finagent-event"), "receipt.done");
    assert_eq!(header("content-type"), "application/json");
    let event: Value = serde_json::from_str(&body).expect("event");
    assert_eq!(event["type"], "receipt.done");
    assert_eq!(event["data"]["receipt_id"], receipt_id.as_str());
    assert_eq!(event["data"]["status"], "done");
    let first = received.lock().expect("lock").requests[0].1.clone();
    assert_eq!(first, body, "the retry sends the same event");

    // The history shows one delivery, delivered on its second attempt.
    let started = Instant::now();
    let deliveries = loop {
        let deliveries = curl(&[&format!("{}/api/webhooks/{webhook_id}/deliveries", server.url), "-H", &bearer]);
        if deliveries[0]["status"] == "delivered" {
            break deliveries;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{deliveries}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(deliveries.as_array().expect("list").len(), 1);
    assert_eq!((deliveries[0]["attempts"].as_u64(), deliveries[0]["last_status"].as_u64()), (Some(2), Some(204)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received.lock().expect("lock").requests.len(), 2, "nothing more, and nothing to the failures-only hook");
}

#[tokio::test]
async fn webhooks_refuse_internal_targets_and_belong_to_their_owner() {
    let app = TestApp::new().await;
    let ann = app.account("hooks", Role::User).await;
    for url in
        ["http://127.0.0.1:9000/hook", "http://localhost/hook", "http://169.254.169.254/latest", "file:///etc/passwd"]
    {
        let refused = app.call(Method::POST, "/api/webhooks", Some(&ann.access), Some(json!({"url": url}))).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {:?}", refused.json);
    }
    let unknown = app
        .call(
            Method::POST,
            "/api/webhooks",
            Some(&ann.access),
            Some(json!({"url": "https://93.184.216.34/h", "events": ["receipt.eaten"]})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let created = app
        .call(Method::POST, "/api/webhooks", Some(&ann.access), Some(json!({"url": "https://93.184.216.34/h"})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
    assert_eq!(created.json["events"], json!(["receipt.done", "receipt.failed"]));
    assert!(created.json["secret"].as_str().expect("secret").starts_with("whsec_"));
    let listed = app.call(Method::GET, "/api/webhooks", Some(&ann.access), None).await;
    assert!(listed.json[0].get("secret").is_none(), "the secret is shown once");
    let id = created.json["id"].as_str().expect("id");
    let bob = app.account("hooks", Role::User).await;
    let theirs = app.call(Method::GET, &format!("/api/webhooks/{id}/deliveries"), Some(&bob.access), None).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let deleted = app.call(Method::DELETE, &format!("/api/webhooks/{id}"), Some(&ann.access), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn webhook_secrets_are_sealed_at_rest_rotate_with_overlap_and_follow_a_key_rotation() {
    use finagent_api_server::config::Settings;
    use finagent_api_server::guard::Guard;
    use finagent_platform::store::WebhookStore;
    let mut settings = Settings::for_tests();
    settings.limits = support::generous_limits();
    let app = TestApp::with(Guard::memory(), settings.clone()).await;
    let ann = app.account("sealed", Role::User).await;
    let created = app
        .call(Method::POST, "/api/webhooks", Some(&ann.access), Some(json!({"url": "https://93.184.216.34/h"})))
        .await;
    let secret = created.json["secret"].as_str().expect("secret").to_owned();
    let id: uuid::Uuid = created.json["id"].as_str().expect("id").parse().expect("uuid");
    let stored = |app: &TestApp| {
        let store = app.state.store.clone();
        let owner = ann.id;
        async move { store.webhooks(owner).await.expect("read").into_iter().find(|hook| hook.id == id).expect("stored") }
    };
    let at_rest = stored(&app).await;
    assert!(at_rest.secret.starts_with("sealed:v1:") && !at_rest.secret.contains(&secret), "{}", at_rest.secret);
    assert_eq!(app.state.tokens.open(&at_rest.secret, id.as_bytes()).expect("open"), secret);

    // Rotation: a new secret, the old one signs beside it for the overlap asked.
    let path = format!("/api/webhooks/{id}/secret");
    let too_long = app.call(Method::POST, &format!("{path}?overlap_hours=169"), Some(&ann.access), None).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bob = app.account("sealed", Role::User).await;
    assert_eq!(app.call(Method::POST, &path, Some(&bob.access), None).await.status, StatusCode::NOT_FOUND);
    let rotated = app.call(Method::POST, &format!("{path}?overlap_hours=2"), Some(&ann.access), None).await;
    assert_eq!(rotated.status, StatusCode::OK, "{:?}", rotated.json);
    let new_secret = rotated.json["secret"].as_str().expect("secret").to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    let until: chrono::DateTime<chrono::Utc> =
        rotated.json["previous_secret_expires_at"].as_str().expect("until").parse().expect("time");
    assert!((until - chrono::Utc::now() - chrono::Duration::hours(2)).num_seconds().abs() < 60);
    let after = stored(&app).await;
    assert_eq!(after.previous_secret.as_deref(), Some(at_rest.secret.as_str()), "the old secret, still sealed");
    assert_eq!(app.state.tokens.open(&after.secret, id.as_bytes()).expect("open"), new_secret);
    let at_once = app.call(Method::POST, &format!("{path}?overlap_hours=0"), Some(&ann.access), None).await;
    assert!(at_once.json.get("previous_secret_expires_at").is_none(), "{:?}", at_once.json);
    let latest = at_once.json["secret"].as_str().expect("secret").to_owned();
    assert_eq!(stored(&app).await.previous_secret, None, "a leaked secret stops signing at once");

    // The server's key rotates: a replica with the new key and the old one as previous opens the
    // secret, and seals it again under the new key; after that the old key can go.
    let mut rotated_settings = settings.clone();
    rotated_settings.jwt_key = b"the next signing key, thirty-two bytes or more".to_vec();
    rotated_settings.jwt_previous_keys = vec![settings.jwt_key.clone()];
    let next = app.reconfigured(Guard::memory(), rotated_settings.clone());
    assert!(!next.state.tokens.sealed_under_current(&stored(&app).await.secret));
    let changed =
        finagent_api_server::webhooks::reseal_secrets(&next.state.store, &next.state.tokens).await.expect("reseal");
    assert!(changed >= 1, "{changed}");
    let resealed = stored(&app).await;
    assert!(next.state.tokens.sealed_under_current(&resealed.secret));
    assert_eq!(
        finagent_api_server::webhooks::reseal_secrets(&next.state.store, &next.state.tokens).await.expect("again"),
        0
    );
    rotated_settings.jwt_previous_keys.clear();
    let only_new = app.reconfigured(Guard::memory(), rotated_settings);
    assert_eq!(only_new.state.tokens.open(&resealed.secret, id.as_bytes()).expect("open"), latest);
}
