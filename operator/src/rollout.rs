//! The rollout verdict on a revision of the API or worker pod template, a pure function of what
//! the Deployment and an active `/readyz` probe report, table-tested below.
//!
//! A revision is good once it has replaced every old pod (with `maxUnavailable: 0` each
//! replacement became available first), at least one of its pods is available, and the probe
//! through the Service answers ready on every try — asked only once no old pod is left behind the
//! Service, so no answer can come from the previous revision. Pods that cannot be scheduled (a
//! capacity shortage during a scale-up) do not fail a revision. It has failed when the
//! Deployment says its progress deadline passed, or when our own deadline
//! (`progressDeadlineSeconds` since the revision was first asked to run pods) passes before it is
//! good. A revision at zero replicas is idle: nothing ran, so nothing is proven or failed.

use chrono::{DateTime, Duration, Utc};

/// What was observed of one Deployment's rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutObservation {
    /// The revision (template hash) the Deployment is meant to run.
    pub revision: String,
    /// The Deployment carries the template and its controller has seen the latest spec.
    pub generation_observed: bool,
    /// Replicas wanted.
    pub replicas: i32,
    /// Replicas running the latest template.
    pub updated_replicas: i32,
    pub available_replicas: i32,
    /// Replicas still running an older template.
    pub old_replicas: i32,
    /// The Deployment's `Progressing` condition says `ProgressDeadlineExceeded`.
    pub deadline_exceeded: bool,
    /// The active probe through the Service: `Some(true)` ready on every try, `Some(false)` not,
    /// `None` not run.
    pub probe_ready: Option<bool>,
    /// When this revision was first asked to run pods.
    pub since: DateTime<Utc>,
    /// This revision already proved healthy (it is the last known good): it is no longer judged
    /// against a deadline, so a pod lost later or workers still scaling up never fail it.
    pub proven: bool,
}

/// The verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutVerdict {
    /// Rolled out and healthy: the new last known good.
    Healthy,
    /// Asked for no pods: serving nothing, proving nothing.
    Idle,
    /// Still rolling out, within the deadline.
    Progressing {
        /// What is still missing.
        waiting_for: String,
    },
    /// Failed: roll back (if allowed) and do not retry this revision.
    Failed {
        /// Why, for the condition and the Event.
        reason: String,
    },
}

/// Judges a rollout.
pub fn rollout_verdict(observed: &RolloutObservation, deadline: Duration, now: DateTime<Utc>) -> RolloutVerdict {
    if observed.replicas == 0 && observed.old_replicas == 0 {
        return RolloutVerdict::Idle;
    }
    if observed.proven {
        // A proven revision serves while one pod is available: its pods' own readiness probes
        // (the kubelet asks the same health check) decide that, so one slow answer to the
        // operator's probe does not make the platform un-Ready. A scale step (a new generation the
        // controller has not seen yet) changes nothing about that.
        if observed.available_replicas >= 1 {
            return RolloutVerdict::Healthy;
        }
        return RolloutVerdict::Progressing {
            waiting_for: format!("{} of {} replicas available", observed.available_replicas, observed.replicas),
        };
    }
    let rolled_out = observed.generation_observed
        && observed.updated_replicas >= observed.replicas
        && observed.available_replicas >= 1
        && observed.old_replicas == 0;
    if rolled_out && observed.probe_ready == Some(true) {
        return RolloutVerdict::Healthy;
    }
    let waiting_for = if !observed.generation_observed {
        "the Deployment controller to see the new template".to_owned()
    } else if !rolled_out {
        format!(
            "{} of {} replicas updated, {} available, {} old",
            observed.updated_replicas, observed.replicas, observed.available_replicas, observed.old_replicas
        )
    } else {
        "the health check to pass".to_owned()
    };
    if observed.deadline_exceeded {
        return RolloutVerdict::Failed {
            reason: format!("the Deployment's progress deadline passed with {waiting_for}"),
        };
    }
    if now - observed.since >= deadline {
        let seconds = deadline.num_seconds();
        return RolloutVerdict::Failed {
            reason: format!("not healthy within {seconds} s: still waiting for {waiting_for}"),
        };
    }
    RolloutVerdict::Progressing { waiting_for }
}

/// The condition reason for a failed rollout, from the words [`rollout_verdict`] (or a rollback
/// note quoting them) used: what was still missing when the time ran out.
pub fn failure_cause(message: &str) -> &'static str {
    if message.contains("the health check to pass") {
        "HealthCheckFailed"
    } else if message.contains("progress deadline passed") {
        "ProgressDeadlineExceeded"
    } else if message.contains("replicas updated") || message.contains("to see the new template") {
        "ReplicasNotAvailable"
    } else {
        "RolloutFailed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time")
    }

    fn observed(updated: i32, available: i32, old: i32, probe: Option<bool>) -> RolloutObservation {
        RolloutObservation {
            revision: "abc123".into(),
            generation_observed: true,
            replicas: 2,
            updated_replicas: updated,
            available_replicas: available,
            old_replicas: old,
            deadline_exceeded: false,
            probe_ready: probe,
            since: at(0),
            proven: false,
        }
    }

    #[test]
    fn rollout_verdict_table() {
        let deadline = Duration::seconds(300);
        let healthy = RolloutVerdict::Healthy;
        let progressing = |now| {
            matches!(rollout_verdict(&observed(1, 2, 1, None), deadline, at(now)), RolloutVerdict::Progressing { .. })
        };
        assert_eq!(rollout_verdict(&observed(2, 2, 0, Some(true)), deadline, at(10)), healthy);
        assert!(progressing(10));
        assert!(progressing(299));
        // A capacity shortage: one of two pods cannot be scheduled, no old pod is left.
        assert_eq!(rollout_verdict(&observed(2, 1, 0, Some(true)), deadline, at(3600)), healthy);
        // Rolled out, but the probe has not run or says not ready: not healthy yet.
        assert!(matches!(
            rollout_verdict(&observed(2, 2, 0, None), deadline, at(10)),
            RolloutVerdict::Progressing { .. }
        ));
        assert!(matches!(
            rollout_verdict(&observed(2, 2, 0, Some(false)), deadline, at(10)),
            RolloutVerdict::Progressing { .. }
        ));
        // Past our deadline: failed, saying what was missing.
        match rollout_verdict(&observed(2, 0, 0, None), deadline, at(300)) {
            RolloutVerdict::Failed { reason } => assert!(reason.contains("0 available"), "{reason}"),
            other => panic!("{other:?}"),
        }
        match rollout_verdict(&observed(2, 2, 0, Some(false)), deadline, at(301)) {
            RolloutVerdict::Failed { reason } => assert!(reason.contains("health check"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // The Deployment's own deadline counts too, whatever ours says.
        let mut exceeded = observed(1, 1, 1, None);
        exceeded.deadline_exceeded = true;
        assert!(matches!(rollout_verdict(&exceeded, deadline, at(5)), RolloutVerdict::Failed { .. }));
        // A template the controller has not seen yet is progressing, not healthy.
        let mut unseen = observed(2, 2, 0, Some(true));
        unseen.generation_observed = false;
        assert!(matches!(rollout_verdict(&unseen, deadline, at(5)), RolloutVerdict::Progressing { .. }));
    }

    #[test]
    fn a_proven_revision_is_never_failed_and_serves_with_one_replica() {
        let deadline = Duration::seconds(60);
        let proven =
            |updated, available, probe| RolloutObservation { proven: true, ..observed(updated, available, 0, probe) };
        // Long after the deadline, a scale-up or a lost pod is not a failed rollout.
        assert_eq!(rollout_verdict(&proven(2, 1, Some(true)), deadline, at(3600)), RolloutVerdict::Healthy);
        // One failed answer of the operator's probe while pods are available: still serving.
        assert_eq!(rollout_verdict(&proven(2, 2, Some(false)), deadline, at(3600)), RolloutVerdict::Healthy);
        assert!(matches!(
            rollout_verdict(&proven(2, 0, Some(false)), deadline, at(3600)),
            RolloutVerdict::Progressing { .. }
        ));
        let mut exceeded = proven(1, 1, Some(true));
        exceeded.deadline_exceeded = true;
        exceeded.available_replicas = 0;
        assert!(matches!(rollout_verdict(&exceeded, deadline, at(3600)), RolloutVerdict::Progressing { .. }));
        // The same observations of a revision not yet proven fail it.
        assert!(matches!(
            rollout_verdict(&observed(2, 0, 0, Some(false)), deadline, at(3600)),
            RolloutVerdict::Failed { .. }
        ));
        // A scale step: the controller has not seen the new replica count yet. Ready must not flap.
        let mut scaling = proven(2, 2, Some(true));
        scaling.generation_observed = false;
        scaling.replicas = 6;
        assert_eq!(rollout_verdict(&scaling, deadline, at(3600)), RolloutVerdict::Healthy);
    }

    #[test]
    fn a_revision_at_zero_replicas_is_idle_never_healthy() {
        // No pod ever ran: nothing proves the revision, so it must not become the last known good.
        let mut none = observed(0, 0, 0, None);
        none.replicas = 0;
        assert_eq!(rollout_verdict(&none, Duration::seconds(300), at(1)), RolloutVerdict::Idle);
        assert_eq!(rollout_verdict(&none, Duration::seconds(300), at(10_000)), RolloutVerdict::Idle);
        // Old pods still draining: not idle yet.
        none.old_replicas = 1;
        assert!(matches!(rollout_verdict(&none, Duration::seconds(300), at(1)), RolloutVerdict::Progressing { .. }));
    }

    #[test]
    fn a_failure_is_named_by_what_was_missing() {
        let deadline = Duration::seconds(300);
        let cause = |observation: RolloutObservation| match rollout_verdict(&observation, deadline, at(301)) {
            RolloutVerdict::Failed { reason } => failure_cause(&reason),
            other => panic!("not failed: {other:?}"),
        };
        // Rolled out, but the health check never passed.
        assert_eq!(cause(observed(2, 2, 0, Some(false))), "HealthCheckFailed");
        // The new pods never became available: not a health check failure.
        assert_eq!(cause(observed(1, 0, 1, None)), "ReplicasNotAvailable");
        let mut unseen = observed(0, 0, 2, None);
        unseen.generation_observed = false;
        assert_eq!(cause(unseen), "ReplicasNotAvailable");
        let mut stuck = observed(1, 1, 1, None);
        stuck.deadline_exceeded = true;
        assert_eq!(cause(stuck), "ProgressDeadlineExceeded");
        // A rollback note quotes the reason, and keeps its cause.
        assert_eq!(
            failure_cause(
                "version 2 (revision a) failed (not healthy within 300 s: still waiting for the health check to pass); rolled back"
            ),
            "HealthCheckFailed"
        );
        assert_eq!(failure_cause("something else"), "RolloutFailed");
    }
}
