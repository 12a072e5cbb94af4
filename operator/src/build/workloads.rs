//! The API and the OCR workers: Deployments, Services, ServiceAccounts and PodDisruptionBudgets.

use finagent_core::names::{Component, env, ports};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PodTemplateSpec, Secret};
use serde_json::{Value, json};

use super::revision::{platform_revision, template_revision};
use super::{
    REVISION_ANNOTATION, child_name, image, metadata, resources, restricted_container_security,
    restricted_pod_security, selector, typed,
};
use crate::validate::ValidatedAgent;

/// The generated Secret holding the managed datastores' credentials.
pub fn credentials_secret_name(agent: &ValidatedAgent) -> String {
    format!("{}-credentials", agent.name)
}

/// The generated Secret holding the API's token-signing key.
pub fn jwt_secret_name(agent: &ValidatedAgent) -> String {
    format!("{}-jwt", agent.name)
}

/// The generated Secret holding the MongoDB user the API and the workers connect as (not the root
/// user; see `api-server mongodb-user`).
pub fn mongodb_app_secret_name(agent: &ValidatedAgent) -> String {
    format!("{}-mongodb-app", agent.name)
}

/// The name of that user.
pub const MONGODB_APP_USER: &str = "finagent-app";

/// The annotation on a pod template carrying the digest of the Secret values its pods read.
pub const SECRET_DIGEST_ANNOTATION: &str = "finagent.io/secret-digest";

/// Keys of the generated Secrets.
pub mod secret_keys {
    /// The API's token-signing key (in `<name>-jwt`; installs from before it had a Secret of its
    /// own also have it in `<name>-credentials`, where it is read once to be copied).
    pub const JWT: &str = "jwt-secret-key";
    /// Keys that signed before, comma-separated (optional, in `<name>-jwt`, written by whoever
    /// rotates the key): they still verify until removed. See `docs/operations.md`.
    pub const JWT_PREVIOUS: &str = "jwt-previous-keys";
    /// The managed Redis's password.
    pub const REDIS_PASSWORD: &str = "redis-password";
    /// The managed MongoDB's root user.
    pub const MONGODB_USERNAME: &str = "mongodb-username";
    /// The managed MongoDB's root password.
    pub const MONGODB_PASSWORD: &str = "mongodb-password";
    /// The MongoDB user the pods connect as (in `<name>-mongodb-app`).
    pub const APP_USERNAME: &str = "username";
    /// Its password (in `<name>-mongodb-app`).
    pub const APP_PASSWORD: &str = "password";
}

/// The generated credentials, with the values the caller drew. No owner reference: a
/// StatefulSet leaves its volume claims behind when the resource is deleted, and the data on them
/// only opens with the passwords it was initialised with, so the Secret lives as long as the
/// volumes do. Deleting both is how a user wipes an instance.
pub fn credentials_secret(agent: &ValidatedAgent, redis_password: &str, mongodb_password: &str) -> Secret {
    typed(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": super::unowned_metadata(agent, &credentials_secret_name(agent), Component::ApiServer),
        "type": "Opaque",
        "stringData": {
            secret_keys::REDIS_PASSWORD: redis_password,
            secret_keys::MONGODB_USERNAME: "finagent",
            secret_keys::MONGODB_PASSWORD: mongodb_password,
        },
    }))
}

/// The signing key's Secret, owned by the resource: no data depends on it, so it goes with the
/// resource (every session ends), and deleting it is how the key is rotated.
pub fn jwt_secret(agent: &ValidatedAgent, key: &str) -> Secret {
    typed(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": super::metadata(agent, &jwt_secret_name(agent), Component::ApiServer),
        "type": "Opaque",
        "stringData": {secret_keys::JWT: key},
    }))
}

/// The MongoDB user's Secret, owned by the resource: the user lives in the data, and the API's
/// init container sets its password at every start, so a new Secret (deleted to rotate, or a
/// recreated resource) takes effect on the next rollout.
pub fn mongodb_app_secret(agent: &ValidatedAgent, password: &str) -> Secret {
    typed(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": super::metadata(agent, &mongodb_app_secret_name(agent), Component::Mongodb),
        "type": "Opaque",
        "stringData": {secret_keys::APP_USERNAME: MONGODB_APP_USER, secret_keys::APP_PASSWORD: password},
    }))
}

/// The API pod's init container making sure of the MongoDB user the pods connect as: the only
/// container given the root credentials (none when MongoDB is external).
fn mongodb_user_container(agent: &ValidatedAgent) -> Option<Value> {
    if !agent.spec.mongodb.managed {
        return None;
    }
    let credentials = credentials_secret_name(agent);
    let app = mongodb_app_secret_name(agent);
    let host = child_name(agent, Component::Mongodb);
    Some(json!({
        "name": "mongodb-user",
        "image": image(agent, Component::ApiServer, agent.spec.api_server.image.as_ref()),
        "args": ["mongodb-user"],
        "env": [
            secret_env(env::MONGODB_ROOT_USERNAME, &credentials, secret_keys::MONGODB_USERNAME),
            secret_env(env::MONGODB_ROOT_PASSWORD, &credentials, secret_keys::MONGODB_PASSWORD),
            {"name": env::MONGODB_ROOT_URL, "value": format!("mongodb://$(MONGODB_ROOT_USERNAME):$(MONGODB_ROOT_PASSWORD)@{host}:{}/?authSource=admin", ports::MONGODB)},
            secret_env(env::MONGODB_APP_USERNAME, &app, secret_keys::APP_USERNAME),
            secret_env(env::MONGODB_APP_PASSWORD, &app, secret_keys::APP_PASSWORD),
            {"name": env::MONGODB_DB_NAME, "value": env::DEFAULT_MONGODB_DB_NAME},
            {"name": env::LOG_FORMAT, "value": "json"},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": restricted_container_security(true),
    }))
}

/// A pod template with the resource's placement added.
fn placed(agent: &ValidatedAgent, component: Component, mut template: Value) -> PodTemplateSpec {
    super::place(agent, component, &mut template["spec"]);
    typed(template)
}

/// The template's metadata: the selector's labels, and the digest of its Secret values.
fn template_metadata(agent: &ValidatedAgent, component: Component, digest: Option<&String>) -> Value {
    let mut metadata = json!({"labels": selector(agent, component)});
    if let Some(digest) = digest {
        metadata["annotations"] = json!({SECRET_DIGEST_ANNOTATION: digest});
    }
    metadata
}

fn secret_env(name: &str, secret: &str, key: &str) -> Value {
    json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
}

/// Environment shared by the API and the workers: where Redis and MongoDB are.
fn datastore_env(agent: &ValidatedAgent) -> Vec<Value> {
    let credentials = credentials_secret_name(agent);
    let mut vars = Vec::new();
    match &agent.spec.redis.url_secret_ref {
        Some(reference) if !agent.spec.redis.managed => {
            vars.push(secret_env(env::REDIS_URL, &reference.name, &reference.key))
        }
        _ => {
            vars.push(secret_env(env::REDIS_PASSWORD, &credentials, secret_keys::REDIS_PASSWORD));
            let host = child_name(agent, Component::Redis);
            vars.push(json!({"name": env::REDIS_URL, "value": format!("redis://:$(REDIS_PASSWORD)@{host}:{}/", ports::REDIS)}));
        }
    }
    match &agent.spec.mongodb.uri_secret_ref {
        Some(reference) if !agent.spec.mongodb.managed => {
            vars.push(secret_env(env::MONGODB_URL, &reference.name, &reference.key));
        }
        _ => {
            // The platform's own user (`readWrite` on its database), never the root user.
            let app = mongodb_app_secret_name(agent);
            vars.push(secret_env(env::MONGODB_USERNAME, &app, secret_keys::APP_USERNAME));
            vars.push(secret_env(env::MONGODB_PASSWORD, &app, secret_keys::APP_PASSWORD));
            let host = child_name(agent, Component::Mongodb);
            vars.push(json!({
                "name": env::MONGODB_URL,
                "value": format!("mongodb://$(MONGODB_USERNAME):$(MONGODB_PASSWORD)@{host}:{}/?authSource=admin", ports::MONGODB),
            }));
        }
    }
    vars.push(json!({"name": env::MONGODB_DB_NAME, "value": env::DEFAULT_MONGODB_DB_NAME}));
    vars.push(json!({"name": env::FINAGENT_INSTANCE, "value": agent.name}));
    vars.push(json!({"name": env::LOG_FORMAT, "value": "json"}));
    vars
}

fn probe(path: &str, port: u16, period: i32, failures: i32) -> Value {
    json!({"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": 3, "failureThreshold": failures})
}

fn secure_cookies(agent: &ValidatedAgent) -> &'static str {
    let ingress = &agent.spec.ingress;
    if ingress.enabled && ingress.tls_secret_name.is_some() { "always" } else { "auto" }
}

/// The API's pod template.
pub fn api_template(agent: &ValidatedAgent) -> PodTemplateSpec {
    let spec = &agent.spec;
    let mut vars = vec![
        json!({"name": env::APP_ENV, "value": "production"}),
        json!({"name": env::LISTEN_ADDR, "value": format!("0.0.0.0:{}", ports::API_HTTP)}),
        // `/metrics` on its own port, which only the scrapers reach (the API port serves none).
        json!({"name": env::ADMIN_LISTEN, "value": format!("0.0.0.0:{}", ports::ADMIN)}),
        secret_env(env::JWT_SECRET_KEY, &jwt_secret_name(agent), secret_keys::JWT),
        json!({"name": env::JWT_PREVIOUS_KEYS, "valueFrom": {"secretKeyRef": {
            "name": jwt_secret_name(agent), "key": secret_keys::JWT_PREVIOUS, "optional": true}}}),
        json!({"name": env::OCR_WORKERS, "value": "0"}),
        json!({"name": env::RATE_LIMIT_API_PER_SECOND, "value": spec.api_server.rate_limit.requests_per_second.to_string()}),
        json!({"name": env::RATE_LIMIT_UPLOAD_PER_SECOND, "value": spec.api_server.rate_limit.uploads_per_second.to_string()}),
        // The same limit as the Ingress's body size (build/edge.rs).
        json!({"name": env::MAX_UPLOAD_SIZE, "value": spec.api_server.max_upload_bytes().to_string()}),
        // The memory budgets (password hashes and uploads at once) follow the container's limit.
        json!({"name": env::MEMORY_LIMIT_BYTES, "valueFrom": {"resourceFieldRef": {"containerName": "api-server", "resource": "limits.memory"}}}),
        // The web app's cookies: `Secure` whenever the Ingress terminates TLS (it then redirects
        // plain HTTP to HTTPS), else by the ingress controller's `X-Forwarded-Proto`.
        json!({"name": env::SECURE_COOKIES, "value": secure_cookies(agent)}),
    ];
    // Only the ingress controller's own addresses may say who the client is: trusting every
    // private range would let any pod (or a client on the node network) forge its address.
    if !spec.ingress.trusted_proxies.is_empty() {
        vars.push(json!({"name": env::TRUSTED_PROXIES, "value": spec.ingress.trusted_proxies.join(",")}));
    }
    vars.extend(datastore_env(agent));
    let resources = resources(
        spec.api_server.resources.as_ref(),
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}),
    );
    let mut template = json!({
        "metadata": template_metadata(agent, Component::ApiServer, agent.secrets.api.as_ref()),
        "spec": {
            "serviceAccountName": child_name(agent, Component::ApiServer),
            "automountServiceAccountToken": false,
            "securityContext": restricted_pod_security(10001),
            "containers": [{
                "name": "api-server",
                "image": image(agent, Component::ApiServer, spec.api_server.image.as_ref()),
                "args": ["serve"],
                "ports": [
                    {"name": "http", "containerPort": ports::API_HTTP},
                    {"name": "admin", "containerPort": ports::ADMIN},
                ],
                "env": vars,
                "readinessProbe": probe("/readyz", ports::API_HTTP, 5, 3),
                "livenessProbe": probe("/healthz", ports::API_HTTP, 10, 6),
                "resources": resources,
                "securityContext": restricted_container_security(true),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    });
    if let Some(init) = mongodb_user_container(agent) {
        template["spec"]["initContainers"] = json!([init]);
    }
    placed(agent, Component::ApiServer, template)
}

/// The workers' pod template.
pub fn worker_template(agent: &ValidatedAgent) -> PodTemplateSpec {
    let spec = &agent.spec;
    let mut vars = vec![
        json!({"name": env::OMP_THREAD_LIMIT, "value": "1"}),
        // One OCR thread per pod: the autoscaler counts pods, and the pod's CPU request and memory
        // limit are sized for one Tesseract engine (a thread per node CPU would not fit them).
        json!({"name": env::OCR_THREADS, "value": "1"}),
        json!({"name": env::ADMIN_LISTEN, "value": format!("0.0.0.0:{}", ports::ADMIN)}),
        json!({"name": env::OCR_TIMEOUT, "value": spec.ocr_worker.ocr_timeout_seconds.to_string()}),
    ];
    vars.extend(datastore_env(agent));
    let resources = resources(
        spec.ocr_worker.resources.as_ref(),
        json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}),
    );
    placed(
        agent,
        Component::OcrWorker,
        json!({
            "metadata": template_metadata(agent, Component::OcrWorker, agent.secrets.worker.as_ref()),
            "spec": {
                "serviceAccountName": child_name(agent, Component::OcrWorker),
                "automountServiceAccountToken": false,
                "securityContext": restricted_pod_security(10001),
                // Jobs in flight get their grace period (25 s) before the pod is killed.
                "terminationGracePeriodSeconds": 30,
                "containers": [{
                    "name": "ocr-worker",
                    "image": image(agent, Component::OcrWorker, spec.ocr_worker.image.as_ref()),
                    "args": ["run"],
                    "ports": [{"name": "admin", "containerPort": ports::ADMIN}],
                    "env": vars,
                    "readinessProbe": probe("/readyz", ports::ADMIN, 5, 3),
                    "livenessProbe": probe("/healthz", ports::ADMIN, 10, 6),
                    "resources": resources,
                    "securityContext": restricted_container_security(true),
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "tmp", "emptyDir": {}}],
            },
        }),
    )
}

fn deployment(agent: &ValidatedAgent, component: Component, replicas: i32, template: PodTemplateSpec) -> Deployment {
    let name = child_name(agent, component);
    let mut object = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(agent, &name, component),
        "spec": {
            "replicas": replicas,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": agent.spec.rollout.progress_deadline_seconds,
            "minReadySeconds": agent.spec.rollout.min_ready_seconds,
            "selector": {"matchLabels": selector(agent, component)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": template,
        },
    });
    object["metadata"]["annotations"] = json!({REVISION_ANNOTATION: template_revision(&template_of(&object))});
    typed(object)
}

fn template_of(object: &Value) -> PodTemplateSpec {
    typed(object["spec"]["template"].clone())
}

/// The API's Deployment; `template` replaces the built template (a rollback).
pub fn api_deployment(agent: &ValidatedAgent, template: Option<PodTemplateSpec>) -> Deployment {
    let template = template.unwrap_or_else(|| api_template(agent));
    deployment(agent, Component::ApiServer, agent.spec.api_server.replicas, template)
}

/// The workers' Deployment with the autoscaler's replicas (`minReplicas` before its first decision).
pub fn worker_deployment(
    agent: &ValidatedAgent,
    replicas: Option<i32>,
    template: Option<PodTemplateSpec>,
) -> Deployment {
    let template = template.unwrap_or_else(|| worker_template(agent));
    let replicas = replicas.unwrap_or(agent.spec.ocr_worker.min_replicas);
    deployment(agent, Component::OcrWorker, replicas, template)
}

/// One ServiceAccount per component, without API credentials mounted: none of them calls the
/// Kubernetes API.
pub fn service_accounts(agent: &ValidatedAgent) -> Vec<Value> {
    let mut components = vec![Component::ApiServer, Component::OcrWorker];
    if agent.spec.prometheus.enabled {
        components.push(Component::Prometheus);
    }
    components
        .into_iter()
        .map(|component| {
            json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": metadata(agent, &child_name(agent, component), component),
                "automountServiceAccountToken": false,
            })
        })
        .collect()
}

/// The headless Service through which Prometheus finds every API pod (the API's own Service has
/// one virtual address, which would scrape one replica at random).
pub fn api_pods_service_name(agent: &ValidatedAgent) -> String {
    format!("{}-pods", child_name(agent, Component::ApiServer))
}

/// The API's Service, and headless Services through which Prometheus finds each API pod and
/// each worker.
pub fn services(agent: &ValidatedAgent) -> Vec<Value> {
    let api = child_name(agent, Component::ApiServer);
    let worker = child_name(agent, Component::OcrWorker);
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(agent, &api, Component::ApiServer),
            "spec": {
                "selector": selector(agent, Component::ApiServer),
                "ports": [{"name": "http", "port": 80, "targetPort": ports::API_HTTP}],
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(agent, &api_pods_service_name(agent), Component::ApiServer),
            "spec": {
                "clusterIP": "None",
                "selector": selector(agent, Component::ApiServer),
                "ports": [
                    {"name": "http", "port": ports::API_HTTP, "targetPort": ports::API_HTTP},
                    {"name": "admin", "port": ports::ADMIN, "targetPort": ports::ADMIN},
                ],
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(agent, &worker, Component::OcrWorker),
            "spec": {
                "clusterIP": "None",
                "selector": selector(agent, Component::OcrWorker),
                "ports": [{"name": "admin", "port": ports::ADMIN, "targetPort": ports::ADMIN}],
            },
        }),
    ]
}

/// Disruption budgets: one API replica may be down at a time; workers may drain one at a time
/// (their jobs are redelivered).
pub fn disruption_budgets(agent: &ValidatedAgent) -> Vec<Value> {
    [Component::ApiServer, Component::OcrWorker]
        .into_iter()
        .map(|component| {
            json!({
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": metadata(agent, &child_name(agent, component), component),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(agent, component)}},
            })
        })
        .collect()
}

/// The workers' admin port inside the cluster, through their headless Service (each lookup
/// gives the ready pods' addresses).
pub fn worker_admin_url(agent: &ValidatedAgent) -> String {
    format!("http://{}.{}.svc:{}", child_name(agent, Component::OcrWorker), agent.namespace, ports::ADMIN)
}

/// The URL at which the API answers inside the cluster.
pub fn api_service_url(agent: &ValidatedAgent) -> String {
    format!("http://{}.{}.svc", child_name(agent, Component::ApiServer), agent.namespace)
}

/// The spec's platform revision.
pub fn desired_revision(agent: &ValidatedAgent) -> String {
    platform_revision(&api_template(agent), &worker_template(agent))
}
