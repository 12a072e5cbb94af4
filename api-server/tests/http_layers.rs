//! What every response carries: security headers, CORS from configuration, gzip, body limits,
//! problem documents for errors, and metrics by matched route.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use finagent_api_server::config::Settings;
use finagent_api_server::guard::Guard;
use finagent_core::account::Role;
use serde_json::json;
use support::{TestApp, generous_limits};

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::new().await;
    for (method, path) in
        [(Method::GET, "/"), (Method::GET, "/api/auth/me"), (Method::GET, "/nowhere"), (Method::GET, "/healthz")]
    {
        let reply = app.call(method, path, None, None).await;
        for header in [
            "content-security-policy",
            "strict-transport-security",
            "x-content-type-options",
            "x-frame-options",
            "referrer-policy",
        ] {
            assert!(reply.headers.contains_key(header), "{path} lacks {header}");
        }
        assert_eq!(reply.headers["x-content-type-options"], "nosniff");
        assert_eq!(reply.headers["x-frame-options"], "DENY");
    }
}

#[tokio::test]
async fn root_names_the_service_and_version() {
    let app = TestApp::new().await;
    let reply = app.call(Method::GET, "/", None, None).await;
    assert_eq!(reply.json, json!({"service": "financial-agent-api", "version": env!("CARGO_PKG_VERSION")}));
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let mut settings = Settings::for_tests();
    settings.limits = generous_limits();
    settings.cors_allowed_origins = vec!["https://app.example.com".into()];
    let app = TestApp::with(Guard::memory(), settings).await;
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/auth/me")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .body(Body::empty())
            .expect("request")
    };
    let allowed = app.send(preflight("https://app.example.com")).await;
    assert_eq!(allowed.headers["access-control-allow-origin"], "https://app.example.com");
    let headers = allowed.headers["access-control-allow-headers"].to_str().expect("ascii").to_owned();
    for header in ["authorization", "x-api-key", "x-device-token", "if-none-match"] {
        assert!(headers.contains(header), "{header} is not allowed cross-origin: {headers}");
    }
    let refused = app.send(preflight("https://evil.example.net")).await;
    assert!(!refused.headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn large_responses_are_gzipped_when_asked() {
    let app = TestApp::new().await;
    let request = Request::get("/openapi.json").header("accept-encoding", "gzip").body(Body::empty()).expect("request");
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-encoding"], "gzip");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_get_clear_errors() {
    let app = TestApp::new().await;
    let huge = json!({"username": "x".repeat(100_000), "password": "y"});
    let reply = app.call(Method::POST, "/api/auth/login", None, Some(huge)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let request = Request::post("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .expect("request");
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let request =
        Request::post("/api/auth/login").header("content-type", "text/plain").body(Body::from("{}")).expect("request");
    assert_eq!(app.send(request).await.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reply = app.call(Method::POST, "/api/auth/login", None, Some(json!({"username": 5}))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.json["status"], 422);
}

/// `GET /metrics` as if from `peer`, with extra headers.
fn metrics_request(peer: &str, headers: &[(&str, &str)]) -> axum::http::Request<axum::body::Body> {
    let mut request = axum::http::Request::get("/metrics");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(axum::body::Body::empty()).expect("request");
    let peer: std::net::SocketAddr = peer.parse().expect("peer");
    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    request
}

#[tokio::test]
async fn the_api_port_shows_metrics_only_to_local_direct_clients_and_never_beside_an_admin_port() {
    let app = TestApp::new().await;
    assert_eq!(app.send(metrics_request("127.0.0.1:40000", &[])).await.status, StatusCode::OK);
    assert_eq!(app.send(metrics_request("[::1]:40000", &[])).await.status, StatusCode::OK);
    for (peer, headers, why) in [
        ("192.0.2.7:40000", vec![], "another machine"),
        ("10.0.0.7:40000", vec![], "the pod network"),
        ("127.0.0.1:40000", vec![("x-forwarded-for", "203.0.113.9")], "a local proxy forwarding someone"),
        ("127.0.0.1:40000", vec![("forwarded", "for=203.0.113.9")], "a local proxy, RFC 7239"),
    ] {
        assert_eq!(app.send(metrics_request(peer, &headers)).await.status, StatusCode::NOT_FOUND, "{why}");
    }
    assert_eq!(app.call(Method::GET, "/metrics", None, None).await.status, StatusCode::NOT_FOUND, "no known peer");
    let mut settings = finagent_api_server::config::Settings::for_tests();
    settings.metrics_on_api_port = false;
    let with_admin_port = app.reconfigured(finagent_api_server::guard::Guard::memory(), settings);
    let local = with_admin_port.send(metrics_request("127.0.0.1:40000", &[])).await;
    assert_eq!(local.status, StatusCode::NOT_FOUND, "the admin port serves them");
    assert_eq!(with_admin_port.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn http_metrics_are_labelled_by_matched_route() {
    let app = TestApp::new().await;
    let account = app.account("metrics", Role::User).await;
    let path = format!("/api/auth/api-keys/{}", uuid::Uuid::now_v7());
    app.call(Method::DELETE, &path, Some(&account.access), None).await;
    app.call(Method::GET, "/no/such/route", None, None).await;
    let metrics = app.send(metrics_request("127.0.0.1:40000", &[])).await.json;
    let text = metrics.as_str().expect("text");
    assert!(
        text.contains(r#"http_requests_total{method="DELETE",route="/api/auth/api-keys/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary_with_its_own_assets_only() {
    let app = TestApp::new().await;
    let page = app.call(Method::GET, "/docs", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.json.as_str().expect("html");
    // Every script and style is local: no CDN, so the page works offline and under the CSP.
    assert!(!html.contains("http://") && !html.contains("https://"), "{html}");
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js"] {
        assert!(html.contains(asset), "{asset}");
        let reply = app.call(Method::GET, asset, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{asset}");
    }
    let init = app.call(Method::GET, "/docs/init.js", None, None).await;
    assert!(init.json.as_str().expect("js").contains("/openapi.json"));
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_both_credentials() {
    let app = TestApp::new().await;
    let document = app.call(Method::GET, "/openapi.json", None, None).await.json;
    assert!(document["openapi"].as_str().expect("version").starts_with("3.1"), "{}", document["openapi"]);
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert!(document["components"]["schemas"]["ReceiptResult"].is_object(), "results have a real schema");
}

#[tokio::test]
async fn the_openapi_document_states_the_upload_limit_this_server_takes() {
    let upload = |document: &serde_json::Value| {
        let file = document["components"]["schemas"]["UploadForm"]["properties"]["file"]["description"].clone();
        let too_large = document["paths"]["/api/ocr/process"]["post"]["responses"]["413"]["description"].clone();
        (file.as_str().expect("file").to_owned(), too_large.as_str().expect("413").to_owned())
    };
    let default = TestApp::new().await.call(Method::GET, "/openapi.json", None, None).await.json;
    let (file, too_large) = upload(&default);
    assert!(file.ends_with("at most 25 MiB."), "{file}");
    assert_eq!(too_large, "Larger than 25 MiB");

    let mut settings = Settings::for_tests();
    settings.image_limits.max_bytes = 4 * 1024 * 1024;
    let small =
        TestApp::with(Guard::memory(), settings).await.call(Method::GET, "/openapi.json", None, None).await.json;
    let (file, too_large) = upload(&small);
    assert!(file.ends_with("at most 4 MiB."), "{file}");
    assert_eq!(too_large, "Larger than 4 MiB");
}
