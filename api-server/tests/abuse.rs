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
    settings.limits.login_address = Limit::per_second(30.0 / 60.0, 30);
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
    let in_progress: Vec<_> =
        (0..2).map(|_| app.state.uploads_in_progress.start(ann.id, 2).expect("an upload in progress")).collect();
    let refused = app.upload(Some(&ann.access), &unique_png(), None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", refused.json);
    assert_eq!(app.upload(Some(&bob.access), &unique_png(), None).await.status, StatusCode::ACCEPTED);
    drop(in_progress);
    assert_eq!(app.upload(Some(&ann.access), &unique_png(), None).await.status, StatusCode::ACCEPTED);
    assert_eq!(app.state.uploads_in_progress.of(ann.id), 0, "finished uploads end their ticket");
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
