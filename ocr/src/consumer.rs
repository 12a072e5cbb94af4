//! The job consumer.
//!
//! Claims jobs from the queue (Redis Streams, or in process in the all-in-one mode) with as many
//! concurrent OCR slots as engine threads, reads the image from the blob store, runs the engine,
//! stores the result keyed by the receipt id and acknowledges — in that order, so a crash at any
//! point leaves the job to be redelivered and the redelivery overwrites rather than duplicates.
//! Failures are of two kinds: a file that can never be read (not an image, a damaged PDF, a missing
//! blob) fails its receipt at once with a reason code and is never delivered again; anything else
//! is retried with backoff and dead- lettered after the last attempt. A store that cannot be
//! reached is neither: the operation is retried until the store is back (with backoff up to
//! [`STORE_RETRY_MAX`]), so an outage only delays jobs and never fails or dead-letters one. Long
//! jobs are heartbeaten so they are never mistaken for abandoned. On shutdown the consumer stops
//! claiming at once (claims wait at most one second), lets in-flight jobs finish within the grace
//! period, and leaves any still unfinished to be reclaimed by another worker after the visibility
//! timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use finagent_core::receipt::{FailureReason, ReceiptStatus};
use finagent_extract::{LocaleHint, memory};
use finagent_platform::metrics::Metrics;
use finagent_platform::queue::{Delivery, Failed, JobQueue};
use finagent_platform::store::{BlobStore, MerchantMemoryStore, ReceiptStore, StoreError, UserStore, WebhookStore};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::pool::{EnginePool, ProcessError};

/// The first wait before retrying a store operation during an outage.
pub const STORE_RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between retries of a store operation.
pub const STORE_RETRY_MAX: Duration = Duration::from_secs(5);
/// How long a store operation is retried before the job fails as retryable (and is delivered
/// again later): stores report some permanent errors as unavailability too, and a slot must not
/// hang on one forever.
pub const STORE_OUTAGE_LIMIT: Duration = Duration::from_secs(600);

/// Why a job did not finish.
#[derive(Debug)]
struct Failure {
    /// What the owner sees.
    code: FailureReason,
    /// The detail, for the log and the dead letter.
    reason: String,
    /// Whether no attempt can ever succeed (an unreadable file, a missing image).
    permanent: bool,
}

impl Failure {
    fn retryable(code: FailureReason, reason: String) -> Self {
        Self { code, reason, permanent: false }
    }

    fn permanent(code: FailureReason, reason: String) -> Self {
        Self { code, reason, permanent: true }
    }
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
    S: ReceiptStore + BlobStore + WebhookStore + UserStore + MerchantMemoryStore + 'static,
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

impl<Q: JobQueue, S: ReceiptStore + BlobStore + WebhookStore + UserStore + MerchantMemoryStore> Worker<Q, S> {
    /// Queues the receipt's webhook event; a failure is logged, never fails the job.
    async fn announce(&self, receipt: finagent_core::ReceiptId) {
        if let Err(error) = finagent_platform::store::queue_receipt_event(self.store.as_ref(), receipt).await {
            tracing::warn!(%error, receipt.id = %receipt, "failed to queue the webhook event");
        }
    }

    /// Runs a store operation until it succeeds while the store is unreachable: an outage delays
    /// the job (which stays heartbeaten, so no other worker takes it), it never fails it. Other
    /// store errors (a conflict, a corrupt document) are returned.
    async fn persist<T, F, Fut>(&self, what: &str, operation: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut wait = STORE_RETRY_FIRST;
        let mut since: Option<Instant> = None;
        loop {
            match operation().await {
                Ok(value) => {
                    if let Some(since) = since {
                        tracing::info!(
                            store.operation = what,
                            outage_ms = since.elapsed().as_millis() as u64,
                            "the store is back"
                        );
                    }
                    return Ok(value);
                }
                Err(reason @ StoreError::Unavailable { .. })
                    if since.is_none_or(|since| since.elapsed() < STORE_OUTAGE_LIMIT) =>
                {
                    let started = *since.get_or_insert_with(Instant::now);
                    tracing::warn!(store.operation = what, %reason, outage_ms = started.elapsed().as_millis() as u64, retry.after_ms = wait.as_millis() as u64, "the store is unreachable; retrying");
                    self.metrics.jobs.with_label_values(&["store_retry"]).inc();
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(STORE_RETRY_MAX);
                }
                Err(other) => return Err(other),
            }
        }
    }

    async fn handle(&self, delivery: Delivery) {
        // Heartbeats run until the job is settled, recording its outcome included: a store outage
        // while a failure is recorded must not let another worker take the job.
        let heartbeat = async {
            loop {
                tokio::time::sleep(self.heartbeat_every).await;
                if let Err(error) = self.queue.heartbeat(&self.consumer, &delivery).await {
                    tracing::warn!(%error, "failed to heartbeat");
                }
            }
        };
        tokio::select! {
            () = self.settle(&delivery) => {}
            () = heartbeat => unreachable!("the heartbeat loop never ends"),
        }
    }

    async fn settle(&self, delivery: &Delivery) {
        let job = &delivery.job;
        let outcome = if delivery.deliveries > finagent_core::job::MAX_DELIVERIES {
            // Every worker that took this job died on it (killed, out of memory): do not run it again.
            Err(Failure::retryable(
                FailureReason::Abandoned,
                format!("abandoned by {} workers that stopped while processing it", delivery.deliveries - 1),
            ))
        } else {
            self.process(delivery).await
        };
        match outcome {
            Ok(()) => {
                if let Err(error) = self.queue.ack(delivery).await {
                    tracing::warn!(%error, "failed to acknowledge; the job will be redelivered and its result overwritten");
                }
                self.metrics.jobs.with_label_values(&["done"]).inc();
                self.announce(job.receipt_id).await;
            }
            Err(Failure { code, reason, permanent: true }) => {
                // The file itself can never be read: fail the receipt now, once, and finish the job.
                tracing::warn!(%reason, code = code.as_str(), "the receipt cannot be read; failing it without retries");
                let marked = self
                    .persist("mark failed", || {
                        self.store.set_status(job.receipt_id, ReceiptStatus::Failed, Some(code.as_str()))
                    })
                    .await;
                match marked {
                    Ok(_) => {
                        if let Err(error) = self.queue.ack(delivery).await {
                            tracing::warn!(%error, "failed to acknowledge; the job will be redelivered and fail again");
                        }
                        self.metrics.jobs.with_label_values(&["failed"]).inc();
                        self.announce(job.receipt_id).await;
                    }
                    Err(error) => {
                        tracing::error!(%error, "failed to mark the receipt failed; the job will be redelivered")
                    }
                }
            }
            Err(Failure { code, reason, permanent: false }) => match self.queue.fail(delivery, &reason).await {
                Ok(Failed::Retrying { after }) => {
                    tracing::warn!(%reason, retry.after_ms = after.as_millis() as u64, "job failed; will retry");
                    self.metrics.jobs.with_label_values(&["retried"]).inc();
                }
                Ok(Failed::DeadLettered) => {
                    tracing::error!(%reason, "job failed for good");
                    self.metrics.jobs.with_label_values(&["dead_lettered"]).inc();
                    // The owner sees the code; the raw reason stays in this log and the dead letter.
                    let marked = self
                        .persist("mark failed", || {
                            self.store.set_status(job.receipt_id, ReceiptStatus::Failed, Some(code.as_str()))
                        })
                        .await;
                    if let Err(error) = marked {
                        tracing::error!(%error, "failed to mark the receipt failed");
                    }
                    self.announce(job.receipt_id).await;
                }
                Err(error) => tracing::error!(%error, "failed to record the failure; the job will be redelivered"),
            },
        }
    }

    async fn process(&self, delivery: &Delivery) -> Result<(), Failure> {
        let job = &delivery.job;
        let internal = |error: StoreError| Failure::retryable(FailureReason::Internal, error.to_string());
        self.persist("mark processing", || self.store.set_status(job.receipt_id, ReceiptStatus::Processing, None))
            .await
            .map_err(internal)?;
        let bytes =
            self.persist("read the image", || self.store.blob(&job.blob_key)).await.map_err(internal)?.ok_or_else(
                || Failure::permanent(FailureReason::ImageMissing, format!("the image {} is missing", job.blob_key)),
            )?;
        // A PDF gets a preview for the review page, which cannot draw a PDF in an image.
        let pdf = bytes.starts_with(b"%PDF").then(|| bytes.clone());
        // The owner's preferences are a prior for where their receipts are from.
        let owner = self.persist("read the owner", || self.store.user(job.owner_id)).await.map_err(internal)?;
        let hint = owner
            .map(|user| LocaleHint { country: user.preferences.country, currency: user.preferences.currency })
            .unwrap_or_default();
        let started = Instant::now();
        let mut result = self.pool.process_with(bytes, hint).await.map_err(|error| {
            let code = match &error {
                ProcessError::Image(_) | ProcessError::Pdf(_) => FailureReason::UnreadableImage,
                ProcessError::Timeout(_) => FailureReason::Timeout,
                ProcessError::Crashed => FailureReason::EngineCrashed,
                ProcessError::Ocr(_) | ProcessError::Closed => FailureReason::Internal,
            };
            if error.is_retryable() {
                Failure::retryable(code, error.to_string())
            } else {
                Failure::permanent(code, error.to_string())
            }
        })?;
        self.metrics.ocr_seconds.observe(started.elapsed().as_secs_f64());
        // What the owner taught about this merchant by correcting an earlier receipt.
        // The memory is a hint: a record that cannot be read is logged and the receipt stands.
        let keys = memory::fingerprints(&result);
        match self.persist("recall the merchant", || self.store.recall_merchant(job.owner_id, &keys)).await {
            Ok(Some(remembered)) => memory::apply(&mut result, &remembered),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "failed to read the merchant memory; the receipt keeps its extraction")
            }
        }
        if let Some(pdf) = pdf {
            self.store_preview(&job.blob_key, pdf).await;
        }
        self.persist("store the result", || self.store.store_result(job.receipt_id, &result)).await.map_err(internal)
    }

    /// Renders a PDF's preview (sandboxed, off the runtime) and stores it beside the original,
    /// before the result, so a receipt shown as done has it. A preview that fails is logged: the
    /// receipt stands, and the review page shows no image.
    async fn store_preview(&self, original: &finagent_core::BlobKey, pdf: Vec<u8>) {
        let rendered = tokio::task::spawn_blocking(move || crate::pdf::preview(&pdf)).await;
        match rendered {
            Ok(Ok(png)) => {
                let key = original.preview();
                if let Err(error) = self.persist("store the preview", || self.store.put_blob(&key, &png)).await {
                    tracing::warn!(%error, "failed to store a PDF's preview");
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, "failed to render a PDF's preview"),
            Err(error) => tracing::warn!(%error, "the preview rendering stopped"),
        }
    }
}
