//! The admin router: `/metrics`, `/healthz` and `/readyz`.
//!
//! Workers and the operator serve it on their admin port; the API server merges it into its own
//! router. `/healthz` answers whenever the process can serve HTTP (liveness). `/readyz` runs every
//! registered [`Readiness`] check concurrently, each under a time limit, and answers 503 with the
//! failing checks named when any fails — so a pod is taken out of rotation, not restarted, when a
//! dependency goes away.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::{BoxFuture, join_all};
use serde::Serialize;

use crate::metrics::Metrics;

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// The named dependency checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, Arc<CheckFn>)>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.checks.iter().map(|(name, _)| name)).finish()
    }
}

impl Readiness {
    /// No checks: ready as soon as the process serves HTTP.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named check; it returns `Err(reason)` when the dependency is unusable.
    pub fn with_check<F>(mut self, name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        self.checks.push((name.into(), Arc::new(check)));
        self
    }

    /// Runs every check concurrently; the report names each check's outcome.
    pub async fn report(&self) -> ReadinessReport {
        let outcomes = join_all(self.checks.iter().map(|(name, check)| {
            let future = check();
            async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, future).await {
                    Ok(Ok(())) => "ok".to_owned(),
                    Ok(Err(reason)) => reason,
                    Err(_) => format!("timed out after {}s", CHECK_TIMEOUT.as_secs()),
                };
                (name.clone(), outcome)
            }
        }))
        .await;
        let ready = outcomes.iter().all(|(_, outcome)| outcome == "ok");
        ReadinessReport { status: if ready { "ready" } else { "not_ready" }, checks: outcomes.into_iter().collect() }
    }
}

/// The body of `/readyz`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReadinessReport {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Each check's outcome: `ok`, or why it failed.
    pub checks: BTreeMap<String, String>,
}

impl ReadinessReport {
    /// Whether every check passed.
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

#[derive(Clone)]
struct AdminState {
    metrics: Metrics,
    readiness: Readiness,
}

/// The admin routes over a process's metrics and readiness checks, with each failing check's
/// reason in `/readyz` (for an admin port, which only the cluster reaches).
pub fn router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AdminState { metrics, readiness })
}

/// The probes for a port clients reach, without `/metrics` (which stays on the admin port):
/// `/readyz` names each check with a fixed outcome (`ok` or `failed`) and never its reason, which
/// can name hosts and topology; the reason is logged instead.
pub fn public_router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(public_readyz))
        .with_state(AdminState { metrics, readiness })
}

/// The metrics in Prometheus's text format, as `/metrics` answers them.
pub fn metrics_response(metrics: &Metrics) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.render()).into_response()
}

async fn public_readyz(State(state): State<AdminState>) -> Response {
    let mut report = state.readiness.report().await;
    for (name, outcome) in report.checks.iter_mut() {
        if outcome != "ok" {
            tracing::warn!(check = %name, reason = %outcome, "not ready");
            *outcome = "failed".to_owned();
        }
    }
    let status = if report.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(report)).into_response()
}

/// Serves the admin router on `listen` until `shutdown` completes.
pub async fn serve(
    listen: std::net::SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(admin.address = %listener.local_addr()?, "admin endpoints listening");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

async fn render_metrics(State(state): State<AdminState>) -> Response {
    metrics_response(&state.metrics)
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<AdminState>) -> Response {
    let report = state.readiness.report().await;
    let status = if report.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(report)).into_response()
}
