//! FinancialAgent's REST API.
//!
//! [`app`] builds the whole router, so tests drive it with `oneshot` and the binary only binds
//! it to a socket. The operational routes (`/`, `/healthz`, `/readyz`, `/metrics`) are served on
//! the API port itself.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use clap::{Parser, Subcommand};
use finagent_platform::admin::{self, Readiness};
use finagent_platform::metrics::Metrics;
use finagent_platform::shutdown;
use finagent_platform::telemetry::{self, TelemetryArgs};

/// The service name reported by `GET /`.
pub const SERVICE: &str = "financial-agent-api";

/// FinancialAgent's REST API server.
#[derive(Debug, Parser)]
#[command(name = "api-server", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API.
    Serve(ServeArgs),
}

/// Options of `api-server serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
}

/// Runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(&cli.telemetry)?;
    match cli.command {
        Command::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let router = app(metrics, Readiness::new());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(http.address = %listener.local_addr()?, "api listening");
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown::signal())
        .await?;
    Ok(())
}

/// The whole API router.
pub fn app(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new().route("/", get(root)).merge(admin::router(metrics, readiness))
}

async fn root() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "service": SERVICE, "version": env!("CARGO_PKG_VERSION") }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn root_names_the_service_and_version() {
        let response = app(Metrics::new(), Readiness::new())
            .oneshot(Request::get("/").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.expect("body").to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json, serde_json::json!({"service": SERVICE, "version": env!("CARGO_PKG_VERSION")}));
    }
}
