//! Builders, against whole objects and against the Kubernetes schemas: every child rendered from
//! every sample in `config/samples/` passes `kubernetes-validate --strict` for Kubernetes 1.30 and
//! 1.35.

mod env_contract;
mod security;

use std::process::Command;

use finagent_operator::build::{Inputs, build_all, workloads};
use finagent_operator::crd::FinancialAgent;
use finagent_operator::validate::{ValidatedAgent, validate};
use finagent_platform::testkit;
use serde_json::json;

fn sample(name: &str) -> ValidatedAgent {
    let path = format!("{}/../config/samples/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let mut agent: FinancialAgent =
        serde_yaml::from_str(&std::fs::read_to_string(&path).expect("sample")).expect("yaml");
    agent.metadata.uid = Some("5f0c3a52-1111-4222-8333-444455556666".into());
    // Applied with `kubectl -n`; the samples name no namespace.
    agent.metadata.namespace = Some("finance".into());
    validate(&agent).expect("valid sample")
}

const SAMPLES: [&str; 3] = ["minimal", "production", "scale-to-zero"];

#[test]
fn samples_name_no_namespace_and_no_two_share_a_name() {
    let mut names = Vec::new();
    for name in SAMPLES {
        let path = format!("{}/../config/samples/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
        let agent: FinancialAgent =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("sample")).expect("yaml");
        // `kubectl -n <namespace> apply -f` refuses a file that names another namespace.
        assert_eq!(agent.metadata.namespace, None, "{name} names a namespace");
        names.push(agent.metadata.name.expect("a name"));
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), SAMPLES.len(), "two samples share a name: {names:?}");
}

#[test]
fn every_child_of_every_sample_passes_kubernetes_validate_for_1_30_and_1_35() {
    let Some(validator) = testkit::venv_tool("kubernetes-validate") else { return };
    let directory = std::env::temp_dir().join(testkit::unique_name("finagent-manifests"));
    std::fs::create_dir_all(&directory).expect("dir");
    let mut files = Vec::new();
    for name in SAMPLES {
        let children = build_all(&sample(name), &Inputs::default());
        for (index, object) in children.objects.iter().enumerate() {
            let path =
                directory.join(format!("{name}-{index:02}-{}.json", object["kind"].as_str().unwrap_or("unknown")));
            std::fs::write(&path, serde_json::to_string_pretty(object).expect("json")).expect("write");
            files.push(path);
        }
    }
    assert!(files.len() > 40, "rendered only {} objects", files.len());
    for version in ["1.30.0", "1.35.0"] {
        let output = Command::new(&validator)
            .args(["--strict", "--quiet", "-k", version])
            .args(&files)
            .output()
            .expect("kubernetes-validate runs");
        assert!(
            output.status.success(),
            "Kubernetes {version} refused rendered objects:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    std::fs::remove_dir_all(&directory).ok();
}

#[test]
fn every_child_is_owned_labelled_and_named_after_the_resource() {
    for name in SAMPLES {
        let agent = sample(name);
        for object in build_all(&agent, &Inputs::default()).objects {
            let metadata = &object["metadata"];
            let what = format!("{name}: {} {}", object["kind"], metadata["name"]);
            assert!(metadata["name"].as_str().expect("name").starts_with(&agent.name), "{what}");
            assert_eq!(metadata["namespace"], json!(agent.namespace), "{what}");
            assert_eq!(metadata["ownerReferences"][0]["uid"], "5f0c3a52-1111-4222-8333-444455556666", "{what}");
            assert_eq!(metadata["ownerReferences"][0]["controller"], true, "{what}");
            assert_eq!(metadata["labels"]["app.kubernetes.io/managed-by"], "finagent-operator", "{what}");
            assert_eq!(metadata["labels"]["app.kubernetes.io/instance"], json!(agent.name), "{what}");
        }
    }
}

#[test]
fn the_worker_deployment_as_a_whole() {
    let agent = sample("scale-to-zero");
    let deployment = serde_json::to_value(workloads::worker_deployment(&agent, Some(3), None)).expect("json");
    let labels = json!({
        "app.kubernetes.io/component": "ocr-worker",
        "app.kubernetes.io/instance": "batch",
        "app.kubernetes.io/managed-by": "finagent-operator",
        "app.kubernetes.io/name": "financial-agent",
        "app.kubernetes.io/part-of": "financial-agent",
        "app.kubernetes.io/version": env!("CARGO_PKG_VERSION"),
    });
    let selector = json!({
        "app.kubernetes.io/component": "ocr-worker",
        "app.kubernetes.io/instance": "batch",
        "app.kubernetes.io/name": "financial-agent",
    });
    let revision = deployment["metadata"]["annotations"]["finagent.io/revision"].clone();
    assert_eq!(revision.as_str().map(str::len), Some(16));
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "batch-ocr-worker",
            "namespace": "finance",
            "labels": labels,
            "annotations": {"finagent.io/revision": revision},
            "ownerReferences": [{
                "apiVersion": "finagent.io/v1alpha1",
                "kind": "FinancialAgent",
                "name": "batch",
                "uid": "5f0c3a52-1111-4222-8333-444455556666",
                "controller": true,
            }],
        },
        "spec": {
            "replicas": 3,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 300,
            "minReadySeconds": 0,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "serviceAccountName": "batch-ocr-worker",
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "ocr-worker",
                        "image": format!("ghcr.io/finagent/ocr-worker:{}", env!("CARGO_PKG_VERSION")),
                        "args": ["run"],
                        "ports": [{"name": "admin", "containerPort": 9090}],
                        "env": [
                            {"name": "OMP_THREAD_LIMIT", "value": "1"},
                            {"name": "OCR_THREADS", "value": "1"},
                            {"name": "ADMIN_LISTEN", "value": "0.0.0.0:9090"},
                            {"name": "OCR_TIMEOUT", "value": "600"},
                            {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": "batch-redis", "key": "url"}}},
                            {"name": "MONGODB_USERNAME", "valueFrom": {"secretKeyRef": {"name": "batch-mongodb-app", "key": "username"}}},
                            {"name": "MONGODB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "batch-mongodb-app", "key": "password"}}},
                            {"name": "MONGODB_URL", "value": "mongodb://$(MONGODB_USERNAME):$(MONGODB_PASSWORD)@batch-mongodb:27017/?authSource=admin"},
                            {"name": "MONGODB_DB_NAME", "value": "financial_agent"},
                            {"name": "FINAGENT_INSTANCE", "value": "batch"},
                            {"name": "LOG_FORMAT", "value": "json"},
                        ],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9090}, "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 9090}, "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 6},
                        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    });
    assert_eq!(deployment, expected);
}

#[test]
fn the_ingress_carries_the_upload_size_timeouts_and_tls() {
    let ingress = finagent_operator::build::edge::ingress(&sample("production")).pop().expect("ingress");
    let annotations = &ingress["metadata"]["annotations"];
    // The API's body limit (25 MiB and the form) fits, so the API answers a larger upload itself.
    assert_eq!(annotations["nginx.ingress.kubernetes.io/proxy-body-size"], "26m");
    assert_eq!(annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"], "on");
    assert_eq!(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"], "600");
    assert_eq!(ingress["spec"]["tls"], json!([{"hosts": ["receipts.example.com"], "secretName": "receipts-tls"}]));
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert!(finagent_operator::build::edge::ingress(&sample("minimal")).is_empty());
}

#[test]
fn the_ingress_lets_through_the_upload_limit_the_api_is_given() {
    let mut agent = sample("production");
    agent.spec.api_server.max_upload_mib = 40;
    let ingress = finagent_operator::build::edge::ingress(&agent).pop().expect("ingress");
    // 40 MiB and the form's 64 KiB, rounded up: a 40 MiB upload passes, a larger one gets the API's 413.
    assert_eq!(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"], "41m");
    let template = workloads::api_template(&agent);
    let container = &template.spec.expect("pod").containers[0];
    let limit = container.env.iter().flatten().find(|var| var.name == "MAX_UPLOAD_SIZE").expect("MAX_UPLOAD_SIZE");
    assert_eq!(limit.value.as_deref(), Some("41943040"));
}

#[test]
fn the_ingress_serves_the_app_and_the_api_from_one_origin_with_secure_cookies_under_tls() {
    let env_of = |agent: &ValidatedAgent, name: &str| {
        let template = serde_json::to_value(workloads::api_template(agent)).expect("json");
        template["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|var| var["name"] == name)
            .map(|var| var["value"].clone())
    };
    let production = sample("production");
    let ingress = finagent_operator::build::edge::ingress(&production).pop().expect("ingress");
    // One rule, one prefix: the page at `/`, its assets, and `/api` all reach the API's Service.
    let paths = ingress["spec"]["rules"][0]["http"]["paths"].as_array().expect("paths");
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0]["path"], "/");
    assert_eq!(paths[0]["pathType"], "Prefix");
    assert_eq!(paths[0]["backend"]["service"]["name"], "receipts-production-api-server");
    assert_eq!(env_of(&production, "SECURE_COOKIES"), Some(json!("always")), "TLS at the Ingress");
    assert_eq!(env_of(&sample("minimal"), "SECURE_COOKIES"), Some(json!("auto")));
    // Only the proxies the resource names are trusted: no private range by default.
    assert_eq!(env_of(&production, "TRUSTED_PROXIES"), Some(json!("10.244.7.0/24")));
    assert_eq!(env_of(&sample("minimal"), "TRUSTED_PROXIES"), None);
    // The API's memory budgets follow its container's limit.
    let template = serde_json::to_value(workloads::api_template(&production)).expect("json");
    let memory = template["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|var| var["name"] == "MEMORY_LIMIT_BYTES")
        .cloned()
        .expect("MEMORY_LIMIT_BYTES");
    assert_eq!(memory["valueFrom"]["resourceFieldRef"]["resource"], "limits.memory");
    assert_eq!(memory["valueFrom"]["resourceFieldRef"]["containerName"], template["spec"]["containers"][0]["name"]);
}

#[test]
fn the_rbac_covers_every_kind_the_operator_builds_and_passes_kubernetes_validate() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rbac/operator.yaml")).expect("rbac");
    let documents: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|document| serde::Deserialize::deserialize(document).expect("yaml"))
        .collect();
    let role = documents.iter().find(|document| document["kind"] == "ClusterRole").expect("cluster role");
    let allowed = |group: &str, resource: &str, verb: &str| {
        role["rules"].as_sequence().expect("rules").iter().any(|rule| {
            let has = |key: &str, value: &str| {
                rule[key].as_sequence().is_some_and(|list| list.iter().any(|item| item == value))
            };
            has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
        })
    };
    // Every object built is of an owned kind, and every owned kind may be watched, applied (a
    // server-side apply that creates needs `create`) and deleted.
    for object in build_all(&sample("production"), &Inputs::default()).objects {
        let kind = finagent_operator::owned::owned_kind(
            object["apiVersion"].as_str().expect("apiVersion"),
            object["kind"].as_str().expect("kind"),
        );
        assert!(kind.is_some(), "{} is built but not in OWNED_KINDS", object["kind"]);
    }
    for owned in finagent_operator::owned::OWNED_KINDS {
        for verb in ["get", "list", "watch", "create", "patch", "delete"] {
            assert!(
                allowed(owned.group, owned.plural, verb),
                "the operator may not {verb} {} ({})",
                owned.plural,
                owned.group
            );
        }
    }
    assert!(allowed("", "secrets", "create") && !allowed("", "secrets", "list"), "secrets: create and get only");
    let Some(validator) = testkit::venv_tool("kubernetes-validate") else { return };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rbac/operator.yaml");
    for version in ["1.30.0", "1.35.0"] {
        let output =
            Command::new(&validator).args(["--strict", "--quiet", "-k", version, path]).output().expect("runs");
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_platform_prometheus_configuration_and_its_alert_rules_pass_promtool() {
    use finagent_operator::build::prometheus::{platform_rules, scrape_config};
    let agent = sample("minimal");
    let config = scrape_config(&agent);
    let rules = platform_rules();
    for alert in ["FinagentQueueBacklog", "FinagentQueueStalled", "FinagentDeadLetters", "FinagentApiErrorRate"] {
        assert!(rules.contains(alert), "{alert} missing from the platform rules:\n{rules}");
    }
    assert!(!rules.contains("FinagentOperator"), "the operator's alerts need the cluster's Prometheus");
    let parsed: serde_json::Value = serde_yaml::from_str(&config).expect("yaml");
    // Every API pod, through the headless Service, and every worker, on their admin port.
    assert_eq!(
        parsed["scrape_configs"][0]["dns_sd_configs"][0]["names"],
        json!(["receipts-api-server-pods.finance.svc"])
    );
    assert_eq!(parsed["scrape_configs"][0]["dns_sd_configs"][0]["port"], 9090);
    assert_eq!(parsed["scrape_configs"][1]["dns_sd_configs"][0]["names"], json!(["receipts-ocr-worker.finance.svc"]));
    assert_eq!(parsed["scrape_configs"][1]["dns_sd_configs"][0]["port"], 9090);
    let services = workloads::services(&agent);
    let pods = services.iter().find(|s| s["metadata"]["name"] == "receipts-api-server-pods").expect("headless");
    assert_eq!(pods["spec"]["clusterIP"], "None");
    assert_eq!(pods["spec"]["ports"][0]["port"], 8000);
    assert_eq!(pods["spec"]["ports"][1], json!({"name": "admin", "port": 9090, "targetPort": 9090}));
    for job in parsed["scrape_configs"].as_array().expect("jobs").iter().take(2) {
        assert_eq!(
            job["relabel_configs"],
            json!([
                {"target_label": "namespace", "replacement": "finance"},
                {"target_label": "finagent_instance", "replacement": "receipts"},
            ]),
            "{job}"
        );
    }
    let Some(promtool) = testkit::promtool() else { return };
    let directory = std::env::temp_dir().join(testkit::unique_name("finagent-prometheus"));
    std::fs::create_dir_all(&directory).expect("dir");
    // The rule file sits beside the configuration, as it is mounted in the pod.
    std::fs::write(directory.join("prometheus.yml"), config.replace("/etc/prometheus/alerts.yml", "alerts.yml"))
        .expect("write");
    std::fs::write(directory.join("alerts.yml"), rules).expect("write");
    let output = Command::new(promtool)
        .args(["check", "config", "prometheus.yml"])
        .current_dir(&directory)
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "promtool refused the configuration:\n{config}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_dir_all(&directory).ok();
}

#[test]
fn datastore_images_and_resources_can_be_replaced() {
    let mut agent: FinancialAgent = serde_yaml::from_str(
        r#"
apiVersion: finagent.io/v1alpha1
kind: FinancialAgent
metadata: {name: receipts, namespace: finance, uid: 5f0c3a52-1111-4222-8333-444455556666}
spec:
  redis: {image: "localhost/finagent/redis:1", resources: {requests: {cpu: 10m}}}
  mongodb: {image: "localhost/finagent/mongodb:1"}
  prometheus: {image: "localhost/finagent/prometheus:1", resources: {limits: {memory: 2Gi}}}
"#,
    )
    .expect("yaml");
    agent.metadata.generation = Some(1);
    let agent = validate(&agent).expect("valid");
    let redis = finagent_operator::build::datastores::redis(&agent);
    let container = &redis[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "localhost/finagent/redis:1");
    assert_eq!(container["resources"], json!({"requests": {"cpu": "10m"}}));
    let mongodb = finagent_operator::build::datastores::mongodb(&agent);
    let container = &mongodb[0]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "localhost/finagent/mongodb:1");
    assert_eq!(container["resources"]["limits"], json!({"memory": "2Gi"}), "the default resources stay");
    let prometheus = finagent_operator::build::prometheus::prometheus(&agent);
    let deployment = prometheus.iter().find(|object| object["kind"] == "Deployment").expect("deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "localhost/finagent/prometheus:1");
    assert_eq!(container["resources"], json!({"limits": {"memory": "2Gi"}}));

    let defaults = sample("minimal");
    let redis = finagent_operator::build::datastores::redis(&defaults);
    assert_eq!(redis[0]["spec"]["template"]["spec"]["containers"][0]["image"], "redis:7.2");
}

#[test]
fn both_deployments_wait_min_ready_seconds_before_a_pod_counts_as_available() {
    let mut agent = sample("minimal");
    agent.spec.rollout.min_ready_seconds = 15;
    let children = build_all(&agent, &Inputs::default());
    for deployment in [&children.api, &children.worker] {
        assert_eq!(deployment.spec.min_ready_seconds, Some(15));
    }
}

#[test]
fn the_placement_reaches_every_pod_and_spreads_each_component_among_its_own() {
    let mut agent: FinancialAgent = serde_yaml::from_str(
        r#"
apiVersion: finagent.io/v1alpha1
kind: FinancialAgent
metadata: {name: receipts, namespace: finance, uid: 5f0c3a52-1111-4222-8333-444455556666}
spec:
  placement:
    nodeSelector: {pool: finance}
    tolerations: [{key: dedicated, operator: Equal, value: finance, effect: NoSchedule}]
    topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}
      - {maxSkew: 2, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
         labelSelector: {matchLabels: {team: finance}}}
    priorityClassName: finance-high
    imagePullSecrets: [{name: registry}]
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms: [{matchExpressions: [{key: arch, operator: In, values: [amd64]}]}]
"#,
    )
    .expect("yaml");
    agent.metadata.generation = Some(1);
    let agent = validate(&agent).expect("valid");
    let built = build_all(&agent, &Inputs::default()).objects;
    let workloads: Vec<_> = built
        .iter()
        .filter(|object| ["Deployment", "StatefulSet"].contains(&object["kind"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(workloads.len(), 5, "the API, the workers, Redis, MongoDB and Prometheus");
    for workload in workloads {
        let pod = &workload["spec"]["template"]["spec"];
        let component = &workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"];
        assert_eq!(pod["nodeSelector"], json!({"pool": "finance"}), "{component}");
        assert_eq!(pod["tolerations"][0]["key"], "dedicated", "{component}");
        assert_eq!(pod["priorityClassName"], "finance-high", "{component}");
        assert_eq!(pod["imagePullSecrets"], json!([{"name": "registry"}]), "{component}");
        assert_eq!(
            pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
                [0]["key"],
            "arch"
        );
        // A constraint without a selector spreads this component's pods; one with a selector keeps it.
        let spread = &pod["topologySpreadConstraints"];
        assert_eq!(
            spread[0]["labelSelector"]["matchLabels"], workload["spec"]["selector"]["matchLabels"],
            "{component}"
        );
        assert_eq!(spread[1]["labelSelector"]["matchLabels"], json!({"team": "finance"}), "{component}");
    }
    // Without a placement nothing is added.
    for object in build_all(&sample("minimal"), &Inputs::default()).objects {
        let pod = &object["spec"]["template"]["spec"];
        for field in ["nodeSelector", "tolerations", "topologySpreadConstraints", "priorityClassName", "affinity"] {
            assert!(pod.get(field).is_none(), "{field} in {}", object["metadata"]["name"]);
        }
    }
}
