//! What faces the network: the Ingress in front of the API, and NetworkPolicies that let traffic
//! from outside reach only the API, and let only the API and the workers reach the datastores.

use finagent_core::names::{Component, labels, ports, uploads};
use serde_json::{Value, json};

use super::{child_name, metadata, selector};
use crate::validate::ValidatedAgent;

/// The Ingress (nothing when disabled): the API's routes and docs, with TLS when a Secret is named.
pub fn ingress(agent: &ValidatedAgent) -> Vec<Value> {
    let spec = &agent.spec.ingress;
    if !spec.enabled {
        return Vec::new();
    }
    let host = spec.host.clone().unwrap_or_default();
    let mut annotations = json!({
        // The largest upload and its form pass, so that a larger one gets the API's own 413; the
        // body is read in full before it goes on (nginx's default; Traefik's nginx provider
        // enforces the size only then). OCR polling may take a while on a busy platform.
        "nginx.ingress.kubernetes.io/proxy-body-size": ingress_body_size(agent),
        "nginx.ingress.kubernetes.io/proxy-request-buffering": "on",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "600",
        "nginx.ingress.kubernetes.io/proxy-send-timeout": "600",
        // A coarse per-address limit at the edge; the API applies the precise ones.
        "nginx.ingress.kubernetes.io/limit-rps": (agent.spec.api_server.rate_limit.requests_per_second * 5).to_string(),
    });
    for (key, value) in &spec.annotations {
        annotations[key] = json!(value);
    }
    let mut object = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(agent, &agent.name, Component::ApiServer),
        "spec": {
            "ingressClassName": spec.class_name,
            "rules": [{
                "host": host,
                "http": {"paths": [{
                    "path": "/",
                    "pathType": "Prefix",
                    "backend": {"service": {"name": child_name(agent, Component::ApiServer), "port": {"name": "http"}}},
                }]},
            }],
        },
    });
    object["metadata"]["annotations"] = annotations;
    if let Some(secret) = &spec.tls_secret_name {
        object["spec"]["tls"] = json!([{"hosts": [host], "secretName": secret}]);
    }
    vec![object]
}

/// The Ingress's body size: the body limit of the API's largest upload, rounded up to whole MiB.
fn ingress_body_size(agent: &ValidatedAgent) -> String {
    format!("{}m", uploads::proxy_body_mib(agent.spec.api_server.max_upload_bytes()))
}

/// The URL of the API: through the Ingress when there is one, else the in-cluster Service.
pub fn url(agent: &ValidatedAgent) -> String {
    let spec = &agent.spec.ingress;
    match (&spec.host, spec.enabled) {
        (Some(host), true) => {
            let scheme = if spec.tls_secret_name.is_some() { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
        _ => super::workloads::api_service_url(agent),
    }
}

fn from_components(agent: &ValidatedAgent, components: &[Component]) -> Vec<Value> {
    components.iter().map(|component| json!({"podSelector": {"matchLabels": selector(agent, *component)}})).collect()
}

fn policy(agent: &ValidatedAgent, component: Component, ingress: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(agent, &child_name(agent, component), component),
        "spec": {
            "podSelector": {"matchLabels": selector(agent, component)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    })
}

/// The label of the pods of a cluster-wide Prometheus (the Prometheus Operator's and the
/// community chart's), which scrapes the workers through the operator chart's PodMonitor.
pub const PROMETHEUS_POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", "prometheus");

/// Ingress rules per component: the API from anywhere on its port, and its admin port (metrics)
/// only from the scrapers; the workers' admin port only from this platform's Prometheus, a cluster
/// Prometheus in any namespace and the operator (its health probe); Redis and MongoDB only from the API and the workers (and Redis from the
/// operator, which reads the queue depth); Prometheus from the namespace.
pub fn network_policies(agent: &ValidatedAgent, operator_namespace: Option<&str>) -> Vec<Value> {
    // The operator's pods, in its own namespace only (a pod elsewhere that copies the operator's
    // label is not let in).
    let operator_selector = json!({"matchLabels": {labels::ROLE: labels::OPERATOR_ROLE}});
    let operator = match operator_namespace {
        Some(namespace) => json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "podSelector": operator_selector,
        }),
        None => json!({"podSelector": operator_selector}),
    };
    let mut scrapers = from_components(agent, &[Component::Prometheus]);
    scrapers.push(json!({
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {PROMETHEUS_POD_LABEL.0: PROMETHEUS_POD_LABEL.1}},
    }));
    scrapers.push(operator.clone());
    let mut policies = vec![
        policy(
            agent,
            Component::ApiServer,
            json!([{"ports": [{"port": ports::API_HTTP}]}, {"from": scrapers.clone(), "ports": [{"port": ports::ADMIN}]}]),
        ),
        policy(agent, Component::OcrWorker, json!([{"from": scrapers, "ports": [{"port": ports::ADMIN}]}])),
    ];
    if agent.spec.redis.managed {
        let mut redis_clients = from_components(agent, &[Component::ApiServer, Component::OcrWorker]);
        redis_clients.push(operator);
        policies.push(policy(
            agent,
            Component::Redis,
            json!([{"from": redis_clients, "ports": [{"port": ports::REDIS}]}]),
        ));
    }
    if agent.spec.mongodb.managed {
        policies.push(policy(
            agent,
            Component::Mongodb,
            json!([{"from": from_components(agent, &[Component::ApiServer, Component::OcrWorker]), "ports": [{"port": ports::MONGODB}]}]),
        ));
    }
    if agent.spec.prometheus.enabled {
        policies.push(policy(
            agent,
            Component::Prometheus,
            json!([{"from": [{"podSelector": {}}], "ports": [{"port": ports::PROMETHEUS}]}]),
        ));
    }
    policies
}
