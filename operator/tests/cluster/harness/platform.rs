//! A FinancialAgent installed in the test cluster, and what the tests read from it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

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
            .list(&self.namespace, crate::CHILD_KINDS, &crate::children_of(&self.name))
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
    let script = include_str!("../../../../config/argocd/health.lua");
    let lua = Lua::new();
    lua.globals().set("obj", lua.to_value(object).expect("to lua")).expect("global");
    let result: Table = lua.load(script).eval().expect("the script runs");
    (result.get("status").expect("status"), result.get("message").expect("message"))
}
