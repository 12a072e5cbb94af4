//! Builders: pure functions from a [`ValidatedAgent`] (and the few facts reconcile read, in
//! [`Inputs`]) to the children of the platform. No client, no clock, no randomness: the same input
//! always gives the same objects, which is what makes server-side apply idempotent and the tests
//! whole-object comparisons.
//!
//! Objects are written as JSON in the shape of their manifests and read into the typed
//! `k8s-openapi` structs; every builder runs in the tests, and every rendered object is checked by
//! `kubernetes-validate`, so a malformed one cannot pass unnoticed.

pub mod datastores;
pub mod edge;
pub mod prometheus;
pub mod revision;
pub mod workloads;

use std::collections::BTreeMap;

use finagent_core::names::{Component, labels};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PodTemplateSpec, ResourceRequirements};
use serde_json::{Value, json};

use crate::validate::ValidatedAgent;

/// Image repository of the platform's own components.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/finagent";

/// Facts reconcile read that the builders need.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inputs {
    /// Worker replicas the autoscaler decided (`None` before its first decision: `minReplicas`).
    pub worker_replicas: Option<i32>,
    /// A pod template to run instead of the API's built one (a rollback to the last good one).
    pub api_template_override: Option<PodTemplateSpec>,
    /// The same for the workers.
    pub worker_template_override: Option<PodTemplateSpec>,
    /// The namespace the operator runs in: only its pods there may read the managed Redis (`None`:
    /// only pods of the platform's own namespace).
    pub operator_namespace: Option<String>,
}

/// Turns manifest-shaped JSON into a typed object. Builders only pass literal shapes, and the
/// tests render every builder, so a failure here is a bug caught before release.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(value: Value) -> T {
    match serde_json::from_value(value) {
        Ok(object) => object,
        Err(error) => panic!("a builder produced an invalid {}: {error}", std::any::type_name::<T>()),
    }
}

/// The name of a component's children.
pub fn child_name(agent: &ValidatedAgent, component: Component) -> String {
    format!("{}-{}", agent.name, component.as_str())
}

/// Labels selecting a component's pods (stable: never include the version).
pub fn selector(agent: &ValidatedAgent, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_owned(), labels::APP_NAME.to_owned()),
        (labels::INSTANCE.to_owned(), agent.name.clone()),
        (labels::COMPONENT.to_owned(), component.as_str().to_owned()),
    ])
}

/// Every label of a component's objects.
pub fn labels_of(agent: &ValidatedAgent, component: Component) -> BTreeMap<String, String> {
    let mut all = selector(agent, component);
    all.insert(labels::MANAGED_BY_KEY.to_owned(), labels::MANAGED_BY.to_owned());
    all.insert(labels::PART_OF.to_owned(), labels::APP_NAME.to_owned());
    all.insert(labels::VERSION.to_owned(), agent.spec.version.clone());
    all
}

/// Metadata of an object that outlives the resource (the generated credentials, which the data
/// volumes need as long as they exist): name, namespace and labels, no owner.
pub fn unowned_metadata(agent: &ValidatedAgent, name: &str, component: Component) -> Value {
    json!({
        "name": name,
        "namespace": agent.namespace,
        "labels": labels_of(agent, component),
    })
}

/// Metadata of a child: name, namespace, labels, and the controller owner reference.
pub fn metadata(agent: &ValidatedAgent, name: &str, component: Component) -> Value {
    json!({
        "name": name,
        "namespace": agent.namespace,
        "labels": labels_of(agent, component),
        "ownerReferences": [agent.owner],
    })
}

/// The "restricted" Pod Security Standard, at pod level.
pub fn restricted_pod_security(user: i64) -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": user,
        "runAsGroup": user,
        "fsGroup": user,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The "restricted" Pod Security Standard, at container level.
pub fn restricted_container_security(read_only_root: bool) -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
    })
}

/// A container's resources: the spec's, or the default given.
pub fn resources(configured: Option<&ResourceRequirements>, default: Value) -> Value {
    configured.map_or(default, |resources| serde_json::to_value(resources).unwrap_or_default())
}

/// The image of one of the platform's components: the spec's override, with the version as tag
/// when it names none.
pub fn image(agent: &ValidatedAgent, component: Component, configured: Option<&String>) -> String {
    match configured {
        Some(image) if image.rsplit('/').next().is_some_and(|last| last.contains(':') || last.contains('@')) => {
            image.clone()
        }
        Some(image) => format!("{image}:{}", agent.spec.version),
        None => format!("{IMAGE_REPOSITORY}/{}:{}", component.as_str(), agent.spec.version),
    }
}

/// Adds the resource's placement to a pod spec of `component` (`spec.placement`): node selector,
/// affinity, tolerations, topology spread (a constraint without a label selector selects this
/// component's pods), priority class and image pull secrets.
pub fn place(agent: &ValidatedAgent, component: Component, pod: &mut Value) {
    let placement = &agent.spec.placement;
    if placement.is_empty() {
        return;
    }
    if !placement.node_selector.is_empty() {
        pod["nodeSelector"] = field(&placement.node_selector);
    }
    if let Some(affinity) = &placement.affinity {
        pod["affinity"] = field(affinity);
    }
    if !placement.tolerations.is_empty() {
        pod["tolerations"] = field(&placement.tolerations);
    }
    if !placement.topology_spread_constraints.is_empty() {
        let mut constraints = field(&placement.topology_spread_constraints);
        for constraint in constraints.as_array_mut().into_iter().flatten() {
            if constraint.get("labelSelector").is_none_or(Value::is_null) {
                constraint["labelSelector"] = json!({"matchLabels": selector(agent, component)});
            }
        }
        pod["topologySpreadConstraints"] = constraints;
    }
    if let Some(class) = &placement.priority_class_name {
        pod["priorityClassName"] = json!(class);
    }
    if !placement.image_pull_secrets.is_empty() {
        pod["imagePullSecrets"] = field(&placement.image_pull_secrets);
    }
}

/// A typed field as manifest JSON (API objects always serialise).
fn field<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The annotation carrying a Deployment's template revision.
pub const REVISION_ANNOTATION: &str = "finagent.io/revision";

/// Every child the resource should have now.
#[derive(Clone, Debug)]
pub struct Children {
    /// Namespaced objects as JSON, in apply order: NetworkPolicies first (no pod ever runs
    /// unprotected, and a failure further on cannot leave them out), then dependencies first.
    pub objects: Vec<Value>,
    /// The API's Deployment (also in `objects`), for the rollout verdict.
    pub api: Deployment,
    /// The workers' Deployment (also in `objects`).
    pub worker: Deployment,
}

/// Builds every child. `credentials` names the generated Secret, which reconcile creates once.
pub fn build_all(agent: &ValidatedAgent, inputs: &Inputs) -> Children {
    let api = workloads::api_deployment(agent, inputs.api_template_override.clone());
    let worker = workloads::worker_deployment(agent, inputs.worker_replicas, inputs.worker_template_override.clone());
    let mut objects: Vec<Value> = Vec::new();
    let mut push = |object: Value| objects.push(object);
    for object in edge::network_policies(agent, inputs.operator_namespace.as_deref()) {
        push(object);
    }
    for account in workloads::service_accounts(agent) {
        push(account);
    }
    for object in datastores::redis(agent) {
        push(object);
    }
    for object in datastores::mongodb(agent) {
        push(object);
    }
    push(serde_json::to_value(&api).unwrap_or_default());
    push(serde_json::to_value(&worker).unwrap_or_default());
    for object in workloads::services(agent) {
        push(object);
    }
    for object in workloads::disruption_budgets(agent) {
        push(object);
    }
    for object in prometheus::prometheus(agent) {
        push(object);
    }
    for object in edge::ingress(agent) {
        push(object);
    }
    Children { objects, api, worker }
}
