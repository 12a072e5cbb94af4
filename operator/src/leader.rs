//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several operator replicas only
//! one reconciles, in the way client-go's leader election works:
//!
//! - A candidate never compares the holder's `renewTime` with its own clock (clocks differ between
//!   nodes). It remembers when *it* last saw the lease record change, on its own monotonic clock,
//!   and takes the lease only once the record has stood still for the whole lease duration
//!   ([`lease_decision`], table-tested).
//! - Writes carry the `resourceVersion` read, so two candidates can never both win a term; a
//!   conflict on our own renewal is re-read, not taken for lost leadership.
//! - Every request has a timeout, and the leader gives up (stops reconciling) when it could not
//!   renew for the renew deadline, which is shorter than the lease duration: it has stopped before
//!   any standby can take over, so two leaders never overlap.
//! - On SIGTERM the leader releases the lease (empty holder), so a standby leads at its next try.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// What a candidate should do with the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Nobody holds it, or the holder's record stood still for the lease duration: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds a live lease: wait.
    Wait,
}

/// The timings of the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTimings {
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading; shorter than
    /// `duration`, so it has stopped before a standby may take over.
    pub renew_deadline: Duration,
    /// How often the leader renews. Longer than a standby's look: leading costs one write per
    /// renew period, and a standby still notices a stopped leader within a retry period of the
    /// lease's end.
    pub renew_period: Duration,
    /// How often a standby looks, and how soon the leader tries again after a failed renewal.
    pub retry_period: Duration,
}

impl LeaseTimings {
    /// Whether the timings keep one leader: a failed renewal can be retried before the renew
    /// deadline, which ends leading (and closes the fence) before a standby may take over.
    pub fn check(&self) -> Result<(), String> {
        if self.retry_period.is_zero()
            || self.retry_period > self.renew_period
            || self.renew_period >= self.renew_deadline
            || self.renew_deadline >= self.duration
        {
            return Err(format!(
                "the lease timings must satisfy 0 < retry period ({:?}) <= renew period ({:?}) < renew deadline ({:?}) < lease duration ({:?})",
                self.retry_period, self.renew_period, self.renew_deadline, self.duration
            ));
        }
        Ok(())
    }
}

impl Default for LeaseTimings {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            renew_period: Duration::from_secs(5),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The part of a lease that changes at every renewal: who, and the renew time as written.
pub fn record_of(spec: &LeaseSpec) -> String {
    let renewed = spec.renew_time.as_ref().map(|time| time.0.to_string()).unwrap_or_default();
    format!(
        "{}|{}|{}",
        spec.holder_identity.as_deref().unwrap_or_default(),
        renewed,
        spec.lease_transitions.unwrap_or(0)
    )
}

/// Decides from the lease's spec, who we are, and since how long (on our own clock) we have seen
/// the same record: `unchanged_for` is `None` when the record just changed or was never seen.
pub fn lease_decision(spec: Option<&LeaseSpec>, me: &str, unchanged_for: Option<Duration>) -> LeaseDecision {
    let Some(spec) = spec else { return LeaseDecision::Acquire };
    match spec.holder_identity.as_deref() {
        None | Some("") => LeaseDecision::Acquire,
        Some(holder) if holder == me => LeaseDecision::Renew,
        Some(_) => {
            let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(15));
            match unchanged_for {
                Some(still) if still >= duration => LeaseDecision::Acquire,
                _ => LeaseDecision::Wait,
            }
        }
    }
}

/// A `MicroTime` from a chrono time.
pub fn micro(now: DateTime<Utc>) -> MicroTime {
    let timestamp =
        k8s_openapi::jiff::Timestamp::new(now.timestamp(), i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0))
            .unwrap_or_default();
    MicroTime(timestamp)
}

/// Whether this replica may still write: it may until the renew deadline has passed since the
/// last successful renewal was *sent*, on the monotonic clock. A standby takes the lease only after
/// the record stood still for the whole lease duration, counted from when it saw that renewal —
/// which was after the renewal was sent — and the renew deadline is shorter than the duration. So
/// a replica that was paused (SIGSTOP, a long GC-like stall, a frozen VM) wakes up fenced: its
/// writes are refused before any request leaves, whatever its tasks were in the middle of.
#[derive(Clone, Debug)]
pub struct Fence {
    renewed_at: std::sync::Arc<std::sync::Mutex<Option<Instant>>>,
    valid_for: Duration,
}

impl Fence {
    /// A fence that lets writes through for `valid_for` after each renewal (the renew deadline).
    pub fn new(valid_for: Duration) -> Self {
        Self { renewed_at: std::sync::Arc::default(), valid_for }
    }

    fn at(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.renewed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A renewal sent at `sent` succeeded.
    pub fn renewed(&self, sent: Instant) {
        let mut at = self.at();
        if at.is_none_or(|previous| previous < sent) {
            *at = Some(sent);
        }
    }

    /// Leadership is gone: no write from now on.
    pub fn revoke(&self) {
        *self.at() = None;
    }

    /// Whether a write may leave at `now`.
    pub fn allows(&self, now: Instant) -> bool {
        self.at().is_some_and(|renewed| now.saturating_duration_since(renewed) < self.valid_for)
    }
}

/// Why one round of the election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The API server answered with an error.
    #[error("failed to read or write the lease: {0}")]
    Api(#[from] kube::Error),
    /// The API server did not answer in time.
    #[error("the lease request timed out")]
    Timeout,
}

/// Takes part in the election for one Lease.
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timings: LeaseTimings,
    /// The record last seen, and when (our monotonic clock) it was first seen.
    observed: Mutex<Option<(String, Instant)>>,
    /// The lease as our last successful write left it: while we lead, a renewal writes over it
    /// directly (a conflict means someone else wrote, and is re-read), so leading costs one
    /// request per renewal, not two.
    written: Mutex<Option<Lease>>,
    /// Opened by each successful renewal, closed when leadership is lost.
    fence: Fence,
}

impl LeaderElector {
    /// A candidate `identity` for the Lease `name` in `namespace`.
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str, timings: LeaseTimings) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            timings,
            observed: Mutex::new(None),
            written: Mutex::new(None),
            fence: Fence::new(timings.renew_deadline),
        }
    }

    /// The fence the writing client checks.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    async fn timed<T>(&self, request: impl Future<Output = Result<T, kube::Error>>) -> Result<T, LeaseError> {
        // A request may take at most one retry period, so a hung API server cannot stretch a round.
        match tokio::time::timeout(self.timings.retry_period.max(Duration::from_secs(1)), request).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(LeaseError::Timeout),
        }
    }

    /// How long the record in `spec` has stood still, as seen from here.
    async fn unchanged_for(&self, spec: Option<&LeaseSpec>) -> Option<Duration> {
        let record = spec.map(record_of).unwrap_or_default();
        let mut observed = self.observed.lock().await;
        match observed.as_ref() {
            Some((seen, at)) if *seen == record => Some(at.elapsed()),
            _ => {
                *observed = Some((record, Instant::now()));
                None
            }
        }
    }

    /// One round: returns whether we hold the lease afterwards.
    pub async fn try_hold(&self) -> Result<bool, LeaseError> {
        let written = self.written.lock().await.take();
        let current = match written {
            Some(lease) => Some(lease),
            None => self.timed(self.api.get_opt(&self.name)).await?,
        };
        self.hold_from(current).await
    }

    /// One round from a lease as read (perhaps a moment ago). When someone wrote it since —
    /// perhaps our own earlier write that timed out — the write conflicts; the lease is read again
    /// and decided on once more, so a conflict on our own renewal is never taken for lost
    /// leadership.
    pub async fn hold_from(&self, mut current: Option<Lease>) -> Result<bool, LeaseError> {
        for _ in 0..2 {
            let spec = current.as_ref().and_then(|lease| lease.spec.as_ref());
            let unchanged_for = self.unchanged_for(spec).await;
            let decision = lease_decision(spec, &self.identity, unchanged_for);
            if decision == LeaseDecision::Wait {
                self.fence.revoke();
                return Ok(false);
            }
            let sent = Instant::now();
            let now = Utc::now();
            let previous = spec.cloned().unwrap_or_default();
            let transitions = previous.lease_transitions.unwrap_or(0)
                + i32::from(decision == LeaseDecision::Acquire && current.is_some());
            let spec = LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(i32::try_from(self.timings.duration.as_secs()).unwrap_or(15)),
                acquire_time: if decision == LeaseDecision::Acquire { Some(micro(now)) } else { previous.acquire_time },
                renew_time: Some(micro(now)),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            };
            let written = match current.take() {
                None => {
                    let lease = Lease {
                        metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                        spec: Some(spec),
                    };
                    self.timed(self.api.create(&PostParams::default(), &lease)).await
                }
                Some(mut lease) => {
                    // `replace` carries the resourceVersion we read: a concurrent writer makes it fail.
                    lease.spec = Some(spec);
                    self.timed(self.api.replace(&self.name, &PostParams::default(), &lease)).await
                }
            };
            match written {
                Ok(lease) => {
                    *self.written.lock().await = Some(lease);
                    self.fence.renewed(sent);
                    return Ok(true);
                }
                Err(LeaseError::Api(kube::Error::Api(response))) if response.code == 409 => {
                    current = self.timed(self.api.get_opt(&self.name)).await?;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(false)
    }

    /// Waits until this candidate leads.
    pub async fn acquire(&self) {
        loop {
            match self.try_hold().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "failed to take part in the leader election"),
            }
            tokio::time::sleep(self.timings.retry_period).await;
        }
    }

    /// Renews the lease every renew period (a failed renewal is tried again after a retry
    /// period); returns when leadership is lost: another holder, or no successful renewal for the
    /// renew deadline.
    pub async fn keep(&self) {
        let mut last_renewed = Instant::now();
        let mut pause = self.timings.renew_period;
        loop {
            tokio::time::sleep(pause).await;
            pause = self.timings.retry_period;
            match self.try_hold().await {
                Ok(true) => {
                    last_renewed = Instant::now();
                    pause = self.timings.renew_period;
                }
                Ok(false) => {
                    tracing::warn!(identity = %self.identity, "another candidate holds the leader lease");
                    return;
                }
                Err(error) => tracing::warn!(%error, "failed to renew the leader lease"),
            }
            if last_renewed.elapsed() >= self.timings.renew_deadline {
                tracing::warn!(identity = %self.identity, "could not renew the leader lease in time");
                self.fence.revoke();
                return;
            }
        }
    }

    /// Gives the lease up (empty holder), if we hold it, so a standby takes over at once.
    pub async fn release(&self) -> Result<(), LeaseError> {
        self.fence.revoke();
        let Some(mut lease) = self.timed(self.api.get_opt(&self.name)).await? else { return Ok(()) };
        let Some(spec) = lease.spec.as_mut() else { return Ok(()) };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(micro(Utc::now()));
        self.timed(self.api.replace(&self.name, &PostParams::default(), &lease)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(by: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(micro(DateTime::from_timestamp(1_700_000_000, 0).expect("time"))),
            ..LeaseSpec::default()
        }
    }

    fn seconds(value: u64) -> Option<Duration> {
        Some(Duration::from_secs(value))
    }

    #[test]
    fn lease_decision_table() {
        assert_eq!(lease_decision(None, "a", None), LeaseDecision::Acquire);
        assert_eq!(lease_decision(Some(&LeaseSpec::default()), "a", None), LeaseDecision::Acquire);
        // Released: an empty holder is free at once.
        let mut released = held("b");
        released.holder_identity = Some(String::new());
        assert_eq!(lease_decision(Some(&released), "a", None), LeaseDecision::Acquire);
        assert_eq!(lease_decision(Some(&held("a")), "a", seconds(100)), LeaseDecision::Renew);
        // Another holder: wait until the record has stood still for the whole duration.
        assert_eq!(lease_decision(Some(&held("b")), "a", None), LeaseDecision::Wait);
        assert_eq!(lease_decision(Some(&held("b")), "a", seconds(14)), LeaseDecision::Wait);
        assert_eq!(lease_decision(Some(&held("b")), "a", seconds(15)), LeaseDecision::Acquire);
    }

    #[test]
    fn a_renew_time_far_in_the_past_on_our_clock_is_no_reason_to_take_a_live_lease() {
        // The holder's clock is an hour behind ours: its renewTime looks stale, but the record was
        // only just seen changing, so it is live.
        let mut skewed = held("b");
        skewed.renew_time = Some(micro(Utc::now() - chrono::Duration::hours(1)));
        assert_eq!(lease_decision(Some(&skewed), "a", None), LeaseDecision::Wait);
        assert_eq!(lease_decision(Some(&skewed), "a", seconds(1)), LeaseDecision::Wait);
    }

    #[test]
    fn every_renewal_changes_the_record() {
        let first = held("b");
        let mut renewed = first.clone();
        renewed.renew_time = Some(micro(DateTime::from_timestamp(1_700_000_002, 0).expect("time")));
        assert_ne!(record_of(&first), record_of(&renewed));
        assert_eq!(record_of(&first), record_of(&first.clone()));
    }

    #[test]
    fn the_fence_lets_writes_through_only_within_the_renew_deadline_of_the_last_renewal_sent() {
        let fence = Fence::new(Duration::from_secs(10));
        let start = Instant::now();
        assert!(!fence.allows(start), "closed before the first renewal");
        fence.renewed(start);
        assert!(fence.allows(start + Duration::from_secs(9)));
        // Paused past the deadline: closed, whatever the task was doing.
        assert!(!fence.allows(start + Duration::from_secs(10)));
        // A late answer to an older renewal does not move the fence back.
        fence.renewed(start + Duration::from_secs(5));
        fence.renewed(start + Duration::from_secs(2));
        assert!(fence.allows(start + Duration::from_secs(14)));
        assert!(!fence.allows(start + Duration::from_secs(15)));
        fence.revoke();
        assert!(!fence.allows(start + Duration::from_secs(6)), "closed once leadership is lost");
        // Every clone is the same fence.
        let clone = fence.clone();
        fence.renewed(start + Duration::from_secs(20));
        assert!(clone.allows(start + Duration::from_secs(21)));
    }

    #[test]
    fn the_default_timings_stop_a_leader_before_a_standby_may_take_over() {
        let timings = LeaseTimings::default();
        assert_eq!(timings.check(), Ok(()));
        // Renewing less often than a standby looks: 12 lease writes a minute, not 60.
        assert!(timings.renew_period > timings.retry_period);
        assert_eq!(60 / timings.renew_period.as_secs(), 12);
        let secs = Duration::from_secs;
        let bad = [
            LeaseTimings { renew_period: secs(10), ..timings },
            LeaseTimings { retry_period: secs(6), ..timings },
            LeaseTimings { renew_deadline: secs(15), ..timings },
            LeaseTimings { retry_period: secs(0), ..timings },
        ];
        for timings in bad {
            assert!(timings.check().is_err(), "{timings:?}");
        }
    }
}
