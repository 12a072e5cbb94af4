//! The last known good templates: the revision the operator rolls back to, recorded in a ConfigMap
//! beside the Deployments once both halves of the platform proved healthy.

use finagent_core::names::Component;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec};
use serde_json::{Value, json};

use crate::build::metadata;
use crate::crd::FinancialAgentStatus;
use crate::validate::ValidatedAgent;

/// The last known good templates, kept in a ConfigMap beside the Deployments.
#[derive(Clone, Debug, PartialEq)]
pub struct LastKnownGood {
    /// The platform revision they make up.
    pub revision: String,
    /// The API's template.
    pub api: PodTemplateSpec,
    /// The workers' template.
    pub worker: PodTemplateSpec,
    /// Whether workers of that template ever ran and proved healthy (not so when it was recorded
    /// with the API of a first install whose workers were at zero).
    pub worker_proven: bool,
}

/// The ConfigMap's name.
pub fn last_known_good_name(agent: &ValidatedAgent) -> String {
    format!("{}-last-known-good", agent.name)
}

impl LastKnownGood {
    /// Reads the ConfigMap's data; `None` when absent or not what we wrote.
    pub fn from_config_map(map: Option<ConfigMap>) -> Option<Self> {
        let data = map?.data?;
        Some(Self {
            revision: data.get("revision")?.clone(),
            api: serde_json::from_str(data.get("api-server")?).ok()?,
            worker: serde_json::from_str(data.get("ocr-worker")?).ok()?,
            worker_proven: data.get("ocr-worker-proven").is_none_or(|proven| proven == "true"),
        })
    }

    /// The ConfigMap that records it, for server-side apply.
    pub fn to_config_map(&self, agent: &ValidatedAgent) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(agent, &last_known_good_name(agent), Component::ApiServer),
            "data": {
                "revision": self.revision,
                "api-server": serde_json::to_string(&self.api).unwrap_or_default(),
                "ocr-worker": serde_json::to_string(&self.worker).unwrap_or_default(),
                "ocr-worker-proven": self.worker_proven.to_string(),
            },
        })
    }
}

/// Whether the last good templates run in place of the spec's: the spec's revision failed, there
/// is another revision to run, and rollbacks are allowed. Otherwise the spec's revision runs (and
/// is watched, so a late one that becomes healthy recovers).
/// `desired` is the spec's revision ([`crate::build::workloads::desired_revision`]).
pub fn holds_back(
    agent: &ValidatedAgent,
    desired: &str,
    previous: &FinancialAgentStatus,
    last_good: Option<&LastKnownGood>,
) -> bool {
    let failed = previous.revision.as_ref().and_then(|revision| revision.failed.as_deref()) == Some(desired);
    failed && agent.spec.rollout.auto_rollback && last_good.is_some_and(|good| good.revision != desired)
}
