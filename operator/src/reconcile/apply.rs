//! Step 5, with a client: server-side apply of every child (one field manager, forced), in the
//! builders' order — NetworkPolicies first — going on past a child that fails, so one refused
//! object (an immutable field, a quota, an admission webhook) does not leave the others stale;
//! then the deletion of children no longer built.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use finagent_core::names::{Component, FIELD_MANAGER};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::last_known_good::last_known_good_name;
use super::plan::Plan;
use super::{Notice, ReconcileError};
use crate::build::{self};
use crate::owned::{OWNED_KINDS, instance_selector, owned_kind};
use crate::validate::ValidatedAgent;

/// Counts the watch events of each instance's children (the runtime's child watches feed it), so
/// a pass can tell whether anything happened to them since it last applied them.
#[derive(Clone, Debug, Default)]
pub struct ChildChanges(Arc<Mutex<HashMap<String, u64>>>);

impl ChildChanges {
    /// A child of `instance` in `namespace` was created, changed or deleted.
    pub fn touch(&self, namespace: &str, instance: &str) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *map.entry(format!("{namespace}/{instance}")).or_insert(0) += 1;
    }

    /// The events seen so far for `namespace/instance`.
    pub fn count(&self, key: &str) -> u64 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(key).copied().unwrap_or(0)
    }

    /// Forgets every instance not in `live` (`namespace/name`).
    pub fn retain(&self, live: &std::collections::HashSet<String>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).retain(|key, _| live.contains(key));
    }
}

/// What each instance's children were when last applied in full: a digest of the built objects,
/// and the child events seen just before. A pass whose children and events are both the same has
/// nothing to apply — every child is as we left it — so a steady platform costs no writes.
#[derive(Clone, Debug, Default)]
pub struct AppliedDigests(Arc<Mutex<HashMap<String, (u64, u64)>>>);

impl AppliedDigests {
    /// Whether `key`'s children were applied as `digest` with `events` seen.
    pub fn unchanged(&self, key: &str, digest: (u64, u64)) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(key) == Some(&digest)
    }

    /// Records a full, successful apply.
    pub fn record(&self, key: &str, digest: (u64, u64)) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned(), digest);
    }

    /// Forgets an instance (a failed pass: apply everything next time).
    pub fn forget(&self, key: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Forgets every instance not in `live` (`namespace/name`).
    pub fn retain(&self, live: &std::collections::HashSet<String>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).retain(|key, _| live.contains(key));
    }
}

/// A digest of the objects, stable within a process.
pub fn digest(objects: &[Value]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for object in objects {
        object.to_string().hash(&mut hasher);
    }
    hasher.finish()
}

/// Every object this pass applies: the children, and the last good templates it records.
pub fn objects(agent: &ValidatedAgent, plan: &Plan) -> Vec<Value> {
    let mut objects = build::build_all(agent, &plan.inputs).objects;
    if let Some(good) = &plan.record_good {
        objects.push(good.to_config_map(agent));
    }
    objects
}

/// What applying the children did.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// Every child built in this pass, by (kind, name), whether or not its apply succeeded.
    pub kept: BTreeSet<(String, String)>,
    /// How many children were applied.
    pub total: usize,
    /// `Kind name: error` of each child that failed.
    pub failures: Vec<String>,
    /// The Warning Event for the failures, if any.
    pub notice: Option<Notice>,
}

fn name_of(value: &Value) -> String {
    value["metadata"]["name"].as_str().unwrap_or_default().to_owned()
}

async fn apply_one(client: &Client, namespace: &str, object: &Value) -> Result<(), String> {
    let kind = object["kind"].as_str().unwrap_or_default();
    let owned = owned_kind(object["apiVersion"].as_str().unwrap_or_default(), kind)
        .ok_or_else(|| format!("{kind} is not a kind the operator owns"))?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &owned.api_resource());
    api.patch(&name_of(object), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(object))
        .await
        .map(|_| ())
        .map_err(|error| describe(&error))
}

/// A Kubernetes error in one line: the API server's own message for its answers.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({}): {}", status.reason, status.code, status.message),
        other => other.to_string(),
    }
}

/// Applies every object (from [`objects`]).
pub async fn children(client: &Client, agent: &ValidatedAgent, objects: &[Value]) -> Applied {
    let mut applied = Applied::default();
    applied.kept.insert(("ConfigMap".to_owned(), last_known_good_name(agent)));
    for object in objects {
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let name = name_of(object);
        applied.total += 1;
        if let Err(error) = apply_one(client, &agent.namespace, object).await {
            tracing::warn!(kind, name, %error, "failed to apply a child");
            applied.failures.push(format!("{kind} {name}: {error}"));
        }
        applied.kept.insert((kind, name));
    }
    if !applied.failures.is_empty() {
        applied.notice = Some(Notice {
            warning: true,
            reason: "ApplyFailed",
            note: format!(
                "{} of {} children could not be applied (the others were): {}",
                applied.failures.len(),
                applied.total,
                applied.failures.join("; ")
            ),
            action: "Apply",
        });
    }
    applied
}

/// Deletes the children no longer built; returns what it deleted, as (kind, name).
pub async fn delete_orphans(
    client: &Client,
    agent: &ValidatedAgent,
    keep: &BTreeSet<(String, String)>,
) -> Result<Vec<(String, String)>, ReconcileError> {
    let mut deleted = Vec::new();
    let selector = instance_selector(&agent.name);
    for owned in OWNED_KINDS {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &agent.namespace, &owned.api_resource());
        let existing = api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| ReconcileError::Read { what: format!("{} list", owned.kind), source })?;
        for object in existing {
            let ours = object.owner_references().iter().any(|owner| owner.uid == agent.owner.uid);
            let name = object.name_any();
            if ours && !keep.contains(&(owned.kind.to_owned(), name.clone())) {
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => {
                        tracing::info!(kind = owned.kind, name, "deleted a child no longer built");
                        deleted.push((owned.kind.to_owned(), name));
                    }
                    Err(kube::Error::Api(response)) if response.code == 404 => {}
                    Err(source) => {
                        return Err(ReconcileError::Delete { kind: owned.kind.to_owned(), name, source });
                    }
                }
            }
        }
    }
    Ok(deleted)
}

/// The children of a managed datastore, kept while the external one that replaces it cannot be
/// used yet.
pub fn datastore_children(agent: &ValidatedAgent, component: Component) -> [(String, String); 3] {
    let name = build::child_name(agent, component);
    [("StatefulSet".to_owned(), name.clone()), ("Service".to_owned(), name.clone()), ("NetworkPolicy".to_owned(), name)]
}

/// A note for each managed datastore whose StatefulSet was just deleted: its data stays on its
/// claim, which nothing deletes.
pub fn removed_datastores(agent: &ValidatedAgent, deleted: &[(String, String)]) -> Vec<Notice> {
    [(Component::Redis, "Redis"), (Component::Mongodb, "MongoDB")]
        .into_iter()
        .filter(|(component, _)| deleted.contains(&("StatefulSet".to_owned(), build::child_name(agent, *component))))
        .map(|(component, label)| {
            let claim = format!("data-{}-0", build::child_name(agent, component));
            Notice {
                warning: true,
                reason: "DatastoreRemoved",
                note: format!(
                    "the managed {label} was removed (it is no longer managed); its data stays on the claim {claim}, which the operator never deletes: delete it once you no longer need that data"
                ),
                action: "DeleteOrphans",
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{tests::agent, validate};
    use serde_json::json;

    fn validated(spec: Value) -> ValidatedAgent {
        validate(&agent(spec)).expect("valid")
    }

    #[test]
    fn a_removed_datastore_says_where_its_data_stays() {
        let agent = validated(json!({}));
        let deleted = vec![
            ("StatefulSet".to_owned(), "shop-mongodb".to_owned()),
            ("Service".to_owned(), "shop-mongodb".to_owned()),
        ];
        let notices = removed_datastores(&agent, &deleted);
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0].warning && notices[0].note.contains("data-shop-mongodb-0"), "{notices:?}");
        assert!(removed_datastores(&agent, &deleted[1..]).is_empty(), "a Service alone holds no data");
        let kept = datastore_children(&agent, Component::Redis);
        assert!(kept.contains(&("StatefulSet".to_owned(), "shop-redis".to_owned())));
    }
}
