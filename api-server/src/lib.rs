//! FinancialAgent's REST API.
//!
//! [`app`] builds the whole router, so tests drive it with `oneshot` and the binary only binds it
//! to a socket. The operational routes `/`, `/healthz` and `/readyz` are served on the API port
//! itself; `/metrics` on the admin port (`ADMIN_LISTEN`), or, without one, on the API port to
//! clients on this machine only. The API routes are collected with their OpenAPI annotations, so
//! the document at `/openapi.json` lists exactly the routes that exist.

pub mod admin;
pub mod auth;
pub mod config;
pub mod docs;
pub mod error;
pub mod extractors;
pub mod guard;
pub mod http;
pub mod insights;
pub mod limits;
pub mod listen;
pub mod mongodb_user;
pub mod ocr;
pub mod openapi;
pub mod read_cache;
pub mod receipts;
pub mod server;
pub mod state;
pub mod views;
pub mod web;
pub mod webhooks;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clap::{Parser, Subcommand};
use finagent_platform::admin::{self as admin_routes, Readiness};
use finagent_platform::telemetry::{self, TelemetryArgs};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::ServeArgs;
use crate::http::HttpMetrics;
use crate::state::AppState;

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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API.
    Serve(Box<ServeArgs>),
    /// Create an administrator account (for the first sign-in).
    CreateAdmin(server::CreateAdminArgs),
    /// Make sure the MongoDB user the platform connects as exists (run with the root credentials,
    /// as the API pod's init container).
    MongodbUser(mongodb_user::MongodbUserArgs),
}

/// Runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(&cli.telemetry)?;
    match cli.command {
        Command::Serve(args) => server::serve(*args).await,
        Command::CreateAdmin(args) => server::create_admin(args).await,
        Command::MongodbUser(args) => mongodb_user::run(args).await,
    }
}

/// The API routes with their OpenAPI document.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::routes::register))
        .routes(routes!(auth::routes::login))
        .routes(routes!(auth::routes::refresh))
        .routes(routes!(auth::routes::logout))
        .routes(routes!(auth::sessions::list, auth::sessions::end_others))
        .routes(routes!(auth::sessions::end))
        .routes(routes!(auth::me::me, auth::me::update_me))
        .routes(routes!(auth::routes::change_password))
        .routes(routes!(auth::browser::login))
        .routes(routes!(auth::browser::refresh))
        .routes(routes!(auth::browser::logout))
        .routes(routes!(auth::browser::password))
        .routes(routes!(auth::api_keys::create, auth::api_keys::list))
        .routes(routes!(auth::api_keys::revoke))
        .routes(routes!(admin::list_users, admin::create_user))
        .routes(routes!(admin::instance))
        .routes(routes!(admin::create_invite, admin::list_invites))
        .routes(routes!(admin::delete_invite))
        .routes(routes!(auth::routes::registration))
        .routes(routes!(admin::disable_user))
        .routes(routes!(admin::enable_user))
        .routes(routes!(admin::change_role))
        .routes(routes!(ocr::status))
        .routes(routes!(ocr::result))
        .routes(routes!(ocr::health))
        .routes(routes!(receipts::list))
        .routes(routes!(receipts::export))
        .routes(routes!(receipts::get, receipts::delete, receipts::correct))
        .routes(routes!(receipts::image))
        .routes(routes!(receipts::preview))
        .routes(routes!(insights::summary))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::deliveries))
        .merge(upload_routes())
        .split_for_parts()
}

/// The upload route, with its own body limit: the multipart form of one image of at most
/// `MAX_UPLOAD_SIZE` (checked again while streaming) plus room for the form's headers.
fn upload_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(ocr::process)).layer(axum::extract::DefaultBodyLimit::disable())
}

pub use server::{create_demo_users, readiness};

/// The OpenAPI document alone, as `utoipa` derives it (before [`openapi::finished`]).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// The whole API router.
pub fn app(state: AppState, readiness: Readiness) -> Result<Router, prometheus::Error> {
    let http_metrics = HttpMetrics::register(&state.metrics)?;
    let (routes, document) = api_routes();
    let document = std::sync::Arc::new(openapi::finished(&document, state.settings.image_limits.max_bytes));
    let upload_limit = finagent_core::names::uploads::body_limit(state.settings.image_limits.max_bytes);
    let routes = routes
        .layer(axum::middleware::from_fn_with_state(state.clone(), read_cache::layer))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(upload_limit))
        .route("/", get(root))
        .route("/metrics", get(local_metrics))
        .merge(web::router())
        .route("/openapi.json", get(move || async move { axum::Json(document.as_ref().clone()) }))
        .merge(docs::router())
        .with_state(state.clone())
        .merge(admin_routes::public_router(state.metrics.clone(), readiness));
    Ok(http::layered(routes, state, http_metrics))
}

/// `GET /metrics` on the API port: only without an admin listener, and only to a client on this
/// machine that came directly (no proxy's forwarding headers); 404 for everyone else, so a port
/// the internet reaches never shows the platform's metrics.
async fn local_metrics(
    State(state): State<AppState>,
    connect: Option<auth::browser::Peer>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let direct = ["x-forwarded-for", "x-real-ip", "forwarded"].iter().all(|name| !headers.contains_key(*name));
    let local = auth::browser::peer(connect).is_some_and(|ip| ip.is_loopback());
    if state.settings.metrics_on_api_port && local && direct {
        admin_routes::metrics_response(&state.metrics)
    } else {
        error::AppError::NotFound.into_response()
    }
}

/// `GET /`: the web app for browsers (a request that prefers HTML), the service's name and
/// version for every other client.
async fn root(
    state: State<AppState>,
    connect: Option<auth::browser::Peer>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = if web::prefers_html(&headers) {
        web::page_route(state, connect, headers).await
    } else {
        axum::Json(serde_json::json!({ "service": SERVICE, "version": env!("CARGO_PKG_VERSION") })).into_response()
    };
    response.headers_mut().insert(axum::http::header::VARY, axum::http::HeaderValue::from_static("accept"));
    response
}
