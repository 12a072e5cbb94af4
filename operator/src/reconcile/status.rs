//! Step 6: the status. Built by pure functions ([`build`], [`invalid`]) from the plan, and written
//! by server-side apply of the status subresource only when it differs from what is there — the
//! operator owns the whole status, so what it no longer reports disappears, and a pass that
//! changes nothing writes nothing (a write would wake every watcher of the resource).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use finagent_core::names::FIELD_MANAGER;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::ReconcileError;
use super::plan::{Plan, Verdict};
use super::read::Observed;
use crate::crd::{ComponentStatus, FinancialAgent, FinancialAgentStatus, WorkersStatus};
use crate::rollout::failure_cause;
use crate::validate::ValidatedAgent;

fn time(now: DateTime<Utc>) -> Time {
    let timestamp = k8s_openapi::jiff::Timestamp::from_second(now.timestamp()).unwrap_or_default();
    Time(timestamp)
}

/// A condition; its transition time is kept while its status stays the same.
pub fn condition(
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    previous: &[Condition],
    now: DateTime<Utc>,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|old| old.type_ == kind && old.status == status)
        .map_or_else(|| time(now), |old| old.last_transition_time.clone());
    Condition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The `Degraded` message when it turned to `reason` between `before` and `after`.
pub fn became_degraded(before: &FinancialAgentStatus, after: &FinancialAgentStatus, reason: &str) -> Option<String> {
    let degraded = |status: &FinancialAgentStatus| {
        status.conditions.iter().find(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == reason).cloned()
    };
    match (degraded(before), degraded(after)) {
        (None, Some(now)) => Some(now.message),
        _ => None,
    }
}

/// Whether the condition `kind` turned True between `before` and `after`.
pub fn became_true(before: &FinancialAgentStatus, after: &FinancialAgentStatus, kind: &str) -> bool {
    let is_true =
        |status: &FinancialAgentStatus| status.conditions.iter().any(|c| c.type_ == kind && c.status == "True");
    !is_true(before) && is_true(after)
}

/// The status of a paused resource: what was there, and `ReconciliationPaused=True`.
pub fn paused(previous: &FinancialAgentStatus, generation: Option<i64>, now: DateTime<Utc>) -> FinancialAgentStatus {
    let mut status = previous.clone();
    let message = format!("reconciling is paused by the annotation {}", crate::crd::annotations::PAUSE);
    let paused = condition("ReconciliationPaused", true, "Paused", &message, generation, &previous.conditions, now);
    status.conditions.retain(|c| c.type_ != "ReconciliationPaused");
    status.conditions.push(paused);
    status
}

/// The status of a resource whose spec was refused.
pub fn invalid(
    previous: &FinancialAgentStatus,
    generation: Option<i64>,
    message: &str,
    now: DateTime<Utc>,
) -> FinancialAgentStatus {
    let mut status = previous.clone();
    status.observed_generation = generation;
    status.conditions = vec![
        condition("Ready", false, "InvalidSpec", message, generation, &previous.conditions, now),
        condition("Degraded", true, "InvalidSpec", message, generation, &previous.conditions, now),
    ];
    status
}

/// The status after a pass: the plan's decisions, what the Deployments report, and the children
/// that could not be applied.
pub fn build(
    agent: &ValidatedAgent,
    generation: Option<i64>,
    previous: &FinancialAgentStatus,
    observed: &Observed,
    plan: &Plan,
    apply_failures: &[String],
    now: DateTime<Utc>,
) -> FinancialAgentStatus {
    // The datastores and Prometheus count too: a platform whose Redis or MongoDB has no ready
    // pod serves nothing, whatever the API's own probe says.
    let waiting: Vec<String> = observed
        .supporting
        .iter()
        .filter(|(_, ready, replicas)| *replicas > 0 && *ready == 0)
        .map(|(name, ready, replicas)| format!("{name} ({ready} of {replicas} ready)"))
        .collect();
    let serving = matches!(plan.verdict, Verdict::Healthy | Verdict::Serving);
    let ready = serving && waiting.is_empty();
    let waiting_message = format!("waiting for {}", waiting.join(", "));
    let progress = match &plan.verdict {
        Verdict::Progressing(waiting_for) => waiting_for.clone(),
        _ => String::new(),
    };
    let failed = match &plan.verdict {
        Verdict::Failed(reason) => reason.clone(),
        _ => String::new(),
    };
    let rolled_back = plan.rolled_back.is_some();
    let previous_workers = previous.workers.clone().unwrap_or_default();
    // An unreadable queue is Degraded only once it stayed so for three polls (30 s at least): a
    // Redis restart or the first start of a managed Redis is not a degraded platform.
    let queue_unknown_since = match observed.depth {
        Some(_) => None,
        None => Some(previous_workers.queue_unknown_since.clone().unwrap_or_else(|| now.to_rfc3339())),
    };
    let grace =
        chrono::Duration::seconds(i64::from(agent.spec.ocr_worker.poll_interval_seconds).saturating_mul(3).max(30));
    let queue_unknown = queue_unknown_since
        .as_deref()
        .and_then(|since| DateTime::parse_from_rfc3339(since).ok())
        .is_some_and(|since| now - since.with_timezone(&Utc) >= grace);
    let (degraded, degraded_reason, degraded_message) = if let Some((reason, message)) = &observed.credentials {
        (true, *reason, message.clone())
    } else if !apply_failures.is_empty() {
        (true, "ApplyFailed", apply_failures.join("; "))
    } else if !failed.is_empty() && !rolled_back {
        (true, "RolloutFailed", failed.clone())
    } else if queue_unknown {
        let cause = observed.depth_error.as_deref().unwrap_or("unknown");
        let since = queue_unknown_since.as_deref().unwrap_or_default();
        (
            true,
            "QueueDepthUnknown",
            format!("the queue depth cannot be read since {since} ({cause}); keeping the current workers"),
        )
    } else {
        (false, "None", String::new())
    };
    let ready_message = match &plan.verdict {
        Verdict::Healthy | Verdict::Serving if waiting.is_empty() => "every component is available and healthy",
        Verdict::Healthy | Verdict::Serving => waiting_message.as_str(),
        Verdict::Progressing(waiting_for) => waiting_for.as_str(),
        Verdict::Failed(reason) => reason.as_str(),
    };
    let ready_reason = match &plan.verdict {
        Verdict::Healthy | Verdict::Serving if waiting.is_empty() => "Healthy",
        Verdict::Healthy | Verdict::Serving => "DependenciesNotReady",
        Verdict::Progressing(_) if plan.queued => "RolloutQueued",
        Verdict::Progressing(_) => "Progressing",
        Verdict::Failed(_) if rolled_back => "RolledBack",
        Verdict::Failed(reason) => failure_cause(reason),
    };
    let mut components = BTreeMap::new();
    for (name, deployment) in [("api-server", &observed.api), ("ocr-worker", &observed.worker)] {
        let status = deployment.as_ref().and_then(|d| d.status.clone()).unwrap_or_default();
        let replicas = deployment.as_ref().map(|d| &d.spec).and_then(|s| s.replicas).unwrap_or(0);
        components
            .insert(name.to_owned(), ComponentStatus { ready_replicas: status.ready_replicas.unwrap_or(0), replicas });
    }
    for (name, ready_replicas, replicas) in &observed.supporting {
        components.insert(name.clone(), ComponentStatus { ready_replicas: *ready_replicas, replicas: *replicas });
    }
    let conditions = &previous.conditions;
    FinancialAgentStatus {
        observed_generation: generation,
        conditions: vec![
            condition("Ready", ready, ready_reason, ready_message, generation, conditions, now),
            condition(
                "Progressing",
                !progress.is_empty(),
                match (progress.is_empty(), plan.queued) {
                    (true, _) => "Stable",
                    (false, true) => "RolloutQueued",
                    (false, false) => "NewRevision",
                },
                &progress,
                generation,
                conditions,
                now,
            ),
            condition("Degraded", degraded, degraded_reason, &degraded_message, generation, conditions, now),
            condition(
                "RolledBack",
                rolled_back,
                if rolled_back { failure_cause(plan.rolled_back.as_deref().unwrap_or_default()) } else { "None" },
                plan.rolled_back.as_deref().unwrap_or_default(),
                generation,
                conditions,
                now,
            ),
        ],
        components,
        workers: Some(WorkersStatus {
            replicas: plan.current_workers,
            desired_replicas: plan.scale.replicas,
            queue_depth: observed.depth.and_then(|depth| i64::try_from(depth).ok()),
            last_scale_time: if plan.scaled { Some(now.to_rfc3339()) } else { previous_workers.last_scale_time },
            low_since: plan.scale.low_since.map(|time| time.to_rfc3339()),
            running_since: match (plan.current_workers, plan.scale.replicas) {
                (_, 0) => None,
                (0, _) if plan.scaled => Some(now.to_rfc3339()),
                _ => previous_workers.running_since,
            },
            queue_unknown_since,
        }),
        revision: Some(plan.revision.clone()),
        version: Some(running_version(agent, plan)),
        url: Some(crate::build::edge::url(agent)),
    }
}

/// The version the API runs: the spec's, unless the last good templates were put back.
pub fn running_version(agent: &ValidatedAgent, plan: &Plan) -> String {
    plan.inputs
        .api_template_override
        .as_ref()
        .and_then(super::plan::template_version)
        .map_or_else(|| agent.spec.version.clone(), str::to_owned)
}

/// The status this operator last wrote for each resource (by uid), with the resourceVersion that
/// write produced. The watch cache a pass starts from may not have seen that write yet; a pass
/// that judged from the older status would repeat a decision (a rollback, its Event and metric).
#[derive(Debug, Default)]
pub struct WrittenStatuses(std::sync::Mutex<std::collections::HashMap<String, (String, FinancialAgentStatus)>>);

impl WrittenStatuses {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, FinancialAgentStatus)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets every resource whose uid is not in `live`.
    pub fn retain(&self, live: &std::collections::HashSet<String>) {
        self.map().retain(|uid, _| live.contains(uid));
    }

    /// Remembers a write.
    pub fn record(&self, uid: &str, resource_version: &str, status: &FinancialAgentStatus) {
        self.map().insert(uid.to_owned(), (resource_version.to_owned(), status.clone()));
    }

    /// The status to start a pass from: the resource's, unless it is older than our own last
    /// write (another resourceVersion, and not the status we wrote).
    pub fn latest(&self, agent: &FinancialAgent) -> FinancialAgentStatus {
        let cached = agent.status.clone().unwrap_or_default();
        let Some(uid) = agent.metadata.uid.as_deref() else { return cached };
        match self.map().get(uid) {
            Some((version, written))
                if agent.metadata.resource_version.as_deref() != Some(version.as_str())
                    && agent.status.as_ref() != Some(written) =>
            {
                written.clone()
            }
            _ => cached,
        }
    }
}

/// Writes `status` when it differs from `current` (what the resource carries), and remembers the
/// write; returns whether it wrote.
pub async fn write_if_changed(
    client: &Client,
    written: &WrittenStatuses,
    agent: &FinancialAgent,
    current: &FinancialAgentStatus,
    status: &FinancialAgentStatus,
) -> Result<bool, ReconcileError> {
    if current == status && agent.status.is_some() {
        return Ok(false);
    }
    let api: Api<FinancialAgent> = Api::namespaced(client.clone(), &agent.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": FinancialAgent::api_version(&()),
        "kind": FinancialAgent::kind(&()),
        "status": status,
    });
    let patched = api
        .patch_status(&agent.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
        .await
        .map_err(ReconcileError::Status)?;
    if let (Some(uid), Some(version)) = (patched.metadata.uid.as_deref(), patched.metadata.resource_version.as_deref())
    {
        written.record(uid, version, status);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RevisionStatus;

    #[test]
    fn an_unreadable_queue_is_degraded_only_after_three_polls_and_says_why() {
        use crate::reconcile::plan::plan;
        use crate::reconcile::read::Observed;
        let agent =
            crate::validate::validate(&crate::validate::tests::agent(json!({"ocrWorker": {"pollIntervalSeconds": 5}})))
                .expect("valid");
        let at = |seconds: i64| DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time");
        let blind = Observed {
            depth: None,
            depth_error: Some("Secret shop-credentials does not exist".into()),
            ..Observed::default()
        };
        let mut previous = FinancialAgentStatus::default();
        let mut degraded_at = None;
        for tick in 0..10 {
            let now = at(tick * 5);
            let decided = plan(&agent, &blind, &previous, now);
            let next = build(&agent, Some(1), &previous, &blind, &decided, &[], now);
            let degraded = next.conditions.iter().find(|c| c.type_ == "Degraded").expect("degraded").clone();
            if degraded.status == "True" {
                assert_eq!(degraded.reason, "QueueDepthUnknown");
                assert!(degraded.message.contains("Secret shop-credentials does not exist"), "{}", degraded.message);
                if degraded_at.is_none() {
                    assert!(
                        became_degraded(&previous, &next, "QueueDepthUnknown").is_some(),
                        "said once, when it turns"
                    );
                    degraded_at = Some(tick * 5);
                } else {
                    assert!(became_degraded(&previous, &next, "QueueDepthUnknown").is_none());
                    assert_eq!(next, previous, "no write while it stays unreadable");
                }
            }
            previous = next;
        }
        assert_eq!(degraded_at, Some(30), "three polls of 5 s, and 30 s at least");
        // Readable again: not degraded at once, and the clock is gone.
        let seen = Observed { depth: Some(0), depth_error: None, ..blind };
        let decided = plan(&agent, &seen, &previous, at(60));
        let next = build(&agent, Some(1), &previous, &seen, &decided, &[], at(60));
        assert!(next.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "False"));
        assert_eq!(next.workers.and_then(|w| w.queue_unknown_since), None);
    }

    #[test]
    fn a_pass_starts_from_our_own_last_write_when_the_cache_has_not_seen_it() {
        let written = WrittenStatuses::default();
        let mut agent = crate::validate::tests::agent(json!({}));
        agent.metadata.resource_version = Some("10".into());
        let before = FinancialAgentStatus {
            revision: Some(RevisionStatus { current: Some("a".into()), ..RevisionStatus::default() }),
            ..FinancialAgentStatus::default()
        };
        agent.status = Some(before.clone());
        assert_eq!(written.latest(&agent), before, "nothing written yet: the resource's own");
        let rolled_back = FinancialAgentStatus {
            revision: Some(RevisionStatus { failed: Some("a".into()), ..before.revision.clone().unwrap_or_default() }),
            ..before.clone()
        };
        let uid = agent.metadata.uid.clone().unwrap_or_default();
        written.record(&uid, "11", &rolled_back);
        // The cache still holds version 10: the pass starts from what we wrote.
        assert_eq!(written.latest(&agent), rolled_back);
        // The cache caught up, or moved on (a spec change) with our status: the resource's own.
        agent.metadata.resource_version = Some("11".into());
        assert_eq!(written.latest(&agent), before, "the same version is what the server has");
        agent.metadata.resource_version = Some("12".into());
        agent.status = Some(rolled_back.clone());
        assert_eq!(written.latest(&agent), rolled_back);
    }

    #[test]
    fn a_paused_resource_keeps_its_status_and_says_it_is_paused() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let before = FinancialAgentStatus {
            observed_generation: Some(3),
            conditions: vec![condition("Ready", true, "Healthy", "ok", Some(3), &[], now)],
            ..FinancialAgentStatus::default()
        };
        let paused = paused(&before, Some(4), now);
        assert_eq!(paused.observed_generation, Some(3), "generation 4 was not reconciled");
        assert!(became_true(&before, &paused, "ReconciliationPaused"));
        assert!(paused.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let again = super::paused(&paused, Some(4), now + chrono::Duration::seconds(10));
        assert_eq!(again, paused, "no write while it stays paused");
        assert!(!became_true(&paused, &again, "ReconciliationPaused"));
    }
}
