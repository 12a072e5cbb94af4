//! Rate limits and shared revocations against real Redis (and the in-process equivalent): under
//! ten times the allowed load, admitted requests stay within rate × time + burst, on one replica
//! or spread over two.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use finagent_api_server::config::Settings;
use finagent_api_server::guard::{Guard, RedisGuard};
use finagent_api_server::limits::rate::Limit;
use finagent_core::account::Role;
use finagent_platform::testkit;
use support::{TestApp, generous_limits};

async fn redis_guard(prefix: &str) -> Option<Guard> {
    let url = testkit::redis_url()?;
    let client = redis::Client::open(url).expect("redis url");
    let connection = redis::aio::ConnectionManager::new(client).await.expect("redis");
    Some(Guard::Redis(RedisGuard::with_prefix(connection, format!("{prefix}:"))))
}

fn settings_with_api_limit(limit: Limit) -> Settings {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.limits.api = limit;
    settings
}

fn from(address: &str, forwarded: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/").header("accept", "application/json");
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    let mut request = request.body(Body::empty()).expect("request");
    let peer: SocketAddr = format!("{address}:40000").parse().expect("address");
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

/// Sends `GET /` at `per_second` from `workers` concurrent clients spread over `apps` for
/// `duration`; returns (admitted, refused, elapsed seconds).
async fn hammer(apps: &[TestApp], per_second: f64, duration: Duration) -> (u32, u32, f64) {
    let workers = 8;
    let interval = Duration::from_secs_f64(workers as f64 / per_second);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|worker| {
            let app = apps[worker % apps.len()].clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                let (mut admitted, mut refused) = (0, 0);
                while started.elapsed() < duration {
                    ticker.tick().await;
                    match app.send(from("203.0.113.7", None)).await.status {
                        StatusCode::OK => admitted += 1,
                        StatusCode::TOO_MANY_REQUESTS => refused += 1,
                        other => panic!("unexpected status {other}"),
                    }
                }
                (admitted, refused)
            })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for task in tasks {
        let (a, r) = task.await.expect("worker");
        admitted += a;
        refused += r;
    }
    (admitted, refused, started.elapsed().as_secs_f64())
}

fn assert_within_bound(limit: Limit, admitted: u32, refused: u32, elapsed: f64) {
    let bound = limit.rate() * elapsed + f64::from(limit.burst);
    eprintln!("admitted {admitted}, refused {refused} in {elapsed:.2} s; bound {bound:.1}");
    assert!(f64::from(admitted) <= bound, "admitted {admitted} > rate × time + burst = {bound:.1}");
    // Not a limiter that refuses everything: the steady rate gets through.
    assert!(f64::from(admitted) >= limit.rate() * (elapsed - 1.0), "admitted only {admitted} in {elapsed:.2} s");
    assert!(refused > admitted, "ten times the load must mostly be refused");
}

#[tokio::test]
async fn rate_limit_on_redis_holds_under_ten_times_the_load() {
    let Some(guard) = redis_guard(&testkit::unique_name("rl")).await else { return };
    let limit = Limit::per_second(10.0, 5);
    let app = TestApp::with(guard, settings_with_api_limit(limit)).await;
    let (admitted, refused, elapsed) = hammer(&[app], 100.0, Duration::from_secs(3)).await;
    assert_within_bound(limit, admitted, refused, elapsed);
}

#[tokio::test]
async fn rate_limit_on_redis_is_shared_by_replicas() {
    let prefix = testkit::unique_name("rl");
    let Some(first) = redis_guard(&prefix).await else { return };
    let second = redis_guard(&prefix).await.expect("redis");
    let limit = Limit::per_second(10.0, 5);
    let one = TestApp::with(first, settings_with_api_limit(limit)).await;
    let two = one.replica(second);
    let (admitted, refused, elapsed) = hammer(&[one, two], 100.0, Duration::from_secs(3)).await;
    assert_within_bound(limit, admitted, refused, elapsed);
}

#[tokio::test]
async fn rate_limit_in_process_holds_under_ten_times_the_load() {
    let limit = Limit::per_second(10.0, 5);
    let app = TestApp::with(Guard::memory(), settings_with_api_limit(limit)).await;
    let (admitted, refused, elapsed) = hammer(&[app], 100.0, Duration::from_secs(3)).await;
    assert_within_bound(limit, admitted, refused, elapsed);
}

#[tokio::test]
async fn rate_limit_refusals_say_when_to_retry() {
    let Some(guard) = redis_guard(&testkit::unique_name("rl")).await else { return };
    let app = TestApp::with(guard, settings_with_api_limit(Limit::per_second(1.0, 2))).await;
    let first = app.send(from("198.51.100.1", None)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers["ratelimit-limit"], "2");
    assert_eq!(first.headers["ratelimit-remaining"], "1");
    assert_eq!(first.headers["ratelimit-policy"], "2;w=2");
    assert_eq!(app.send(from("198.51.100.1", None)).await.status, StatusCode::OK);
    let refused = app.send(from("198.51.100.1", None)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.headers["ratelimit-remaining"], "0");
    assert_eq!(refused.headers["content-type"], "application/problem+json");
    // Another client is not affected.
    assert_eq!(app.send(from("198.51.100.2", None)).await.status, StatusCode::OK);
    // Health probes are never limited.
    let probe = Request::get("/healthz").body(Body::empty()).expect("request");
    assert_eq!(app.send(probe).await.status, StatusCode::OK);
}

#[tokio::test]
async fn rate_limit_believes_forwarded_addresses_only_from_trusted_proxies() {
    let Some(guard) = redis_guard(&testkit::unique_name("rl")).await else { return };
    let mut settings = settings_with_api_limit(Limit::per_second(0.5, 1));
    settings.trusted_proxies = vec!["10.0.0.0/8".parse().expect("net")];
    let app = TestApp::with(guard, settings).await;
    // Through the trusted proxy, two clients have two buckets.
    assert_eq!(app.send(from("10.0.0.5", Some("192.0.2.1"))).await.status, StatusCode::OK);
    assert_eq!(app.send(from("10.0.0.5", Some("192.0.2.2"))).await.status, StatusCode::OK);
    assert_eq!(app.send(from("10.0.0.5", Some("192.0.2.1"))).await.status, StatusCode::TOO_MANY_REQUESTS);
    // An untrusted peer cannot escape its bucket by inventing addresses.
    assert_eq!(app.send(from("192.0.2.50", Some("192.0.2.60"))).await.status, StatusCode::OK);
    assert_eq!(app.send(from("192.0.2.50", Some("192.0.2.61"))).await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn rate_limit_on_logins_is_per_account_and_address() {
    let Some(guard) = redis_guard(&testkit::unique_name("rl")).await else { return };
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.limits.login = Limit::per_second(5.0 / 60.0, 5);
    let app = TestApp::with(guard, settings).await;
    let first = app.account("lim", Role::User).await; // one login used
    let second = app.account("lim", Role::User).await;
    for _ in 0..4 {
        assert_eq!(app.login(&first.username, &first.password).await.status, StatusCode::OK);
    }
    let refused = app.login(&first.username, &first.password).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=12).contains(&retry), "retry after {retry} s");
    assert_eq!(app.login(&second.username, &second.password).await.status, StatusCode::OK, "another account");
}

#[tokio::test]
async fn rate_limit_failure_backoff_is_shared_by_replicas_on_redis() {
    let prefix = testkit::unique_name("rl");
    let Some(first) = redis_guard(&prefix).await else { return };
    let one = TestApp::with(first, support_settings()).await;
    let two = one.replica(redis_guard(&prefix).await.expect("redis"));
    let account = one.account("spread", Role::User).await;
    for attempt in 0..finagent_api_server::limits::login::FREE_FAILURES {
        let replica = if attempt % 2 == 0 { &one } else { &two };
        assert_eq!(replica.login(&account.username, "wrong passphrase!").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(two.login(&account.username, &account.password).await.status, StatusCode::TOO_MANY_REQUESTS);
}

fn support_settings() -> Settings {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings
}

#[tokio::test]
async fn logout_on_one_replica_is_refused_on_another_at_once_with_redis() {
    let prefix = testkit::unique_name("revoke");
    let Some(first) = redis_guard(&prefix).await else { return };
    let one = TestApp::with(first, support_settings()).await;
    let two = one.replica(redis_guard(&prefix).await.expect("redis"));
    let account = one.account("multi", Role::User).await;
    assert_eq!(two.call(Method::GET, "/api/auth/me", Some(&account.access), None).await.status, StatusCode::OK);
    assert_eq!(
        one.call(Method::POST, "/api/auth/logout", Some(&account.access), None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        two.call(Method::GET, "/api/auth/me", Some(&account.access), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Disabling on one replica voids the user's other tokens on the other.
    let mut other = account.clone();
    one.sign_in(&mut other).await;
    let admin = one.account("boss", Role::Admin).await;
    let path = format!("/api/admin/users/{}/disable", account.id);
    assert_eq!(one.call(Method::POST, &path, Some(&admin.access), None).await.status, StatusCode::OK);
    assert_eq!(two.call(Method::GET, "/api/auth/me", Some(&other.access), None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_latest_token_cut_off_wins_whichever_write_lands_last() {
    let mut guards = vec![("in-process", Guard::memory())];
    if let Some(guard) = redis_guard(&testkit::unique_name("nb")).await {
        guards.push(("redis", guard));
    }
    for (name, guard) in guards {
        let user = finagent_core::UserId::new();
        let horizon = std::time::Duration::from_secs(60);
        // Two endings of every session race: the later cut-off is written first.
        guard.set_not_before(user, 1_800_000_002_000, horizon).await.expect("set");
        guard.set_not_before(user, 1_800_000_001_000, horizon).await.expect("set");
        let standing = guard.token_standing("jti", uuid::Uuid::new_v4(), user).await.expect("standing");
        assert_eq!(standing.not_before_millis, Some(1_800_000_002_000), "{name}");
        guard.set_not_before(user, 1_800_000_003_000, horizon).await.expect("set");
        let standing = guard.token_standing("jti", uuid::Uuid::new_v4(), user).await.expect("standing");
        assert_eq!(standing.not_before_millis, Some(1_800_000_003_000), "{name}");
    }
}

#[tokio::test]
async fn a_users_uploads_at_once_are_bounded_across_replicas_sharing_redis() {
    let prefix = testkit::unique_name("uploads");
    let (Some(one), Some(two)) = (redis_guard(&prefix).await, redis_guard(&prefix).await) else {
        assert!(std::env::var_os("FINAGENT_TEST_REQUIRE_SERVERS").is_none(), "no Redis to test with");
        return;
    };
    let (user, other) = (finagent_core::UserId::new(), finagent_core::UserId::new());
    let start = finagent_api_server::limits::uploads::start;
    let first = start(&one, user, 2).await.expect("redis").expect("first");
    let _second = start(&two, user, 2).await.expect("redis").expect("second, on the other replica");
    assert!(start(&one, user, 2).await.expect("redis").is_none(), "a third, on either replica, is refused");
    assert!(start(&two, user, 2).await.expect("redis").is_none());
    assert!(start(&two, other, 2).await.expect("redis").is_some(), "another user is apart");
    drop(first);
    let started = std::time::Instant::now();
    loop {
        if start(&two, user, 2).await.expect("redis").is_some() {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "the ended upload's place never freed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A replica that dies holding a place: the lease frees it.
    let lease = std::time::Duration::from_millis(200);
    let lone = finagent_core::UserId::new();
    assert!(one.begin_upload(lone, uuid::Uuid::new_v4(), 1, lease).await.expect("begin"));
    assert!(!two.begin_upload(lone, uuid::Uuid::new_v4(), 1, lease).await.expect("begin"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(two.begin_upload(lone, uuid::Uuid::new_v4(), 1, lease).await.expect("begin"), "freed by its lease");
}
