//! Step 3, pure: from the validated spec, what was observed, the previous status and the time, the
//! whole decision of this pass — the workers' replicas, the templates to run, the rollout verdict,
//! a rollback, the last good templates to record, and the Events. Table-tested below; nothing
//! here talks to the cluster.

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::controller::Action;

use super::Notice;
use super::last_known_good::{LastKnownGood, holds_back};
use super::read::Observed;
use crate::autoscale::{self, ScaleDecision, ScalePolicy};
use crate::build::revision::platform_revision;
use crate::build::{self, Inputs, workloads};
use crate::crd::{FinancialAgentStatus, RevisionStatus};
use crate::rollout::{RolloutObservation, RolloutVerdict, rollout_verdict};
use crate::validate::ValidatedAgent;

/// The platform's state as the plan judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Both components rolled out and healthy: the revision is proven.
    Healthy,
    /// Serving, but not every component ran pods (workers at zero): nothing new is proven.
    Serving,
    /// A rollout is under way.
    Progressing(String),
    /// The spec's revision failed.
    Failed(String),
}

/// The decision of one pass.
#[derive(Clone, Debug)]
pub struct Plan {
    /// What the builders need: the workers' replicas, and the last good templates when they
    /// run in place of the spec's.
    pub inputs: Inputs,
    /// Workers running now.
    pub current_workers: i32,
    /// The autoscaler's decision.
    pub scale: ScaleDecision,
    /// The workers' count changes in this pass.
    pub scaled: bool,
    /// The revisions, as the status reports them.
    pub revision: RevisionStatus,
    /// The verdict on the spec's revision.
    pub verdict: Verdict,
    /// The spec's revision failed before and the last good one runs instead.
    pub holding_back: bool,
    /// Templates to record as the last known good.
    pub record_good: Option<LastKnownGood>,
    /// A rollback decided in this pass: record it in the status, then perform it.
    pub rollback: Option<Notice>,
    /// The message of the rollback in force (now or earlier).
    pub rolled_back: Option<String>,
    /// Events of this pass, other than the rollback's.
    pub notices: Vec<Notice>,
    /// When to look again.
    pub requeue: Action,
    /// The rollout this pass would start waits for a slot (see [`Plan::queue`]).
    pub queued: bool,
}

impl Plan {
    /// Whether this pass starts a rollout that will take time: a new revision is applied and
    /// must still prove itself.
    pub fn starts_rollout(&self) -> bool {
        matches!(self.verdict, Verdict::Progressing(_)) && self.notices.iter().any(|n| n.reason == "RolloutStarted")
    }

    /// Holds back the rollout this pass would start, because `in_flight` other platforms are
    /// rolling out, the most the operator runs at once: the last good templates keep running,
    /// the new revision and its deadline are not recorded (the deadline starts when the rollout
    /// does), and the status says why. Returns `false` when there is nothing to keep running (a
    /// first install), which is never held back.
    pub fn queue(
        &mut self,
        agent: &ValidatedAgent,
        previous: &FinancialAgentStatus,
        last_good: Option<&LastKnownGood>,
        in_flight: usize,
    ) -> bool {
        let Some(good) = last_good else { return false };
        self.notices.retain(|notice| notice.reason != "RolloutStarted");
        self.revision = previous.revision.clone().unwrap_or_default();
        let under_way = if in_flight == 1 { "1 rollout is".to_owned() } else { format!("{in_flight} rollouts are") };
        let waits = format!(
            "version {} waits to roll out: {under_way} under way on other platforms, the most this operator runs at once (--max-concurrent-rollouts)",
            agent.spec.version
        );
        let newly = !previous.conditions.iter().any(|c| c.type_ == "Progressing" && c.reason == "RolloutQueued");
        if newly {
            self.notices.push(Notice {
                warning: false,
                reason: "RolloutQueued",
                note: waits.clone(),
                action: "Rollout",
            });
        }
        self.verdict = Verdict::Progressing(waits);
        self.inputs.api_template_override = Some(good.api.clone());
        self.inputs.worker_template_override = Some(good.worker.clone());
        self.record_good = None;
        self.rollback = None;
        self.rolled_back = None;
        self.queued = true;
        true
    }
}

/// A retry the annotation asks for: a value not acted on yet forgets the recorded failure and
/// the revision's clock, so the spec's revision is applied and judged afresh. `None` when there is
/// nothing new to act on.
pub fn retried(previous: &FinancialAgentStatus, token: Option<&str>) -> Option<(FinancialAgentStatus, bool)> {
    let token = token?;
    let revision = previous.revision.clone().unwrap_or_default();
    if revision.retried.as_deref() == Some(token) {
        return None;
    }
    let failed = revision.failed.is_some();
    let mut next = previous.clone();
    next.revision = Some(RevisionStatus {
        failed: None,
        current: if failed { None } else { revision.current.clone() },
        retried: Some(token.to_owned()),
        ..revision
    });
    Some((next, failed))
}

fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// What a Deployment says about the rollout of `template_revision` (its status only counts once
/// the Deployment carries that template).
pub fn rollout_observation(
    deployment: Option<&Deployment>,
    template_revision: &str,
    revision: &str,
    probe: Option<bool>,
    since: DateTime<Utc>,
    proven: bool,
) -> RolloutObservation {
    let carries_template = deployment
        .and_then(|d| d.metadata.annotations.as_ref())
        .and_then(|annotations| annotations.get(build::REVISION_ANNOTATION))
        .is_some_and(|applied| applied == template_revision);
    let spec_replicas = deployment.map(|d| &d.spec).and_then(|s| s.replicas).unwrap_or(0);
    let status = deployment.and_then(|d| d.status.clone()).unwrap_or_default();
    let generation = deployment.and_then(|d| d.metadata.generation);
    let generation_observed = carries_template
        && match (generation, status.observed_generation) {
            (Some(generation), Some(observed)) => observed >= generation,
            _ => true,
        };
    let updated = status.updated_replicas.unwrap_or(0);
    // A deadline reported for another template, or before this revision was applied, is about an
    // older one.
    let since_timestamp = k8s_openapi::jiff::Timestamp::from_second(since.timestamp()).unwrap_or_default();
    let deadline_exceeded = carries_template
        && status.conditions.unwrap_or_default().iter().any(|condition| {
            condition.type_.as_deref() == Some("Progressing")
                && condition.reason.as_deref() == Some("ProgressDeadlineExceeded")
                && condition.last_update_time.as_ref().is_none_or(|time| time.0 >= since_timestamp)
        });
    RolloutObservation {
        revision: revision.to_owned(),
        generation_observed,
        replicas: spec_replicas,
        updated_replicas: updated,
        available_replicas: status.available_replicas.unwrap_or(0),
        old_replicas: (status.replicas.unwrap_or(0) - updated).max(0),
        deadline_exceeded,
        probe_ready: probe,
        since,
        proven,
    }
}

/// The platform's verdict from the API's and the workers'.
pub fn combine(api: RolloutVerdict, worker: RolloutVerdict) -> Verdict {
    match (api, worker) {
        (RolloutVerdict::Failed { reason }, _) => Verdict::Failed(format!("api-server: {reason}")),
        (_, RolloutVerdict::Failed { reason }) => Verdict::Failed(format!("ocr-worker: {reason}")),
        (RolloutVerdict::Progressing { waiting_for }, _) => Verdict::Progressing(format!("api-server: {waiting_for}")),
        (_, RolloutVerdict::Progressing { waiting_for }) => Verdict::Progressing(format!("ocr-worker: {waiting_for}")),
        (RolloutVerdict::Healthy, RolloutVerdict::Healthy) => Verdict::Healthy,
        // The API never runs at zero replicas (at least 1 by the schema); an idle one proves nothing.
        (RolloutVerdict::Healthy, RolloutVerdict::Idle) => Verdict::Serving,
        (RolloutVerdict::Idle, _) => Verdict::Progressing("api-server: no replica".to_owned()),
    }
}

/// The whole decision of one pass.
pub fn plan(agent: &ValidatedAgent, observed: &Observed, previous: &FinancialAgentStatus, now: DateTime<Utc>) -> Plan {
    let mut notices = Vec::new();
    // The workers' replicas.
    let spec = &agent.spec.ocr_worker;
    let policy = ScalePolicy {
        min: spec.min_replicas,
        max: spec.max_replicas,
        target_per_worker: spec.target_queue_depth_per_worker,
        stabilization: Duration::seconds(i64::from(spec.scale_down_stabilization_seconds)),
    };
    let current = observed.worker.as_ref().map(|d| &d.spec).and_then(|s| s.replicas).unwrap_or(spec.min_replicas);
    let previous_workers = previous.workers.clone().unwrap_or_default();
    let scale = autoscale::desired_replicas(
        observed.depth,
        &policy,
        current,
        parse_time(previous_workers.low_since.as_deref()),
        now,
    );
    let scaled = scale.replicas != current && observed.worker.is_some();
    if scaled {
        let depth = observed.depth.map_or_else(|| "unknown".to_owned(), |depth| depth.to_string());
        notices.push(Notice {
            warning: false,
            reason: "Scaled",
            note: format!("ocr workers {current} → {} (queue depth {depth}, {:?})", scale.replicas, scale.reason),
            action: "Scale",
        });
    }

    // The templates: the spec's, unless that revision failed before (then the last good ones).
    let desired_api = workloads::api_template(agent);
    let desired_worker = workloads::worker_template(agent);
    let desired = platform_revision(&desired_api, &desired_worker);
    let previous_revision = previous.revision.clone().unwrap_or_default();
    let known_failure = previous_revision.failed.as_deref() == Some(desired.as_str());
    let last_good = observed.last_good.as_ref().filter(|good| good.revision != desired);
    let holding_back = holds_back(agent, &desired, previous, observed.last_good.as_ref());
    let since = if previous_revision.current.as_deref() == Some(desired.as_str()) {
        parse_time(previous_revision.since.as_deref()).unwrap_or(now)
    } else {
        now
    };
    if previous_revision.current.as_deref() != Some(desired.as_str()) && !holding_back {
        notices.push(Notice {
            warning: false,
            reason: "RolloutStarted",
            note: format!(
                "version {} (revision {desired}) applied; it has {} s to become available and healthy",
                agent.spec.version, agent.spec.rollout.progress_deadline_seconds
            ),
            action: "Rollout",
        });
    }
    let mut revision = RevisionStatus {
        current: Some(desired.clone()),
        last_known_good: previous_revision.last_known_good.clone(),
        failed: if known_failure { previous_revision.failed.clone() } else { None },
        since: Some(since.to_rfc3339()),
        retried: previous_revision.retried.clone(),
    };

    // The verdict on the spec's revision.
    let deadline = Duration::seconds(i64::from(agent.spec.rollout.progress_deadline_seconds));
    let verdict = if let (true, Some(good)) = (holding_back, last_good) {
        Verdict::Failed(format!(
            "version {} (revision {desired}) failed before; running version {} (revision {})",
            agent.spec.version,
            template_version(&good.api).unwrap_or("unknown"),
            good.revision
        ))
    } else {
        // Each component is proven on its own: with the workers at zero, the API of a new version
        // proves itself (and is recorded with the old workers' template) while the workers' new
        // template waits for pods to run.
        let (api_revision, worker_revision) =
            (build::revision::template_revision(&desired_api), build::revision::template_revision(&desired_worker));
        let good = observed.last_good.as_ref();
        let api_proven = good.is_some_and(|good| build::revision::template_revision(&good.api) == api_revision);
        let worker_proven = good.is_some_and(|good| {
            good.worker_proven && build::revision::template_revision(&good.worker) == worker_revision
        });
        let api_view =
            rollout_observation(observed.api.as_ref(), &api_revision, &desired, observed.probe, since, api_proven);
        // Workers scaled up from zero start their clock then, not when the revision was applied.
        let worker_since = parse_time(previous_workers.running_since.as_deref()).map_or(since, |t| t.max(since));
        let worker_view = rollout_observation(
            observed.worker.as_ref(),
            &worker_revision,
            &desired,
            observed.worker_probe,
            if worker_proven { since } else { worker_since },
            worker_proven,
        );
        combine(rollout_verdict(&api_view, deadline, now), rollout_verdict(&worker_view, deadline, now))
    };

    let mut record_good = None;
    let mut rollback = None;
    let mut rolled_back = None;
    match &verdict {
        Verdict::Healthy => {
            // A first revision that was late but became healthy is good after all.
            revision.failed = None;
            revision.last_known_good = Some(desired.clone());
            let good = LastKnownGood {
                revision: desired.clone(),
                api: desired_api.clone(),
                worker: desired_worker.clone(),
                worker_proven: true,
            };
            if observed.last_good.as_ref() != Some(&good) {
                record_good = Some(good);
            }
        }
        Verdict::Serving => {
            revision.failed = None;
            // The API proved itself; the workers ran no pod, so their last good template stays —
            // on a first install, the spec's, recorded as not proven.
            let (worker, worker_proven) = observed
                .last_good
                .as_ref()
                .map_or((desired_worker.clone(), false), |old| (old.worker.clone(), old.worker_proven));
            let good = LastKnownGood {
                revision: platform_revision(&desired_api, &worker),
                api: desired_api.clone(),
                worker,
                worker_proven,
            };
            revision.last_known_good = Some(good.revision.clone());
            if observed.last_good.as_ref() != Some(&good) {
                record_good = Some(good);
            }
        }
        Verdict::Failed(reason) if !holding_back => {
            revision.failed = Some(desired.clone());
            match (last_good, agent.spec.rollout.auto_rollback) {
                (Some(good), true) => {
                    let note = format!(
                        "version {} (revision {desired}) failed ({reason}); rolled back to version {} (revision {})",
                        agent.spec.version,
                        template_version(&good.api).unwrap_or("unknown"),
                        good.revision
                    );
                    rolled_back = Some(note.clone());
                    rollback = Some(Notice { warning: true, reason: "RolledBack", note, action: "Rollback" });
                }
                // Nothing to roll back to (or not allowed): said once, then the rollout goes on
                // being watched.
                _ if known_failure => {}
                _ => notices.push(Notice {
                    warning: true,
                    reason: "RolloutFailed",
                    note: reason.clone(),
                    action: "Rollout",
                }),
            }
        }
        // Held back: the rollback's own message (why, and both versions) stays, pass after pass.
        Verdict::Failed(reason) => {
            let decided = previous
                .conditions
                .iter()
                .find(|c| c.type_ == "RolledBack" && c.status == "True" && c.message.contains(desired.as_str()))
                .map(|c| c.message.clone());
            rolled_back = Some(decided.unwrap_or_else(|| reason.clone()));
        }
        Verdict::Progressing(_) => {}
    }

    let mut inputs = Inputs { worker_replicas: Some(scale.replicas), ..Inputs::default() };
    if let (true, Some(good)) = (holding_back || rollback.is_some(), last_good) {
        inputs.api_template_override = Some(good.api.clone());
        inputs.worker_template_override = Some(good.worker.clone());
    }
    // Nobody watches the queue: come back after the poll interval (the only timer).
    let poll = std::time::Duration::from_secs(u64::try_from(spec.poll_interval_seconds).unwrap_or(10).max(1));
    Plan {
        inputs,
        current_workers: current,
        scale,
        scaled,
        revision,
        verdict,
        holding_back,
        record_good,
        rollback,
        rolled_back,
        notices,
        requeue: Action::requeue(poll),
        queued: false,
    }
}

/// The version a pod template runs: the tag of its first container's image (every image the
/// operator writes is `<repository>:<version>`).
pub fn template_version(template: &k8s_openapi::api::core::v1::PodTemplateSpec) -> Option<&str> {
    let image = template.spec.as_ref()?.containers.first()?.image.as_deref()?;
    let name = image.rsplit('/').next()?.split('@').next()?;
    name.split_once(':').map(|(_, tag)| tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::workloads::desired_revision;
    use crate::reconcile::status;
    use crate::validate::{tests::agent, validate};
    use k8s_openapi::api::apps::v1::DeploymentStatus;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time")
    }

    fn validated(spec: serde_json::Value) -> ValidatedAgent {
        validate(&agent(spec)).expect("valid")
    }

    /// The Deployments as the builders make them, rolled out: every replica updated and available.
    fn rolled_out(agent: &ValidatedAgent, inputs: &Inputs, available: i32) -> (Deployment, Deployment) {
        let children = build::build_all(agent, inputs);
        let finish = |mut deployment: Deployment| {
            let replicas = deployment.spec.replicas.unwrap_or(0);
            deployment.metadata.generation = Some(1);
            deployment.status = Some(DeploymentStatus {
                observed_generation: Some(1),
                replicas: Some(replicas),
                updated_replicas: Some(replicas),
                available_replicas: Some(available.min(replicas)),
                ready_replicas: Some(available.min(replicas)),
                ..DeploymentStatus::default()
            });
            deployment
        };
        (finish(children.api), finish(children.worker))
    }

    fn observed(agent: &ValidatedAgent, available: i32, last_good: Option<LastKnownGood>) -> Observed {
        let (api, worker) = rolled_out(agent, &Inputs::default(), available);
        Observed {
            api: Some(api),
            worker: Some(worker),
            last_good,
            depth: Some(0),
            depth_error: None,
            probe: Some(true),
            worker_probe: Some(true),
            credentials: None,
            supporting: Vec::new(),
        }
    }

    #[test]
    fn a_healthy_first_revision_is_recorded_as_good_and_ready() {
        let agent = validated(serde_json::json!({}));
        let plan = plan(&agent, &observed(&agent, 2, None), &FinancialAgentStatus::default(), at(0));
        assert_eq!(plan.verdict, Verdict::Healthy);
        let good = plan.record_good.expect("recorded");
        assert_eq!(good.revision, desired_revision(&agent));
        assert_eq!(plan.revision.last_known_good.as_deref(), Some(good.revision.as_str()));
        assert!(plan.rollback.is_none());
        // The one decision: the revision was applied (the log and an Event say so).
        let reasons: Vec<&str> = plan.notices.iter().map(|notice| notice.reason).collect();
        assert_eq!(reasons, ["RolloutStarted"]);
        assert!(plan.notices[0].note.starts_with("version 0."), "{:?}", plan.notices);
    }

    #[test]
    fn the_retry_annotation_forgets_a_failure_once_per_value() {
        let failed = FinancialAgentStatus {
            revision: Some(RevisionStatus {
                current: Some("r".into()),
                failed: Some("r".into()),
                since: Some("2026-01-01T00:00:00Z".into()),
                ..RevisionStatus::default()
            }),
            ..FinancialAgentStatus::default()
        };
        assert_eq!(retried(&failed, None), None, "no annotation, nothing to do");
        let (fresh, was_failed) = retried(&failed, Some("t1")).expect("acted on");
        assert!(was_failed);
        let revision = fresh.revision.clone().unwrap_or_default();
        assert_eq!(revision.failed, None, "the failure is forgotten");
        assert_eq!(revision.current, None, "the revision's clock starts again");
        assert_eq!(revision.retried.as_deref(), Some("t1"));
        assert_eq!(retried(&fresh, Some("t1")), None, "the same value never retries twice");
        let (_, was_failed) = retried(&fresh, Some("t2")).expect("a new value is recorded");
        assert!(!was_failed, "nothing had failed: only the value is recorded");
    }

    #[test]
    fn ready_covers_the_datastores_and_prometheus() {
        let agent = validated(serde_json::json!({}));
        let ready_of = |supporting: Vec<(String, i32, i32)>| {
            let seen = Observed { supporting, ..observed(&agent, 2, None) };
            let decided = plan(&agent, &seen, &FinancialAgentStatus::default(), at(0));
            let status = status::build(&agent, Some(1), &FinancialAgentStatus::default(), &seen, &decided, &[], at(0));
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready").cloned().expect("ready");
            (ready, status.components)
        };
        let (up, components) =
            ready_of(vec![("redis".into(), 1, 1), ("mongodb".into(), 1, 1), ("prometheus".into(), 1, 1)]);
        assert_eq!((up.status.as_str(), up.reason.as_str()), ("True", "Healthy"));
        assert_eq!(components.len(), 5, "{components:?}");
        // The API is healthy, but Redis and Prometheus have no ready pod: not Ready, and why.
        let (pending, _) =
            ready_of(vec![("redis".into(), 0, 1), ("mongodb".into(), 1, 1), ("prometheus".into(), 0, 1)]);
        assert_eq!((pending.status.as_str(), pending.reason.as_str()), ("False", "DependenciesNotReady"));
        assert_eq!(pending.message, "waiting for redis (0 of 1 ready), prometheus (0 of 1 ready)");
    }

    #[test]
    fn workers_at_zero_replicas_prove_nothing() {
        let agent = validated(serde_json::json!({"ocrWorker": {"minReplicas": 0}}));
        let plan = plan(&agent, &observed(&agent, 2, None), &FinancialAgentStatus::default(), at(0));
        assert_eq!(plan.verdict, Verdict::Serving, "ready, since the API serves");
        let good = plan.record_good.expect("the API is recorded");
        assert!(!good.worker_proven, "no worker pod ever ran: their template is not proven");
    }

    /// The status after `decided`, as the pass writes it.
    fn after(
        agent: &ValidatedAgent,
        previous: &FinancialAgentStatus,
        seen: &Observed,
        decided: &Plan,
        now: i64,
    ) -> FinancialAgentStatus {
        status::build(agent, Some(1), previous, seen, decided, &[], at(now))
    }

    #[test]
    fn a_late_first_revision_recovers_once_it_becomes_healthy() {
        // A first install with nothing to roll back to: its health check fails past the deadline
        // (a slow first start), then passes.
        let agent = validated(serde_json::json!({}));
        let unhealthy = Observed { probe: Some(false), ..observed(&agent, 2, None) };
        let started = plan(&agent, &unhealthy, &FinancialAgentStatus::default(), at(0));
        let first = after(&agent, &FinancialAgentStatus::default(), &unhealthy, &started, 0);
        let late = plan(&agent, &unhealthy, &first, at(400));
        assert!(matches!(late.verdict, Verdict::Failed(_)), "{:?}", late.verdict);
        assert!(late.rollback.is_none() && late.notices.iter().any(|n| n.reason == "RolloutFailed"));
        let failed = after(&agent, &first, &unhealthy, &late, 400);
        assert_eq!(condition_of(&failed, "Ready"), "False");
        // Still running the spec's revision, so it is still probed and judged.
        assert!(!holds_back(&agent, &desired_revision(&agent), &failed, None), "nothing runs in its place");
        let still = plan(&agent, &unhealthy, &failed, at(410));
        assert!(still.notices.is_empty(), "the failure is said once");
        let healthy = Observed { probe: Some(true), ..unhealthy.clone() };
        let recovered = plan(&agent, &healthy, &after(&agent, &failed, &unhealthy, &still, 410), at(500));
        assert_eq!(recovered.verdict, Verdict::Healthy);
        assert_eq!(recovered.revision.failed, None);
        assert!(recovered.record_good.is_some_and(|good| good.revision == desired_revision(&agent)));
    }

    #[test]
    fn workers_whose_health_check_fails_are_judged_like_the_api() {
        let (status, good) = installed(serde_json::json!({"version": "1.0.0"}));
        let new = validated(serde_json::json!({"version": "2.0.0"}));
        let sick = Observed { last_good: Some(good), worker_probe: Some(false), ..observed(&new, 2, None) };
        let started = plan(&new, &sick, &status, at(10));
        assert!(matches!(started.verdict, Verdict::Progressing(_)), "{:?}", started.verdict);
        let started = after(&new, &status, &sick, &started, 10);
        let late = plan(&new, &sick, &started, at(400));
        let Verdict::Failed(reason) = &late.verdict else { panic!("{:?}", late.verdict) };
        assert!(reason.contains("ocr-worker"), "{reason}");
        assert!(late.rollback.is_some(), "rolled back");
        // The same revision with healthy workers is proven.
        let well = Observed { worker_probe: Some(true), ..sick.clone() };
        assert_eq!(plan(&new, &well, &started, at(20)).verdict, Verdict::Healthy);
    }

    /// A first version, healthy and recorded; the status and the last good templates after it.
    fn installed(spec: serde_json::Value) -> (FinancialAgentStatus, LastKnownGood) {
        let agent = validated(spec);
        let seen = observed(&agent, 2, None);
        let first = plan(&agent, &seen, &FinancialAgentStatus::default(), at(0));
        let good = first.record_good.clone().expect("recorded");
        (after(&agent, &FinancialAgentStatus::default(), &seen, &first, 0), good)
    }

    #[test]
    fn a_queued_rollout_keeps_the_good_templates_and_starts_its_deadline_when_admitted() {
        let (status, good) = installed(serde_json::json!({"version": "1.0.0"}));
        let new = validated(serde_json::json!({"version": "2.0.0"}));
        // The old revision runs; the new one would start now.
        let seen = Observed {
            last_good: Some(good.clone()),
            probe: None,
            ..observed(&validated(serde_json::json!({"version": "1.0.0"})), 2, None)
        };
        let mut waiting = plan(&new, &seen, &status, at(10));
        assert!(waiting.starts_rollout());
        assert!(waiting.queue(&new, &status, Some(&good), 5));
        assert_eq!(waiting.inputs.api_template_override.as_ref(), Some(&good.api));
        assert_eq!(waiting.inputs.worker_template_override.as_ref(), Some(&good.worker));
        assert_eq!(waiting.revision, status.revision.clone().unwrap_or_default(), "nothing new recorded");
        let reasons: Vec<&str> = waiting.notices.iter().map(|notice| notice.reason).collect();
        assert_eq!(reasons, ["RolloutQueued"]);
        let queued = after(&new, &status, &seen, &waiting, 10);
        let progressing = queued.conditions.iter().find(|c| c.type_ == "Progressing").expect("progressing");
        assert_eq!((progressing.status.as_str(), progressing.reason.as_str()), ("True", "RolloutQueued"));
        assert!(progressing.message.contains("5 rollouts are under way"), "{}", progressing.message);
        // Still waiting later: said once.
        let mut still = plan(&new, &seen, &queued, at(400));
        assert!(still.queue(&new, &queued, Some(&good), 5));
        assert!(still.notices.is_empty(), "{:?}", still.notices);
        // Admitted long after: the deadline counts from now, not from when it was first asked.
        let started = plan(&new, &seen, &queued, at(1000));
        assert!(started.starts_rollout() && !started.queued);
        assert_eq!(started.revision.since.as_deref(), Some(at(1000).to_rfc3339().as_str()));
        // A first install is never held back: nothing would run.
        let first = validated(serde_json::json!({}));
        let mut install = plan(&first, &observed(&first, 0, None), &FinancialAgentStatus::default(), at(0));
        assert!(!install.queue(&first, &FinancialAgentStatus::default(), None, 5));
        assert!(!install.queued);
    }

    #[test]
    fn rollout_slots_admit_up_to_the_limit_and_free_on_a_verdict() {
        let slots = super::super::RolloutSlots::new(2);
        assert_eq!(slots.admit("a"), Ok(()));
        assert_eq!(slots.admit("b"), Ok(()));
        assert_eq!(slots.admit("c"), Err(2));
        assert_eq!(slots.admit("a"), Ok(()), "one under way keeps its slot");
        slots.hold("a", false);
        assert_eq!(slots.admit("c"), Ok(()));
        // Found under way (an operator restart): counted without waiting.
        slots.hold("d", true);
        assert_eq!(slots.admit("e"), Err(3));
        slots.retain(&["c".to_owned()].into_iter().collect());
        assert_eq!(slots.admit("e"), Ok(()));
        let unlimited = super::super::RolloutSlots::new(0);
        for key in ["a", "b", "c", "d"] {
            assert_eq!(unlimited.admit(key), Ok(()));
        }
    }

    #[test]
    fn with_rollbacks_off_the_failing_revision_keeps_running_and_says_so() {
        let (status, good) = installed(serde_json::json!({"version": "1.0.0"}));
        let new = validated(serde_json::json!({"version": "2.0.0", "rollout": {"autoRollback": false}}));
        let (api, worker) = rolled_out(&new, &Inputs::default(), 0);
        let failing = Observed {
            api: Some(api),
            worker: Some(worker),
            last_good: Some(good),
            depth: Some(0),
            depth_error: None,
            probe: None,
            ..Observed::default()
        };
        let started = plan(&new, &failing, &status, at(10));
        let started = after(&new, &status, &failing, &started, 10);
        let decided = plan(&new, &failing, &started, at(400));
        assert!(decided.rollback.is_none(), "no rollback when rollbacks are off");
        assert!(decided.notices.iter().any(|n| n.warning && n.reason == "RolloutFailed"), "{:?}", decided.notices);
        assert_eq!(decided.inputs.api_template_override, None);
        let failed = after(&new, &started, &failing, &decided, 400);
        let degraded = failed.conditions.iter().find(|c| c.type_ == "Degraded").expect("degraded");
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "RolloutFailed"));
        assert_eq!(condition_of(&failed, "RolledBack"), "False");
        // Passes later, the old templates are still not put back.
        assert!(!holds_back(&new, &desired_revision(&new), &failed, failing.last_good.as_ref()));
        let later = plan(&new, &failing, &failed, at(1000));
        assert!(!later.holding_back && later.rollback.is_none() && later.notices.is_empty());
        assert_eq!((later.inputs.api_template_override, later.inputs.worker_template_override), (None, None));
    }

    #[test]
    fn workers_at_zero_do_not_hold_a_new_api_unproven() {
        let spec = |version: &str| serde_json::json!({"version": version, "ocrWorker": {"minReplicas": 0}});
        let (status, first_good) = installed(spec("1.0.0"));
        assert!(!first_good.worker_proven);
        // A new version while the workers are at zero: its API proves itself.
        let new = validated(spec("2.0.0"));
        let seen = Observed { last_good: Some(first_good.clone()), ..observed(&new, 2, None) };
        let serving = plan(&new, &seen, &status, at(10));
        assert_eq!(serving.verdict, Verdict::Serving);
        let mixed = serving.record_good.clone().expect("the new API is recorded");
        assert_eq!(mixed.api, workloads::api_template(&new));
        assert_eq!(mixed.worker, first_good.worker, "with the old workers' template");
        let status = after(&new, &status, &seen, &serving, 10);
        // Long after the deadline, one failed probe: the proven API is not rolled back.
        let blip = Observed { last_good: Some(mixed.clone()), probe: Some(false), ..seen.clone() };
        let later = plan(&new, &blip, &status, at(5000));
        assert!(later.rollback.is_none() && matches!(later.verdict, Verdict::Serving), "{:?}", later.verdict);
        let status = after(&new, &status, &blip, &later, 5000);
        // A backlog: 0 → 2 workers of the new template. Their clock starts at the scale-up.
        let busy = Observed { depth: Some(10), ..blip.clone() };
        let scaling = plan(&new, &busy, &status, at(6000));
        assert!(scaling.scaled && scaling.scale.replicas == 2);
        let status = after(&new, &status, &busy, &scaling, 6000);
        let inputs = Inputs { worker_replicas: Some(2), ..Inputs::default() };
        let (_, worker) = rolled_out(&new, &inputs, 0);
        let (ready_api, _) = rolled_out(&new, &inputs, 2);
        let starting =
            Observed { api: Some(ready_api.clone()), worker: Some(worker), probe: Some(true), ..busy.clone() };
        let waiting = plan(&new, &starting, &status, at(6010));
        assert!(matches!(waiting.verdict, Verdict::Progressing(_)), "{:?}", waiting.verdict);
        // Up and healthy: the whole new revision is proven.
        let (_, ready_worker) = rolled_out(&new, &inputs, 2);
        let up = Observed { worker: Some(ready_worker), ..starting.clone() };
        let healthy = plan(&new, &up, &status, at(6020));
        assert_eq!(healthy.verdict, Verdict::Healthy);
        assert!(
            healthy
                .record_good
                .as_ref()
                .is_some_and(|good| good.worker_proven && good.revision == desired_revision(&new))
        );
        // Had they never become available, the workers (not the API) would have been rolled back.
        let broken = plan(&new, &starting, &status, at(6000 + 400));
        let rollback = broken.rollback.expect("the new workers are rolled back");
        assert!(rollback.note.contains("ocr-worker"), "{}", rollback.note);
        assert_eq!(broken.inputs.worker_template_override.as_ref(), Some(&mixed.worker));
        assert_eq!(broken.inputs.api_template_override.as_ref(), Some(&mixed.api), "the new API stays");
    }

    #[test]
    fn a_failed_revision_is_rolled_back_once_and_then_held_back() {
        let old = validated(serde_json::json!({"version": "1.0.0"}));
        let first = plan(&old, &observed(&old, 2, None), &FinancialAgentStatus::default(), at(0));
        let good = first.record_good.clone().expect("good");
        let recorded = status::build(
            &old,
            Some(1),
            &FinancialAgentStatus::default(),
            &observed(&old, 2, None),
            &first,
            &[],
            at(0),
        );
        // The new version's pods never become available; its deadline (300 s) passes.
        let new = validated(serde_json::json!({"version": "2.0.0"}));
        let (api, worker) = rolled_out(&new, &Inputs::default(), 0);
        let failing = Observed {
            api: Some(api),
            worker: Some(worker),
            last_good: Some(good.clone()),
            depth: Some(0),
            depth_error: None,
            probe: None,
            ..Observed::default()
        };
        let progressing = plan(&new, &failing, &recorded, at(10));
        assert!(matches!(progressing.verdict, Verdict::Progressing(_)), "{:?}", progressing.verdict);
        let started = status::build(&new, Some(2), &recorded, &failing, &progressing, &[], at(10));
        let decided = plan(&new, &failing, &started, at(400));
        let rollback = decided.rollback.clone().expect("a rollback is decided");
        assert!(rollback.warning && rollback.note.contains("rolled back to"), "{rollback:?}");
        // Both versions are named, not only the revisions' hashes.
        assert!(rollback.note.starts_with("version 2.0.0 (revision "), "{rollback:?}");
        assert!(rollback.note.contains("rolled back to version 1.0.0 (revision "), "{rollback:?}");
        assert_eq!(decided.revision.failed.as_deref(), Some(desired_revision(&new).as_str()));
        assert_eq!(
            decided.inputs.api_template_override.as_ref(),
            Some(&good.api),
            "the rollback runs the good templates"
        );
        // Recorded (the status written before the rollback is performed), the next pass holds back
        // without deciding it again.
        let after = status::build(&new, Some(2), &started, &failing, &decided, &[], at(400));
        let rolled = condition_of(&after, "RolledBack");
        assert_eq!(rolled, "True");
        let next = plan(&new, &failing, &after, at(410));
        assert!(next.holding_back && next.rollback.is_none(), "the rollback is not repeated");
        // The rollback's message stays while it is held back: why, and both versions.
        assert_eq!(next.rolled_back.as_deref(), Some(rollback.note.as_str()));
        let held = status::build(&new, Some(2), &after, &failing, &next, &[], at(410));
        let rolled_back_of =
            |status: &FinancialAgentStatus| status.conditions.iter().find(|c| c.type_ == "RolledBack").cloned();
        assert_eq!(rolled_back_of(&held), rolled_back_of(&after), "holding back keeps the rollback's condition");
        // Without the recorded message (a status written by an older operator), the reason still
        // names both versions.
        let bare = FinancialAgentStatus {
            conditions: after.conditions.iter().filter(|c| c.type_ != "RolledBack").cloned().collect(),
            ..after.clone()
        };
        let reason = plan(&new, &failing, &bare, at(410)).rolled_back.unwrap_or_default();
        assert!(reason.starts_with("version 2.0.0 (revision ") && reason.contains("running version 1.0.0"), "{reason}");
        assert_eq!(next.inputs.worker_template_override.as_ref(), Some(&good.worker));
        // A new spec is a new revision, judged afresh.
        let newer = validated(serde_json::json!({"version": "2.0.1"}));
        let fresh = plan(&newer, &failing, &after, at(420));
        assert!(!fresh.holding_back && fresh.rollback.is_none());
    }

    fn condition_of(status: &FinancialAgentStatus, kind: &str) -> String {
        status.conditions.iter().find(|c| c.type_ == kind).map(|c| c.status.clone()).unwrap_or_default()
    }

    #[test]
    fn a_steady_platform_builds_the_same_status_pass_after_pass() {
        // The status is written only when it changes: a steady platform must build an identical
        // one, whatever the time, or every pass would write (and wake the controller).
        let agent = validated(serde_json::json!({}));
        let seen = observed(&agent, 2, None);
        let first_plan = plan(&agent, &seen, &FinancialAgentStatus::default(), at(0));
        let first = status::build(&agent, Some(1), &FinancialAgentStatus::default(), &seen, &first_plan, &[], at(0));
        let good = first_plan.record_good.clone();
        let steady = Observed { last_good: good, ..seen };
        let mut previous = first;
        for tick in 1..=5 {
            let next_plan = plan(&agent, &steady, &previous, at(tick * 10));
            assert!(next_plan.record_good.is_none() && next_plan.notices.is_empty());
            let next = status::build(&agent, Some(1), &previous, &steady, &next_plan, &[], at(tick * 10));
            assert_eq!(next, previous, "pass {tick} changed the status");
            previous = next;
        }
    }

    #[test]
    fn apply_failures_make_the_platform_degraded_with_the_children_named() {
        let agent = validated(serde_json::json!({}));
        let seen = observed(&agent, 2, None);
        let decided = plan(&agent, &seen, &FinancialAgentStatus::default(), at(0));
        let failures = ["StatefulSet shop-redis: Invalid (422): spec: Forbidden".to_owned()];
        let built = status::build(&agent, Some(1), &FinancialAgentStatus::default(), &seen, &decided, &failures, at(0));
        let degraded = built.conditions.iter().find(|c| c.type_ == "Degraded").expect("degraded");
        assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "ApplyFailed"));
        assert!(degraded.message.contains("StatefulSet shop-redis"), "{}", degraded.message);
    }

    #[test]
    fn scaling_is_a_normal_event_not_a_warning() {
        let agent = validated(serde_json::json!({}));
        let busy = Observed { depth: Some(40), ..observed(&agent, 2, None) };
        let decided = plan(&agent, &busy, &FinancialAgentStatus::default(), at(0));
        assert_eq!(decided.scale.replicas, 8);
        let scaled = decided.notices.iter().find(|n| n.reason == "Scaled").expect("scaled");
        assert!(!scaled.warning);
    }
}
