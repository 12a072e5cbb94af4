//! The job queue in process, for the all-in-one mode: the same semantics as the Redis queue
//! (de-duplication, visibility timeout and reclaim, heartbeats, retries with backoff, dead
//! letters, depth), without durability across restarts of the process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use finagent_core::JobId;
use finagent_core::job::{DeadLetter, JOB_PROTOCOL_VERSION, OcrJob, QueueDepth};
use tokio::sync::Notify;

use super::{Delivery, Enqueued, Failed, JobQueue, QueueError, QueuePolicy};

#[derive(Debug)]
struct Pending {
    job: OcrJob,
    consumer: String,
    seen: Instant,
    times_delivered: u32,
}

#[derive(Debug, Default)]
struct State {
    next_handle: u64,
    ready: VecDeque<(u64, OcrJob, u32)>,
    pending: BTreeMap<u64, Pending>,
    retries: Vec<(Instant, OcrJob)>,
    seen_ids: HashMap<JobId, Instant>,
    dead: Vec<DeadLetter>,
}

/// The in-process job queue.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<State>,
    arrived: Notify,
    policy: QueuePolicy,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new(policy: QueuePolicy) -> Self {
        Self { state: Mutex::new(State::default()), arrived: Notify::new(), policy }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, QueueError> {
        self.state.lock().map_err(|_| QueueError::unavailable("lock")("the in-process queue is poisoned"))
    }

    fn take(&self, consumer: &str, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let mut state = self.lock()?;
        let now = Instant::now();
        let mut deliveries = Vec::new();
        // Abandoned jobs first.
        let abandoned: Vec<u64> = state
            .pending
            .iter()
            .filter(|(_, pending)| now.duration_since(pending.seen) >= self.policy.visibility_timeout)
            .map(|(handle, _)| *handle)
            .collect();
        for handle in abandoned.into_iter().take(max) {
            let Some(pending) = state.pending.get_mut(&handle) else { continue };
            pending.times_delivered += 1;
            pending.consumer = consumer.to_owned();
            pending.seen = now;
            let count = pending.job.attempt.saturating_sub(1) + pending.times_delivered;
            deliveries.push(Delivery { handle: handle.to_string(), job: pending.job.clone(), deliveries: count });
        }
        // Due retries join the ready queue.
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut state.retries).into_iter().partition(|(at, _)| *at <= now);
        state.retries = later;
        for (_, job) in due {
            let handle = state.next_handle;
            state.next_handle += 1;
            state.ready.push_back((handle, job, 0));
        }
        while deliveries.len() < max {
            let Some((handle, job, times)) = state.ready.pop_front() else { break };
            let times_delivered = times + 1;
            let count = job.attempt.saturating_sub(1) + times_delivered;
            state.pending.insert(
                handle,
                Pending { job: job.clone(), consumer: consumer.to_owned(), seen: now, times_delivered },
            );
            deliveries.push(Delivery { handle: handle.to_string(), job, deliveries: count });
        }
        Ok(deliveries)
    }

    fn handle(delivery: &Delivery) -> Result<u64, QueueError> {
        delivery
            .handle
            .parse()
            .map_err(|_| QueueError::corrupt("delivery handle")(format!("unknown handle {}", delivery.handle)))
    }
}

impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: &OcrJob) -> Result<Enqueued, QueueError> {
        {
            let mut state = self.lock()?;
            let now = Instant::now();
            let window = self.policy.dedup_window;
            state.seen_ids.retain(|_, at| now.duration_since(*at) < window);
            if state.seen_ids.contains_key(&job.job_id) {
                return Ok(Enqueued::Duplicate);
            }
            state.seen_ids.insert(job.job_id, now);
            let handle = state.next_handle;
            state.next_handle += 1;
            state.ready.push_back((handle, job.clone(), 0));
        }
        self.arrived.notify_waiters();
        Ok(Enqueued::Added)
    }

    async fn claim(&self, consumer: &str, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            let deliveries = self.take(consumer, max.max(1))?;
            let now = Instant::now();
            if !deliveries.is_empty() || now >= deadline {
                return Ok(deliveries);
            }
            // Wake for a new job, or soon enough to notice due retries and abandoned jobs.
            let nap = (deadline - now).min(Duration::from_millis(100));
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn heartbeat(&self, consumer: &str, delivery: &Delivery) -> Result<(), QueueError> {
        let handle = Self::handle(delivery)?;
        let mut state = self.lock()?;
        if let Some(pending) = state.pending.get_mut(&handle).filter(|pending| pending.consumer == consumer) {
            pending.seen = Instant::now();
        }
        Ok(())
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        let handle = Self::handle(delivery)?;
        self.lock()?.pending.remove(&handle);
        Ok(())
    }

    async fn fail(&self, delivery: &Delivery, reason: &str) -> Result<Failed, QueueError> {
        let handle = Self::handle(delivery)?;
        let mut state = self.lock()?;
        // Like the Redis queue: a delivery no longer pending (reclaimed and finished elsewhere)
        // is neither retried nor dead-lettered.
        let still_pending = state.pending.remove(&handle).is_some();
        if QueuePolicy::exhausted(delivery.deliveries) {
            if !still_pending {
                return Ok(Failed::DeadLettered);
            }
            state.dead.push(DeadLetter {
                v: JOB_PROTOCOL_VERSION,
                job: delivery.job.clone(),
                reason: reason.chars().take(500).collect(),
                deliveries: delivery.deliveries,
                failed_at: Utc::now(),
            });
            return Ok(Failed::DeadLettered);
        }
        let after = self.policy.backoff(delivery.deliveries);
        if still_pending {
            let retried = OcrJob { attempt: delivery.deliveries + 1, ..delivery.job.clone() };
            state.retries.push((Instant::now() + after, retried));
        }
        Ok(Failed::Retrying { after })
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let state = self.lock()?;
        Ok(QueueDepth {
            lag: u64::try_from(state.ready.len() + state.retries.len()).unwrap_or(u64::MAX),
            pending: u64::try_from(state.pending.len()).unwrap_or(u64::MAX),
        })
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.lock()?.dead.iter().take(max).cloned().collect())
    }
}
