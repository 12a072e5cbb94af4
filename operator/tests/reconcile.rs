//! Reconcile, tested by outcome against kube-fake-client (a stateful in-memory API server with
//! server-side apply and status subresources; it has no watches, so each test calls reconcile
//! itself, as the controller would on a change or a timer).

use std::sync::{Arc, Mutex};

use finagent_operator::crd::FinancialAgent;
use finagent_operator::reconcile::{Context, HealthProbe, QueueDepthSource, reconcile};
use finagent_operator::validate::ValidatedAgent;
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, ResourceExt};
use serde_json::json;

#[derive(Default)]
struct Fixed {
    depth: Mutex<Option<u64>>,
    ready: Mutex<Option<bool>>,
}

impl QueueDepthSource for Fixed {
    fn depth<'a>(&'a self, _agent: &'a ValidatedAgent) -> BoxFuture<'a, Option<u64>> {
        let depth = *self.depth.lock().expect("lock");
        Box::pin(async move { depth })
    }
}

impl HealthProbe for Fixed {
    fn ready<'a>(&'a self, _agent: &'a ValidatedAgent) -> BoxFuture<'a, Option<bool>> {
        let ready = *self.ready.lock().expect("lock");
        Box::pin(async move { ready })
    }
}

struct World {
    client: Client,
    fixed: Arc<Fixed>,
    context: Arc<Context>,
}

fn resource(spec: serde_json::Value) -> FinancialAgent {
    let mut agent = FinancialAgent::new("shop", serde_json::from_value(spec).expect("spec"));
    agent.metadata.namespace = Some("finance".into());
    agent.metadata.uid = Some("5f0c3a52-1111-4222-8333-444455556666".into());
    agent.metadata.generation = Some(1);
    agent
}

async fn world(spec: serde_json::Value) -> World {
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<FinancialAgent>()
        .with_status_subresource::<FinancialAgent>()
        .with_status_subresource::<Deployment>()
        .with_object(resource(spec))
        .build()
        .await
        .expect("fake client");
    let fixed = Arc::new(Fixed { depth: Mutex::new(Some(0)), ready: Mutex::new(Some(true)) });
    let recorder = Recorder::new(client.clone(), Reporter { controller: "finagent-operator".into(), instance: None });
    let metrics = finagent_operator::metrics::OperatorMetrics::register(&finagent_platform::metrics::Metrics::new())
        .expect("metrics");
    let context =
        Arc::new(Context { client: client.clone(), recorder, depth: fixed.clone(), probe: fixed.clone(), metrics });
    World { client, fixed, context }
}

impl World {
    fn agents(&self) -> Api<FinancialAgent> {
        Api::namespaced(self.client.clone(), "finance")
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), "finance")
    }

    async fn reconcile(&self) -> FinancialAgent {
        let agent = self.agents().get("shop").await.expect("agent");
        reconcile(Arc::new(agent), self.context.clone()).await.expect("reconcile");
        self.agents().get("shop").await.expect("agent")
    }

    async fn patch_spec(&self, spec: serde_json::Value) {
        let mut agent = self.agents().get("shop").await.expect("agent");
        agent.metadata.generation = Some(agent.metadata.generation.unwrap_or(1) + 1);
        let mut value = serde_json::to_value(&agent).expect("json");
        json_patch_merge(&mut value["spec"], &spec);
        value["metadata"]["generation"] = json!(agent.metadata.generation);
        self.agents()
            .patch(
                "shop",
                &PatchParams::default(),
                &Patch::Merge(
                    &json!({"spec": value["spec"], "metadata": {"generation": value["metadata"]["generation"]}}),
                ),
            )
            .await
            .expect("patch");
    }

    /// Makes a Deployment look fully rolled out, as the Deployment controller would.
    async fn roll_out(&self, name: &str) {
        let deployment = self.deployments().get(name).await.expect("deployment");
        let replicas = deployment.spec.as_ref().and_then(|spec| spec.replicas).unwrap_or(1);
        let status = json!({"status": {"replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas, "readyReplicas": replicas, "observedGeneration": deployment.metadata.generation}});
        self.deployments().patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("status");
    }

    async fn fail_rollout(&self, name: &str) {
        let status = json!({"status": {"replicas": 2, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out",
                "lastUpdateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}]}});
        self.deployments().patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("status");
    }

    /// Moves the time the current revision was first applied back by an hour, past any deadline.
    async fn age_revision(&self) {
        let agent = self.agents().get("shop").await.expect("agent");
        let mut revision = agent.status.expect("status").revision.expect("revision");
        revision.since = Some((chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339());
        let status = json!({"status": {"revision": revision}});
        self.agents().patch_status("shop", &PatchParams::default(), &Patch::Merge(&status)).await.expect("status");
    }

    async fn image(&self, name: &str) -> String {
        let deployment = self.deployments().get(name).await.expect("deployment");
        deployment.spec.expect("spec").template.spec.expect("pod").containers[0].image.clone().expect("image")
    }
}

fn json_patch_merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                json_patch_merge(target.entry(key.clone()).or_insert(json!({})), value);
            }
        }
        _ => *target = patch.clone(),
    }
}

fn condition<'a>(
    agent: &'a FinancialAgent,
    kind: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    agent.status.as_ref().expect("status").conditions.iter().find(|c| c.type_ == kind).expect(kind)
}

#[tokio::test]
async fn reconcile_creates_every_child_with_its_owner_and_reports_status() {
    let world = world(json!({})).await;
    let agent = world.reconcile().await;
    let deployments = world.deployments();
    for name in ["shop-api-server", "shop-ocr-worker", "shop-prometheus"] {
        let deployment = deployments.get(name).await.expect(name);
        assert_eq!(deployment.owner_references()[0].uid, "5f0c3a52-1111-4222-8333-444455556666", "{name}");
    }
    let workers = deployments.get("shop-ocr-worker").await.expect("workers");
    assert_eq!(workers.spec.expect("spec").replicas, Some(1), "minReplicas before any backlog");
    let sets: Api<StatefulSet> = Api::namespaced(world.client.clone(), "finance");
    assert!(sets.get("shop-redis").await.is_ok() && sets.get("shop-mongodb").await.is_ok());
    let services: Api<Service> = Api::namespaced(world.client.clone(), "finance");
    assert!(services.get("shop-api-server").await.is_ok());
    let policies: Api<NetworkPolicy> = Api::namespaced(world.client.clone(), "finance");
    assert!(policies.get("shop-redis").await.is_ok());
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), "finance");
    let credentials = secrets.get("shop-credentials").await.expect("credentials generated");
    let value = |key: &str| {
        let from_data = credentials
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned());
        from_data.or_else(|| credentials.string_data.as_ref().and_then(|data| data.get(key).cloned())).expect(key)
    };
    let (jwt, redis, mongo) = (value("jwt-secret-key"), value("redis-password"), value("mongodb-password"));
    for secret in [&jwt, &redis, &mongo] {
        assert!(secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()), "256 bits as hex: {secret}");
    }
    assert!(jwt != redis && redis != mongo && jwt != mongo, "independent secrets");
    let status = agent.status.clone().expect("status");
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(condition(&agent, "Ready").status, "False", "nothing has rolled out yet");
    assert_eq!(condition(&agent, "Progressing").status, "True");
    assert_eq!(status.url.as_deref(), Some("http://shop-api-server.finance.svc"));
}

#[tokio::test]
async fn reconcile_reports_ready_once_rolled_out_and_healthy() {
    let world = world(json!({})).await;
    world.reconcile().await;
    world.roll_out("shop-api-server").await;
    world.roll_out("shop-ocr-worker").await;
    let agent = world.reconcile().await;
    assert_eq!(condition(&agent, "Ready").status, "True", "{:?}", condition(&agent, "Ready"));
    let revision = agent.status.expect("status").revision.expect("revision");
    assert_eq!(revision.last_known_good, revision.current);
}

#[tokio::test]
async fn reconcile_applies_spec_changes_and_brings_back_a_deleted_child() {
    let world = world(json!({})).await;
    world.reconcile().await;
    world.patch_spec(json!({"apiServer": {"replicas": 4}, "prometheus": {"enabled": false}})).await;
    world.reconcile().await;
    let api = world.deployments().get("shop-api-server").await.expect("api");
    assert_eq!(api.spec.expect("spec").replicas, Some(4));
    assert!(world.deployments().get("shop-prometheus").await.is_err(), "a child no longer built is deleted");
    let services: Api<Service> = Api::namespaced(world.client.clone(), "finance");
    services.delete("shop-api-server", &DeleteParams::default()).await.expect("delete");
    world.reconcile().await;
    assert!(services.get("shop-api-server").await.is_ok(), "the deleted Service is back");
}

#[tokio::test]
async fn reconcile_scales_workers_on_a_backlog_and_keeps_them_when_redis_is_gone() {
    let world = world(json!({"ocrWorker": {"minReplicas": 1, "maxReplicas": 6, "targetQueueDepthPerWorker": 5}})).await;
    world.reconcile().await;
    *world.fixed.depth.lock().expect("lock") = Some(23);
    let agent = world.reconcile().await;
    let workers = world.deployments().get("shop-ocr-worker").await.expect("workers");
    assert_eq!(workers.spec.expect("spec").replicas, Some(5));
    let status = agent.status.expect("status").workers.expect("workers");
    assert_eq!((status.desired_replicas, status.queue_depth), (5, Some(23)));
    assert!(status.last_scale_time.is_some());
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(world.client.clone(), "finance");
    let notes: Vec<String> =
        events.list(&Default::default()).await.expect("events").items.into_iter().filter_map(|e| e.note).collect();
    assert!(notes.iter().any(|note| note.contains("ocr workers 1 → 5")), "{notes:?}");
    let metrics = &world.context.metrics;
    assert_eq!(metrics.scaling.with_label_values(&["finance/shop", "up"]).get(), 1);
    // Redis unreachable: the workers stay, and a condition says why.
    *world.fixed.depth.lock().expect("lock") = None;
    let agent = world.reconcile().await;
    assert_eq!(
        world.deployments().get("shop-ocr-worker").await.expect("workers").spec.expect("spec").replicas,
        Some(5)
    );
    assert_eq!(condition(&agent, "Degraded").reason, "QueueDepthUnknown");
}

#[tokio::test]
async fn reconcile_rolls_back_a_failing_rollout_and_does_not_retry_it() {
    let world = world(json!({"version": "1.0.0"})).await;
    world.reconcile().await;
    let rollbacks = world.context.metrics.rollbacks.clone();
    use prometheus::core::Collector;
    let exported = |rollbacks: &prometheus::IntCounterVec| rollbacks.collect()[0].get_metric().len();
    assert_eq!(exported(&rollbacks), 1, "the counter is exported at 0 before any rollback");
    assert_eq!(rollbacks.with_label_values(&["finance/shop"]).get(), 0);
    world.roll_out("shop-api-server").await;
    world.roll_out("shop-ocr-worker").await;
    world.reconcile().await;
    assert_eq!(world.image("shop-api-server").await, "ghcr.io/finagent/api-server:1.0.0");
    // A broken tag: the new pods never become available.
    world.patch_spec(json!({"version": "1.0.1-broken"})).await;
    world.reconcile().await;
    assert_eq!(world.image("shop-api-server").await, "ghcr.io/finagent/api-server:1.0.1-broken");
    world.fail_rollout("shop-api-server").await;
    let agent = world.reconcile().await;
    assert_eq!(world.image("shop-api-server").await, "ghcr.io/finagent/api-server:1.0.0", "rolled back");
    let rolled_back = condition(&agent, "RolledBack");
    assert_eq!(rolled_back.status, "True");
    assert!(rolled_back.message.contains("rolled back"), "{}", rolled_back.message);
    assert_eq!(world.context.metrics.rollbacks.with_label_values(&["finance/shop"]).get(), 1);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(world.client.clone(), "finance");
    let reasons: Vec<String> =
        events.list(&Default::default()).await.expect("events").items.into_iter().filter_map(|e| e.reason).collect();
    assert!(reasons.iter().any(|reason| reason == "RolledBack"), "{reasons:?}");
    let revision = agent.status.clone().expect("status").revision.expect("revision");
    assert_eq!(revision.failed, revision.current);
    // The failed revision is not retried on the next pass...
    let agent = world.reconcile().await;
    assert_eq!(world.image("shop-api-server").await, "ghcr.io/finagent/api-server:1.0.0");
    assert_eq!(condition(&agent, "RolledBack").status, "True");
    // ...until the spec changes.
    world.patch_spec(json!({"version": "1.0.2"})).await;
    world.reconcile().await;
    assert_eq!(world.image("shop-api-server").await, "ghcr.io/finagent/api-server:1.0.2");
}

#[tokio::test]
async fn reconcile_of_an_invalid_spec_sets_degraded_instead_of_failing() {
    let world = world(json!({"redis": {"storage": "plenty"}})).await;
    let agent = world.agents().get("shop").await.expect("agent");
    reconcile(Arc::new(agent), world.context.clone()).await.expect("an invalid spec is not an error to retry");
    let agent = world.agents().get("shop").await.expect("agent");
    let degraded = condition(&agent, "Degraded");
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "InvalidSpec"));
    assert!(degraded.message.contains("redis.storage"), "{}", degraded.message);
    assert!(world.deployments().get("shop-api-server").await.is_err(), "nothing is built from an invalid spec");
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(world.client.clone(), "finance");
    let warnings: Vec<_> = events.list(&Default::default()).await.expect("events").items;
    assert!(
        warnings
            .iter()
            .any(|event| event.reason.as_deref() == Some("InvalidSpec") && event.type_.as_deref() == Some("Warning")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_healthy_revision_stays_good_when_workers_scale_up_long_after_its_rollout() {
    let world =
        world(json!({"ocrWorker": {"minReplicas": 1, "maxReplicas": 6}, "rollout": {"progressDeadlineSeconds": 60}}))
            .await;
    world.reconcile().await;
    world.roll_out("shop-api-server").await;
    world.roll_out("shop-ocr-worker").await;
    let agent = world.reconcile().await;
    assert_eq!(condition(&agent, "Ready").status, "True");
    // An hour later a backlog scales the workers up; the new pods are not available yet.
    world.age_revision().await;
    *world.fixed.depth.lock().expect("lock") = Some(23);
    world.reconcile().await;
    // The Deployment controller has seen the 5 replicas; one is available so far.
    let workers = world.deployments().get("shop-ocr-worker").await.expect("workers");
    assert_eq!(workers.spec.as_ref().and_then(|spec| spec.replicas), Some(5));
    let status = json!({"status": {"replicas": 5, "updatedReplicas": 5, "availableReplicas": 1, "readyReplicas": 1,
        "observedGeneration": workers.metadata.generation}});
    world
        .deployments()
        .patch_status("shop-ocr-worker", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status");
    world.roll_out("shop-api-server").await;
    let agent = world.reconcile().await;
    let revision = agent.status.clone().expect("status").revision.expect("revision");
    assert_eq!(revision.failed, None, "a proven revision is never failed");
    assert_eq!(condition(&agent, "RolledBack").status, "False");
    assert_eq!(condition(&agent, "Ready").status, "True", "one available worker still serves");
    assert_eq!(condition(&agent, "Degraded").status, "False");
}

#[tokio::test]
async fn a_first_rollout_that_is_late_becomes_good_once_healthy() {
    let world = world(json!({"rollout": {"progressDeadlineSeconds": 60}})).await;
    world.reconcile().await;
    world.age_revision().await;
    let agent = world.reconcile().await;
    assert_eq!(condition(&agent, "Degraded").reason, "RolloutFailed", "late, and nothing to roll back to");
    world.roll_out("shop-api-server").await;
    world.roll_out("shop-ocr-worker").await;
    for _ in 0..2 {
        // (The fake API server bumps the generation at every apply; the controller catches up.)
        world.roll_out("shop-api-server").await;
        world.roll_out("shop-ocr-worker").await;
        let agent = world.reconcile().await;
        eprintln!("{:#?}", agent.status);
        let revision = agent.status.clone().expect("status").revision.expect("revision");
        assert_eq!(revision.failed, None);
        assert!(revision.last_known_good.is_some());
        assert_eq!(condition(&agent, "Ready").status, "True");
        assert_eq!(condition(&agent, "RolledBack").status, "False");
    }
}
