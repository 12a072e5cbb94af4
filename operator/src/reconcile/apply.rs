//! Step 5, with a client: server-side apply of every child (one field manager, forced), in the
//! builders' order — NetworkPolicies first — going on past a child that fails, so one refused
//! object (an immutable field, a quota, an admission webhook) does not leave the others stale;
//! then the deletion of children no longer built, and the generated credentials.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use finagent_core::names::{Component, FIELD_MANAGER};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::plan::Plan;
use super::read::{LastKnownGood, last_known_good_name};
use super::{Notice, ReconcileError};
use crate::build::workloads::{credentials_secret, credentials_secret_name};
use crate::build::{self, metadata};
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
        objects.push(last_known_good_object(agent, good));
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

fn last_known_good_object(agent: &ValidatedAgent, good: &LastKnownGood) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(agent, &last_known_good_name(agent), Component::ApiServer),
        "data": {
            "revision": good.revision,
            "api-server": serde_json::to_string(&good.api).unwrap_or_default(),
            "ocr-worker": serde_json::to_string(&good.worker).unwrap_or_default(),
            "ocr-worker-proven": good.worker_proven.to_string(),
        },
    })
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

/// Deletes children of this resource that are no longer built.
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

/// Checks the Secrets the spec names (an external Redis's or MongoDB's, the Ingress's
/// certificate): the problem (reason, message) when one is missing or lacks its key, and the
/// managed datastores to keep running meanwhile (switching to an external one whose Secret does
/// not exist yet would otherwise delete the working one at once).
pub async fn referenced_secrets(
    client: &Client,
    agent: &ValidatedAgent,
) -> Result<(Option<(&'static str, String)>, Vec<Component>), ReconcileError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &agent.namespace);
    let mut problems = Vec::new();
    let mut keep = Vec::new();
    let external = [
        (
            agent.spec.redis.managed,
            agent.spec.redis.url_secret_ref.as_ref(),
            Component::Redis,
            "spec.redis.urlSecretRef",
        ),
        (
            agent.spec.mongodb.managed,
            agent.spec.mongodb.uri_secret_ref.as_ref(),
            Component::Mongodb,
            "spec.mongodb.uriSecretRef",
        ),
    ];
    for (managed, reference, component, field) in external {
        let (false, Some(reference)) = (managed, reference) else { continue };
        let secret = api
            .get_opt(&reference.name)
            .await
            .map_err(|source| ReconcileError::Read { what: format!("Secret {}", reference.name), source })?;
        let present = secret
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(&reference.key))
            .is_some_and(|v| !v.0.is_empty());
        if !present {
            let what =
                if secret.is_some() { format!("has no key {}", reference.key) } else { "does not exist".to_owned() };
            problems.push(format!("Secret {} named by {field} {what}", reference.name));
            keep.push(component);
        }
    }
    if agent.spec.ingress.enabled
        && let Some(name) = &agent.spec.ingress.tls_secret_name
    {
        let secret = api
            .get_opt(name)
            .await
            .map_err(|source| ReconcileError::Read { what: format!("Secret {name}"), source })?;
        if secret.is_none() {
            problems.push(format!("Secret {name} named by spec.ingress.tlsSecretName does not exist (the Ingress serves no TLS until it does)"));
        }
    }
    if problems.is_empty() {
        return Ok((None, keep));
    }
    let mut message = problems.join("; ");
    if !keep.is_empty() {
        message.push_str("; the managed datastore it replaces keeps running until it can be used");
    }
    Ok((Some(("SecretMissing", message)), keep))
}

/// 256 bits from the operating system's generator, as 64 hex digits.
fn random_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// What the generated credentials allow this pass (decided by [`credentials_verdict`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialsVerdict {
    /// The Secret holds every key the platform's pods read.
    Usable,
    /// No Secret and no data volume: a new platform; generate the credentials.
    Create,
    /// Not usable, and not repaired by the operator: the condition's reason and message.
    Problem(&'static str, String),
}

/// The Secret keys this platform's pods read.
pub fn expected_keys(agent: &ValidatedAgent) -> Vec<&'static str> {
    use crate::build::workloads::secret_keys;
    let mut keys = vec![secret_keys::JWT];
    if agent.spec.redis.managed {
        keys.push(secret_keys::REDIS_PASSWORD);
    }
    if agent.spec.mongodb.managed {
        keys.extend([secret_keys::MONGODB_USERNAME, secret_keys::MONGODB_PASSWORD]);
    }
    keys
}

/// The claims a managed datastore's data lives on (the StatefulSets' `data` claims).
pub fn data_claims(agent: &ValidatedAgent) -> Vec<String> {
    let mut claims = Vec::new();
    for (managed, component) in
        [(agent.spec.redis.managed, Component::Redis), (agent.spec.mongodb.managed, Component::Mongodb)]
    {
        if managed {
            claims.push(format!("data-{}-0", build::child_name(agent, component)));
        }
    }
    claims
}

/// Decides from the Secret as it is and the data claims that exist (pure, table-tested). A missing
/// Secret is generated only while no data exists: new passwords would not open data initialised
/// with the old ones, so the operator refuses and says how to recover instead of locking the data
/// out silently. A key missing from an existing Secret is reported, never invented.
pub fn credentials_verdict(agent: &ValidatedAgent, secret: Option<&Secret>, claims: &[String]) -> CredentialsVerdict {
    let name = credentials_secret_name(agent);
    let Some(secret) = secret else {
        if claims.is_empty() {
            return CredentialsVerdict::Create;
        }
        return CredentialsVerdict::Problem(
            "CredentialsMissing",
            format!(
                "Secret {name} was deleted but the data it opens remains ({}); new passwords would lock that data out, so none are generated. Restore the Secret from a backup, or delete those claims to start with empty datastores",
                claims.join(", ")
            ),
        );
    };
    let present = |key: &str| {
        secret.data.as_ref().and_then(|data| data.get(key)).is_some_and(|value| !value.0.is_empty())
            || secret.string_data.as_ref().and_then(|data| data.get(key)).is_some_and(|value| !value.is_empty())
    };
    let missing: Vec<&str> = expected_keys(agent).into_iter().filter(|key| !present(key)).collect();
    if missing.is_empty() {
        CredentialsVerdict::Usable
    } else {
        CredentialsVerdict::Problem(
            "CredentialsIncomplete",
            format!("Secret {name} has no {} (or it is empty); the pods that read it cannot start", missing.join(", ")),
        )
    }
}

/// Creates the generated credentials once; an existing Secret of that name is used as it is (it
/// outlives the resource, as the data volumes do, so a recreated resource finds the passwords
/// its data was initialised with). They are never rotated by the operator, and never generated
/// again over existing data. Returns the problem (reason, message) when they are not usable.
pub async fn ensure_credentials(
    client: &Client,
    agent: &ValidatedAgent,
) -> Result<Option<(&'static str, String)>, ReconcileError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &agent.namespace);
    let name = credentials_secret_name(agent);
    let existing =
        api.get_opt(&name).await.map_err(|source| ReconcileError::Read { what: format!("Secret {name}"), source })?;
    let mut claims = Vec::new();
    if existing.is_none() {
        let volumes: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
            Api::namespaced(client.clone(), &agent.namespace);
        for claim in data_claims(agent) {
            let found = volumes
                .get_metadata_opt(&claim)
                .await
                .map_err(|source| ReconcileError::Read { what: format!("PersistentVolumeClaim {claim}"), source })?;
            if found.is_some() {
                claims.push(claim);
            }
        }
    }
    match credentials_verdict(agent, existing.as_ref(), &claims) {
        CredentialsVerdict::Usable => return Ok(None),
        CredentialsVerdict::Problem(reason, message) => return Ok(Some((reason, message))),
        CredentialsVerdict::Create => {}
    }
    let mut values = [String::new(), String::new(), String::new()];
    for value in &mut values {
        *value = random_secret().map_err(|error| ReconcileError::Randomness(error.to_string()))?;
    }
    let [jwt, redis_password, mongodb_password] = values;
    let secret = credentials_secret(agent, &jwt, &redis_password, &mongodb_password);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(None),
        Err(kube::Error::Api(response)) if response.code == 409 => Ok(None),
        Err(error) => Err(ReconcileError::Credentials(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{tests::agent, validate};

    fn validated(spec: Value) -> ValidatedAgent {
        validate(&agent(spec)).expect("valid")
    }

    fn generated(agent: &ValidatedAgent) -> Secret {
        // As the API server stores it: `stringData` folded into `data`.
        let mut secret = credentials_secret(agent, "j", "r", "m");
        let data = secret.string_data.take().unwrap_or_default();
        secret.data =
            Some(data.into_iter().map(|(key, value)| (key, k8s_openapi::ByteString(value.into_bytes()))).collect());
        secret
    }

    #[test]
    fn credentials_are_generated_only_when_neither_they_nor_data_exist() {
        let agent = validated(json!({}));
        let claims = data_claims(&agent);
        assert_eq!(claims, ["data-shop-redis-0", "data-shop-mongodb-0"]);
        assert_eq!(credentials_verdict(&agent, None, &[]), CredentialsVerdict::Create);
        assert_eq!(credentials_verdict(&agent, Some(&generated(&agent)), &[]), CredentialsVerdict::Usable);
        // Deleted while the data remains: refused, with the way out.
        let CredentialsVerdict::Problem(reason, message) = credentials_verdict(&agent, None, &claims[1..]) else {
            panic!("regenerated over existing data")
        };
        assert_eq!(reason, "CredentialsMissing");
        assert!(message.contains("data-shop-mongodb-0") && message.contains("Restore the Secret"), "{message}");
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

    #[test]
    fn a_missing_or_empty_key_is_reported_and_only_the_keys_in_use_count() {
        let agent = validated(json!({}));
        let mut secret = generated(&agent);
        let data = secret.data.as_mut().expect("data");
        data.remove(crate::build::workloads::secret_keys::MONGODB_PASSWORD);
        data.insert(crate::build::workloads::secret_keys::JWT.into(), k8s_openapi::ByteString(Vec::new()));
        let CredentialsVerdict::Problem(reason, message) = credentials_verdict(&agent, Some(&secret), &[]) else {
            panic!("an incomplete Secret passed")
        };
        assert_eq!(reason, "CredentialsIncomplete");
        assert!(message.contains("jwt-secret-key, mongodb-password"), "{message}");
        // With external datastores only the signing key is read.
        let external = validated(json!({
            "redis": {"managed": false, "urlSecretRef": {"name": "r", "key": "url"}},
            "mongodb": {"managed": false, "uriSecretRef": {"name": "m", "key": "uri"}},
        }));
        assert_eq!(expected_keys(&external), [crate::build::workloads::secret_keys::JWT]);
        assert!(data_claims(&external).is_empty());
    }
}
