//! The OCR job queue: at-least-once delivery with de-duplication, visibility timeouts, retries
//! with backoff and dead letters.
//!
//! [`redis::RedisQueue`] implements it on Redis Streams (Redis 7.0 commands only) for the
//! platform; [`memory::MemoryQueue`] implements the same semantics in process for the all-in-one
//! mode. The life of a job:
//!
//! 1. `enqueue` adds it unless a job with the same id was accepted before (de-duplication);
//! 2. `claim` hands it to one consumer; while that consumer works it calls `heartbeat`, so the job
//!    never looks abandoned; if the consumer dies, the job goes idle and, after the visibility
//!    timeout, the next `claim` by any consumer reclaims it;
//! 3. `ack` removes it once its result is stored; `fail` schedules a retry after a backoff, or,
//!    after [`MAX_DELIVERIES`] deliveries (crashes included), moves it to the dead letters with the
//!    reason.

pub mod any;
pub mod memory;
pub mod redis;

use crate::store::Source;
use std::time::Duration;

use finagent_core::job::{DeadLetter, MAX_DELIVERIES, OcrJob, QueueDepth};

pub use any::AnyQueue;

/// A job handed to a consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The queue's handle for this delivery (a stream entry id for Redis).
    pub handle: String,
    pub job: OcrJob,
    /// How many times this job has been delivered, this delivery included.
    pub deliveries: u32,
}

/// What `enqueue` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// The job was added.
    Added,
    /// A job with this id was accepted before; nothing was added.
    Duplicate,
}

/// What `fail` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failed {
    /// The job will be delivered again after the backoff.
    Retrying {
        /// The wait before the next delivery.
        after: Duration,
    },
    /// The job has been moved to the dead letters.
    DeadLettered,
}

/// Why a queue operation failed: which operation, and the underlying error as its source.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue server could not be reached or answered with an error.
    #[error("the queue failed to {operation}: {source}")]
    Unavailable {
        /// The queue operation (a method's name, such as `claim`).
        operation: &'static str,
        source: Source,
    },
    /// A queued message could not be decoded.
    #[error("failed to decode a queued {what}: {source}")]
    Corrupt {
        /// What was being decoded (`job`, `dead letter`, `delivery handle`).
        what: &'static str,
        source: Source,
    },
}

impl QueueError {
    /// `map_err` for a server error in `operation`.
    pub fn unavailable<E: Into<Source>>(operation: &'static str) -> impl FnOnce(E) -> Self {
        move |error| Self::Unavailable { operation, source: error.into() }
    }

    /// `map_err` for a message of `what` that cannot be decoded.
    pub fn corrupt<E: Into<Source>>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |error| Self::Corrupt { what, source: error.into() }
    }
}

/// Timing of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueuePolicy {
    /// A delivered job not acknowledged nor heartbeaten for this long is reclaimed.
    pub visibility_timeout: Duration,
    /// The backoff before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// How long enqueued job ids are remembered for de-duplication.
    pub dedup_window: Duration,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(finagent_core::job::VISIBILITY_TIMEOUT_SECS),
            retry_backoff: Duration::from_secs(2),
            dedup_window: Duration::from_secs(24 * 3600),
        }
    }
}

impl QueuePolicy {
    /// The wait before the retry that follows the given number of deliveries: exponential,
    /// capped at five minutes.
    pub fn backoff(&self, deliveries: u32) -> Duration {
        let factor = 2u32.saturating_pow(deliveries.saturating_sub(1).min(16));
        self.retry_backoff.saturating_mul(factor).min(Duration::from_secs(300))
    }

    /// Whether a job delivered this many times goes to the dead letters on failure.
    pub fn exhausted(deliveries: u32) -> bool {
        deliveries >= MAX_DELIVERIES
    }
}

/// The operations every queue backend provides.
pub trait JobQueue: Send + Sync {
    /// Adds a job unless its id was accepted within the de-duplication window.
    fn enqueue(&self, job: &OcrJob) -> impl Future<Output = Result<Enqueued, QueueError>> + Send;

    /// Up to `max` jobs for `consumer`: first jobs whose consumer went silent, then due retries,
    /// then new jobs, waiting up to `wait` when there is nothing. A reclaimed job may come back with
    /// more than [`MAX_DELIVERIES`] deliveries when every worker that took it died; the consumer
    /// should then `fail` it (which dead-letters it) instead of running it again.
    fn claim(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>, QueueError>> + Send;

    /// Tells the queue that `consumer` is still working on the delivery.
    fn heartbeat(&self, consumer: &str, delivery: &Delivery) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Removes a finished job.
    fn ack(&self, delivery: &Delivery) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Records a failed attempt: a retry after a backoff, or a dead letter once exhausted.
    fn fail(&self, delivery: &Delivery, reason: &str) -> impl Future<Output = Result<Failed, QueueError>> + Send;

    /// Queue depth: jobs waiting (lag and scheduled retries) plus jobs delivered and unacknowledged.
    fn depth(&self) -> impl Future<Output = Result<QueueDepth, QueueError>> + Send;

    /// The dead letters, oldest first (at most `max`).
    fn dead_letters(&self, max: usize) -> impl Future<Output = Result<Vec<DeadLetter>, QueueError>> + Send;
}
