//! The status of a `FinancialAgent`: what the operator observed and decided.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// What the operator observed and decided.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinancialAgentStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded` and `RolledBack`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Readiness of each component, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, ComponentStatus>,
    /// The OCR workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkersStatus>,
    /// Revisions of the API and worker templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<RevisionStatus>,
    /// The version the API runs: the spec's, or after a rollback the last good one's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the API answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One component's readiness.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Ready replicas.
    pub ready_replicas: i32,
    /// Wanted replicas.
    pub replicas: i32,
}

/// The OCR workers.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkersStatus {
    /// Replicas now.
    pub replicas: i32,
    /// Replicas the autoscaler wants.
    pub desired_replicas: i32,
    /// Last queue depth read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<i64>,
    /// When the replicas last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<String>,
    /// Since when the queue has needed fewer workers than run (RFC 3339): the start of the
    /// scale-down stabilisation window; absent while the queue needs every worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_since: Option<String>,
    /// Since when workers run after being at zero (RFC 3339): a revision's workers are judged
    /// from here when they had no pod before; absent at zero and when they never were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<String>,
    /// Since when the queue depth could not be read (RFC 3339); absent while it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_unknown_since: Option<String>,
}

/// Template revisions: hashes of the API and worker pod templates.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// The revision applied now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// The last revision that became available and healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<String>,
    /// A revision that failed and is not retried until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// When the current revision was first applied (RFC 3339); its deadline counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The last value of the `finagent.io/retry-revision` annotation acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried: Option<String>,
}
