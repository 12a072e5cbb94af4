//! `ocr-worker run`: the job consumer.
//!
//! Claims jobs from the Redis queue with as many concurrent OCR slots as engine threads, reads
//! the image from the blob store, runs the engine, stores the result keyed by the receipt id and
//! acknowledges — in that order, so a crash at any point leaves the job to be redelivered and
//! the redelivery overwrites rather than duplicates. Long jobs are heartbeaten so they are never
//! mistaken for abandoned. On SIGTERM the worker stops claiming at once (claims wait at most
//! one second), lets in-flight jobs finish within the grace period, and leaves any still
//! unfinished to be reclaimed by another worker after the visibility timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use finagent_core::names::InstanceName;
use finagent_core::receipt::{FailureReason, ReceiptStatus};
use finagent_platform::admin::{self, Readiness};
use finagent_platform::metrics::Metrics;
use finagent_platform::queue::redis::RedisQueue;
use finagent_platform::queue::{Delivery, Failed, JobQueue, QueuePolicy};
use finagent_platform::shutdown;
use finagent_platform::store::mongo::MongoStore;
use finagent_platform::store::{BlobStore, ReceiptStore, WebhookStore};
use futures::FutureExt;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use crate::EngineArgs;
use crate::pool::{EnginePool, ProcessError};

/// Options of `ocr-worker run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Redis URL of the job queue.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: String,
    /// MongoDB connection string.
    #[arg(long, env = "MONGODB_URL")]
    pub mongodb_url: String,
    /// MongoDB database name.
    #[arg(long, env = "MONGODB_DB_NAME", default_value = finagent_core::names::env::DEFAULT_MONGODB_DB_NAME)]
    pub database: String,
    /// Platform instance whose queue to consume.
    #[arg(long, env = "FINAGENT_INSTANCE", default_value = "local")]
    pub instance: InstanceName,
    /// Address of the admin endpoints (/metrics, /healthz, /readyz).
    #[arg(long, env = "ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,
    /// Seconds after which a silent worker's job is reclaimed by another.
    #[arg(long, env = "OCR_VISIBILITY_TIMEOUT", default_value_t = finagent_core::job::VISIBILITY_TIMEOUT_SECS)]
    pub visibility_timeout: u64,
    /// Seconds before the first retry of a failed job (doubled for each further one).
    #[arg(long, env = "OCR_RETRY_BACKOFF", default_value_t = 2)]
    pub retry_backoff: u64,
    /// Seconds in-flight jobs get to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value_t = 25)]
    pub grace: u64,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The metrics a consumer records.
#[derive(Clone, Debug)]
pub struct WorkerMetrics {
    jobs: IntCounterVec,
    ocr_seconds: Histogram,
    queue_depth: IntGauge,
}

impl WorkerMetrics {
    /// Registers the consumer's metrics on a process registry.
    pub fn register(metrics: &Metrics) -> anyhow::Result<Self> {
        use finagent_core::names::metrics as names;
        let jobs = IntCounterVec::new(Opts::new(names::OCR_JOBS, "OCR jobs by outcome."), &["outcome"])?;
        let ocr_seconds = Histogram::with_opts(
            HistogramOpts::new(names::OCR_DURATION, "Seconds per image, decode to extraction.")
                .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]),
        )?;
        let queue_depth = IntGauge::new(names::QUEUE_DEPTH, "Jobs waiting plus jobs in progress.")?;
        metrics.registry().register(Box::new(jobs.clone()))?;
        metrics.registry().register(Box::new(ocr_seconds.clone()))?;
        metrics.registry().register(Box::new(queue_depth.clone()))?;
        Ok(Self { jobs, ocr_seconds, queue_depth })
    }
}

struct Worker<Q, S> {
    queue: Arc<Q>,
    store: Arc<S>,
    pool: EnginePool,
    metrics: WorkerMetrics,
    consumer: String,
    heartbeat_every: Duration,
}

/// How a consumer runs.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// Name of this consumer in the queue.
    pub consumer: String,
    /// Interval of heartbeats for jobs in progress (a third of the visibility timeout).
    pub heartbeat_every: Duration,
    /// Time in-flight jobs get after `shutdown` completes.
    pub grace: Duration,
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

/// The consumer loop, over any queue and store (Redis and MongoDB for the platform, the in-process
/// queue and SQLite for the all-in-one mode): claims as many jobs as there are free OCR slots,
/// runs each in its own task, and after `shutdown` completes stops claiming and gives in-flight
/// jobs the grace period.
pub async fn consume<Q, S>(
    queue: Arc<Q>,
    store: Arc<S>,
    pool: EnginePool,
    metrics: WorkerMetrics,
    config: ConsumerConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    Q: JobQueue + 'static,
    S: ReceiptStore + BlobStore + WebhookStore + 'static,
{
    let slots = pool.threads();
    let worker = Arc::new(Worker {
        queue,
        store,
        pool,
        metrics,
        consumer: config.consumer,
        heartbeat_every: config.heartbeat_every,
    });
    let depth_worker = Arc::clone(&worker);
    let depth_task = tokio::spawn(async move {
        loop {
            if let Ok(depth) = depth_worker.queue.depth().await {
                depth_worker.metrics.queue_depth.set(i64::try_from(depth.total()).unwrap_or(i64::MAX));
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });

    let slots_free = Arc::new(Semaphore::new(slots));
    let mut signal = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut signal => break,
            permit = Arc::clone(&slots_free).acquire_owned() => permit?,
        };
        let free = slots_free.available_permits() + 1;
        let claimed = tokio::select! {
            () = &mut signal => break,
            claimed = worker.queue.claim(&worker.consumer, free, Duration::from_secs(1)) => claimed,
        };
        let deliveries = match claimed {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, "failed to claim jobs; retrying");
                drop(permit);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut permit = Some(permit);
        for delivery in deliveries {
            let slot = match permit.take() {
                Some(slot) => slot,
                None => Arc::clone(&slots_free).acquire_owned().await?,
            };
            let worker = Arc::clone(&worker);
            let span = tracing::info_span!("job", job.id = %delivery.job.job_id, receipt.id = %delivery.job.receipt_id, job.deliveries = delivery.deliveries);
            tokio::spawn(
                async move {
                    worker.handle(delivery).await;
                    drop(slot);
                }
                .instrument(span),
            );
        }
    }
    tracing::info!("stopped claiming; waiting for in-flight jobs");
    let all_slots = u32::try_from(slots).unwrap_or(u32::MAX);
    match tokio::time::timeout(config.grace, slots_free.acquire_many(all_slots)).await {
        Ok(_) => tracing::info!("all in-flight jobs finished"),
        Err(_) => tracing::warn!("grace period over; unfinished jobs will be reclaimed after the visibility timeout"),
    }
    depth_task.abort();
    worker.pool.close();
    Ok(())
}

impl<Q: JobQueue, S: ReceiptStore + BlobStore + WebhookStore> Worker<Q, S> {
    /// Queues the receipt's webhook event; a failure is logged, never fails the job.
    async fn announce(&self, receipt: finagent_core::ReceiptId) {
        if let Err(error) = finagent_platform::store::queue_receipt_event(self.store.as_ref(), receipt).await {
            tracing::warn!(%error, receipt.id = %receipt, "failed to queue the webhook event");
        }
    }

    async fn handle(&self, delivery: Delivery) {
        let job = &delivery.job;
        let heartbeat = async {
            loop {
                tokio::time::sleep(self.heartbeat_every).await;
                if let Err(error) = self.queue.heartbeat(&self.consumer, &delivery).await {
                    tracing::warn!(%error, "failed to heartbeat");
                }
            }
        };
        let outcome = if delivery.deliveries > finagent_core::job::MAX_DELIVERIES {
            // Every worker that took this job died on it (killed, out of memory): do not run it again.
            Err((
                FailureReason::Abandoned,
                format!("abandoned by {} workers that stopped while processing it", delivery.deliveries - 1),
            ))
        } else {
            tokio::select! {
                outcome = self.process(&delivery) => outcome,
                () = heartbeat => unreachable!("the heartbeat loop never ends"),
            }
        };
        match outcome {
            Ok(()) => {
                if let Err(error) = self.queue.ack(&delivery).await {
                    tracing::warn!(%error, "failed to acknowledge; the job will be redelivered and its result overwritten");
                }
                self.metrics.jobs.with_label_values(&["done"]).inc();
                self.announce(job.receipt_id).await;
            }
            Err((code, reason)) => match self.queue.fail(&delivery, &reason).await {
                Ok(Failed::Retrying { after }) => {
                    tracing::warn!(%reason, retry.after_ms = after.as_millis() as u64, "job failed; will retry");
                    self.metrics.jobs.with_label_values(&["retried"]).inc();
                }
                Ok(Failed::DeadLettered) => {
                    tracing::error!(%reason, "job failed for good");
                    self.metrics.jobs.with_label_values(&["dead_lettered"]).inc();
                    if let Err(error) =
                        // The owner sees the code; the raw reason stays in this log and the dead letter.
                        self.store.set_status(job.receipt_id, ReceiptStatus::Failed, Some(code.as_str())).await
                    {
                        tracing::error!(%error, "failed to mark the receipt failed");
                    }
                    self.announce(job.receipt_id).await;
                }
                Err(error) => tracing::error!(%error, "failed to record the failure; the job will be redelivered"),
            },
        }
    }

    async fn process(&self, delivery: &Delivery) -> Result<(), (FailureReason, String)> {
        let job = &delivery.job;
        let internal = |error: finagent_platform::store::StoreError| (FailureReason::Internal, error.to_string());
        self.store.set_status(job.receipt_id, ReceiptStatus::Processing, None).await.map_err(internal)?;
        let bytes = self
            .store
            .blob(&job.blob_key)
            .await
            .map_err(internal)?
            .ok_or_else(|| (FailureReason::ImageMissing, format!("the image {} is missing", job.blob_key)))?;
        let started = Instant::now();
        let result = self.pool.process(bytes).await.map_err(|error| {
            let code = match &error {
                ProcessError::Image(_) => FailureReason::UnreadableImage,
                ProcessError::Timeout(_) => FailureReason::Timeout,
                ProcessError::Crashed => FailureReason::EngineCrashed,
                ProcessError::Ocr(_) | ProcessError::Closed => FailureReason::Internal,
            };
            (code, error.to_string())
        })?;
        self.metrics.ocr_seconds.observe(started.elapsed().as_secs_f64());
        self.store.store_result(job.receipt_id, &result).await.map_err(internal)
    }
}
