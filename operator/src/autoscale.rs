//! The worker autoscaling decision, a pure function of the queue depth, the policy, the current
//! replicas and the time, table-tested below. Only a thin adapter reads Redis.
//!
//! `wanted = clamp(ceil(depth / target), min, max)`. Scale up at once; scale down only once the
//! queue has needed fewer workers than run for the whole stabilisation window. The start of that
//! window (`low_since`) is kept in the status, so a restart of the operator does not forget it, and
//! it is set only when the queue first drops and cleared when it rises again: a steady queue
//! changes nothing in the status, so a steady platform sees no writes. Zero only when
//! `minReplicas` is 0 and the queue is empty; and when the depth cannot be read, keep what runs —
//! never scale down, least of all to zero, on a missing reading.

use chrono::{DateTime, Duration, Utc};

/// The autoscaling policy of one instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScalePolicy {
    /// Fewest workers.
    pub min: i32,
    /// Most workers.
    pub max: i32,
    /// Queued jobs per worker.
    pub target_per_worker: i32,
    /// How long demand must stay low before scaling down.
    pub stabilization: Duration,
}

/// Why the decision is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleReason {
    /// More work than the current workers are meant for.
    ScaleUp,
    /// Less work for the whole stabilisation window.
    ScaleDown,
    /// Less work, but not for long enough yet.
    Stabilizing,
    /// The current count fits.
    Steady,
    /// The queue depth could not be read: keep what runs.
    DepthUnknown,
    /// The current count was outside min..max.
    Bounds,
}

/// How many workers to run, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleDecision {
    /// Replicas to run.
    pub replicas: i32,
    /// What decided it (reported in the status and the Events).
    pub reason: ScaleReason,
    /// Since when the queue has needed fewer workers than run (kept in the status); `None` while
    /// it needs them all.
    pub low_since: Option<DateTime<Utc>>,
}

/// Workers wanted for a depth, within the bounds.
pub fn wanted(depth: u64, policy: &ScalePolicy) -> i32 {
    let target = u64::try_from(policy.target_per_worker.max(1)).unwrap_or(1);
    let needed = i32::try_from(depth.div_ceil(target)).unwrap_or(i32::MAX);
    needed.clamp(policy.min.max(0), policy.max.max(policy.min.max(0)))
}

/// The autoscaling decision.
pub fn desired_replicas(
    depth: Option<u64>,
    policy: &ScalePolicy,
    current: i32,
    low_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ScaleDecision {
    let (low, high) = (policy.min.max(0), policy.max.max(policy.min.max(0)));
    let Some(depth) = depth else {
        // Without a reading, only the bounds may move the count; the window is left as it was.
        let replicas = current.clamp(low, high);
        let reason = if replicas == current { ScaleReason::DepthUnknown } else { ScaleReason::Bounds };
        return ScaleDecision { replicas, reason, low_since };
    };
    let wanted = wanted(depth, policy);
    if wanted >= current {
        let reason = if wanted > current { ScaleReason::ScaleUp } else { ScaleReason::Steady };
        return ScaleDecision { replicas: wanted, reason, low_since: None };
    }
    if current > high {
        return ScaleDecision { replicas: high.max(wanted), reason: ScaleReason::Bounds, low_since: None };
    }
    match low_since {
        Some(since) if now - since >= policy.stabilization => {
            ScaleDecision { replicas: wanted, reason: ScaleReason::ScaleDown, low_since: None }
        }
        Some(since) => ScaleDecision { replicas: current, reason: ScaleReason::Stabilizing, low_since: Some(since) },
        // The queue just dropped: the window starts now.
        None if policy.stabilization <= Duration::zero() => {
            ScaleDecision { replicas: wanted, reason: ScaleReason::ScaleDown, low_since: None }
        }
        None => ScaleDecision { replicas: current, reason: ScaleReason::Stabilizing, low_since: Some(now) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(min: i32, max: i32) -> ScalePolicy {
        ScalePolicy { min, max, target_per_worker: 5, stabilization: Duration::seconds(300) }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time")
    }

    /// (depth, min, max, current, low since, now) → (replicas, reason).
    type Case = (Option<u64>, i32, i32, i32, Option<i64>, i64, i32, ScaleReason);

    #[test]
    fn desired_replicas_table() {
        use ScaleReason::*;
        let cases: &[Case] = &[
            (Some(0), 1, 10, 1, None, 10, 1, Steady),
            (Some(1), 1, 10, 1, None, 10, 1, Steady),
            (Some(6), 1, 10, 1, None, 10, 2, ScaleUp),
            (Some(50), 1, 10, 2, None, 10, 10, ScaleUp),
            (Some(5_000), 1, 10, 2, None, 10, 10, ScaleUp),
            // Scale up at once, whatever the window.
            (Some(26), 1, 10, 1, Some(9), 10, 6, ScaleUp),
            // Less work: wait for the window...
            (Some(0), 1, 10, 6, Some(0), 299, 6, Stabilizing),
            // ...then go straight to what is wanted.
            (Some(0), 1, 10, 6, Some(0), 300, 1, ScaleDown),
            (Some(7), 1, 10, 6, Some(0), 301, 2, ScaleDown),
            // Zero only with min 0 and an empty queue.
            (Some(0), 0, 10, 1, Some(0), 300, 0, ScaleDown),
            (Some(1), 0, 10, 0, None, 10, 1, ScaleUp),
            (Some(1), 0, 10, 1, None, 1_000, 1, Steady),
            // Unknown depth: keep what runs, even at zero, even after the window.
            (None, 1, 10, 4, Some(0), 10_000, 4, DepthUnknown),
            (None, 0, 10, 0, Some(0), 10_000, 0, DepthUnknown),
            (None, 0, 10, 3, None, 10_000, 3, DepthUnknown),
            // Bounds changed under a running count.
            (None, 2, 10, 1, Some(0), 10, 2, Bounds),
            (Some(0), 1, 3, 8, Some(0), 10, 3, Bounds),
            // The queue just dropped: the window starts now.
            (Some(0), 1, 10, 5, None, 10, 5, Stabilizing),
        ];
        for &(depth, min, max, current, busy, now, replicas, reason) in cases {
            let decision = desired_replicas(depth, &policy(min, max), current, busy.map(at), at(now));
            if let (Some(_), ScaleReason::Steady | ScaleReason::ScaleUp) = (depth, reason) {
                assert_eq!(decision.low_since, None, "a queue that needs every worker keeps no window");
            }
            assert_eq!(
                (decision.replicas, decision.reason),
                (replicas, reason),
                "depth {depth:?}, min {min}, max {max}, current {current}, busy {busy:?}, now {now}"
            );
        }
    }

    #[test]
    fn desired_replicas_never_flaps_on_a_noisy_queue() {
        // Depth alternating around one worker's target for an hour: the count rises once and
        // holds, instead of following each reading down.
        let policy = policy(1, 10);
        let (mut replicas, mut low_since, mut changes) = (1, None, 0);
        for tick in 0..360 {
            let depth = if tick % 2 == 0 { 12 } else { 2 };
            let decision = desired_replicas(Some(depth), &policy, replicas, low_since, at(tick * 10));
            if decision.replicas != replicas {
                changes += 1;
            }
            (replicas, low_since) = (decision.replicas, decision.low_since);
        }
        assert_eq!((replicas, changes), (3, 1));
    }

    #[test]
    fn a_steady_queue_keeps_the_decision_identical_from_pass_to_pass() {
        // What reconcile writes into the status must not change while nothing changes, or every
        // pass would write the status and a steady platform would never be quiet.
        let policy = policy(1, 10);
        let first = desired_replicas(Some(0), &policy, 1, None, at(0));
        let later = desired_replicas(Some(0), &policy, 1, first.low_since, at(3_600));
        assert_eq!(first, later);
        let stabilizing = desired_replicas(Some(0), &policy, 4, None, at(0));
        let still = desired_replicas(Some(0), &policy, 4, stabilizing.low_since, at(100));
        assert_eq!(stabilizing, still);
    }

    #[test]
    fn autoscale_wanted_rounds_up_and_clamps() {
        assert_eq!(wanted(0, &policy(0, 10)), 0);
        assert_eq!(wanted(1, &policy(0, 10)), 1);
        assert_eq!(wanted(10, &policy(0, 10)), 2);
        assert_eq!(wanted(11, &policy(0, 10)), 3);
        assert_eq!(wanted(u64::MAX, &policy(0, 10)), 10);
        assert_eq!(wanted(0, &policy(3, 10)), 3);
    }
}
