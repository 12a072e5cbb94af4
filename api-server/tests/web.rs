//! The web app's routes and its browser sign-in, through the whole router: content negotiation at
//! `/`, the pages and versioned assets under a strict policy, the refresh cookie's attributes
//! (`Secure` behind a TLS proxy), CSRF refusals, rotation and sign-out by cookie; and the API
//! additions the app relies on (receipt images, sort orders, review confidence).

mod support;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use finagent_api_server::config::{SecureCookies, Settings};
use finagent_api_server::guard::Guard;
use finagent_api_server::web::{APP_CONTENT_SECURITY_POLICY, VERSION};
use finagent_core::account::Role;
use http_body_util::BodyExt;
use serde_json::json;
use support::{Reply, TestApp, generous_limits};
use tower::ServiceExt;

/// An unsigned token of the right shape: what the server took before its tokens were signed.
const UNSIGNED: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn set_cookies(reply: &Reply) -> Vec<String> {
    reply.headers.get_all("set-cookie").iter().map(|value| value.to_str().expect("ascii").to_owned()).collect()
}

fn cookie_value(reply: &Reply, name: &str) -> Option<String> {
    set_cookies(reply).iter().find_map(|cookie| {
        cookie.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
    })
}

fn browser_request(path: &str, cookies: &str, csrf: Option<&str>, body: Option<serde_json::Value>) -> Request<Body> {
    let mut request = Request::post(path).header("cookie", cookies).header("host", "app.example");
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    match body {
        Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .expect("request")
}

/// The unbound CSRF token the app's page hands a new browser.
async fn anonymous_csrf(app: &TestApp) -> String {
    let page = app.send(Request::get("/login").body(Body::empty()).expect("request")).await;
    cookie_value(&page, "fa_csrf")
        .or_else(|| cookie_value(&page, "__Host-fa_csrf"))
        .expect("the page sets a CSRF cookie")
}

async fn browser_login(app: &TestApp, username: &str, password: &str) -> Reply {
    let csrf = anonymous_csrf(app).await;
    app.send(browser_request(
        "/api/auth/browser/login",
        &format!("fa_csrf={csrf}"),
        Some(&csrf),
        Some(json!({"username": username, "password": password})),
    ))
    .await
}

#[tokio::test]
async fn browsers_get_the_app_and_api_clients_json_at_the_root() {
    let app = TestApp::new().await;
    let page = app
        .send(
            Request::get("/")
                .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers["content-type"].to_str().expect("type").starts_with("text/html"));
    assert_eq!(page.headers["content-security-policy"], APP_CONTENT_SECURITY_POLICY);
    assert!(page.json.as_str().expect("html").contains(&format!("/assets/{}/main.js", *VERSION)));
    let csrf = cookie_value(&page, "fa_csrf").expect("a CSRF cookie");
    assert!(csrf.len() >= 64, "{csrf}");
    assert!(set_cookies(&page)[0].contains("SameSite=Strict"));
    assert!(!set_cookies(&page)[0].contains("Max-Age"), "an unbound token lasts while the browser runs");
    // A browser with a token this server signed keeps it; one with a forged token gets a new one.
    let again = |cookie: String| {
        let request = Request::get("/login").header("cookie", cookie).body(Body::empty()).expect("request");
        app.send(request)
    };
    assert_eq!(cookie_value(&again(format!("fa_csrf={csrf}")).await, "fa_csrf"), None);
    let replaced = cookie_value(&again(format!("fa_csrf={UNSIGNED}")).await, "fa_csrf").expect("a new token");
    assert_ne!(replaced, UNSIGNED);
    assert!(page.headers.get_all("vary").iter().any(|value| value == "accept"));

    let json = app.send(Request::get("/").header("accept", "*/*").body(Body::empty()).expect("request")).await;
    assert_eq!(json.json["service"], "financial-agent-api");
    // The policy of everything else is stricter still.
    assert_eq!(json.headers["content-security-policy"], finagent_api_server::http::CONTENT_SECURITY_POLICY);
    assert!(!APP_CONTENT_SECURITY_POLICY.contains("unsafe"));
}

#[tokio::test]
async fn every_page_of_the_app_is_served_and_assets_are_cached_by_version() {
    let app = TestApp::new().await;
    for path in [
        "/login",
        "/register",
        "/upload",
        "/receipts",
        "/receipts/018f0000-0000-7000-8000-000000000000",
        "/insights",
        "/settings",
        "/admin",
    ] {
        let reply = app.call(Method::GET, path, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(reply.json.as_str().expect("html").starts_with("<!doctype html>"), "{path}");
    }
    let script = app.call(Method::GET, &format!("/assets/{}/main.js", *VERSION), None, None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(script.headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(script.headers["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(script.headers["content-security-policy"], APP_CONTENT_SECURITY_POLICY);
    let nested = app.call(Method::GET, &format!("/assets/{}/pages/receipt.js", *VERSION), None, None).await;
    assert_eq!(nested.status, StatusCode::OK);
    let stale = app.call(Method::GET, "/assets/000000000000/app.css", None, None).await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.headers["cache-control"], "no-cache");
    for missing in ["/assets/x/../Cargo.toml", "/assets/x/nothing.js", "/assets/x/%2e%2e/src/lib.rs"] {
        assert_eq!(app.call(Method::GET, missing, None, None).await.status, StatusCode::NOT_FOUND, "{missing}");
    }
    let docs = app.call(Method::GET, "/docs", None, None).await;
    assert!(
        docs.headers["content-security-policy"].to_str().expect("csp").contains("style-src 'self' 'unsafe-inline'")
    );
}

#[tokio::test]
async fn web_sign_in_sets_an_httponly_strict_refresh_cookie_and_needs_the_csrf_token() {
    let app = TestApp::new().await;
    let account = app.account("web", Role::User).await;
    let body = json!({"username": account.username, "password": account.password});
    let csrf = anonymous_csrf(&app).await;
    let cookies = format!("fa_csrf={csrf}");
    for (cookies, header, why) in [
        (cookies.clone(), None, "no header"),
        (cookies.clone(), Some("f".repeat(64)), "a header that differs from the cookie"),
        (format!("fa_csrf={UNSIGNED}"), Some(UNSIGNED.to_owned()), "a planted token this server never signed"),
    ] {
        let refused =
            app.send(browser_request("/api/auth/browser/login", &cookies, header.as_deref(), Some(body.clone()))).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{why}");
    }
    let mut cross_site = browser_request("/api/auth/browser/login", &cookies, Some(&csrf), Some(body.clone()));
    cross_site.headers_mut().insert("origin", "https://evil.example".parse().expect("origin"));
    assert_eq!(app.send(cross_site).await.status, StatusCode::FORBIDDEN);
    // A direct client cannot name the host it is compared with: X-Forwarded-Host counts only
    // from a trusted proxy.
    let mut forwarded = browser_request("/api/auth/browser/login", &cookies, Some(&csrf), Some(body.clone()));
    forwarded.headers_mut().insert("origin", "https://evil.example".parse().expect("origin"));
    forwarded.headers_mut().insert("x-forwarded-host", "evil.example".parse().expect("host"));
    assert_eq!(app.send(forwarded).await.status, StatusCode::FORBIDDEN);

    let reply = browser_login(&app, &account.username, &account.password).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json);
    assert!(reply.json["access_token"].is_string());
    assert!(reply.json.get("refresh_token").is_none(), "the refresh token is only in the cookie");
    let cookie = set_cookies(&reply).into_iter().find(|c| c.starts_with("fa_refresh=")).expect("refresh cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/auth/browser"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP from a direct client: not Secure ({cookie})");
    let access = reply.json["access_token"].as_str().expect("token");
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(access), None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_refresh_cookie_is_secure_behind_a_tls_proxy_or_when_configured() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.trusted_proxies = vec!["10.0.0.0/8".parse().expect("net")];
    let app = TestApp::with(Guard::memory(), settings.clone()).await;
    let account = app.account("tls", Role::User).await;
    let csrf = anonymous_csrf(&app).await;
    let request = |path: &str, peer: &str, proto: &str, cookies: &str, body: Option<serde_json::Value>| {
        let mut request = browser_request(path, cookies, Some(&csrf), body);
        request.headers_mut().insert("x-forwarded-proto", proto.parse().expect("proto"));
        let peer: SocketAddr = format!("{peer}:40000").parse().expect("peer");
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    };
    let credentials = json!({"username": account.username, "password": account.password});
    // The token under both names: the server reads the one for how the request came.
    let both = format!("fa_csrf={csrf}; __Host-fa_csrf={csrf}");
    let login =
        |peer: &str, proto: &str| request("/api/auth/browser/login", peer, proto, &both, Some(credentials.clone()));
    let host_only = |reply: &Reply| {
        let cookies = set_cookies(reply);
        let refresh = cookies.iter().find(|c| c.starts_with("__Host-fa_refresh="));
        refresh.is_some_and(|c| c.contains("; Secure") && c.contains("Path=/;") && !c.contains("Domain"))
            && cookies.iter().any(|c| c.starts_with("__Host-fa_csrf=") && c.contains("; Secure"))
            && cookies.iter().any(|c| c.starts_with("__Host-fa_device=") && c.contains("Path=/;"))
            && !cookies.iter().any(|c| c.starts_with("fa_"))
    };
    let plain = |reply: &Reply| {
        set_cookies(reply).iter().any(|c| c.starts_with("fa_refresh=") && !c.contains("Secure"))
            && !set_cookies(reply).iter().any(|c| c.starts_with("__Host-"))
    };
    let tls = app.send(login("10.1.2.3", "https")).await;
    assert_eq!(tls.status, StatusCode::OK, "{:?}", tls.json);
    assert!(host_only(&tls), "HTTPS through the trusted ingress: {:?}", set_cookies(&tls));
    assert!(plain(&app.send(login("10.1.2.3", "http")).await), "HTTP through the ingress");
    assert!(plain(&app.send(login("192.0.2.9", "https")).await), "an untrusted client cannot claim HTTPS");

    // Over TLS the bare names are someone else's cookies (a sibling subdomain's, say): ignored.
    let bare = request("/api/auth/browser/login", "10.1.2.3", "https", &format!("fa_csrf={csrf}"), Some(credentials));
    assert_eq!(app.send(bare).await.status, StatusCode::FORBIDDEN, "a bare CSRF cookie over TLS");
    let refresh = cookie_value(&tls, "__Host-fa_refresh").expect("cookie");
    let bound = cookie_value(&tls, "__Host-fa_csrf").expect("csrf");
    let refresh_with = |cookies: String| {
        let mut request = browser_request("/api/auth/browser/refresh", &cookies, Some(&bound), None);
        request.headers_mut().insert("x-forwarded-proto", "https".parse().expect("proto"));
        request.extensions_mut().insert(ConnectInfo("10.1.2.3:40000".parse::<SocketAddr>().expect("peer")));
        request
    };
    let tossed = app.send(refresh_with(format!("__Host-fa_csrf={bound}; fa_refresh={refresh}"))).await;
    assert_eq!(tossed.status, StatusCode::UNAUTHORIZED, "a bare refresh cookie over TLS is no session");
    let mut plain_page = refresh_with(format!("__Host-fa_csrf={bound}; __Host-fa_refresh={refresh}"));
    plain_page.headers_mut().insert("origin", "http://app.example".parse().expect("origin"));
    assert_eq!(app.send(plain_page).await.status, StatusCode::FORBIDDEN, "a plain-HTTP page of the same host");
    let mut proxied = refresh_with(format!("__Host-fa_csrf={bound}; __Host-fa_refresh={refresh}"));
    proxied.headers_mut().insert("origin", "https://receipts.example".parse().expect("origin"));
    proxied.headers_mut().insert("x-forwarded-host", "receipts.example".parse().expect("host"));
    let rotated = app.send(proxied).await;
    assert_eq!(rotated.status, StatusCode::OK, "the public host, named by the trusted proxy: {:?}", rotated.json);

    settings.secure_cookies = SecureCookies::Always;
    let always = TestApp::with(Guard::memory(), settings).await;
    let other = always.account("tls", Role::User).await;
    let csrf = anonymous_csrf(&always).await;
    let reply = always
        .send(browser_request(
            "/api/auth/browser/login",
            &format!("__Host-fa_csrf={csrf}"),
            Some(&csrf),
            Some(json!({"username": other.username, "password": other.password})),
        ))
        .await;
    assert!(host_only(&reply), "{:?}", set_cookies(&reply));
}

#[tokio::test]
async fn the_refresh_cookie_rotates_a_replayed_one_ends_the_session_and_sign_out_clears_it() {
    let app = TestApp::new().await;
    let account = app.account("rot", Role::User).await;
    let first = browser_login(&app, &account.username, &account.password).await;
    let token = cookie_value(&first, "fa_refresh").expect("cookie");
    let csrf = cookie_value(&first, "fa_csrf").expect("a CSRF token bound to the session");
    let with = |token: &str| format!("fa_csrf={csrf}; fa_refresh={token}");
    let cookie = set_cookies(&first).into_iter().find(|c| c.starts_with("fa_csrf=")).expect("csrf cookie");
    assert!(cookie.contains("Max-Age=") && !cookie.contains("HttpOnly"), "the session's, and readable: {cookie}");

    assert_eq!(
        app.send(browser_request("/api/auth/browser/refresh", &with(&token), None, None)).await.status,
        StatusCode::FORBIDDEN,
        "a refresh without the CSRF header is refused"
    );
    let second = app.send(browser_request("/api/auth/browser/refresh", &with(&token), Some(&csrf), None)).await;
    assert_eq!(second.status, StatusCode::OK, "{:?}", second.json);
    let rotated = cookie_value(&second, "fa_refresh").expect("a new cookie");
    assert_ne!(rotated, token);
    let access = second.json["access_token"].as_str().expect("access").to_owned();

    // The first cookie again: reuse, so the whole session ends, the newest token too.
    let replay = app.send(browser_request("/api/auth/browser/refresh", &with(&token), Some(&csrf), None)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(cookie_value(&replay, "fa_refresh").as_deref(), Some(""), "the refused cookie is cleared");
    let after = app.send(browser_request("/api/auth/browser/refresh", &with(&rotated), Some(&csrf), None)).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&access), None).await.status, StatusCode::UNAUTHORIZED);

    // Sign out: the access token stops at once and the cookie is cleared.
    let fresh = browser_login(&app, &account.username, &account.password).await;
    let token = cookie_value(&fresh, "fa_refresh").expect("cookie");
    let csrf = cookie_value(&fresh, "fa_csrf").expect("csrf");
    let with = |token: &str| format!("fa_csrf={csrf}; fa_refresh={token}");
    let access = fresh.json["access_token"].as_str().expect("access").to_owned();
    let out = app.send(browser_request("/api/auth/browser/logout", &with(&token), Some(&csrf), None)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(set_cookies(&out).iter().any(|c| c.starts_with("fa_refresh=;") && c.contains("Max-Age=0")));
    let unbound = cookie_value(&out, "fa_csrf").expect("an unbound token replaces the session's");
    assert_eq!(app.call(Method::GET, "/api/auth/me", Some(&access), None).await.status, StatusCode::UNAUTHORIZED);
    let refused = app.send(browser_request("/api/auth/browser/refresh", &with(&token), Some(&csrf), None)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    // Signing out twice, or with no session at all, is fine.
    let again = app
        .send(browser_request("/api/auth/browser/logout", &format!("fa_csrf={unbound}"), Some(&unbound), None))
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_csrf_token_serves_its_own_session_only() {
    let app = TestApp::new().await;
    let victim = app.account("victim", Role::User).await;
    let attacker = app.account("attacker", Role::User).await;
    let session = browser_login(&app, &victim.username, &victim.password).await;
    let refresh = cookie_value(&session, "fa_refresh").expect("cookie");
    let own = cookie_value(&session, "fa_csrf").expect("csrf");
    // Tokens the attacker can get: their own session's, and an unbound one from the page.
    let theirs =
        cookie_value(&browser_login(&app, &attacker.username, &attacker.password).await, "fa_csrf").expect("csrf");
    let unbound = anonymous_csrf(&app).await;
    for (csrf, who) in [(&theirs, "another account's session"), (&unbound, "no session")] {
        let cookies = format!("fa_csrf={csrf}; fa_refresh={refresh}");
        for path in ["/api/auth/browser/refresh", "/api/auth/browser/logout"] {
            let refused = app.send(browser_request(path, &cookies, Some(csrf), None)).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path} with a token of {who}");
        }
    }
    let cookies = format!("fa_csrf={own}; fa_refresh={refresh}");
    let fine = app.send(browser_request("/api/auth/browser/refresh", &cookies, Some(&own), None)).await;
    assert_eq!(fine.status, StatusCode::OK, "the session lived through the refusals: {:?}", fine.json);
}

#[tokio::test]
async fn a_disabled_user_cannot_refresh_the_browser_session() {
    let app = TestApp::new().await;
    let admin = app.account("adm", Role::Admin).await;
    let account = app.account("dis", Role::User).await;
    let login = browser_login(&app, &account.username, &account.password).await;
    let token = cookie_value(&login, "fa_refresh").expect("cookie");
    let disabled =
        app.call(Method::POST, &format!("/api/admin/users/{}/disable", account.id), Some(&admin.access), None).await;
    assert_eq!(disabled.status, StatusCode::OK);
    let csrf = cookie_value(&login, "fa_csrf").expect("csrf");
    let cookies = format!("fa_csrf={csrf}; fa_refresh={token}");
    let refused = app.send(browser_request("/api/auth/browser/refresh", &cookies, Some(&csrf), None)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_image_is_served_to_its_owner_only() {
    let app = TestApp::new().await;
    let owner = app.account("img", Role::User).await;
    let other = app.account("img", Role::User).await;
    let bytes = support::unique_png();
    let upload = app.upload(Some(&owner.access), &bytes, None).await;
    let id = upload.json["task_id"].as_str().expect("task").to_owned();
    let path = format!("/api/receipts/{id}/image");
    let request = Request::get(&path)
        .header("authorization", format!("Bearer {}", owner.access))
        .body(Body::empty())
        .expect("request");
    let response = app.router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/png");
    let body = response.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(body.as_ref(), bytes.as_slice());
    assert_eq!(app.call(Method::GET, &path, Some(&other.access), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.call(Method::GET, &path, None, None).await.status, StatusCode::UNAUTHORIZED);
    let view = app.call(Method::GET, &format!("/api/receipts/{id}"), Some(&owner.access), None).await;
    assert_eq!(view.json["image_url"], path);
}

#[tokio::test]
async fn receipts_sort_by_total_date_and_review_need_with_cursors_of_their_own() {
    let app = TestApp::new().await;
    let account = app.account("sort", Role::User).await;
    let mut ids = Vec::new();
    for (total, date) in [("5.00", "2026-01-03"), ("50.00", "2026-01-01"), ("20.00", "2026-01-02")] {
        let mut result = support::result(total, date, "SHOP");
        result.confidence.merchant_name = Some(0.9);
        result.confidence.date = Some(0.9);
        result.confidence.total = Some(if total == "20.00" { 0.3 } else { 0.9 });
        ids.push(app.processed_receipt(&account, &result).await.to_string());
    }
    let order = |sort: &'static str| {
        let app = &app;
        let access = account.access.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/api/receipts?limit=1&sort={sort}");
                if let Some(cursor) = &cursor {
                    path.push_str(&format!("&cursor={cursor}"));
                }
                let page = app.call(Method::GET, &path, Some(&access), None).await;
                assert_eq!(page.status, StatusCode::OK, "{:?}", page.json);
                seen.extend(
                    page.json["items"]
                        .as_array()
                        .expect("items")
                        .iter()
                        .map(|item| item["id"].as_str().expect("id").to_owned()),
                );
                match page.json["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return seen,
                }
            }
        }
    };
    assert_eq!(order("total").await, vec![ids[1].clone(), ids[2].clone(), ids[0].clone()]);
    assert_eq!(order("purchased").await, vec![ids[0].clone(), ids[2].clone(), ids[1].clone()]);
    assert_eq!(order("oldest").await, ids);
    assert_eq!(order("newest").await, ids.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(order("review").await[0], ids[2], "the least sure receipt first");

    let first = app.call(Method::GET, "/api/receipts?limit=1&sort=total", Some(&account.access), None).await;
    let cursor = first.json["next_cursor"].as_str().expect("cursor");
    let mixed = app
        .call(
            Method::GET,
            &format!("/api/receipts?limit=1&sort=purchased&cursor={cursor}"),
            Some(&account.access),
            None,
        )
        .await;
    assert_eq!(mixed.status, StatusCode::UNPROCESSABLE_ENTITY, "a cursor of another order is refused");
    let unknown = app.call(Method::GET, "/api/receipts?sort=sideways", Some(&account.access), None).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let item = app.call(Method::GET, &format!("/api/receipts/{}", ids[2]), Some(&account.access), None).await;
    assert_eq!(item.json["review_confidence"], 0.3);
}

#[tokio::test]
async fn a_web_password_change_keeps_the_refresh_token_out_of_the_page() {
    let app = TestApp::new().await;
    let account = app.account("webpw", Role::User).await;
    let login = browser_login(&app, &account.username, &account.password).await;
    let old_cookie = cookie_value(&login, "fa_refresh").expect("cookie");
    let old_csrf = cookie_value(&login, "fa_csrf").expect("csrf");
    let access = login.json["access_token"].as_str().expect("access").to_owned();
    let change = |csrf: Option<&str>| {
        let mut request = browser_request(
            "/api/auth/browser/password",
            &format!("fa_csrf={}; fa_refresh={old_cookie}", csrf.unwrap_or(&old_csrf)),
            csrf,
            Some(json!({"current_password": account.password, "new_password": "a web-changed passphrase"})),
        );
        request.headers_mut().insert("authorization", format!("Bearer {access}").parse().expect("header"));
        app.send(request)
    };
    assert_eq!(change(None).await.status, StatusCode::FORBIDDEN, "the CSRF token is needed");
    let unbound = anonymous_csrf(&app).await;
    assert_eq!(change(Some(&unbound)).await.status, StatusCode::FORBIDDEN, "a token of no session");
    let changed = change(Some(&old_csrf)).await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.json);
    assert!(changed.json.get("refresh_token").is_none(), "no refresh token in the page's reach: {:?}", changed.json);
    let new_cookie = cookie_value(&changed, "fa_refresh").expect("a new refresh cookie");
    assert!(set_cookies(&changed).iter().any(|c| c.starts_with("fa_refresh=") && c.contains("HttpOnly")));
    let new_csrf = cookie_value(&changed, "fa_csrf").expect("a token bound to the new session");
    let with = |token: &str, csrf: &str| format!("fa_csrf={csrf}; fa_refresh={token}");
    let old = app
        .send(browser_request("/api/auth/browser/refresh", &with(&old_cookie, &old_csrf), Some(&old_csrf), None))
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "the page's old session ended with the others");
    let stale = app
        .send(browser_request("/api/auth/browser/refresh", &with(&new_cookie, &old_csrf), Some(&old_csrf), None))
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN, "the old session's token does not serve the new one");
    let new = app
        .send(browser_request("/api/auth/browser/refresh", &with(&new_cookie, &new_csrf), Some(&new_csrf), None))
        .await;
    assert_eq!(new.status, StatusCode::OK);
    // One session is left: the page's new one, not an extra one from a JSON refresh token.
    let fresh = new.json["access_token"].as_str().expect("access");
    let sessions = app.call(Method::GET, "/api/auth/sessions", Some(fresh), None).await;
    assert_eq!(sessions.json.as_array().map(Vec::len), Some(1), "{:?}", sessions.json);
}

#[tokio::test]
async fn a_web_sign_in_makes_the_browser_a_known_device() {
    let app = TestApp::new().await;
    let account = app.account("device", Role::User).await;
    let first = browser_login(&app, &account.username, &account.password).await;
    assert_eq!(first.status, StatusCode::OK);
    let cookie = set_cookies(&first).into_iter().find(|c| c.starts_with("fa_device=")).expect("a device cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/api/auth/browser/login"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(first.json.get("device_token").is_none(), "the page never sees it: {:?}", first.json);
    let device = cookie_value(&first, "fa_device").expect("device");
    let csrf = anonymous_csrf(&app).await;
    let again = app
        .send(browser_request(
            "/api/auth/browser/login",
            &format!("fa_csrf={csrf}; fa_device={device}"),
            Some(&csrf),
            Some(json!({"username": account.username, "password": account.password})),
        ))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(cookie_value(&again, "fa_device").as_deref(), Some(device.as_str()), "a known device keeps its token");
}
