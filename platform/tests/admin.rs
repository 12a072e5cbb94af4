//! The admin router answers liveness, readiness and metrics as the probes expect.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use finagent_platform::admin::{self, Readiness};
use finagent_platform::metrics::Metrics;
use futures::FutureExt;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get(router: axum::Router, path: &str) -> (StatusCode, String) {
    let response = router.oneshot(Request::get(path).body(Body::empty()).expect("request")).await.expect("infallible");
    let status = response.status();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8(body.to_vec()).expect("utf-8"))
}

#[tokio::test]
async fn healthz_and_metrics_answer() {
    let router = admin::router(Metrics::new(), Readiness::new());
    assert_eq!(get(router.clone(), "/healthz").await.0, StatusCode::OK);
    let (status, body) = get(router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("process_resident_memory_bytes"), "{body}");
}

#[tokio::test]
async fn readyz_names_the_failing_check() {
    let readiness = Readiness::new()
        .with_check("store", || async { Ok(()) }.boxed())
        .with_check("queue", || async { Err("connection refused".to_owned()) }.boxed());
    let (status, body) = get(admin::router(Metrics::new(), readiness), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let report: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        report,
        serde_json::json!({"status": "not_ready", "checks": {"queue": "connection refused", "store": "ok"}})
    );
}

#[tokio::test]
async fn readyz_is_ok_when_every_check_passes() {
    let readiness = Readiness::new().with_check("store", || async { Ok(()) }.boxed());
    let (status, _) = get(admin::router(Metrics::new(), readiness), "/readyz").await;
    assert_eq!(status, StatusCode::OK);
}
