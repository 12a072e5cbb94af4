//! The `FinancialAgent` custom resource (`finagent.io/v1alpha1`, short name `fa`).
//!
//! Defaults live in the schema, so `kubectl get -o yaml` shows what the operator runs with; the
//! invariants that cross fields are CEL rules in the schema, so the API server refuses a bad
//! resource at `kubectl apply` with the rule's message. `operator crd` prints the definition; the
//! copy in `crds/` is generated from it and checked in CI.

use std::collections::BTreeMap;

use finagent_core::names::uploads;
use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

mod status;
pub use status::{ComponentStatus, FinancialAgentStatus, RevisionStatus, WorkersStatus};

/// The desired platform.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "finagent.io",
    version = "v1alpha1",
    kind = "FinancialAgent",
    plural = "financialagents",
    shortname = "fa",
    namespaced,
    status = "FinancialAgentStatus",
    derive = "Default",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Workers","type":"integer","jsonPath":".status.workers.replicas"}"#,
    printcolumn = r#"{"name":"Queue","type":"integer","jsonPath":".status.workers.queueDepth"}"#,
    printcolumn = r#"{"name":"Version","type":"string","description":"the version the API runs (the last good one after a rollback)","jsonPath":".status.version"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FinancialAgentSpec {
    /// Image tag of every component unless a component names its own image. It is also the
    /// `app.kubernetes.io/version` label of every child, so it must be a valid label value too: at
    /// most 63 letters, digits, `.`, `_` and `-`, starting and ending with a letter or digit.
    #[serde(default = "default_version")]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$')").message("version must be an image tag of at most 63 characters that starts and ends with a letter or digit (it is also a label value)"))]
    pub version: String,
    /// The REST API.
    #[serde(default)]
    pub api_server: ApiServerSpec,
    /// The OCR workers and their autoscaling.
    #[serde(default)]
    pub ocr_worker: OcrWorkerSpec,
    /// Redis: run by the operator, or an external one.
    #[serde(default)]
    pub redis: RedisSpec,
    /// MongoDB: run by the operator, or an external one.
    #[serde(default)]
    pub mongodb: MongodbSpec,
    /// Prometheus scraping the platform.
    #[serde(default)]
    pub prometheus: PrometheusSpec,
    /// The Ingress in front of the API.
    #[serde(default)]
    pub ingress: IngressSpec,
    /// How new revisions are judged and rolled back.
    #[serde(default)]
    pub rollout: RolloutSpec,
    /// Where every pod of the platform may run (the API, the workers, Redis, MongoDB and
    /// Prometheus), and the pull secrets of their images.
    #[serde(default, skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
}

/// Pod placement, applied to every pod of the platform.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Labels a node must have.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Node and pod affinity and anti-affinity, as in a pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// How each component's pods spread over zones or nodes. A constraint without a
    /// `labelSelector` selects the pods of the component it is applied to, so one constraint
    /// spreads the API's pods, the workers' pods, … each among themselves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// The PriorityClass of every pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Secrets to pull the images with (for a private registry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
}

impl Placement {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Default for FinancialAgentSpec {
    fn default() -> Self {
        Self {
            version: default_version(),
            api_server: ApiServerSpec::default(),
            ocr_worker: OcrWorkerSpec::default(),
            redis: RedisSpec::default(),
            mongodb: MongodbSpec::default(),
            prometheus: PrometheusSpec::default(),
            ingress: IngressSpec::default(),
            rollout: RolloutSpec::default(),
            placement: Placement::default(),
        }
    }
}

fn default_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// An image reference as the container runtime parses it: a lowercase repository path, an optional
/// registry port, tag and digest (the operator checks again before it builds anything).
const IMAGE_RULE: &str = "self.matches('^[a-z0-9]+([._-][a-z0-9]+)*([.][a-z0-9-]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$')";

/// Every trusted proxy is an IPv4 address or CIDR range, or an IPv6 one in hex and colons (the
/// `isIP`/`isCIDR` functions need Kubernetes 1.31, and the CRD installs on 1.30; the operator
/// parses each value fully before using it).
const TRUSTED_PROXIES_RULE: &str = "self.all(p, p.matches('^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])[.]){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(/(3[0-2]|[12]?[0-9]))?$') || p.matches('^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?$'))";

/// The REST API.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerSpec {
    /// Replicas of the API.
    #[serde(default = "two")]
    #[schemars(range(min = 1, max = 50))]
    pub replicas: i32,
    /// Image (repository, and tag if it differs from `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message("an image must be a reference such as ghcr.io/finagent/api-server:0.1.0 (lowercase repository, optional tag or @sha256 digest)"))]
    pub image: Option<String>,
    /// Resources of each replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Rate limits per client.
    #[serde(default)]
    pub rate_limit: RateLimitSpec,
    /// The largest image or PDF a user may upload, in MiB. The API refuses a larger one with 413,
    /// and the Ingress lets it through with the form around it (rounded up to whole MiB).
    #[serde(default = "default_max_upload_mib", rename = "maxUploadMiB")]
    #[schemars(range(min = 1, max = 512))]
    pub max_upload_mib: i32,
}

impl Default for ApiServerSpec {
    fn default() -> Self {
        Self {
            replicas: two(),
            image: None,
            resources: None,
            rate_limit: RateLimitSpec::default(),
            max_upload_mib: default_max_upload_mib(),
        }
    }
}

impl ApiServerSpec {
    /// The largest upload in bytes (`MAX_UPLOAD_SIZE` of the API).
    pub fn max_upload_bytes(&self) -> usize {
        usize::try_from(self.max_upload_mib.max(1)).unwrap_or(1) * uploads::MIB
    }
}

fn default_max_upload_mib() -> i32 {
    i32::try_from(uploads::MAX_BYTES / uploads::MIB).unwrap_or(i32::MAX)
}

fn two() -> i32 {
    2
}

/// Rate limits of the API, per client.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Ordinary requests per second.
    #[serde(default = "ten")]
    #[schemars(range(min = 1, max = 100000))]
    pub requests_per_second: i32,
    /// Uploads per second.
    #[serde(default = "two")]
    #[schemars(range(min = 1, max = 10000))]
    pub uploads_per_second: i32,
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        Self { requests_per_second: ten(), uploads_per_second: two() }
    }
}

fn ten() -> i32 {
    10
}

/// The OCR workers.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("self.minReplicas <= self.maxReplicas").message("minReplicas must not exceed maxReplicas")
)]
pub struct OcrWorkerSpec {
    /// Fewest workers; 0 lets the operator stop every worker while the queue is empty.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 1000))]
    pub min_replicas: i32,
    /// Most workers.
    #[serde(default = "ten")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Queued jobs one worker is expected to keep up with.
    #[serde(default = "five")]
    #[schemars(range(min = 1, max = 10000))]
    pub target_queue_depth_per_worker: i32,
    /// How long the queue must stay low before workers are removed.
    #[serde(default = "three_hundred")]
    #[schemars(range(min = 0, max = 86400))]
    pub scale_down_stabilization_seconds: i32,
    /// How often the queue depth is read.
    #[serde(default = "ten")]
    #[schemars(range(min = 1, max = 3600))]
    pub poll_interval_seconds: i32,
    /// Time limit of one image's OCR.
    #[serde(default = "six_hundred")]
    #[schemars(range(min = 1, max = 3600))]
    pub ocr_timeout_seconds: i32,
    /// Image (repository, and tag if it differs from `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message("an image must be a reference such as ghcr.io/finagent/api-server:0.1.0 (lowercase repository, optional tag or @sha256 digest)"))]
    pub image: Option<String>,
    /// Resources of each worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for OcrWorkerSpec {
    fn default() -> Self {
        Self {
            min_replicas: one(),
            max_replicas: ten(),
            target_queue_depth_per_worker: five(),
            scale_down_stabilization_seconds: three_hundred(),
            poll_interval_seconds: ten(),
            ocr_timeout_seconds: six_hundred(),
            image: None,
            resources: None,
        }
    }
}

fn one() -> i32 {
    1
}
fn five() -> i32 {
    5
}
fn three_hundred() -> i32 {
    300
}
fn six_hundred() -> i32 {
    600
}

/// A reference to one key of a Secret in the resource's namespace.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret.
    pub name: String,
    /// The key in it.
    pub key: String,
}

/// Redis, managed or external.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("self.managed || has(self.urlSecretRef)").message("an external Redis (managed: false) needs urlSecretRef")
)]
pub struct RedisSpec {
    /// Run Redis as a StatefulSet of this resource.
    #[serde(default = "yes")]
    pub managed: bool,
    /// Volume size of the managed Redis. Fixed once the resource exists: a StatefulSet's volume
    /// claim templates cannot change.
    #[serde(default = "one_gi")]
    #[x_kube(
        validation = Rule::new("isQuantity(self)").message("redis.storage must be a Kubernetes quantity such as 1Gi or 500Mi"),
        validation = Rule::new("!isQuantity(oldSelf) || self == oldSelf").message("redis.storage cannot be changed on a running instance (the StatefulSet's volume claims are immutable); resize the PersistentVolumeClaim instead")
    )]
    pub storage: String,
    /// The Secret key holding the URL of an external Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret_ref: Option<SecretKeyRef>,
    /// The managed Redis image, with its tag (default `redis:7.2`). Another image must take the same
    /// arguments, environment and data folder as the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message("an image must be a reference such as ghcr.io/finagent/api-server:0.1.0 (lowercase repository, optional tag or @sha256 digest)"))]
    pub image: Option<String>,
    /// Resources of the managed Redis container (default: the requests and memory limit in
    /// `docs/configuration.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for RedisSpec {
    fn default() -> Self {
        Self { managed: true, storage: one_gi(), url_secret_ref: None, image: None, resources: None }
    }
}

fn yes() -> bool {
    true
}
fn one_gi() -> String {
    "1Gi".into()
}

/// MongoDB, managed or external.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    cel,
    validation = Rule::new("self.managed || has(self.uriSecretRef)").message("an external MongoDB (managed: false) needs uriSecretRef")
)]
pub struct MongodbSpec {
    /// Run MongoDB as a StatefulSet of this resource.
    #[serde(default = "yes")]
    pub managed: bool,
    /// Volume size of the managed MongoDB. Fixed once the resource exists: a StatefulSet's volume
    /// claim templates cannot change.
    #[serde(default = "ten_gi")]
    #[x_kube(
        validation = Rule::new("isQuantity(self)").message("mongodb.storage must be a Kubernetes quantity such as 10Gi"),
        validation = Rule::new("!isQuantity(oldSelf) || self == oldSelf").message("mongodb.storage cannot be changed on a running instance (the StatefulSet's volume claims are immutable); resize the PersistentVolumeClaim instead")
    )]
    pub storage: String,
    /// The Secret key holding the connection string of an external MongoDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_secret_ref: Option<SecretKeyRef>,
    /// The managed MongoDB image, with its tag (default `mongo:7.0`). Another image must take the same
    /// arguments, environment and data folder as the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message("an image must be a reference such as ghcr.io/finagent/api-server:0.1.0 (lowercase repository, optional tag or @sha256 digest)"))]
    pub image: Option<String>,
    /// Resources of the managed MongoDB container (default: the requests and memory limit in
    /// `docs/configuration.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for MongodbSpec {
    fn default() -> Self {
        Self { managed: true, storage: ten_gi(), uri_secret_ref: None, image: None, resources: None }
    }
}

fn ten_gi() -> String {
    "10Gi".into()
}

/// Prometheus.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Run a Prometheus that scrapes this platform.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How long it keeps samples.
    #[serde(default = "fifteen_days")]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(ms|s|m|h|d|w|y)$')").message("retention must be a Prometheus duration such as 15d"))]
    pub retention: String,
    /// Keep the samples on a PersistentVolumeClaim of this size (default storage class), so they
    /// survive a restart or a move of the pod; without it they live in the pod and go with it. The
    /// claim is deleted with Prometheus (turned off or the resource deleted): metrics are not the
    /// platform's data. It can grow where the storage class allows expansion, never shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("prometheus.storage must be a Kubernetes quantity such as 20Gi"))]
    pub storage: Option<String>,
    /// The Prometheus image, with its tag (default `prom/prometheus:v2.55.1`). Another image must take the same
    /// arguments, environment and data folder as the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message("an image must be a reference such as ghcr.io/finagent/api-server:0.1.0 (lowercase repository, optional tag or @sha256 digest)"))]
    pub image: Option<String>,
    /// Resources of the Prometheus container (default: the requests and memory limit in
    /// `docs/configuration.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for PrometheusSpec {
    fn default() -> Self {
        Self { enabled: true, retention: fifteen_days(), storage: None, image: None, resources: None }
    }
}

fn fifteen_days() -> String {
    "15d".into()
}

/// The Ingress.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(cel, validation = Rule::new("!self.enabled || has(self.host)").message("an enabled ingress needs a host"))]
pub struct IngressSpec {
    /// Expose the API through an Ingress.
    #[serde(default)]
    pub enabled: bool,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("size(self) <= 253 && self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')").message("ingress.host must be a DNS name: lower-case labels of letters, digits and '-', separated by dots"))]
    pub host: Option<String>,
    /// Ingress class.
    #[serde(default = "nginx")]
    pub class_name: String,
    /// Secret holding the TLS certificate; no TLS without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
    /// Extra annotations, merged over the operator's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Addresses or CIDR ranges of the ingress controller's pods: only their `X-Forwarded-For`
    /// is believed as the client's address (for rate limits and sessions). With none, every
    /// request counts as coming from its direct peer, which no client can forge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 49)))]
    #[x_kube(validation = Rule::new(TRUSTED_PROXIES_RULE).message("ingress.trustedProxies must hold IPv4 or IPv6 addresses or CIDR ranges such as 10.244.0.0/16"))]
    pub trusted_proxies: Vec<String>,
}

impl Default for IngressSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            host: None,
            class_name: nginx(),
            tls_secret_name: None,
            annotations: BTreeMap::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

fn nginx() -> String {
    "nginx".into()
}

/// Rollout and rollback.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Path probed through the Service to judge a new revision.
    #[serde(default = "readyz")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("healthCheckPath must start with /"))]
    pub health_check_path: String,
    /// Time a new revision has to become available and healthy.
    #[serde(default = "three_hundred")]
    #[schemars(range(min = 30, max = 3600))]
    pub progress_deadline_seconds: i32,
    /// Re-apply the last good revision when a new one fails.
    #[serde(default = "yes")]
    pub auto_rollback: bool,
    /// Seconds a new pod must stay ready before it counts as available (the Deployments'
    /// `minReadySeconds`): a pod that passes its checks once and then crashes does not prove a
    /// revision. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 600))]
    pub min_ready_seconds: i32,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            health_check_path: readyz(),
            progress_deadline_seconds: three_hundred(),
            auto_rollback: true,
            min_ready_seconds: 0,
        }
    }
}

fn readyz() -> String {
    "/readyz".into()
}

/// Annotations a user sets on a FinancialAgent to steer the operator (the Strimzi convention:
/// `strimzi.io/pause-reconciliation`; CloudNativePG and Stackable use a spec field or an
/// annotation of the same meaning).
pub mod annotations {
    /// `"true"`: the operator leaves the platform as it is (no apply, no scaling, no rollback)
    /// and reports `ReconciliationPaused=True` until the annotation is removed or set otherwise.
    pub const PAUSE: &str = "finagent.io/pause-reconciliation";
    /// Any new value: a revision that failed and was rolled back is tried again without a spec
    /// change (for instance after the image it needed was pushed). Setting a date is customary.
    pub const RETRY: &str = "finagent.io/retry-revision";
}

#[cfg(test)]
mod tests;
