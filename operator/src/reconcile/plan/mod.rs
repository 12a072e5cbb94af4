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
mod tests;
