//! [`AnyQueue`]: the queue a process chose at start, Redis Streams or in process.
//!
//! The queue trait uses `async fn`, so it is not object-safe; this enum dispatches to the one
//! backend a process runs on.

use std::time::Duration;

use finagent_core::job::{DeadLetter, OcrJob, QueueDepth};

use super::memory::MemoryQueue;
use super::redis::RedisQueue;
use super::{Delivery, Enqueued, Failed, JobQueue, QueueError};

/// One of the queue backends.
#[derive(Clone, Debug)]
pub enum AnyQueue {
    /// Redis Streams, shared by processes.
    Redis(RedisQueue),
    /// This process only.
    Memory(std::sync::Arc<MemoryQueue>),
}

macro_rules! dispatch {
    ($self:ident, $queue:ident => $call:expr) => {
        match $self {
            AnyQueue::Redis($queue) => $call.await,
            AnyQueue::Memory($queue) => $call.await,
        }
    };
}

impl AnyQueue {
    /// Which backend this is, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Redis(_) => "redis",
            Self::Memory(_) => "in-process",
        }
    }
}

impl JobQueue for AnyQueue {
    async fn enqueue(&self, job: &OcrJob) -> Result<Enqueued, QueueError> {
        dispatch!(self, queue => queue.enqueue(job))
    }
    async fn claim(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        dispatch!(self, queue => queue.claim(consumer, max, wait))
    }
    async fn heartbeat(&self, consumer: &str, delivery: &Delivery) -> Result<(), QueueError> {
        dispatch!(self, queue => queue.heartbeat(consumer, delivery))
    }
    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        dispatch!(self, queue => queue.ack(delivery))
    }
    async fn fail(&self, delivery: &Delivery, reason: &str) -> Result<Failed, QueueError> {
        dispatch!(self, queue => queue.fail(delivery, reason))
    }
    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        dispatch!(self, queue => queue.depth())
    }
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        dispatch!(self, queue => queue.dead_letters(max))
    }
}
