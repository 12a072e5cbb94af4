//! The Helm chart agrees with the code: it installs the CRD the operator generates, grants exactly
//! the RBAC of `config/rbac/operator.yaml`, runs the operator the way its image and NetworkPolicies
//! expect, and renders its optional monitoring objects from the same files the suite checks with
//! promtool. Rendered with the real `helm template` (scripts/test.sh provides it).

use std::path::Path;
use std::process::Command;

use finagent_core::names::{Component, labels, ports};
use finagent_operator::crd::FinancialAgent;
use finagent_platform::testkit;
use kube::CustomResourceExt;
use serde_json::{Value, json};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/finagent-operator");
const NAMESPACE: &str = "finagent-system";

/// The rendered objects, or `None` when this run has no helm.
fn render(extra: &[&str]) -> Option<Vec<Value>> {
    let helm = testkit::helm()?;
    let output = Command::new(helm)
        .args(["template", "finagent-operator", CHART, "--namespace", NAMESPACE])
        .args(extra)
        .output()
        .expect("helm runs");
    assert!(output.status.success(), "helm template failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(documents(&String::from_utf8(output.stdout).expect("utf-8")))
}

/// The non-empty documents of a multi-document YAML text.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|document| {
            let value: Value = serde::Deserialize::deserialize(document).expect("yaml");
            (!value.is_null()).then_some(value)
        })
        .collect()
}

fn everything() -> Option<Vec<Value>> {
    render(&["--values", &format!("{CHART}/ci/everything-values.yaml")])
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects.iter().find(|object| object["kind"] == kind).unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn kinds(objects: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> =
        objects.iter().map(|object| object["kind"].as_str().expect("kind").to_owned()).collect();
    kinds.sort();
    kinds
}

fn numbers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(number) => json!(number.as_f64()),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), numbers_as_floats(v))).collect()),
        other => other.clone(),
    }
}

fn config_rbac() -> Vec<Value> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rbac/operator.yaml")).expect("rbac");
    documents(&text)
}

#[test]
fn the_chart_installs_the_crd_the_operator_generates_and_keeps_it_on_uninstall() {
    let Some(objects) = render(&[]) else { return };
    let mut rendered = find(&objects, "CustomResourceDefinition").clone();
    assert_eq!(rendered["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    let metadata = rendered["metadata"].as_object_mut().expect("metadata");
    metadata.remove("annotations");
    metadata.remove("labels");
    let mut generated = serde_json::to_value(FinancialAgent::crd()).expect("crd");
    finagent_operator::polish_descriptions(&mut generated);
    // Helm's YAML round trip writes 1.0 as 1: compare numbers as numbers.
    assert!(
        numbers_as_floats(&rendered) == numbers_as_floats(&generated),
        "the chart's CRD is stale: run scripts/generate.sh"
    );

    let Some(without) = render(&["--set", "crds.install=false"]) else { return };
    assert!(!kinds(&without).contains(&"CustomResourceDefinition".to_owned()));
}

#[test]
fn the_chart_grants_exactly_the_rbac_of_config_rbac() {
    let Some(objects) = render(&[]) else { return };
    let config = config_rbac();
    for kind in ["ClusterRole", "Role"] {
        assert_eq!(find(&objects, kind)["rules"], find(&config, kind)["rules"], "{kind} rules differ");
    }
    let account = find(&objects, "ServiceAccount");
    for binding in ["ClusterRoleBinding", "RoleBinding"] {
        let subject = &find(&objects, binding)["subjects"][0];
        assert_eq!(subject["name"], account["metadata"]["name"], "{binding}");
        assert_eq!(subject["namespace"], NAMESPACE, "{binding}");
    }
    let Some(without) = render(&["--set", "rbac.create=false"]) else { return };
    assert!(!kinds(&without).iter().any(|kind| kind.contains("Role")), "{:?}", kinds(&without));
    // Watching one namespace: the same rules as a Role there, and nothing cluster-wide.
    let Some(namespaced) = render(&["--set", "watchNamespace=receipts"]) else { return };
    assert!(!kinds(&namespaced).iter().any(|kind| kind.starts_with("Cluster")), "{:?}", kinds(&namespaced));
    let roles: Vec<&Value> = namespaced.iter().filter(|object| object["kind"] == "Role").collect();
    let watched = roles.iter().find(|role| role["metadata"]["namespace"] == "receipts").expect("a Role in receipts");
    assert_eq!(watched["rules"], find(&config, "ClusterRole")["rules"]);
    let bindings: Vec<&Value> = namespaced.iter().filter(|object| object["kind"] == "RoleBinding").collect();
    let binding =
        bindings.iter().find(|b| b["metadata"]["namespace"] == "receipts").expect("a RoleBinding in receipts");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
}

#[test]
fn the_operator_runs_restricted_with_its_lease_metrics_port_and_network_policy_label() {
    let Some(objects) = render(&[]) else { return };
    let deployment = find(&objects, "Deployment");
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"][labels::ROLE], labels::OPERATOR_ROLE, "the datastores' NetworkPolicy peer");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], format!("ghcr.io/finagent/operator:{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(container["args"], json!(["run"]));
    let env = |name: &str| {
        container["env"].as_array().expect("env").iter().find(|var| var["name"] == name).cloned().unwrap_or_default()
    };
    assert_eq!(env("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
    assert_eq!(env("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    assert_eq!(env("LEASE_NAME")["value"], "finagent-operator");
    assert_eq!(env("ADMIN_LISTEN")["value"], format!("0.0.0.0:{}", ports::ADMIN));
    assert_eq!(container["ports"][0]["containerPort"], ports::ADMIN);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(container["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    // The pod runs as the user the image declares.
    let user = pod["spec"]["securityContext"]["runAsUser"].as_i64().expect("runAsUser");
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains(&format!("USER {user}:{user}")), "operator/Dockerfile runs as {user}");
    let service = find(&objects, "Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]);
    // One replica: no disruption budget; two: one.
    assert!(!kinds(&objects).contains(&"PodDisruptionBudget".to_owned()));
}

#[test]
fn monitoring_objects_render_only_when_enabled_and_match_the_checked_files() {
    let Some(defaults) = render(&[]) else { return };
    assert_eq!(
        kinds(&defaults),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ]
    );
    let Some(objects) = everything() else { return };
    let rule = find(&objects, "PrometheusRule");
    let alerts: Value = serde_yaml::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/prometheus/alerts.yaml"))
            .expect("alerts"),
    )
    .expect("yaml");
    assert_eq!(rule["spec"], alerts, "the PrometheusRule carries config/prometheus/alerts.yaml");

    let dashboards: Vec<&Value> = objects.iter().filter(|object| object["kind"] == "ConfigMap").collect();
    let mut names: Vec<String> =
        dashboards.iter().flat_map(|map| map["data"].as_object().expect("data").keys().cloned()).collect();
    names.sort();
    assert_eq!(names, ["api.json", "ocr-pipeline.json", "operator.json"]);
    assert!(dashboards.iter().all(|map| map["metadata"]["labels"]["grafana_dashboard"] == "1"));

    // The PodMonitor finds the pods the operator builds, on the ports it names.
    let monitor = find(&objects, "PodMonitor");
    assert_eq!(monitor["spec"]["selector"]["matchLabels"][labels::NAME], labels::APP_NAME);
    assert_eq!(
        monitor["spec"]["selector"]["matchExpressions"][0]["values"],
        json!([Component::ApiServer.as_str(), Component::OcrWorker.as_str()])
    );
    let mut resource = FinancialAgent::new("shop", Default::default());
    resource.metadata.namespace = Some("finance".into());
    resource.metadata.uid = Some("5f0c3a52-1111-4222-8333-444455556666".into());
    let agent = finagent_operator::validate::validate(&resource).expect("valid");
    let port_names = |template: k8s_openapi::api::core::v1::PodTemplateSpec| -> Vec<String> {
        template.spec.expect("spec").containers[0]
            .ports
            .clone()
            .expect("ports")
            .into_iter()
            .filter_map(|port| port.name)
            .collect()
    };
    let endpoints: Vec<&str> = monitor["spec"]["podMetricsEndpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .map(|endpoint| endpoint["port"].as_str().expect("port"))
        .collect();
    // Both serve their metrics on their admin port only (the API's own port has none).
    assert_eq!(endpoints, ["admin"]);
    for template in [
        finagent_operator::build::workloads::api_template(&agent),
        finagent_operator::build::workloads::worker_template(&agent),
    ] {
        assert!(port_names(template).contains(&"admin".to_owned()));
    }
    // The ServiceMonitor names the job the operator alerts expect.
    let service = find(&objects, "Service");
    let job_label = find(&objects, "ServiceMonitor")["spec"]["jobLabel"].as_str().expect("jobLabel");
    assert_eq!(service["metadata"]["labels"][job_label], "finagent-operator");
    assert!(kinds(&objects).contains(&"PodDisruptionBudget".to_owned()), "two replicas get a budget");
}

#[test]
fn the_chart_version_follows_the_workspace() {
    let chart: Value =
        serde_yaml::from_str(&std::fs::read_to_string(Path::new(CHART).join("Chart.yaml")).expect("Chart.yaml"))
            .expect("yaml");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"), "the default operator image tag is its version");
}

#[test]
fn the_admission_policy_carries_the_allow_lists_and_follows_the_watched_namespace() {
    let Some(defaults) = render(&[]) else { return };
    let policy = find(&defaults, "ValidatingAdmissionPolicy");
    let variables = policy["spec"]["variables"].as_array().expect("variables");
    let variable = |name: &str| variables.iter().find(|v| v["name"] == name).expect("variable")["expression"].clone();
    assert_eq!(variable("imagePrefixes"), "[]", "any image by default");
    assert!(policy["spec"]["validations"].to_string().contains("-snippet"), "snippets are always refused");
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let binding = find(&defaults, "ValidatingAdmissionPolicyBinding");
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(binding["spec"]["validationActions"], serde_json::json!(["Deny"]));
    assert!(binding["spec"].get("matchResources").is_none(), "every namespace by default");

    let Some(set) = render(&[
        "--set-json",
        r#"admissionPolicy.allowedImagePrefixes=["ghcr.io/finagent/"]"#,
        "--set",
        "watchNamespace=receipts",
    ]) else {
        return;
    };
    let policy = find(&set, "ValidatingAdmissionPolicy");
    let variables = policy["spec"]["variables"].as_array().expect("variables");
    let prefixes = variables.iter().find(|v| v["name"] == "imagePrefixes").expect("prefixes");
    assert_eq!(prefixes["expression"], r#"["ghcr.io/finagent/"]"#);
    let binding = find(&set, "ValidatingAdmissionPolicyBinding");
    assert_eq!(
        binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "receipts"
    );

    let Some(off) = render(&["--set", "admissionPolicy.enabled=false"]) else { return };
    assert!(!kinds(&off).iter().any(|kind| kind.starts_with("ValidatingAdmissionPolicy")));
}
