//! Reconcile, as a table of contents: validate → read what the decisions need → decide (scaling,
//! rollout) → build (pure) → apply (server-side apply, one field manager, owner references) →
//! delete what is no longer built → status, with a Warning Event for every failure and every
//! scaling or rollback decision.
//!
//! Only the queue depth and the health probe are read outside the Kubernetes API; they sit behind
//! [`QueueDepthSource`] and [`HealthProbe`] so tests give fixed answers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use finagent_core::names::{FIELD_MANAGER, labels};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

use crate::autoscale::{self, ScalePolicy, ScaleReason};
use crate::build::workloads::{credentials_secret_name, secret_keys};
use crate::build::{self, Inputs};
use crate::crd::{FinancialAgent, FinancialAgentStatus, RevisionStatus, WorkersStatus};
use crate::rollout::{RolloutObservation, RolloutVerdict, rollout_verdict};
use crate::validate::{ValidatedAgent, validate};

/// Reads the OCR queue depth of an instance (`None` when Redis cannot be reached).
pub trait QueueDepthSource: Send + Sync {
    /// The depth: waiting plus in-progress jobs.
    fn depth<'a>(&'a self, agent: &'a ValidatedAgent) -> BoxFuture<'a, Option<u64>>;
}

/// Probes the API's `/readyz` through its Service (`None` when it could not be asked).
pub trait HealthProbe: Send + Sync {
    /// Whether the API answers ready.
    fn ready<'a>(&'a self, agent: &'a ValidatedAgent) -> BoxFuture<'a, Option<bool>>;
}

/// What every reconcile shares.
#[allow(missing_debug_implementations)]
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
    /// The queue depth.
    pub depth: Arc<dyn QueueDepthSource>,
    /// The API's health.
    pub probe: Arc<dyn HealthProbe>,
    /// The operator's metrics.
    pub metrics: crate::metrics::OperatorMetrics,
}

/// Why a reconcile failed; each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading an object failed.
    #[error("failed to read {what}: {source}")]
    Read {
        /// What.
        what: String,
        /// Why.
        source: kube::Error,
    },
    /// Applying a child failed.
    #[error("failed to apply {kind} {name}: {source}")]
    Apply {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// Why.
        source: kube::Error,
    },
    /// Deleting an orphan failed.
    #[error("failed to delete {kind} {name}: {source}")]
    Delete {
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// Why.
        source: kube::Error,
    },
    /// Creating the generated credentials failed.
    #[error("failed to create the credentials Secret: {0}")]
    Credentials(kube::Error),
    /// The operating system's random generator failed.
    #[error("failed to generate credentials: {0}")]
    Randomness(String),
    /// Writing the status failed.
    #[error("failed to update the status: {0}")]
    Status(kube::Error),
}

impl ReconcileError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::Apply { .. } => "apply",
            Self::Delete { .. } => "delete",
            Self::Credentials(_) | Self::Randomness(_) => "credentials",
            Self::Status(_) => "status",
        }
    }
}

/// The kinds the operator builds, for finding orphans.
const MANAGED_KINDS: [(&str, &str, &str); 8] = [
    ("", "v1", "ServiceAccount"),
    ("", "v1", "Service"),
    ("", "v1", "ConfigMap"),
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "StatefulSet"),
    ("policy", "v1", "PodDisruptionBudget"),
    ("networking.k8s.io", "v1", "Ingress"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
];

fn api_resource(value: &Value) -> ApiResource {
    let (group, version) = match value["apiVersion"].as_str().unwrap_or("v1").split_once('/') {
        Some((group, version)) => (group.to_owned(), version.to_owned()),
        None => (String::new(), value["apiVersion"].as_str().unwrap_or("v1").to_owned()),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(&group, &version, value["kind"].as_str().unwrap_or_default()))
}

fn name_of(value: &Value) -> String {
    value["metadata"]["name"].as_str().unwrap_or_default().to_owned()
}

/// Applies one child with server-side apply.
async fn apply(client: &Client, namespace: &str, object: &Value) -> Result<(), ReconcileError> {
    let resource = api_resource(object);
    let name = name_of(object);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(object))
        .await
        .map(|_| ())
        .map_err(|source| ReconcileError::Apply { kind: resource.kind.clone(), name, source })
}

/// Deletes children of this resource that are no longer built.
async fn delete_orphans(
    client: &Client,
    agent: &ValidatedAgent,
    keep: &BTreeSet<(String, String)>,
) -> Result<(), ReconcileError> {
    let selector = format!("{}={},{}={}", labels::INSTANCE, agent.name, labels::MANAGED_BY_KEY, labels::MANAGED_BY);
    for (group, version, kind) in MANAGED_KINDS {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &agent.namespace, &resource);
        let existing = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| ReconcileError::Read { what: format!("{kind} list"), source })?;
        for object in existing {
            let owned = object.owner_references().iter().any(|owner| owner.uid == agent.owner.uid);
            let name = object.name_any();
            if owned && !keep.contains(&(kind.to_owned(), name.clone())) {
                api.delete(&name, &DeleteParams::default()).await.map_err(|source| ReconcileError::Delete {
                    kind: kind.to_owned(),
                    name: name.clone(),
                    source,
                })?;
                tracing::info!(kind, name, "deleted a child no longer built");
            }
        }
    }
    Ok(())
}

/// 256 bits from the operating system's generator, as 64 hex digits.
fn random_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Creates the generated credentials once; they are never rotated by the operator.
async fn ensure_credentials(client: &Client, agent: &ValidatedAgent) -> Result<(), ReconcileError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &agent.namespace);
    let name = credentials_secret_name(agent);
    let existing =
        api.get_opt(&name).await.map_err(|source| ReconcileError::Read { what: format!("Secret {name}"), source })?;
    if existing.is_some() {
        return Ok(());
    }
    let mut secrets = [String::new(), String::new(), String::new()];
    for secret in &mut secrets {
        *secret = random_secret().map_err(|error| ReconcileError::Randomness(error.to_string()))?;
    }
    let [jwt, redis_password, mongodb_password] = secrets;
    let secret: Secret = build::typed(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": build::metadata(agent, &name, finagent_core::names::Component::ApiServer),
        "type": "Opaque",
        "stringData": {
            secret_keys::JWT: jwt,
            secret_keys::REDIS_PASSWORD: redis_password,
            secret_keys::MONGODB_USERNAME: "finagent",
            secret_keys::MONGODB_PASSWORD: mongodb_password,
        },
    }));
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(response)) if response.code == 409 => Ok(()),
        Err(error) => Err(ReconcileError::Credentials(error)),
    }
}

/// The last known good templates, kept in a ConfigMap beside the Deployments.
#[derive(Clone, Debug, PartialEq)]
struct LastKnownGood {
    revision: String,
    api: PodTemplateSpec,
    worker: PodTemplateSpec,
}

fn last_known_good_name(agent: &ValidatedAgent) -> String {
    format!("{}-last-known-good", agent.name)
}

async fn read_last_known_good(
    client: &Client,
    agent: &ValidatedAgent,
) -> Result<Option<LastKnownGood>, ReconcileError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &agent.namespace);
    let name = last_known_good_name(agent);
    let map = api
        .get_opt(&name)
        .await
        .map_err(|source| ReconcileError::Read { what: format!("ConfigMap {name}"), source })?;
    let data = map.and_then(|map| map.data).unwrap_or_default();
    let parsed = (|| {
        Some(LastKnownGood {
            revision: data.get("revision")?.clone(),
            api: serde_json::from_str(data.get("api-server")?).ok()?,
            worker: serde_json::from_str(data.get("ocr-worker")?).ok()?,
        })
    })();
    Ok(parsed)
}

fn last_known_good_object(agent: &ValidatedAgent, good: &LastKnownGood) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": build::metadata(agent, &last_known_good_name(agent), finagent_core::names::Component::ApiServer),
        "data": {
            "revision": good.revision,
            "api-server": serde_json::to_string(&good.api).unwrap_or_default(),
            "ocr-worker": serde_json::to_string(&good.worker).unwrap_or_default(),
        },
    })
}

/// The platform's revision: both templates together.
fn platform_revision(api: &PodTemplateSpec, worker: &PodTemplateSpec) -> String {
    format!("{}-{}", &build::revision(api)[..8], &build::revision(worker)[..8])
}

/// What a Deployment says about the rollout of `template_revision` (its status only counts once
/// the Deployment carries that template).
fn observe(
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
    let spec_replicas = deployment.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(0);
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
            condition.type_ == "Progressing"
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

fn combine(verdicts: [RolloutVerdict; 2]) -> RolloutVerdict {
    let [api, worker] = verdicts;
    match (api, worker) {
        (RolloutVerdict::Failed { reason }, _) => RolloutVerdict::Failed { reason: format!("api-server: {reason}") },
        (_, RolloutVerdict::Failed { reason }) => RolloutVerdict::Failed { reason: format!("ocr-worker: {reason}") },
        (RolloutVerdict::Progressing { waiting_for }, _) => {
            RolloutVerdict::Progressing { waiting_for: format!("api-server: {waiting_for}") }
        }
        (_, RolloutVerdict::Progressing { waiting_for }) => {
            RolloutVerdict::Progressing { waiting_for: format!("ocr-worker: {waiting_for}") }
        }
        (RolloutVerdict::Healthy, RolloutVerdict::Healthy) => RolloutVerdict::Healthy,
    }
}

fn condition(
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    previous: &[Condition],
) -> Condition {
    let status = if status { "True" } else { "False" };
    // Keep the transition time when the status did not change.
    let last_transition_time = previous
        .iter()
        .find(|old| old.type_ == kind && old.status == status)
        .map_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()), |old| old.last_transition_time.clone());
    Condition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time,
    }
}

async fn warn(ctx: &Context, agent: &FinancialAgent, reason: &str, note: String, action: &str) {
    let event = Event {
        type_: EventType::Warning,
        reason: reason.to_owned(),
        note: Some(note),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &agent.object_ref(&())).await {
        tracing::warn!(%error, "failed to publish an event");
    }
}

/// Sets to null every field of `old` that `new` no longer has, at any depth of objects.
fn null_what_is_gone(old: &Value, new: &mut Value) {
    if let (Some(old), Some(new)) = (old.as_object(), new.as_object_mut()) {
        for (key, old_value) in old {
            match new.get_mut(key) {
                None => {
                    new.insert(key.clone(), Value::Null);
                }
                Some(new_value) => null_what_is_gone(old_value, new_value),
            }
        }
    }
}

async fn patch_status(
    ctx: &Context,
    agent: &FinancialAgent,
    status: &FinancialAgentStatus,
) -> Result<(), ReconcileError> {
    let api: Api<FinancialAgent> = Api::namespaced(ctx.client.clone(), &agent.namespace().unwrap_or_default());
    // The operator owns the whole status: what it no longer reports (a cleared failed revision,
    // say) is removed, which a merge patch only does for fields set to null.
    let mut new = serde_json::to_value(status).unwrap_or_default();
    let old = agent.status.as_ref().and_then(|old| serde_json::to_value(old).ok()).unwrap_or_default();
    null_what_is_gone(&old, &mut new);
    let patch = json!({"status": new});
    api.patch_status(&agent.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(ReconcileError::Status)
}

/// Reconciles one FinancialAgent.
pub async fn reconcile(agent: Arc<FinancialAgent>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let now = Utc::now();
    let generation = agent.metadata.generation;
    let previous = agent.status.clone().unwrap_or_default();
    // 1. Validate: a bad spec waits for a change.
    let validated = match validate(&agent) {
        Ok(validated) => validated,
        Err(invalid) => {
            let mut status = previous.clone();
            status.observed_generation = generation;
            status.conditions = vec![
                condition("Ready", false, "InvalidSpec", &invalid.0, generation, &previous.conditions),
                condition("Degraded", true, "InvalidSpec", &invalid.0, generation, &previous.conditions),
            ];
            patch_status(&ctx, &agent, &status).await?;
            warn(&ctx, &agent, "InvalidSpec", invalid.0.clone(), "Validate").await;
            return Ok(Action::await_change());
        }
    };
    // The rollback counter exists at 0 from the first reconcile, so that a first rollback is an
    // increase that alerts can see.
    ctx.metrics.rollbacks.with_label_values(&[validated.key().as_str()]);
    let client = &ctx.client;
    // 2. Read: credentials, the workers' Deployment, the last good templates, the queue depth.
    ensure_credentials(client, &validated).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &validated.namespace);
    let read = |name: String| {
        let deployments = deployments.clone();
        async move {
            deployments
                .get_opt(&name)
                .await
                .map_err(|source| ReconcileError::Read { what: format!("Deployment {name}"), source })
        }
    };
    let api_name = build::child_name(&validated, finagent_core::names::Component::ApiServer);
    let worker_name = build::child_name(&validated, finagent_core::names::Component::OcrWorker);
    // What runs now, before this pass applies anything: the rollout is judged on it.
    let (api_now, worker_now) = (read(api_name).await?, read(worker_name).await?);
    let last_good = read_last_known_good(client, &validated).await?;
    let depth = ctx.depth.depth(&validated).await;

    // 3. Decide the workers' replicas.
    let spec = &validated.spec.ocr_worker;
    let policy = ScalePolicy {
        min: spec.min_replicas,
        max: spec.max_replicas,
        target_per_worker: spec.target_queue_depth_per_worker,
        stabilization: Duration::seconds(i64::from(spec.scale_down_stabilization_seconds)),
    };
    let current =
        worker_now.as_ref().and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(spec.min_replicas);
    let previous_workers = previous.workers.clone().unwrap_or_default();
    let parse_time = |text: &Option<String>| {
        text.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
    };
    let scale = autoscale::desired_replicas(depth, &policy, current, parse_time(&previous_workers.last_busy_time), now);
    let scaled = scale.replicas != current && worker_now.is_some();
    if scaled {
        let direction = if scale.replicas > current { "up" } else { "down" };
        ctx.metrics.scaling.with_label_values(&[validated.key().as_str(), direction]).inc();
        warn(
            &ctx,
            &agent,
            "Scaled",
            format!("ocr workers {current} → {} (queue depth {depth:?}, {:?})", scale.replicas, scale.reason),
            "Scale",
        )
        .await;
    }

    // 4. Decide the templates: the spec's, unless that revision failed before (then the last good).
    let desired_api = build::workloads::api_template(&validated);
    let desired_worker = build::workloads::worker_template(&validated);
    let desired_revision = platform_revision(&desired_api, &desired_worker);
    let previous_revision = previous.revision.clone().unwrap_or_default();
    let known_failure = previous_revision.failed.as_deref() == Some(desired_revision.as_str());
    let holding_back = known_failure && last_good.is_some();
    let mut inputs = Inputs { worker_replicas: Some(scale.replicas), ..Inputs::default() };
    if holding_back && let Some(good) = &last_good {
        inputs.api_template_override = Some(good.api.clone());
        inputs.worker_template_override = Some(good.worker.clone());
    }

    // 5. Build and apply; then remove what is no longer built.
    let children = build::build_all(&validated, &inputs);
    let mut keep = BTreeSet::new();
    for object in &children.objects {
        apply(client, &validated.namespace, object).await?;
        keep.insert((object["kind"].as_str().unwrap_or_default().to_owned(), name_of(object)));
    }
    keep.insert(("ConfigMap".to_owned(), last_known_good_name(&validated)));
    delete_orphans(client, &validated, &keep).await?;

    // 6. Judge the rollout of the spec's revision, and roll back a failure.
    let since = if previous_revision.current.as_deref() == Some(desired_revision.as_str()) {
        parse_time(&previous_revision.since).unwrap_or(now)
    } else {
        now
    };
    let mut revision = RevisionStatus {
        current: Some(desired_revision.clone()),
        last_known_good: previous_revision.last_known_good.clone(),
        failed: if known_failure { previous_revision.failed.clone() } else { None },
        since: Some(since.to_rfc3339()),
    };
    let deadline = Duration::seconds(i64::from(validated.spec.rollout.progress_deadline_seconds));
    let mut rolled_back: Option<String> = None;
    let verdict = if holding_back {
        RolloutVerdict::Failed {
            reason: format!(
                "revision {desired_revision} failed before; running {}",
                revision.last_known_good.clone().unwrap_or_default()
            ),
        }
    } else {
        let probe = ctx.probe.ready(&validated).await;
        // Once a revision has proved healthy, later trouble (a lost pod, workers scaling up) is
        // reported, never judged as a failed rollout.
        let proven = revision.last_known_good.as_deref() == Some(desired_revision.as_str());
        let api_view =
            observe(api_now.as_ref(), &build::revision(&desired_api), &desired_revision, probe, since, proven);
        let worker_view = observe(
            worker_now.as_ref(),
            &build::revision(&desired_worker),
            &desired_revision,
            Some(true),
            since,
            proven,
        );
        combine([rollout_verdict(&api_view, deadline, now), rollout_verdict(&worker_view, deadline, now)])
    };
    match &verdict {
        RolloutVerdict::Healthy => {
            // A first revision that was late but became healthy is good after all.
            revision.failed = None;
            revision.last_known_good = Some(desired_revision.clone());
            let good = LastKnownGood {
                revision: desired_revision.clone(),
                api: desired_api.clone(),
                worker: desired_worker.clone(),
            };
            if last_good.as_ref() != Some(&good) {
                apply(client, &validated.namespace, &last_known_good_object(&validated, &good)).await?;
            }
        }
        RolloutVerdict::Failed { reason } if !holding_back => {
            revision.failed = Some(desired_revision.clone());
            match (&last_good, validated.spec.rollout.auto_rollback) {
                (Some(good), true) if good.revision != desired_revision => {
                    let back = Inputs {
                        worker_replicas: Some(scale.replicas),
                        api_template_override: Some(good.api.clone()),
                        worker_template_override: Some(good.worker.clone()),
                    };
                    let restored = build::build_all(&validated, &back);
                    for deployment in [&restored.api, &restored.worker] {
                        apply(client, &validated.namespace, &serde_json::to_value(deployment).unwrap_or_default())
                            .await?;
                    }
                    let message =
                        format!("revision {desired_revision} failed ({reason}); rolled back to {}", good.revision);
                    ctx.metrics.rollbacks.with_label_values(&[validated.key().as_str()]).inc();
                    warn(&ctx, &agent, "RolledBack", message.clone(), "Rollback").await;
                    rolled_back = Some(message);
                }
                // Nothing to roll back to: said once, then the rollout goes on being watched.
                _ if known_failure => {}
                _ => warn(&ctx, &agent, "RolloutFailed", reason.clone(), "Rollout").await,
            }
        }
        _ => {}
    }

    // 7. Status.
    let ready = matches!(verdict, RolloutVerdict::Healthy);
    let (progressing, progress_message) = match &verdict {
        RolloutVerdict::Progressing { waiting_for } => (true, waiting_for.clone()),
        _ => (false, String::new()),
    };
    let mut components = BTreeMap::new();
    for (name, deployment) in [("api-server", &api_now), ("ocr-worker", &worker_now)] {
        let status = deployment.as_ref().and_then(|d| d.status.clone()).unwrap_or_default();
        let replicas = deployment.as_ref().and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(0);
        components.insert(
            name.to_owned(),
            crate::crd::ComponentStatus { ready_replicas: status.ready_replicas.unwrap_or(0), replicas },
        );
    }
    let failed_message = match &verdict {
        RolloutVerdict::Failed { reason } => reason.clone(),
        _ => String::new(),
    };
    let queue_unknown = depth.is_none();
    let degraded = !failed_message.is_empty() && rolled_back.is_none() && !holding_back;
    let rolled_back_now = rolled_back.is_some() || holding_back;
    let status = FinancialAgentStatus {
        observed_generation: generation,
        conditions: vec![
            condition(
                "Ready",
                ready,
                if ready { "Healthy" } else { "NotReady" },
                if ready { "every component is available and healthy" } else { &progress_message },
                generation,
                &previous.conditions,
            ),
            condition(
                "Progressing",
                progressing,
                if progressing { "NewRevision" } else { "Stable" },
                &progress_message,
                generation,
                &previous.conditions,
            ),
            condition(
                "Degraded",
                degraded || queue_unknown,
                if degraded {
                    "RolloutFailed"
                } else if queue_unknown {
                    "QueueDepthUnknown"
                } else {
                    "None"
                },
                if degraded {
                    &failed_message
                } else if queue_unknown {
                    "the queue depth could not be read; keeping the current workers"
                } else {
                    ""
                },
                generation,
                &previous.conditions,
            ),
            condition(
                "RolledBack",
                rolled_back_now,
                if rolled_back_now { "HealthCheckFailed" } else { "None" },
                rolled_back.as_deref().unwrap_or(if holding_back { &failed_message } else { "" }),
                generation,
                &previous.conditions,
            ),
        ],
        components,
        workers: Some(WorkersStatus {
            replicas: current,
            desired_replicas: scale.replicas,
            queue_depth: depth.and_then(|depth| i64::try_from(depth).ok()),
            last_scale_time: if scaled { Some(now.to_rfc3339()) } else { previous_workers.last_scale_time.clone() },
            last_busy_time: scale.last_busy.map(|time| time.to_rfc3339()),
        }),
        revision: Some(revision),
        url: Some(build::edge::url(&validated)),
    };
    patch_status(&ctx, &agent, &status).await?;
    if scale.reason == ScaleReason::DepthUnknown {
        tracing::warn!(agent = %validated.name, "queue depth unknown; workers kept at {current}");
    }
    // Nobody watches the queue: come back after the poll interval.
    Ok(Action::requeue(std::time::Duration::from_secs(u64::try_from(spec.poll_interval_seconds).unwrap_or(10))))
}
