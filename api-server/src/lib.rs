//! FinancialAgent's REST API.
//!
//! [`app`] builds the whole router, so tests drive it with `oneshot` and the binary only binds it
//! to a socket. The operational routes (`/`, `/healthz`, `/readyz`, `/metrics`) are served on the
//! API port itself; the API routes are collected with their OpenAPI annotations, so the document
//! at `/openapi.json` lists exactly the routes that exist.

pub mod admin;
pub mod auth;
pub mod bench;
pub mod config;
pub mod error;
pub mod extract;
pub mod guard;
pub mod http;
pub mod limits;
pub mod openapi;
pub mod state;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use chrono::Utc;
use clap::{Parser, Subcommand};
use finagent_core::UserId;
use finagent_core::account::{Role, User};
use finagent_core::names::InstanceName;
use finagent_platform::admin::{self as admin_routes, Readiness};
use finagent_platform::metrics::Metrics;
use finagent_platform::shutdown;
use finagent_platform::store::mongo::MongoStore;
use finagent_platform::store::sqlite::SqliteStore;
use finagent_platform::store::{AnyStore, StoreError, UserStore};
use finagent_platform::telemetry::{self, TelemetryArgs};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::password::{HashParams, Hasher};
use crate::config::{ServeArgs, Settings};
use crate::guard::{Guard, RedisGuard};
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

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API.
    Serve(Box<ServeArgs>),
    /// Measure `/api/auth/me` and `/api/auth/login` latency against baselines (see the README).
    Bench(bench::BenchArgs),
}

/// Runs the command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(&cli.telemetry)?;
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}

/// Opens the store the arguments name: MongoDB when a URL is given, else the embedded SQLite file.
pub async fn open_store(args: &ServeArgs) -> Result<AnyStore, StoreError> {
    match &args.mongodb_url {
        Some(url) => Ok(AnyStore::Mongo(MongoStore::connect(url, &args.mongodb_db_name).await?)),
        None => {
            let store =
                SqliteStore::open(args.data_dir.join("financial-agent.sqlite3"), args.data_dir.join("blobs")).await?;
            Ok(AnyStore::Sqlite(store))
        }
    }
}

/// Connects the guard state the arguments name: Redis when a URL is given, else in process.
pub async fn open_guard(args: &ServeArgs) -> anyhow::Result<Guard> {
    match &args.redis_url {
        Some(url) => {
            let instance: InstanceName = args.instance.parse()?;
            Ok(Guard::Redis(RedisGuard::connect(url, &instance).await?))
        }
        None => Ok(Guard::memory()),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args)?;
    let store = open_store(&args).await?;
    let guard = open_guard(&args).await?;
    tracing::info!(store = store.kind(), redis = args.redis_url.is_some(), env = ?settings.environment, "starting");
    let state = AppState::new(store, guard, Hasher::new(HashParams::default())?, settings, Metrics::new());
    if state.settings.demo_users {
        create_demo_users(&state).await?;
    }
    let router = app(state.clone(), readiness(&state))?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(http.address = %listener.local_addr()?, "api listening");
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown::signal())
        .await?;
    Ok(())
}

/// `/readyz` checks: the store and the guard state answer.
pub fn readiness(state: &AppState) -> Readiness {
    let (store, guard) = (state.clone(), state.clone());
    Readiness::new()
        .with_check("store", move || {
            let state = store.clone();
            Box::pin(async move { state.store.ping().await.map_err(|error| error.to_string()) })
        })
        .with_check("guard", move || {
            let state = guard.clone();
            Box::pin(async move { state.guard.ping().await.map_err(|error| error.to_string()) })
        })
}

/// Creates `demo`/`demo123` and `admin`/`admin123` unless they exist (development only: the
/// configuration refuses demo users in production). These passwords are below the policy on
/// purpose, for local trials only.
pub async fn create_demo_users(state: &AppState) -> anyhow::Result<()> {
    for (name, password, role) in [("demo", "demo123", Role::User), ("admin", "admin123", Role::Admin)] {
        if state.store.user_by_name(name).await?.is_some() {
            continue;
        }
        let user = User {
            id: UserId::new(),
            username: name.to_owned(),
            email: format!("{name}@example.com"),
            password_hash: state.hasher.hash(password.to_owned()).await?,
            role,
            disabled: false,
            tokens_valid_after: Utc::now(),
            created_at: Utc::now(),
        };
        state.store.create_user(&user).await?;
        tracing::warn!(user = name, "demo user created (development mode)");
    }
    Ok(())
}

/// The API routes with their OpenAPI document.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::routes::register))
        .routes(routes!(auth::routes::login))
        .routes(routes!(auth::routes::refresh))
        .routes(routes!(auth::routes::logout))
        .routes(routes!(auth::routes::me))
        .routes(routes!(auth::routes::change_password))
        .routes(routes!(auth::api_keys::create, auth::api_keys::list))
        .routes(routes!(auth::api_keys::revoke))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::disable_user))
        .routes(routes!(admin::enable_user))
        .routes(routes!(admin::change_role))
        .split_for_parts()
}

/// The OpenAPI document alone.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_routes().1
}

/// The whole API router.
pub fn app(state: AppState, readiness: Readiness) -> Result<Router, prometheus::Error> {
    let http_metrics = HttpMetrics::register(&state.metrics)?;
    let (routes, document) = api_routes();
    let document = std::sync::Arc::new(document);
    let routes = routes
        .route("/", get(root))
        .route("/openapi.json", get(move || async move { axum::Json(document.as_ref().clone()) }))
        .with_state(state.clone())
        .merge(admin_routes::router(state.metrics.clone(), readiness));
    Ok(http::layered(routes, state, http_metrics))
}

async fn root() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "service": SERVICE, "version": env!("CARGO_PKG_VERSION") }))
}
