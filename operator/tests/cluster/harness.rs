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

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("binds").local_addr().expect("address").port()
}

/// A real HTTP server on loopback answering the API's health check: 200 until a test makes it
/// fail (`set_status(503)`), as the pods of a broken version would.
#[derive(Debug)]
pub struct HealthServer {
    pub port: u16,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
}

impl HealthServer {
    pub fn start() -> Self {
        Self::answering(200)
    }

    /// A server answering `status` from the start.
    pub fn answering(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let port = listener.local_addr().expect("address").port();
        let answer = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(status));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut buffer = [0u8; 2048];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut buffer);
                let response = match shared.load(std::sync::atomic::Ordering::SeqCst) {
                    200 => "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nready".to_owned(),
                    code => format!("HTTP/1.1 {code} Failing\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot ready"),
                };
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Self { port, status: answer }
    }

    /// What the health check answers from now on.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A real Redis server on loopback, stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    password: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(port: u16, password: Option<&str>) -> Self {
        let mut command = Command::new("redis-server");
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("redis-server starts");
        let server = Self { port, password: password.map(str::to_owned), child: Some(child) };
        wait_for(Duration::from_secs(10), "redis to answer", || (server.cli(&["PING"]).trim() == "PONG").then_some(()));
        server
    }

    /// Runs `redis-cli` against it and returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string(), "--no-auth-warning"]);
        if let Some(password) = &self.password {
            command.args(["-a", password]);
        }
        let output = command.args(args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`STOP`) or thaws (`CONT`) the server: connections stay open, nothing is answered.
    pub fn freeze(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().expect("kill").success());
    }

    /// Whether a client's command sits unread in one of the server's sockets (`/proc/net/tcp`: an
    /// established connection on the server's port with bytes in its receive queue).
    pub fn has_unread_request(&self) -> bool {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let port = format!("{:04X}", self.port);
        table.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(queues)) = (fields.get(1), fields.get(3), fields.get(4)) else {
                return false;
            };
            let receive = queues.split(':').nth(1).and_then(|hex| u64::from_str_radix(hex, 16).ok()).unwrap_or(0);
            local.ends_with(&format!(":{port}")) && *state == "01" && receive > 0
        })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `operator run`, killed on drop.
#[derive(Debug)]
pub struct Operator {
    pub admin_port: u16,
    pub identity: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Operator {
    /// Starts the operator watching `namespace`, with `args` added.
    pub fn start(cluster: &Cluster, namespace: &str, identity: &str, args: &[String]) -> Self {
        let admin_port = free_port();
        let log = cluster.work.join(format!("operator-{namespace}-{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_operator"))
            .args(["--log-format", "plain", "run", "--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .args(["--lease-namespace", SYSTEM_NAMESPACE, "--lease-name", &format!("lease-{namespace}")])
            .args(["--identity", identity, "--namespace", namespace])
            .args(args)
            .env("KUBECONFIG", &cluster.operator_kubeconfig)
            .env("RUST_LOG", "info,kube=warn,finagent_operator::adapters=debug")
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("the operator starts");
        let operator = Self { admin_port, identity: identity.to_owned(), child: Some(child), log };
        wait_for(Duration::from_secs(20), "the operator's admin port", || operator.scrape());
        operator
    }

    /// The operator's `/metrics`, or `None` when it does not answer.
    /// The operator's metrics page; `None` when it cannot be read (the process is gone). A busy
    /// machine (every cluster test at once on two cores) can delay one answer: three tries.
    pub fn scrape(&self) -> Option<String> {
        let once = || -> Option<String> {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: operator\r\nConnection: close\r\n\r\n").ok()?;
            let mut text = String::new();
            stream.read_to_string(&mut text).ok()?;
            text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
        };
        (0..3).find_map(|attempt| {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            once()
        })
    }

    /// The sum of the samples of `name` whose labels contain every `labels` pair.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let Some(text) = self.scrape() else { return f64::NAN };
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| line.split(['{', ' ']).next() == Some(name))
            .filter(|line| labels.iter().all(|(key, value)| line.contains(&format!("{key}=\"{value}\""))))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Kubernetes API requests so far, by verb.
    pub fn requests(&self) -> Vec<(String, f64)> {
        let text = self.scrape().unwrap_or_default();
        text.lines()
            .filter(|line| line.starts_with("finagent_operator_kubernetes_requests_total{"))
            .filter_map(|line| {
                let verb = line.split("verb=\"").nth(1)?.split('"').next()?.to_owned();
                Some((verb, line.rsplit(' ').next()?.parse().ok()?))
            })
            .collect()
    }

    pub fn leads(&self) -> bool {
        self.metric("finagent_operator_leader", &[]) == 1.0
    }

    pub fn reconciles(&self) -> f64 {
        self.metric("finagent_operator_reconciles_total", &[])
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal that does not end the process (`STOP`, `CONT`).
    pub fn pause(&self, signal: &str) {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Sends a signal (`KILL`, `TERM`) and waits for the process to end.
    pub fn signal(&mut self, signal: &str) {
        let status =
            Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- the last lines of operator {} ({:?}):", self.identity, self.log);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One platform under test: a namespace, its Redis and health server, an operator, a resource.
#[derive(Debug)]
pub struct Platform {
    pub cluster: &'static Cluster,
    pub namespace: String,
    pub name: String,
    pub redis: RedisServer,
    pub health: HealthServer,
    /// Answers the workers' `/readyz` (200 until a test makes it fail).
    pub worker_health: HealthServer,
    pub operator: Operator,
}

/// The generated credentials a test gives its platform up front (so its Redis can require the
/// password the workers would use).
pub const REDIS_PASSWORD: &str = "cluster-tier-redis-password";

pub fn credentials(namespace: &str, name: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{name}-credentials"), "namespace": namespace},
        "stringData": {"jwt-secret-key": "cluster-tier-jwt-key-of-at-least-32-bytes", "redis-password": REDIS_PASSWORD,
                       "mongodb-username": "finagent", "mongodb-password": "cluster-tier-mongodb"},
    })
    .to_string()
}

/// `--connect-to` for an instance's Redis, API Service and workers' admin Service, the last two
/// answered by one health server.
pub fn connect_to(namespace: &str, name: &str, redis: u16, health: u16) -> String {
    connect_to_with(namespace, name, redis, health, health)
}

/// The same with the workers' health check answered by a server of its own.
pub fn connect_to_with(namespace: &str, name: &str, redis: u16, api_health: u16, worker_health: u16) -> String {
    format!(
        "--connect-to={name}-redis.{namespace}.svc:6379=127.0.0.1:{redis},{name}-api-server.{namespace}.svc:80=127.0.0.1:{api_health},{name}-ocr-worker.{namespace}.svc:9090=127.0.0.1:{worker_health}"
    )
}

pub fn resource(namespace: &str, name: &str, spec: &Value) -> String {
    json!({"apiVersion": "finagent.io/v1alpha1", "kind": "FinancialAgent",
           "metadata": {"name": name, "namespace": namespace}, "spec": spec})
    .to_string()
}

impl Platform {
    /// Starts everything in a fresh namespace and applies the resource with `spec`.
    pub fn start(cluster: &'static Cluster, namespace: &str, name: &str, spec: Value) -> Self {
        cluster.namespace(namespace);
        Self::start_in(cluster, namespace, name, spec)
    }

    /// The same in a namespace the test has prepared.
    pub fn start_in(cluster: &'static Cluster, namespace: &str, name: &str, spec: Value) -> Self {
        Self::start_with(cluster, namespace, name, spec, HealthServer::start())
    }

    /// The same, with the API's health check answered by `health`.
    pub fn start_with(
        cluster: &'static Cluster,
        namespace: &str,
        name: &str,
        spec: Value,
        health: HealthServer,
    ) -> Self {
        let platform = Self::start_without_resource(cluster, namespace, name, health);
        cluster.apply_ok(&resource(namespace, name, &spec));
        platform
    }

    /// The credentials, Redis, health server and operator for `name` in a namespace the test has
    /// prepared, but no resource: for a test that has it applied some other way (from Git).
    pub fn start_without_resource(
        cluster: &'static Cluster,
        namespace: &str,
        name: &str,
        health: HealthServer,
    ) -> Self {
        cluster.apply_ok(&credentials(namespace, name));
        let worker_health = HealthServer::start();
        let redis = RedisServer::start(free_port(), Some(REDIS_PASSWORD));
        let operator = Operator::start(
            cluster,
            namespace,
            "a",
            &[connect_to_with(namespace, name, redis.port, health.port, worker_health.port)],
        );
        Self { cluster, namespace: namespace.to_owned(), name: name.to_owned(), redis, health, worker_health, operator }
    }

    pub fn agent(&self) -> Value {
        self.cluster.get(&self.namespace, "financialagent", &self.name).expect("the resource exists")
    }

    /// A condition's status and reason.
    pub fn condition(&self, kind: &str) -> Option<(String, String, String)> {
        condition(&self.agent(), kind)
    }

    /// Waits for a condition to have `status` (and `reason`, when given).
    pub fn wait_condition(&self, timeout: Duration, kind: &str, status: &str, reason: Option<&str>) -> Duration {
        let started = Instant::now();
        wait_for(timeout, &format!("{kind}={status} {reason:?} on {}/{}", self.namespace, self.name), || {
            let (have, why, _) = self.condition(kind)?;
            (have == status && reason.is_none_or(|reason| reason == why)).then_some(())
        });
        started.elapsed()
    }

    pub fn deployment(&self, component: &str) -> Value {
        self.cluster
            .get(&self.namespace, "deployment", &format!("{}-{component}", self.name))
            .expect("the Deployment exists")
    }

    /// The image a component's Deployment runs.
    pub fn image(&self, component: &str) -> String {
        self.deployment(component)["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An entry of the last known good ConfigMap (`None` while it does not exist).
    pub fn last_good(&self, key: &str) -> Option<String> {
        let map = self.cluster.get(&self.namespace, "configmap", &format!("{}-last-known-good", self.name))?;
        map["data"][key].as_str().map(str::to_owned)
    }

    /// The operator's rollbacks of this instance so far.
    pub fn rollbacks(&self) -> f64 {
        let key = format!("{}/{}", self.namespace, self.name);
        self.operator.metric("finagent_operator_rollbacks_total", &[("financialagent", &key)])
    }

    pub fn worker_replicas(&self) -> i64 {
        self.deployment("ocr-worker")["spec"]["replicas"].as_i64().unwrap_or(-1)
    }

    pub fn patch_spec(&self, patch: Value) {
        self.cluster.kubectl_ok(&[
            "-n",
            &self.namespace,
            "patch",
            "financialagent",
            &self.name,
            "--type",
            "merge",
            "-p",
            &json!({"spec": patch}).to_string(),
        ]);
    }

    /// `kind/name` → resourceVersion of the resource and every child.
    pub fn resource_versions(&self) -> Vec<(String, String)> {
        let mut versions: Vec<(String, String)> = self
            .cluster
            .list(&self.namespace, super::CHILD_KINDS, &super::children_of(&self.name))
            .iter()
            .chain(std::iter::once(&self.agent()))
            .map(|object| {
                (
                    format!(
                        "{}/{}",
                        object["kind"].as_str().unwrap_or_default(),
                        object["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    object["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        versions.sort();
        versions
    }
}

/// A condition of a resource as (status, reason, message).
pub fn condition(agent: &Value, kind: &str) -> Option<(String, String, String)> {
    let conditions = agent["status"]["conditions"].as_array()?;
    let found = conditions.iter().find(|condition| condition["type"] == kind)?;
    let text = |key: &str| found[key].as_str().unwrap_or_default().to_owned();
    Some((text("status"), text("reason"), text("message")))
}

/// The Argo CD health check on an object: (status, message).
pub fn argocd_health(object: &Value) -> (String, String) {
    use mlua::{Lua, LuaSerdeExt, Table};
    let script = include_str!("../../../config/argocd/health.lua");
    let lua = Lua::new();
    lua.globals().set("obj", lua.to_value(object).expect("to lua")).expect("global");
    let result: Table = lua.load(script).eval().expect("the script runs");
    (result.get("status").expect("status"), result.get("message").expect("message"))
}
