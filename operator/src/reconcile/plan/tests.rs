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
    let (pending, _) = ready_of(vec![("redis".into(), 0, 1), ("mongodb".into(), 1, 1), ("prometheus".into(), 0, 1)]);
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
    let starting = Observed { api: Some(ready_api.clone()), worker: Some(worker), probe: Some(true), ..busy.clone() };
    let waiting = plan(&new, &starting, &status, at(6010));
    assert!(matches!(waiting.verdict, Verdict::Progressing(_)), "{:?}", waiting.verdict);
    // Up and healthy: the whole new revision is proven.
    let (_, ready_worker) = rolled_out(&new, &inputs, 2);
    let up = Observed { worker: Some(ready_worker), ..starting.clone() };
    let healthy = plan(&new, &up, &status, at(6020));
    assert_eq!(healthy.verdict, Verdict::Healthy);
    assert!(
        healthy.record_good.as_ref().is_some_and(|good| good.worker_proven && good.revision == desired_revision(&new))
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
    let recorded =
        status::build(&old, Some(1), &FinancialAgentStatus::default(), &observed(&old, 2, None), &first, &[], at(0));
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
    assert_eq!(decided.inputs.api_template_override.as_ref(), Some(&good.api), "the rollback runs the good templates");
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
