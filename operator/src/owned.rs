//! The kinds of children the operator owns: one list, from which the controller's watches, the
//! orphan deletion and the RBAC check (in the tests) all derive, so they cannot drift apart.

use finagent_core::names::labels;
use kube::core::{ApiResource, GroupVersionKind};

/// One kind of child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedKind {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    pub kind: &'static str,
    /// The resource's plural, as RBAC names it.
    pub plural: &'static str,
}

impl OwnedKind {
    /// The resource, for dynamic API calls.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(self.group, self.version, self.kind), self.plural)
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }
}

/// Every kind the builders produce (the generated credentials Secret is not among them: it
/// outlives the resource and is only ever created, never watched or deleted).
pub const OWNED_KINDS: [OwnedKind; 9] = [
    OwnedKind { group: "", version: "v1", kind: "ServiceAccount", plural: "serviceaccounts" },
    OwnedKind { group: "", version: "v1", kind: "Service", plural: "services" },
    OwnedKind { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps" },
    OwnedKind { group: "apps", version: "v1", kind: "Deployment", plural: "deployments" },
    OwnedKind { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets" },
    OwnedKind { group: "policy", version: "v1", kind: "PodDisruptionBudget", plural: "poddisruptionbudgets" },
    OwnedKind { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses" },
    OwnedKind { group: "networking.k8s.io", version: "v1", kind: "NetworkPolicy", plural: "networkpolicies" },
    // Prometheus's claim only: the datastores' data claims are the StatefulSets' and are never
    // owned by the resource, so orphan deletion (which checks the owner) never touches them.
    OwnedKind { group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims" },
];

/// The owned kind of an object's `apiVersion` and `kind`.
pub fn owned_kind(api_version: &str, kind: &str) -> Option<OwnedKind> {
    OWNED_KINDS.iter().copied().find(|owned| owned.api_version() == api_version && owned.kind == kind)
}

/// The label selector of every child of every FinancialAgent: the children's watches select on
/// it, so the operator never watches (or caches) the cluster's other ConfigMaps, Services, ….
pub fn children_selector() -> String {
    format!("{}={}", labels::MANAGED_BY_KEY, labels::MANAGED_BY)
}

/// The selector of the children of one instance.
pub fn instance_selector(instance: &str) -> String {
    format!("{},{}={instance}", children_selector(), labels::INSTANCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owned_kind_is_found_by_its_api_version() {
        for owned in OWNED_KINDS {
            assert_eq!(owned_kind(&owned.api_version(), owned.kind), Some(owned));
            assert_eq!(owned.api_resource().plural, owned.plural);
        }
        assert_eq!(owned_kind("v1", "Secret"), None);
        assert_eq!(
            instance_selector("shop"),
            "app.kubernetes.io/managed-by=finagent-operator,app.kubernetes.io/instance=shop"
        );
    }
}
