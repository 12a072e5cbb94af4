//! The cluster tier's harness: the test control plane that `scripts/test.sh` starts (a real
//! kube-apiserver, controller-manager and scheduler, kwok for the nodes), the chart installed once
//! with `helm`, and for each test its own namespace (PodSecurity `restricted` enforced), its own
//! real `operator run` process — authenticated with a token of the chart's ServiceAccount, so the
//! chart's RBAC is what is tested — its own real Redis and a real HTTP server answering the API's
//! health check.
//!
//! The operator runs outside the cluster and the pods are simulated, so the in-cluster addresses
//! it reaches (`<instance>-redis.<ns>.svc:6379`, `<instance>-api-server.<ns>.svc:80`) are mapped to
//! those loopback servers with its `--connect-to` option.

mod operator;
mod platform;
mod servers;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use operator::*;
pub use platform::*;
pub use servers::*;

/// Where the control plane is, from the environment `scripts/test.sh` sets.
#[derive(Debug)]
pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    /// A kubeconfig with a token of the chart's ServiceAccount, for the operator.
    pub operator_kubeconfig: PathBuf,
    pub work: PathBuf,
}

/// The chart's release, namespace and ServiceAccount.
pub const RELEASE: &str = "finagent-operator";

pub const SYSTEM_NAMESPACE: &str = "finagent-system";

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).map(PathBuf::from).filter(|path| path.exists())
}

/// The cluster, with the chart installed (once per test binary); `None` (the test is skipped)
/// when no control plane was started, unless the suite requires one.
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| {
            let required = std::env::var_os("FINAGENT_TEST_REQUIRE_CLUSTER").is_some();
            let (Some(kubeconfig), Some(kubectl), Some(helm)) = (
                env_path("FINAGENT_TEST_KUBECONFIG"),
                env_path("FINAGENT_TEST_KUBECTL"),
                env_path("FINAGENT_TEST_HELM"),
            ) else {
                assert!(!required, "FINAGENT_TEST_REQUIRE_CLUSTER is set but the control plane is not");
                eprintln!("no test control plane (FINAGENT_TEST_KUBECONFIG); skipping the cluster tier");
                return None;
            };
            Some(install(kubeconfig, kubectl, helm))
        })
        .as_ref()
}

fn install(kubeconfig: PathBuf, kubectl: PathBuf, helm: PathBuf) -> Cluster {
    let work = kubeconfig.parent().expect("a folder").join("cluster-tier");
    std::fs::create_dir_all(&work).expect("work folder");
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/finagent-operator");
    let run = |program: &Path, args: &[&str]| {
        let output = Command::new(program).args(args).env("KUBECONFIG", &kubeconfig).output().expect("runs");
        assert!(output.status.success(), "{program:?} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(
        &helm,
        &[
            "upgrade",
            "--install",
            RELEASE,
            chart,
            "-n",
            SYSTEM_NAMESPACE,
            "--create-namespace",
            // The admission policy with an image allow-list (a test checks it refuses others).
            "--set-json",
            r#"admissionPolicy.allowedImagePrefixes=["ghcr.io/finagent/","redis:","mongo:","prom/prometheus:"]"#,
            "--wait",
            "--timeout",
            "120s",
        ],
    );
    run(&kubectl, &["wait", "--for=condition=Established", "--timeout=60s", "crd/financialagents.finagent.io"]);
    // Volumes for the datastores' claims (no provisioner runs here): statically provisioned, 80
    // available at the start of a run (a volume released by an earlier run is not reused).
    let volumes: Value =
        serde_json::from_str(&run(&kubectl, &["get", "persistentvolumes", "-o", "json"])).expect("json");
    let available = volumes["items"]
        .as_array()
        .map_or(0, |items| items.iter().filter(|volume| volume["status"]["phase"] == "Available").count());
    let run_id = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_secs());
    for index in available..80 {
        let name = format!("cluster-tier-{run_id}-{index}");
        let volume = json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": "20Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": format!("/tmp/{name}")},
                     "persistentVolumeReclaimPolicy": "Retain"},
        });
        let output = pipe(&kubectl, &kubeconfig, &["apply", "-f", "-"], &volume.to_string());
        assert!(output.status.success(), "volume: {}", String::from_utf8_lossy(&output.stderr));
    }
    let token = run(&kubectl, &["-n", SYSTEM_NAMESPACE, "create", "token", RELEASE, "--duration", "4h"]);
    let server = run(&kubectl, &["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"]);
    let ca = run(
        &kubectl,
        &["config", "view", "--minify", "--raw", "-o", "jsonpath={.clusters[0].cluster.certificate-authority}"],
    );
    let operator_kubeconfig = work.join("operator.kubeconfig");
    std::fs::write(
        &operator_kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{server}\", certificate-authority: \"{ca}\"}}\nusers:\n- name: operator\n  user: {{token: \"{}\"}}\ncontexts:\n- name: test\n  context: {{cluster: test, user: operator}}\ncurrent-context: test\n",
            token.trim()
        ),
    )
    .expect("operator kubeconfig");
    Cluster { kubeconfig, kubectl, operator_kubeconfig, work }
}

fn pipe(program: &Path, kubeconfig: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writes");
    child.wait_with_output().expect("runs")
}

impl Cluster {
    /// Runs kubectl; the output whatever it says.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl).args(args).env("KUBECONFIG", &self.kubeconfig).output().expect("kubectl runs")
    }

    /// Runs kubectl and returns its standard output; panics when it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        assert!(output.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `kubectl apply -f -` of a JSON or YAML document; the output whatever it says.
    pub fn apply(&self, document: &str) -> Output {
        pipe(&self.kubectl, &self.kubeconfig, &["apply", "-f", "-"], document)
    }

    /// Applies and panics when refused.
    pub fn apply_ok(&self, document: &str) {
        let output = self.apply(document);
        assert!(output.status.success(), "apply refused: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// An object as JSON (`None` when it does not exist).
    pub fn get(&self, namespace: &str, kind: &str, name: &str) -> Option<Value> {
        let output = self.kubectl(&["-n", namespace, "get", kind, name, "-o", "json"]);
        output.status.success().then(|| serde_json::from_slice(&output.stdout).expect("json"))
    }

    /// Every object of `kinds` (comma-separated) matching `selector`.
    pub fn list(&self, namespace: &str, kinds: &str, selector: &str) -> Vec<Value> {
        let text = self.kubectl_ok(&["-n", namespace, "get", kinds, "-l", selector, "-o", "json"]);
        let list: Value = serde_json::from_str(&text).expect("json");
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// A fresh namespace with PodSecurity `restricted` enforced (one left by an earlier run
    /// against the same control plane is deleted first).
    pub fn namespace(&self, name: &str) {
        if self.get("default", "namespace", name).is_some() {
            self.kubectl_ok(&["delete", "namespace", name, "--wait=true", "--timeout=120s"]);
        }
        let namespace = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }},
        });
        self.apply_ok(&namespace.to_string());
    }

    /// Events in a namespace as (type, reason, note, regarding name).
    pub fn events(&self, namespace: &str) -> Vec<(String, String, String, String)> {
        let text = self.kubectl_ok(&["-n", namespace, "get", "events.events.k8s.io", "-o", "json"]);
        let list: Value = serde_json::from_str(&text).expect("json");
        list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|event| {
                let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
                (text(&event["type"]), text(&event["reason"]), text(&event["note"]), text(&event["regarding"]["name"]))
            })
            .collect()
    }
}

/// One write the API server's audit log recorded.
#[derive(Clone, Debug)]
pub struct AuditedWrite {
    pub received: chrono::DateTime<chrono::Utc>,
    pub user_agent: String,
    pub verb: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: i64,
    /// What was sent (the audit policy keeps request bodies).
    pub body: Value,
}

impl Cluster {
    /// The writes the API server's audit log recorded from operators (ServiceAccounts), leases
    /// left out (`scripts/controlplane.sh` keeps that log).
    pub fn audited_writes(&self) -> Vec<AuditedWrite> {
        let path = self.kubeconfig.parent().expect("folder").join("audit.log");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|entry| {
                let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
                Some(AuditedWrite {
                    received: entry["requestReceivedTimestamp"].as_str()?.parse().ok()?,
                    user_agent: text(&entry["userAgent"]),
                    verb: text(&entry["verb"]),
                    resource: text(&entry["objectRef"]["resource"]),
                    subresource: text(&entry["objectRef"]["subresource"]),
                    namespace: text(&entry["objectRef"]["namespace"]),
                    name: text(&entry["objectRef"]["name"]),
                    code: entry["responseStatus"]["code"].as_i64().unwrap_or(0),
                    body: entry["requestObject"].clone(),
                })
            })
            .collect()
    }
}

/// Polls `check` every 200 ms until it gives a value; panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
