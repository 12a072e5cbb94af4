//! `ocr-worker run`: the job consumer of `finagent_ocr::consumer` on Redis and MongoDB, with
//! its admin endpoints, until SIGTERM.

use finagent_core::names::env;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use finagent_core::names::InstanceName;
use finagent_platform::admin::{self, Readiness};
use finagent_platform::metrics::Metrics;
use finagent_platform::queue::redis::RedisQueue;
use finagent_platform::queue::{JobQueue, QueuePolicy};
use finagent_platform::shutdown;
use finagent_platform::store::mongo::MongoStore;
use futures::FutureExt;
use tokio::sync::watch;

use finagent_ocr::consumer::{ConsumerConfig, WorkerMetrics, consume};

use crate::EngineArgs;

/// Options of `ocr-worker run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Redis URL of the job queue.
    #[arg(long, env = env::REDIS_URL)]
    pub redis_url: String,
    /// MongoDB connection string.
    #[arg(long, env = env::MONGODB_URL)]
    pub mongodb_url: String,
    /// MongoDB database name.
    #[arg(long, env = env::MONGODB_DB_NAME, default_value = env::DEFAULT_MONGODB_DB_NAME)]
    pub database: String,
    /// Platform instance whose queue to consume.
    #[arg(long, env = env::FINAGENT_INSTANCE, default_value = "local")]
    pub instance: InstanceName,
    /// Address of the admin endpoints (/metrics, /healthz, /readyz).
    #[arg(long, env = env::ADMIN_LISTEN, default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,
    /// Seconds after which a silent worker's job is reclaimed by another.
    #[arg(long, env = env::OCR_VISIBILITY_TIMEOUT, default_value_t = finagent_core::job::VISIBILITY_TIMEOUT_SECS)]
    pub visibility_timeout: u64,
    /// Seconds before the first retry of a failed job (doubled for each further one).
    #[arg(long, env = env::OCR_RETRY_BACKOFF, default_value_t = 2)]
    pub retry_backoff: u64,
    /// Seconds in-flight jobs get to finish after SIGTERM.
    #[arg(long, env = env::SHUTDOWN_GRACE, default_value_t = 25)]
    pub grace: u64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Runs the worker until SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let policy = QueuePolicy {
        visibility_timeout: Duration::from_secs(args.visibility_timeout.max(1)),
        retry_backoff: Duration::from_secs(args.retry_backoff),
        ..QueuePolicy::default()
    };
    let queue = RedisQueue::connect(&args.redis_url, &args.instance, policy).await?;
    let store = MongoStore::connect(&args.mongodb_url, &args.database).await?;
    let pool = args.engine.start_pool()?;
    let slots = pool.threads();
    let metrics = Metrics::new();
    let worker_metrics = WorkerMetrics::register(&metrics)?;
    let consumer = format!("{}-{}", args.instance, std::process::id());

    let (stop_sender, stop) = watch::channel(false);
    let readiness = {
        let (queue, store) = (queue.clone(), store.clone());
        Readiness::new()
            .with_check("queue", move || {
                let queue = queue.clone();
                async move { queue.depth().await.map(|_| ()).map_err(|e| e.to_string()) }.boxed()
            })
            .with_check("store", move || {
                let store = store.clone();
                async move { store.ping().await.map_err(|e| e.to_string()) }.boxed()
            })
    };
    let listener = tokio::net::TcpListener::bind(args.admin_listen).await?;
    tracing::info!(admin.address = %listener.local_addr()?, worker.consumer = %consumer, worker.slots = slots, "ocr worker started");
    let mut admin_stop = stop.clone();
    tokio::spawn(async move {
        let router = admin::router(metrics, readiness);
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = admin_stop.wait_for(|stopped| *stopped).await;
            })
            .await;
    });

    let config = ConsumerConfig {
        consumer,
        heartbeat_every: policy.visibility_timeout / 3,
        grace: Duration::from_secs(args.grace),
    };
    let outcome = consume(Arc::new(queue), Arc::new(store), pool, worker_metrics, config, shutdown::signal()).await;
    let _ = stop_sender.send(true);
    outcome
}
