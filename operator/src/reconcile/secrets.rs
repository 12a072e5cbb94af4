//! Step 2, with a client: the Secrets the platform's pods read, the generated ones created first.
//!
//! - `<name>-credentials` holds the managed datastores' passwords. It is generated only for a new
//!   platform, never again over existing data, and never rotated by the operator.
//! - `<name>-jwt` holds the API's token-signing key, apart from the passwords, so deleting it
//!   rotates the key (a new one is generated) and locks no data out.
//! - The Secrets the spec names (an external Redis's or MongoDB's, the Ingress's certificate) are
//!   checked, never written.
//!
//! Each pod template carries a digest of the Secret values its containers read, so a rotated key
//! or a changed external URL rolls the pods (and is judged like any other rollout).

use finagent_core::names::Component;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::Client;
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};

use super::ReconcileError;
use crate::build::workloads::{
    credentials_secret, credentials_secret_name, jwt_secret, jwt_secret_name, mongodb_app_secret,
    mongodb_app_secret_name, secret_keys,
};
use crate::build::{self};
use crate::validate::{SecretDigests, ValidatedAgent};

/// What this pass learnt about the platform's Secrets.
#[derive(Clone, Debug, Default)]
pub struct SecretsRead {
    /// Why the platform's Secrets are not usable (reason, message), when they are not.
    pub problem: Option<(&'static str, String)>,
    /// Managed datastores kept running while the external one replacing them cannot be used.
    pub keep_managed: Vec<Component>,
    /// The digests of what each pod reads (`None` while a Secret is not usable: a broken Secret
    /// never rolls the pods).
    pub digests: SecretDigests,
}

/// Ensures the generated Secrets exist (creating them when they may be created) and reads every
/// Secret the pods read. `running_api` is the API's Deployment as it runs (from the watch cache).
pub async fn ensure(
    client: &Client,
    agent: &ValidatedAgent,
    running_api: Option<&Deployment>,
) -> Result<SecretsRead, ReconcileError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &agent.namespace);
    let (credentials_problem, credentials) = ensure_credentials(client, &api, agent).await?;
    let inherited = inherited_key(agent, running_api, credentials.as_ref());
    let (jwt_problem, jwt) = ensure_jwt(&api, agent, inherited).await?;
    let (app_problem, app) = match agent.spec.mongodb.managed {
        true => ensure_mongodb_app(&api, agent).await.map(|(problem, secret)| (problem, Some(secret)))?,
        false => (None, None),
    };
    let referenced = referenced_secrets(&api, agent).await?;
    let problem = credentials_problem.or(jwt_problem).or(app_problem).or(referenced.problem);
    let digests = if problem.is_none() {
        let mut external = Vec::new();
        for (secret, key) in &referenced.external {
            external.push(Entry {
                secret: secret.metadata.name.clone().unwrap_or_default(),
                key,
                value: value(secret, key),
            });
        }
        pod_digests(agent, credentials.as_ref(), &jwt, app.as_ref(), &external)
    } else {
        SecretDigests::default()
    };
    Ok(SecretsRead { problem, keep_managed: referenced.keep, digests })
}

/// One value a pod reads: which Secret, which key, and the bytes.
#[derive(Debug)]
struct Entry<'a> {
    secret: String,
    key: &'a str,
    value: &'a [u8],
}

fn value<'a>(secret: &'a Secret, key: &str) -> &'a [u8] {
    secret.data.as_ref().and_then(|data| data.get(key)).map(|value| value.0.as_slice()).unwrap_or_default()
}

/// SHA-256 over the values a pod reads, named by Secret and key, as 16 hex digits (what a
/// `checksum/secret` annotation carries in a Helm chart: it changes when a value does, and no
/// value can be read back from it).
fn digest(entries: &[Entry<'_>]) -> String {
    let mut hash = Sha256::new();
    for entry in entries {
        for part in [entry.secret.as_bytes(), entry.key.as_bytes(), entry.value] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
    }
    hash.finalize().iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

/// The digests of the API's and the workers' Secret values (pure). Both read the Redis password
/// and the MongoDB user they connect as; the API also reads the signing key, and its init
/// container the MongoDB root user, so rotating either does not restart the workers.
fn pod_digests(
    agent: &ValidatedAgent,
    credentials: Option<&Secret>,
    jwt: &Secret,
    app: Option<&Secret>,
    external: &[Entry<'_>],
) -> SecretDigests {
    let mut datastores = Vec::new();
    let name = credentials_secret_name(agent);
    if let (Some(credentials), true) = (credentials, agent.spec.redis.managed) {
        let key = secret_keys::REDIS_PASSWORD;
        datastores.push(Entry { secret: name.clone(), key, value: value(credentials, key) });
    }
    if let Some(app) = app {
        for key in [secret_keys::APP_USERNAME, secret_keys::APP_PASSWORD] {
            datastores.push(Entry { secret: mongodb_app_secret_name(agent), key, value: value(app, key) });
        }
    }
    datastores.extend(external.iter().map(|entry| Entry { secret: entry.secret.clone(), ..*entry }));
    let worker = digest(&datastores);
    if let (Some(credentials), true) = (credentials, agent.spec.mongodb.managed) {
        for key in [secret_keys::MONGODB_USERNAME, secret_keys::MONGODB_PASSWORD] {
            datastores.push(Entry { secret: name.clone(), key, value: value(credentials, key) });
        }
    }
    datastores.push(Entry {
        secret: jwt_secret_name(agent),
        key: secret_keys::JWT,
        value: value(jwt, secret_keys::JWT),
    });
    // Counted only when present, so installs without previous keys keep their digest.
    let previous = value(jwt, secret_keys::JWT_PREVIOUS);
    if !previous.is_empty() {
        datastores.push(Entry { secret: jwt_secret_name(agent), key: secret_keys::JWT_PREVIOUS, value: previous });
    }
    SecretDigests { api: Some(digest(&datastores)), worker: Some(worker) }
}

/// The Secrets the spec names, as found.
#[derive(Debug, Default)]
struct Referenced {
    problem: Option<(&'static str, String)>,
    keep: Vec<Component>,
    /// The external datastores' Secrets, with the key read.
    external: Vec<(Secret, String)>,
}

/// Checks the Secrets the spec names (an external Redis's or MongoDB's, the Ingress's
/// certificate): the problem (reason, message) when one is missing or lacks its key, and the
/// managed datastores to keep running meanwhile (switching to an external one whose Secret does
/// not exist yet would otherwise delete the working one at once).
async fn referenced_secrets(api: &Api<Secret>, agent: &ValidatedAgent) -> Result<Referenced, ReconcileError> {
    let mut problems = Vec::new();
    let mut found = Referenced::default();
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
        match get_secret(api, &reference.name).await? {
            Some(secret) if !value(&secret, &reference.key).is_empty() => {
                found.external.push((secret, reference.key.clone()));
            }
            secret => {
                let what = if secret.is_some() {
                    format!("has no key {}", reference.key)
                } else {
                    "does not exist".to_owned()
                };
                problems.push(format!("Secret {} named by {field} {what}", reference.name));
                found.keep.push(component);
            }
        }
    }
    if agent.spec.ingress.enabled
        && let Some(name) = &agent.spec.ingress.tls_secret_name
    {
        let secret = api
            .get_metadata_opt(name)
            .await
            .map_err(|source| ReconcileError::Read { what: format!("Secret {name}"), source })?;
        if secret.is_none() {
            problems.push(format!("Secret {name} named by spec.ingress.tlsSecretName does not exist (the Ingress serves no TLS until it does)"));
        }
    }
    if !problems.is_empty() {
        let mut message = problems.join("; ");
        if !found.keep.is_empty() {
            message.push_str("; the managed datastore it replaces keeps running until it can be used");
        }
        found.problem = Some(("SecretMissing", message));
    }
    Ok(found)
}

/// 256 bits from the operating system's generator, as 64 hex digits.
fn random_secret() -> Result<String, ReconcileError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| ReconcileError::Randomness(error.to_string()))?;
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

/// The keys of `<name>-credentials` this platform's pods read.
pub fn expected_keys(agent: &ValidatedAgent) -> Vec<&'static str> {
    let mut keys = Vec::new();
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
    let missing: Vec<&str> = expected_keys(agent).into_iter().filter(|key| value(secret, key).is_empty()).collect();
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
/// again over existing data. Returns the problem (reason, message) when they are not usable, and
/// the Secret as it is.
async fn ensure_credentials(
    client: &Client,
    api: &Api<Secret>,
    agent: &ValidatedAgent,
) -> Result<(Option<(&'static str, String)>, Option<Secret>), ReconcileError> {
    let name = credentials_secret_name(agent);
    let existing = get_secret(api, &name).await?;
    let mut claims = Vec::new();
    if existing.is_none() {
        let volumes: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &agent.namespace);
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
        CredentialsVerdict::Usable => return Ok((None, existing)),
        CredentialsVerdict::Problem(reason, message) => return Ok((Some((reason, message)), existing)),
        CredentialsVerdict::Create => {}
    }
    let secret = credentials_secret(agent, &random_secret()?, &random_secret()?);
    create(api, &name, &secret).await.map(|created| (None, Some(created)))
}

/// The key an upgraded install keeps (pure): only while its running API still reads the key from
/// `<name>-credentials`, as installs from before `<name>-jwt` did. Once the API reads `<name>-jwt`,
/// a deleted `<name>-jwt` is a rotation and gets a new key, even though the old one stays in
/// `<name>-credentials` (the operator never edits that Secret).
fn inherited_key(
    agent: &ValidatedAgent,
    running_api: Option<&Deployment>,
    credentials: Option<&Secret>,
) -> Option<String> {
    let reads_from_credentials = running_api
        .map(|deployment| &deployment.spec)
        .and_then(|spec| spec.template.spec.as_ref())
        .into_iter()
        .flat_map(|pod| &pod.containers)
        .flat_map(|container| container.env.iter().flatten())
        .filter(|var| var.name == finagent_core::names::env::JWT_SECRET_KEY)
        .filter_map(|var| var.value_from.as_ref()?.secret_key_ref.as_ref())
        .any(|reference| reference.name == credentials_secret_name(agent));
    if !reads_from_credentials {
        return None;
    }
    let key = value(credentials?, secret_keys::JWT);
    (!key.is_empty()).then(|| String::from_utf8(key.to_vec()).ok()).flatten()
}

/// The signing key's Secret: used as it is, else created, with the `inherited` key of an upgraded
/// install (so no session ends on the upgrade) or a new one (deleting the Secret is how the key is
/// rotated).
async fn ensure_jwt(
    api: &Api<Secret>,
    agent: &ValidatedAgent,
    inherited: Option<String>,
) -> Result<(Option<(&'static str, String)>, Secret), ReconcileError> {
    ensure_generated(api, &jwt_secret_name(agent), &[secret_keys::JWT], "signing key", || {
        let key = match inherited {
            Some(key) => key,
            None => random_secret()?,
        };
        Ok(jwt_secret(agent, &key))
    })
    .await
}

/// The MongoDB user's Secret: used as it is, else created with a new password (the API's init
/// container sets the user's password from it at every start, so deleting it rotates the
/// password).
async fn ensure_mongodb_app(
    api: &Api<Secret>,
    agent: &ValidatedAgent,
) -> Result<(Option<(&'static str, String)>, Secret), ReconcileError> {
    let keys = [secret_keys::APP_USERNAME, secret_keys::APP_PASSWORD];
    ensure_generated(api, &mongodb_app_secret_name(agent), &keys, "MongoDB password", || {
        Ok(mongodb_app_secret(agent, &random_secret()?))
    })
    .await
}

/// A generated Secret that no data depends on: used as it is, else created by `build`. One
/// missing a key is reported, never edited (the operator creates Secrets; deleting this one has a
/// new `what` generated).
async fn ensure_generated(
    api: &Api<Secret>,
    name: &str,
    keys: &[&str],
    what: &str,
    build: impl FnOnce() -> Result<Secret, ReconcileError>,
) -> Result<(Option<(&'static str, String)>, Secret), ReconcileError> {
    let Some(existing) = get_secret(api, name).await? else {
        return create(api, name, &build()?).await.map(|created| (None, created));
    };
    let missing: Vec<&str> = keys.iter().copied().filter(|key| value(&existing, key).is_empty()).collect();
    let problem = (!missing.is_empty()).then(|| {
        let message = format!(
            "Secret {name} has no {} (or it is empty); delete the Secret to have a new {what} generated",
            missing.join(", ")
        );
        ("CredentialsIncomplete", message)
    });
    Ok((problem, existing))
}

/// A Secret, or `None` when it does not exist.
async fn get_secret(api: &Api<Secret>, name: &str) -> Result<Option<Secret>, ReconcileError> {
    api.get_opt(name).await.map_err(|source| ReconcileError::Read { what: format!("Secret {name}"), source })
}

/// Creates a Secret; when another pass created it first, that one is read and used.
async fn create(api: &Api<Secret>, name: &str, secret: &Secret) -> Result<Secret, ReconcileError> {
    match api.create(&PostParams::default(), secret).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(response)) if response.code == 409 => {
            api.get(name).await.map_err(|source| ReconcileError::Read { what: format!("Secret {name}"), source })
        }
        Err(error) => Err(ReconcileError::Credentials(error)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::validate::{tests::agent, validate};

    fn validated(spec: Value) -> ValidatedAgent {
        validate(&agent(spec)).expect("valid")
    }

    /// As the API server stores it: `stringData` folded into `data`.
    fn stored(mut secret: Secret) -> Secret {
        let data = secret.string_data.take().unwrap_or_default();
        secret.data =
            Some(data.into_iter().map(|(key, value)| (key, k8s_openapi::ByteString(value.into_bytes()))).collect());
        secret
    }

    fn generated(agent: &ValidatedAgent) -> Secret {
        stored(credentials_secret(agent, "r", "m"))
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
    fn a_missing_or_empty_key_is_reported_and_only_the_keys_in_use_count() {
        let agent = validated(json!({}));
        let mut secret = generated(&agent);
        let data = secret.data.as_mut().expect("data");
        data.remove(secret_keys::MONGODB_PASSWORD);
        data.insert(secret_keys::REDIS_PASSWORD.into(), k8s_openapi::ByteString(Vec::new()));
        let CredentialsVerdict::Problem(reason, message) = credentials_verdict(&agent, Some(&secret), &[]) else {
            panic!("an incomplete Secret passed")
        };
        assert_eq!(reason, "CredentialsIncomplete");
        assert!(message.contains("redis-password, mongodb-password"), "{message}");
        // With external datastores no generated password is read, and no data claim is made.
        let external = validated(json!({
            "redis": {"managed": false, "urlSecretRef": {"name": "r", "key": "url"}},
            "mongodb": {"managed": false, "uriSecretRef": {"name": "m", "key": "uri"}},
        }));
        assert!(expected_keys(&external).is_empty());
        assert!(data_claims(&external).is_empty());
        assert_eq!(credentials_verdict(&external, Some(&secret), &[]), CredentialsVerdict::Usable);
    }

    #[test]
    fn only_an_api_still_reading_the_key_from_the_credentials_inherits_it() {
        let agent = validated(json!({}));
        let mut legacy = stored(credentials_secret(&agent, "r", "m"));
        legacy.data.as_mut().expect("data").insert(secret_keys::JWT.into(), k8s_openapi::ByteString(b"old".to_vec()));
        let api = |secret: &str| -> Deployment {
            serde_json::from_value(json!({"spec": {"selector": {}, "template": {"spec": {"containers": [{
                "name": "api-server",
                "env": [{"name": "JWT_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": secret, "key": "jwt-secret-key"}}}],
            }]}}}}))
            .expect("deployment")
        };
        // An upgrade: the running API reads the key from the credentials; it is kept.
        assert_eq!(inherited_key(&agent, Some(&api("shop-credentials")), Some(&legacy)), Some("old".into()));
        // Already upgraded: a deleted `-jwt` is a rotation, whatever the credentials still hold.
        assert_eq!(inherited_key(&agent, Some(&api("shop-jwt")), Some(&legacy)), None);
        // A new install, or credentials without the key: a new key.
        assert_eq!(inherited_key(&agent, None, Some(&legacy)), None);
        assert_eq!(inherited_key(&agent, Some(&api("shop-credentials")), Some(&generated(&agent))), None);
    }

    #[test]
    fn a_rotated_key_restarts_the_api_only_and_a_changed_password_both() {
        let agent = validated(json!({}));
        let credentials = generated(&agent);
        let jwt = stored(jwt_secret(&agent, "first"));
        let app = stored(mongodb_app_secret(&agent, "app"));
        let before = pod_digests(&agent, Some(&credentials), &jwt, Some(&app), &[]);
        assert_eq!(before, pod_digests(&agent, Some(&credentials), &jwt, Some(&app), &[]), "the digest is stable");
        let rotated = pod_digests(&agent, Some(&credentials), &stored(jwt_secret(&agent, "second")), Some(&app), &[]);
        assert_ne!(rotated.api, before.api, "a new signing key rolls the API");
        assert_eq!(rotated.worker, before.worker, "the workers do not read the signing key");
        // Listing the old key as previous (a rotation with overlap) rolls the API too.
        let mut overlapping = stored(jwt_secret(&agent, "second"));
        overlapping
            .data
            .as_mut()
            .expect("data")
            .insert(secret_keys::JWT_PREVIOUS.into(), k8s_openapi::ByteString(b"first".to_vec()));
        let overlap = pod_digests(&agent, Some(&credentials), &overlapping, Some(&app), &[]);
        assert_ne!(overlap.api, rotated.api, "adding a previous key rolls the API");
        assert_eq!(overlap.worker, before.worker);
        let changed = pod_digests(&agent, Some(&stored(credentials_secret(&agent, "r2", "m"))), &jwt, Some(&app), &[]);
        assert_ne!(changed.api, before.api);
        assert_ne!(changed.worker, before.worker);
        // The MongoDB root password is read by the API's init container only; the user the pods
        // connect as by both.
        let root = pod_digests(&agent, Some(&stored(credentials_secret(&agent, "r", "m2"))), &jwt, Some(&app), &[]);
        assert_ne!(root.api, before.api);
        assert_eq!(root.worker, before.worker, "the workers never read the root user");
        let user =
            pod_digests(&agent, Some(&credentials), &jwt, Some(&stored(mongodb_app_secret(&agent, "app2"))), &[]);
        assert_ne!(user.api, before.api);
        assert_ne!(user.worker, before.worker);
        // Nothing of a value shows in the digest, and its length is fixed.
        assert_eq!(before.api.as_deref().map(str::len), Some(16));
        // An external URL is part of both.
        let url = b"redis://elsewhere:6379/".to_vec();
        let external = [Entry { secret: "ext".into(), key: "url", value: &url }];
        let with_external = pod_digests(&agent, Some(&credentials), &jwt, Some(&app), &external);
        assert_ne!(with_external.worker, before.worker);
        // A key and a value are never confused by where one ends and the next begins.
        let joined = digest(&[Entry { secret: "ab".into(), key: "c", value: b"" }]);
        let split = digest(&[Entry { secret: "a".into(), key: "bc", value: b"" }]);
        assert_ne!(joined, split);
    }
}
