//! Prometheus: a Deployment with a generated scrape configuration that finds the API pods and the
//! workers through their headless Services (DNS), so it needs no Kubernetes API
//! access and no RBAC. It evaluates the platform's alert rules (queue backlog, stalled queue,
//! dead letters, API error rate), visible on its `/alerts` page.

use finagent_core::names::{Component, ports};
use serde_json::{Value, json};

use super::{child_name, metadata, resources, restricted_container_security, restricted_pod_security, selector};
use crate::validate::ValidatedAgent;

/// The default image; `image` in the resource replaces it.
pub const PROMETHEUS_IMAGE: &str = "prom/prometheus:v2.55.1";

/// Where the rule file is mounted.
const RULES_PATH: &str = "/etc/prometheus/alerts.yml";

/// The alert rules of the repository (`config/prometheus/alerts.yaml`), checked and unit-tested
/// with promtool by the test suite.
const ALERTS: &str = include_str!("../../../config/prometheus/alerts.yaml");

/// The group of [`ALERTS`] about the platform itself; the operator's own alerts need the
/// cluster's Prometheus, which scrapes the operator.
const PLATFORM_GROUP: &str = "finagent-platform";

/// The platform's alert rules, as a Prometheus rule file (made once per process: every reconcile
/// builds the ConfigMap).
pub fn platform_rules() -> &'static str {
    static RULES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let groups = serde_yaml::from_str::<Value>(ALERTS)
            .ok()
            .and_then(|alerts| alerts["groups"].as_array().cloned())
            .unwrap_or_default();
        let platform: Vec<Value> = groups.into_iter().filter(|group| group["name"] == PLATFORM_GROUP).collect();
        serde_yaml::to_string(&json!({"groups": platform})).unwrap_or_default()
    });
    &RULES
}

/// The scrape configuration. Every series gets the `namespace` and `finagent_instance` labels a
/// cluster-wide Prometheus gives them (through the chart's PodMonitor), so the dashboards and
/// alerts work the same on both.
pub fn scrape_config(agent: &ValidatedAgent) -> String {
    let namespace = &agent.namespace;
    let labels = json!([
        {"target_label": "namespace", "replacement": namespace},
        {"target_label": "finagent_instance", "replacement": agent.name},
    ]);
    let dns_job = |job: &str, service: String, port: u16| {
        json!({
            "job_name": job,
            "dns_sd_configs": [{
                "names": [format!("{service}.{namespace}.svc")],
                "type": "A",
                "port": port,
            }],
            "relabel_configs": labels,
        })
    };
    let config = json!({
        "global": {
            "scrape_interval": "15s",
            "evaluation_interval": "15s",
            "external_labels": {"instance_name": agent.name},
        },
        "rule_files": [RULES_PATH],
        "scrape_configs": [
            dns_job("api-server", super::workloads::api_pods_service_name(agent), ports::ADMIN),
            dns_job("ocr-worker", child_name(agent, Component::OcrWorker), ports::ADMIN),
            {"job_name": "prometheus", "static_configs": [{"targets": [format!("localhost:{}", ports::PROMETHEUS)]}]},
        ],
    });
    serde_yaml::to_string(&config).unwrap_or_default()
}

fn placed(agent: &ValidatedAgent, mut deployment: Value) -> Value {
    super::place(agent, Component::Prometheus, &mut deployment["spec"]["template"]["spec"]);
    deployment
}

/// The ConfigMap, Deployment and Service of Prometheus, and its claim when `storage` is set
/// (nothing when disabled).
pub fn prometheus(agent: &ValidatedAgent) -> Vec<Value> {
    if !agent.spec.prometheus.enabled {
        return Vec::new();
    }
    let name = child_name(agent, Component::Prometheus);
    let config = scrape_config(agent);
    let rules = platform_rules();
    // A changed configuration or rule file restarts Prometheus with it.
    let config_hash = super::revision::template_revision(&super::typed(
        json!({"metadata": {"annotations": {"config": config, "rules": rules}}}),
    ));
    let data_volume = match &agent.spec.prometheus.storage {
        Some(_) => json!({"name": "data", "persistentVolumeClaim": {"claimName": format!("{name}-data")}}),
        None => json!({"name": "data", "emptyDir": {}}),
    };
    let mut objects = vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(agent, &name, Component::Prometheus),
            "data": {"prometheus.yml": config, "alerts.yml": rules},
        }),
        placed(
            agent,
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
                                "image": agent.spec.prometheus.image.as_deref().unwrap_or(PROMETHEUS_IMAGE),
                                "args": [
                                    "--config.file=/etc/prometheus/prometheus.yml",
                                    "--storage.tsdb.path=/prometheus",
                                    format!("--storage.tsdb.retention.time={}", agent.spec.prometheus.retention),
                                    format!("--web.listen-address=:{}", ports::PROMETHEUS),
                                ],
                                "ports": [{"name": "http", "containerPort": ports::PROMETHEUS}],
                                "readinessProbe": {"httpGet": {"path": "/-/ready", "port": ports::PROMETHEUS}, "periodSeconds": 10},
                                "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": ports::PROMETHEUS}, "periodSeconds": 20},
                                "resources": resources(
                                    agent.spec.prometheus.resources.as_ref(),
                                    json!({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}),
                                ),
                                "securityContext": restricted_container_security(true),
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/prometheus"},
                                    {"name": "data", "mountPath": "/prometheus"},
                                ],
                            }],
                            "volumes": [
                                {"name": "config", "configMap": {"name": name}},
                                data_volume,
                            ],
                        },
                    },
                },
            }),
        ),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(agent, &name, Component::Prometheus),
            "spec": {
                "selector": selector(agent, Component::Prometheus),
                "ports": [{"name": "http", "port": ports::PROMETHEUS, "targetPort": ports::PROMETHEUS}],
            },
        }),
    ];
    if let Some(storage) = &agent.spec.prometheus.storage {
        // The claim's request may grow (where the storage class allows expansion); the API server
        // refuses a smaller one, and the refusal shows as ApplyFailed.
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": metadata(agent, &format!("{name}-data"), Component::Prometheus),
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
        }));
    }
    objects
}
