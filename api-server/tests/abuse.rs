//! The availability and login-abuse findings of the security review, each pinned by a test that
//! fails without its fix; and the per-user quotas.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use finagent_api_server::config::Settings;
use finagent_api_server::guard::Guard;
use finagent_api_server::limits::login::FREE_FAILURES;
use finagent_api_server::limits::rate::Limit;
use finagent_core::account::Role;
use serde_json::json;
use support::server::Server;
use support::{TestApp, generous_limits, multipart, unique_png};

fn login_from(address: &str, username: &str, password: &str) -> Request<Body> {
    let mut request = Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(json!({"username": username, "password": password}).to_string()))
        .expect("request");
    let peer: SocketAddr = format!("{address}:40000").parse().expect("address");
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// A guesser who keeps failing from one address backs off there, but the owner signing in from
/// another address is not locked out by them.
#[tokio::test]
async fn abuse_a_guesser_elsewhere_does_not_lock_the_owner_out() {
    let app = TestApp::new().await;
    let owner = app.account("owner", Role::User).await;
    for _ in 0..FREE_FAILURES {
        let reply = app.send(login_from("203.0.113.9", &owner.username, "not the passphrase")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let held = app.send(login_from("203.0.113.9", &owner.username, &owner.password)).await;
    assert_eq!(held.status, StatusCode::TOO_MANY_REQUESTS, "the guesser's address backs off");
    let reply = app.send(login_from("198.51.100.4", &owner.username, &owner.password)).await;
    assert_eq!(reply.status, StatusCode::OK, "the owner elsewhere signs in: {:?}", reply.json);
}

/// One address trying many accounts (password spraying) is limited across accounts.
#[tokio::test]
async fn abuse_password_spraying_from_one_address_is_limited() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    // A burst of 30 that refills one attempt an hour: however slowly the 30 attempts run (each
    // verifies a password), none is refilled before the 31st.
    settings.limits.login_address = Limit::per_second(1.0 / 3600.0, 30);
    let app = TestApp::with(Guard::memory(), settings).await;
    for index in 0..30 {
        let reply = app.send(login_from("203.0.113.20", &format!("sprayed{index}"), "Summer2026!")).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {index}");
    }
    let refused = app.send(login_from("203.0.113.20", "sprayed30", "Summer2026!")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.contains_key("retry-after"));
    let elsewhere = app.send(login_from("198.51.100.20", "sprayed31", "Summer2026!")).await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED, "other addresses are not affected");
}

fn quota_settings(max_receipts: u64, max_image_bytes: u64) -> Settings {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.quota.max_receipts = max_receipts;
    settings.quota.max_image_bytes = max_image_bytes;
    settings
}

#[tokio::test]
async fn quota_of_receipts_is_shown_on_me_and_refuses_uploads_past_it() {
    let app = TestApp::with(Guard::memory(), quota_settings(2, 1 << 30)).await;
    let ann = app.account("quota", Role::User).await;
    let me = app.call(Method::GET, "/api/auth/me", Some(&ann.access), None).await;
    assert_eq!(me.json["quota"]["receipts"], json!({"used": 0, "limit": 2}));
    assert_eq!(me.json["username"], ann.username.as_str(), "the account's fields are still there");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let reply = app.upload(Some(&ann.access), &unique_png(), None).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.json);
        ids.push(reply.json["task_id"].as_str().expect("id").to_owned());
    }
    let refused = app.upload(Some(&ann.access), &unique_png(), None).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json["type"], "urn:finagent:problem:quota-exceeded");
    assert!(refused.json["detail"].as_str().expect("detail").contains("2 of 2"), "{:?}", refused.json);
    let me = app.call(Method::GET, "/api/auth/me", Some(&ann.access), None).await;
    assert_eq!(me.json["quota"]["receipts"], json!({"used": 2, "limit": 2}));
    assert!(me.json["quota"]["image_bytes"]["used"].as_u64().expect("bytes") > 0);
    // Deleting one makes room again; another user has their own quota.
    let deleted = app.call(Method::DELETE, &format!("/api/receipts/{}", ids[0]), Some(&ann.access), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.upload(Some(&ann.access), &unique_png(), None).await.status, StatusCode::ACCEPTED);
    let bob = app.account("quota", Role::User).await;
    assert_eq!(app.upload(Some(&bob.access), &unique_png(), None).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn quota_of_image_bytes_counts_the_upload_itself() {
    let image = unique_png();
    let app = TestApp::with(Guard::memory(), quota_settings(100, image.len() as u64 * 3 / 2)).await;
    let ann = app.account("bytes", Role::User).await;
    assert_eq!(app.upload(Some(&ann.access), &image, None).await.status, StatusCode::ACCEPTED);
    let refused = app.upload(Some(&ann.access), &unique_png(), None).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", refused.json);
    assert!(refused.json["detail"].as_str().expect("detail").starts_with("image_bytes"), "{:?}", refused.json);
}

/// One user may send only two uploads at once, however many slots the process has.
#[tokio::test]
async fn quota_a_user_sends_at_most_two_uploads_at_once() {
    let app = TestApp::new().await;
    let ann = app.account("busy", Role::User).await;
    let bob = app.account("busy", Role::User).await;
    let start = finagent_api_server::limits::uploads::start;
    let mut in_progress = Vec::new();
    for _ in 0..2 {
        in_progress.push(start(&app.state.guard, ann.id, 2).await.expect("guard").expect("an upload in progress"));
    }
    let refused = app.upload(Some(&ann.access), &unique_png(), None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", refused.json);
    assert_eq!(app.upload(Some(&bob.access), &unique_png(), None).await.status, StatusCode::ACCEPTED);
    drop(in_progress);
    assert_eq!(app.upload(Some(&ann.access), &unique_png(), None).await.status, StatusCode::ACCEPTED);
    let both = (start(&app.state.guard, ann.id, 2).await, start(&app.state.guard, ann.id, 2).await);
    assert!(matches!(both, (Ok(Some(_)), Ok(Some(_)))), "finished uploads end their ticket");
}

/// Uploads sent all at once cannot overshoot the quota: the store checks it with the insert.
#[tokio::test]
async fn quota_holds_against_uploads_sent_all_at_once() {
    let mut settings = quota_settings(2, 1 << 30);
    settings.quota.uploads_at_once = 8;
    let app = TestApp::with(Guard::memory(), settings).await;
    let ann = app.account("racing", Role::User).await;
    let images: Vec<Vec<u8>> = (0..8).map(|_| unique_png()).collect();
    let replies =
        futures::future::join_all(images.iter().map(|image| app.upload(Some(&ann.access), image, None))).await;
    let accepted = replies.iter().filter(|reply| reply.status == StatusCode::ACCEPTED).count();
    let refused = replies.iter().filter(|reply| reply.json["type"] == "urn:finagent:problem:quota-exceeded").count();
    assert_eq!((accepted, refused), (2, 6), "{:?}", replies.iter().map(|reply| reply.status).collect::<Vec<_>>());
    let me = app.call(Method::GET, "/api/auth/me", Some(&ann.access), None).await;
    assert_eq!(me.json["quota"]["receipts"], json!({"used": 2, "limit": 2}));
}

/// The instance's storage limit holds for every user together, with its own problem type.
#[tokio::test]
async fn the_instance_storage_limit_refuses_uploads_once_reached() {
    let image = unique_png();
    let mut settings = quota_settings(100, 1 << 30);
    settings.quota.instance_max_image_bytes = Some(image.len() as u64 * 5 / 2);
    let app = TestApp::with(Guard::memory(), settings).await;
    let (ann, bob) = (app.account("full", Role::User).await, app.account("full", Role::User).await);
    assert_eq!(app.upload(Some(&ann.access), &image, None).await.status, StatusCode::ACCEPTED);
    assert_eq!(app.upload(Some(&bob.access), &unique_png(), None).await.status, StatusCode::ACCEPTED);
    let full = app.upload(Some(&bob.access), &unique_png(), None).await;
    assert_eq!(full.status, StatusCode::INSUFFICIENT_STORAGE, "{:?}", full.json);
    assert_eq!(full.json["type"], "urn:finagent:problem:storage-full");
    let refused_too = app.upload(Some(&ann.access), &unique_png(), None).await;
    assert_eq!(refused_too.status, StatusCode::INSUFFICIENT_STORAGE, "every user, not only the last");
}

/// An upload trickling in slower than the minimum rate is cut with 408 once its grace is over,
/// and its slot is free again.
#[tokio::test]
async fn abuse_a_trickling_upload_is_cut_and_frees_its_slot() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.max_concurrent_uploads = 1;
    let app = TestApp::with(Guard::memory(), settings).await;
    let ann = app.account("slow", Role::User).await;
    let (content_type, body) = multipart(&unique_png(), "receipt.png");
    let head = body[..body.len() / 2].to_vec();
    let chunks = futures::stream::unfold(0u32, move |sent| {
        let head = head.clone();
        async move {
            if sent == 0 {
                return Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(head)), 1));
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
            (sent < 40).then(|| (Ok(axum::body::Bytes::from_static(b"x")), sent + 1))
        }
    });
    let request = Request::post("/api/ocr/process")
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {}", ann.access))
        .body(Body::from_stream(chunks))
        .expect("request");
    let started = Instant::now();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT, "{:?}", reply.json);
    assert!(started.elapsed() < Duration::from_secs(10), "cut soon after the grace");
    assert_eq!(app.upload(Some(&ann.access), &unique_png(), None).await.status, StatusCode::ACCEPTED, "slot freed");
}

/// Parts other than `file`, trickled in one after another (each within the idle timeout), are held
/// to the minimum rate too: the upload is cut soon after its grace and its slot is free again.
#[tokio::test]
async fn abuse_trickling_decoy_parts_are_cut_like_a_trickling_file() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.max_concurrent_uploads = 1;
    let app = TestApp::with(Guard::memory(), settings).await;
    let ann = app.account("decoy", Role::User).await;
    // Up to 40 s of decoy parts, a new one every 20 bytes (8 s), one byte every 400 ms.
    let chunks = futures::stream::unfold(0u32, move |sent| async move {
        if sent > 0 {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let chunk: Vec<u8> = match sent {
            _ if sent >= 100 => return None,
            _ if sent % 20 == 0 => {
                let close = if sent == 0 { "" } else { "\r\n" };
                format!("{close}--DECOY\r\ncontent-disposition: form-data; name=\"note{sent}\"\r\n\r\n").into_bytes()
            }
            _ => b"x".to_vec(),
        };
        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk)), sent + 1))
    });
    let request = Request::post("/api/ocr/process")
        .header("content-type", "multipart/form-data; boundary=DECOY")
        .header("authorization", format!("Bearer {}", ann.access))
        .body(Body::from_stream(chunks))
        .expect("request");
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(15), app.send(request)).await.expect("cut within 15 s");
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT, "{:?}", reply.json);
    assert!(started.elapsed() < Duration::from_secs(9), "cut soon after the grace, not after {:?}", started.elapsed());
    assert_eq!(app.upload(Some(&ann.access), &unique_png(), None).await.status, StatusCode::ACCEPTED, "slot freed");
}

/// A client that opens a connection and never finishes its request head is disconnected after
/// the header-read timeout.
#[test]
fn abuse_a_connection_that_never_sends_its_headers_is_closed() {
    let server = Server::start(&[("HEADER_READ_TIMEOUT_SECONDS", "1")]);
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).expect("connect");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").expect("partial head");
    stream.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let started = Instant::now();
    let mut buffer = Vec::new();
    let read = stream.read_to_end(&mut buffer);
    assert!(read.is_ok(), "the server closed the connection instead of holding it: {read:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());
    // A complete request on a new connection is served.
    let mut healthy = std::net::TcpStream::connect(&address).expect("connect");
    healthy.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("request");
    let mut answer = String::new();
    healthy.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Operational routes never look credentials up, and an address past its limit is refused before
/// any credential it presents is looked up: a flood of made-up keys costs no store queries.
#[tokio::test]
async fn abuse_made_up_keys_cost_no_lookups_on_operational_routes_or_past_the_address_limit() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.limits.address = Limit::per_second(1.0, 30);
    let app = TestApp::with(Guard::memory(), settings).await;
    let checks = |outcome: &str| app.state.credential_checks.with_label_values(&[outcome]).get();
    let with_key = |path: &str, key: String| {
        let mut request = Request::get(path).header("x-api-key", key).body(Body::empty()).expect("request");
        request.extensions_mut().insert(ConnectInfo("203.0.113.77:40000".parse::<SocketAddr>().expect("peer")));
        request
    };
    for index in 0..10 {
        let reply = app.send(with_key("/healthz", format!("fa_made_up_{index}"))).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(checks("refused"), 0, "operational routes look no credentials up");
    let mut refused_at = None;
    for index in 0..40 {
        let reply = app.send(with_key("/api/receipts", format!("fa_made_up_{index}"))).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS && refused_at.is_none() {
            refused_at = Some(index);
        }
    }
    let refused_at = refused_at.expect("the address limit refuses the flood");
    assert!(refused_at >= 19, "the first requests count against the burst: refused at {refused_at}");
    assert!(checks("refused") <= 21, "no lookups past the address limit: {} looked up", checks("refused"));
    let other = app.send(with_key("/api/receipts", "fa_made_up".into())).await;
    assert_eq!(other.status, StatusCode::TOO_MANY_REQUESTS, "still held");
}

/// The API port's `/readyz` names its checks without their reasons.
#[tokio::test]
async fn abuse_readiness_on_the_api_port_tells_no_internals() {
    let app = TestApp::new().await;
    let readiness = finagent_platform::admin::Readiness::new().with_check("store", || {
        Box::pin(async { Err("connection refused: mongodb-0.mongodb.internal:27017".to_owned()) })
    });
    let state = finagent_api_server::state::AppState::new(
        app.state.store.clone(),
        app.state.queue.clone(),
        Guard::memory(),
        app.state.hasher.clone(),
        app.state.settings.clone(),
        finagent_platform::metrics::Metrics::new(),
        0,
    );
    let router = finagent_api_server::app(state.clone(), readiness).expect("router");
    let reply = TestApp { router, state, data: app.data.clone() }.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json["checks"]["store"], "failed");
    assert!(!reply.json.to_string().contains("internal"), "{}", reply.json);
}

/// An administrator's API key cannot administer: a leaked key cannot promote another account or
/// disable the other administrators. The administrator's session can.
#[tokio::test]
async fn abuse_an_admin_api_key_cannot_change_roles_or_disable_admins() {
    let app = TestApp::new().await;
    let admin = app.account("boss", Role::Admin).await;
    let other_admin = app.account("boss", Role::Admin).await;
    let user = app.account("plain", Role::User).await;
    let (key, _) = app.api_key(&admin).await;
    let promote = json!({"role": "admin"});
    let by_key =
        app.call(Method::PUT, &format!("/api/admin/users/{}/role", user.id), Some(&key), Some(promote.clone())).await;
    assert_eq!(by_key.status, StatusCode::FORBIDDEN, "{:?}", by_key.json);
    let disable =
        app.call(Method::POST, &format!("/api/admin/users/{}/disable", other_admin.id), Some(&key), None).await;
    assert_eq!(disable.status, StatusCode::FORBIDDEN);
    let listing = app.call(Method::GET, "/api/admin/users", Some(&key), None).await;
    assert_eq!(listing.status, StatusCode::FORBIDDEN);
    let by_session =
        app.call(Method::PUT, &format!("/api/admin/users/{}/role", user.id), Some(&admin.access), Some(promote)).await;
    assert_eq!(by_session.status, StatusCode::OK, "{:?}", by_session.json);
}

/// A read-only key reads and cannot change anything; an expired key is refused.
#[tokio::test]
async fn abuse_keys_can_be_read_only_and_expire() {
    let app = TestApp::new().await;
    let ann = app.account("scoped", Role::User).await;
    let created = app
        .call(
            Method::POST,
            "/api/auth/api-keys",
            Some(&ann.access),
            Some(json!({"name": "dashboard", "scope": "read_only", "expires_in_days": 30})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json);
    assert_eq!(created.json["scope"], "read_only");
    assert!(created.json["expires_at"].is_string());
    let key = created.json["key"].as_str().expect("key").to_owned();
    assert_eq!(app.call(Method::GET, "/api/receipts", Some(&key), None).await.status, StatusCode::OK);
    assert_eq!(app.call(Method::GET, "/api/insights/summary", Some(&key), None).await.status, StatusCode::OK);
    let upload = app.upload(Some(&key), &unique_png(), None).await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN, "{:?}", upload.json);
    let receipt = app.upload(Some(&ann.access), &unique_png(), None).await;
    let id = receipt.json["task_id"].as_str().expect("id");
    let delete = app.call(Method::DELETE, &format!("/api/receipts/{id}"), Some(&key), None).await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    let bad = app
        .call(Method::POST, "/api/auth/api-keys", Some(&ann.access), Some(json!({"name": "x", "expires_in_days": 0})))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A key past its expiry is refused like a revoked one.
    let value = "fa_an_expired_key_of_the_test_0123456789";
    let expired = finagent_core::account::ApiKey {
        id: uuid::Uuid::now_v7(),
        owner_id: ann.id,
        name: "expired".into(),
        prefix: value[..9].into(),
        key_hash: finagent_api_server::auth::secrets::digest(value),
        created_at: chrono::Utc::now() - chrono::Duration::days(31),
        revoked: false,
        expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        scope: Default::default(),
    };
    finagent_platform::store::ApiKeyStore::create_api_key(&app.state.store, &expired).await.expect("stored");
    let refused = app.call(Method::GET, "/api/receipts", Some(value), None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let listed = app.call(Method::GET, "/api/auth/api-keys", Some(&ann.access), None).await;
    assert!(
        listed.json.as_array().expect("keys").iter().all(|key| key["name"] != "expired"),
        "expired keys are not listed"
    );
}

/// An upload whose client goes away while its bytes are being stored keeps its slot until they
/// are stored and queued: the memory stays counted. The queue (a real Redis) is held up with
/// `CLIENT PAUSE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_a_cancelled_upload_keeps_its_slot_until_its_bytes_are_stored() {
    let Some(url) = finagent_platform::testkit::redis_url() else { return };
    let instance: finagent_core::names::InstanceName =
        finagent_platform::testkit::unique_name("slot").parse().expect("instance");
    let queue = finagent_platform::queue::redis::RedisQueue::connect(&url, &instance, Default::default())
        .await
        .expect("redis queue");
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.max_concurrent_uploads = 1;
    let app = TestApp::with_queue(Guard::memory(), settings, finagent_platform::queue::AnyQueue::Redis(queue)).await;
    let ann = app.account("cancel", Role::User).await;
    let mut pause =
        redis::Client::open(url.as_str()).expect("url").get_multiplexed_async_connection().await.expect("redis");
    redis::cmd("CLIENT").arg("PAUSE").arg(1500).arg("WRITE").query_async::<()>(&mut pause).await.expect("pause");
    let (uploader, token) = (app.clone(), ann.access.clone());
    let upload = tokio::spawn(async move { uploader.upload(Some(&token), &unique_png(), None).await });
    // Once the receipt is stored, the storing task waits on the paused queue: cancel the handler.
    let started = Instant::now();
    let everything = finagent_platform::store::ReceiptFilter::default();
    while finagent_platform::store::ReceiptStore::count_receipts(&app.state.store, ann.id, &everything)
        .await
        .expect("count")
        == 0
    {
        assert!(started.elapsed() < Duration::from_secs(5), "the upload reached the store");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    upload.abort();
    assert!(upload.await.expect_err("cancelled").is_cancelled());
    // The handler is gone; the task storing and queueing the bytes is not, and holds the slot.
    assert_eq!(app.state.upload_slots.available_permits(), 0, "the slot is still held");
    while app.state.upload_slots.available_permits() == 0 {
        assert!(started.elapsed() < Duration::from_secs(15), "the slot came back once the queue answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis::cmd("CLIENT").arg("UNPAUSE").query_async::<()>(&mut pause).await.expect("unpause");
}

/// Failed sign-ins and refusals are logged as security events with the account and address.
#[tokio::test(flavor = "current_thread")]
async fn abuse_failed_logins_are_logged_as_security_events() {
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = TestApp::new().await;
    let owner = app.account("logged", Role::User).await;
    for _ in 0..FREE_FAILURES + 1 {
        app.send(login_from("203.0.113.44", &owner.username, "not the passphrase")).await;
    }
    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|event: &serde_json::Value| event["target"] == "security")
        .collect();
    let failed = events.iter().find(|event| event["fields"]["event"] == "login_failed").expect("a login_failed event");
    assert_eq!(failed["fields"]["client.address"], "203.0.113.44");
    assert!(
        failed["fields"]["account"].as_str().is_some_and(|account| account.len() == 64),
        "the account, as a digest"
    );
    assert!(events.iter().any(|event| event["fields"]["event"] == "login_backoff"), "the back-off is logged: {text}");
}

/// Signs in through the trusted proxy (10.0.0.1) as the client `address`, with a device token
/// when given.
async fn proxied_login(
    app: &TestApp,
    address: &str,
    username: &str,
    password: &str,
    device: Option<&str>,
) -> support::Reply {
    let mut request =
        Request::post("/api/auth/login").header("content-type", "application/json").header("x-forwarded-for", address);
    if let Some(device) = device {
        request = request.header("x-device-token", device);
    }
    let mut request =
        request.body(Body::from(json!({"username": username, "password": password}).to_string())).expect("request");
    request.extensions_mut().insert(ConnectInfo("10.0.0.1:40000".parse::<SocketAddr>().expect("peer")));
    app.send(request).await
}

/// Guesses from many addresses put the account as a whole into back-off, yet its owner signs in
/// from a known device with the right password; strangers and forged device tokens wait.
#[tokio::test]
async fn abuse_guesses_from_many_addresses_do_not_lock_the_owner_out_of_a_known_device() {
    use finagent_api_server::limits::login::{ACCOUNT_FREE_FAILURES, MAX_DELAY};
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.trusted_proxies = vec!["10.0.0.0/8".parse().expect("net")];
    let app = TestApp::with(Guard::memory(), settings).await;
    let owner = app.account("owner", Role::User).await;
    let other = app.account("other", Role::User).await;
    let first = proxied_login(&app, "198.51.100.7", &owner.username, &owner.password, None).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.json);
    let device = first.json["device_token"].as_str().expect("a device token").to_owned();
    let others_device =
        proxied_login(&app, "198.51.100.9", &other.username, &other.password, None).await.json["device_token"]
            .as_str()
            .expect("a device token")
            .to_owned();

    // Each address makes its free guesses; together they pass the account's free failures.
    let addresses = ACCOUNT_FREE_FAILURES.div_ceil(FREE_FAILURES);
    for address in 0..addresses {
        for _ in 0..FREE_FAILURES {
            let guess =
                proxied_login(&app, &format!("203.0.113.{address}"), &owner.username, "a wrong guess", None).await;
            assert_eq!(guess.status, StatusCode::UNAUTHORIZED, "{:?}", guess.json);
        }
    }
    let attacker = proxied_login(&app, "203.0.113.250", &owner.username, "another wrong guess", None).await;
    assert_eq!(attacker.status, StatusCode::TOO_MANY_REQUESTS, "the account backs off for unknown clients");
    let stranger = proxied_login(&app, "192.0.2.200", &owner.username, &owner.password, None).await;
    assert_eq!(stranger.status, StatusCode::TOO_MANY_REQUESTS, "a new device waits like any client");
    for forged in [others_device.as_str(), "00000000000000000000000000000000.00", "not a token"] {
        let refused = proxied_login(&app, "192.0.2.201", &owner.username, &owner.password, Some(forged)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{forged} is not the owner's device");
    }
    let known = proxied_login(&app, "198.51.100.8", &owner.username, &owner.password, Some(&device)).await;
    assert_eq!(known.status, StatusCode::OK, "the owner gets in from a known device: {:?}", known.json);
    assert_eq!(known.json["device_token"], device.as_str(), "the device keeps its token");
    let day = 24 * 3600 / MAX_DELAY.as_secs();
    println!(
        "guesses an attacker gets on one account: {} free per address then one per {} s ({} a day per address); \
         {} free for the account then one per {} s ({} a day from all addresses together)",
        FREE_FAILURES,
        MAX_DELAY.as_secs(),
        u64::from(FREE_FAILURES) + day,
        ACCOUNT_FREE_FAILURES,
        MAX_DELAY.as_secs(),
        u64::from(ACCOUNT_FREE_FAILURES) + day,
    );
}
