//! Prometheus: a Deployment with a generated scrape configuration that finds the API through its
//! Service and the workers through their headless Service (DNS), so it needs no Kubernetes API
//! access and no RBAC.

use finagent_core::names::{Component, ports};
use serde_json::{Value, json};

use super::{child_name, metadata, restricted_container_security, restricted_pod_security, selector};
use crate::validate::ValidatedAgent;

/// The scrape configuration.
pub fn scrape_config(agent: &ValidatedAgent) -> String {
    let api = child_name(agent, Component::ApiServer);
    let worker = child_name(agent, Component::OcrWorker);
    let namespace = &agent.namespace;
    format!(
        "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n  external_labels:\n    instance_name: {name}\n\
scrape_configs:\n  - job_name: api-server\n    dns_sd_configs:\n      - names: [{api}.{namespace}.svc]\n        type: A\n        port: {api_port}\n\
  - job_name: ocr-worker\n    dns_sd_configs:\n      - names: [{worker}.{namespace}.svc]\n        type: A\n        port: {admin_port}\n\
  - job_name: prometheus\n    static_configs:\n      - targets: [localhost:{prometheus_port}]\n",
        name = agent.name,
        api_port = ports::API_HTTP,
        admin_port = ports::ADMIN,
        prometheus_port = ports::PROMETHEUS,
    )
}

/// The ConfigMap, Deployment and Service of Prometheus (nothing when disabled).
pub fn prometheus(agent: &ValidatedAgent) -> Vec<Value> {
    if !agent.spec.prometheus.enabled {
        return Vec::new();
    }
    let name = child_name(agent, Component::Prometheus);
    let config = scrape_config(agent);
    // A changed configuration restarts Prometheus with it.
    let config_hash = super::revision(&super::typed(json!({"metadata": {"annotations": {"config": config}}})));
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(agent, &name, Component::Prometheus),
            "data": {"prometheus.yml": config},
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(agent, &name, Component::Prometheus),
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": selector(agent, Component::Prometheus)},
                "template": {
                    "metadata": {"labels": selector(agent, Component::Prometheus), "annotations": {"finagent.io/config": config_hash}},
                    "spec": {
                        "serviceAccountName": name,
                        "automountServiceAccountToken": false,
                        "securityContext": restricted_pod_security(65534),
                        "containers": [{
                            "name": "prometheus",
                            "image": "prom/prometheus:v2.55.1",
                            "args": [
                                "--config.file=/etc/prometheus/prometheus.yml",
                                "--storage.tsdb.path=/prometheus",
                                format!("--storage.tsdb.retention.time={}", agent.spec.prometheus.retention),
                                format!("--web.listen-address=:{}", ports::PROMETHEUS),
                            ],
                            "ports": [{"name": "http", "containerPort": ports::PROMETHEUS}],
                            "readinessProbe": {"httpGet": {"path": "/-/ready", "port": ports::PROMETHEUS}, "periodSeconds": 10},
                            "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": ports::PROMETHEUS}, "periodSeconds": 20},
                            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                            "securityContext": restricted_container_security(true),
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/prometheus"},
                                {"name": "data", "mountPath": "/prometheus"},
                            ],
                        }],
                        "volumes": [
                            {"name": "config", "configMap": {"name": name}},
                            {"name": "data", "emptyDir": {}},
                        ],
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(agent, &name, Component::Prometheus),
            "spec": {
                "selector": selector(agent, Component::Prometheus),
                "ports": [{"name": "http", "port": ports::PROMETHEUS, "targetPort": ports::PROMETHEUS}],
            },
        }),
    ]
}
