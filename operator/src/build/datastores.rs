//! The managed datastores: Redis and MongoDB StatefulSets with volumes and their Services. An
//! external datastore (`managed: false`) gets nothing here; the services read its URL from the
//! user's Secret.

use finagent_core::names::{Component, env, ports};
use serde_json::{Value, json};

use super::workloads::{credentials_secret_name, secret_keys};
use super::{child_name, metadata, resources, restricted_container_security, restricted_pod_security, selector};
use crate::validate::ValidatedAgent;

/// The official images run as user 999.
const DATASTORE_USER: i64 = 999;

/// The default images; `image` in the resource replaces them.
pub const REDIS_IMAGE: &str = "redis:7.2";

pub const MONGODB_IMAGE: &str = "mongo:7.0";

fn stateful_set(agent: &ValidatedAgent, component: Component, container: Value, storage: &str) -> Value {
    let name = child_name(agent, component);
    let mut object = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(agent, &name, component),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            "selector": {"matchLabels": selector(agent, component)},
            "template": {
                "metadata": {"labels": selector(agent, component)},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": restricted_pod_security(DATASTORE_USER),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}},
            }],
        },
    });
    super::place(agent, component, &mut object["spec"]["template"]["spec"]);
    object
}

fn service(agent: &ValidatedAgent, component: Component, port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(agent, &child_name(agent, component), component),
        "spec": {
            "selector": selector(agent, component),
            "ports": [{"name": component.as_str(), "port": port, "targetPort": port}],
        },
    })
}

/// Redis's start: its options as arguments, the password as configuration on standard input.
pub fn redis_command(dir: &str, port: u16) -> String {
    format!(
        "exec redis-server --appendonly yes --dir {dir} --port {port} - <<EOF\nrequirepass \"$REDIS_PASSWORD\"\nEOF\n"
    )
}

/// Redis with append-only persistence and a generated password.
pub fn redis(agent: &ValidatedAgent) -> Vec<Value> {
    if !agent.spec.redis.managed {
        return Vec::new();
    }
    let container = json!({
        "name": "redis",
        "image": agent.spec.redis.image.as_deref().unwrap_or(REDIS_IMAGE),
        // The password reaches Redis as configuration on its standard input (`-` as the last
        // argument), never on a command line that `ps` on the node shows; the shell execs Redis, so
        // it is the container's first process and receives SIGTERM itself.
        "command": ["sh", "-c", redis_command("/data", ports::REDIS)],
        "env": [{"name": env::REDIS_PASSWORD, "valueFrom": {"secretKeyRef": {"name": credentials_secret_name(agent), "key": secret_keys::REDIS_PASSWORD}}}],
        "ports": [{"name": "redis", "containerPort": ports::REDIS}],
        "readinessProbe": {"exec": {"command": ["sh", "-c", "REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli ping | grep -q PONG"]}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": ports::REDIS}, "periodSeconds": 10},
        "resources": resources(
            agent.spec.redis.resources.as_ref(),
            json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}),
        ),
        "securityContext": restricted_container_security(true),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    });
    vec![
        stateful_set(agent, Component::Redis, container, &agent.spec.redis.storage),
        service(agent, Component::Redis, ports::REDIS),
    ]
}

/// MongoDB with a generated root user.
pub fn mongodb(agent: &ValidatedAgent) -> Vec<Value> {
    if !agent.spec.mongodb.managed {
        return Vec::new();
    }
    let secret = credentials_secret_name(agent);
    let container = json!({
        "name": "mongodb",
        "image": agent.spec.mongodb.image.as_deref().unwrap_or(MONGODB_IMAGE),
        "args": ["--bind_ip_all", "--port", ports::MONGODB.to_string()],
        "env": [
            {"name": env::MONGO_INITDB_ROOT_USERNAME, "valueFrom": {"secretKeyRef": {"name": secret, "key": secret_keys::MONGODB_USERNAME}}},
            {"name": env::MONGO_INITDB_ROOT_PASSWORD, "valueFrom": {"secretKeyRef": {"name": secret, "key": secret_keys::MONGODB_PASSWORD}}},
        ],
        "ports": [{"name": "mongodb", "containerPort": ports::MONGODB}],
        "readinessProbe": {"tcpSocket": {"port": ports::MONGODB}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": ports::MONGODB}, "periodSeconds": 10},
        "resources": resources(
            agent.spec.mongodb.resources.as_ref(),
            json!({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}}),
        ),
        // The entrypoint writes its init scripts under the data and temporary folders only.
        "securityContext": restricted_container_security(false),
        "volumeMounts": [{"name": "data", "mountPath": "/data/db"}, {"name": "tmp", "mountPath": "/tmp"}],
    });
    vec![
        stateful_set(agent, Component::Mongodb, container, &agent.spec.mongodb.storage),
        service(agent, Component::Mongodb, ports::MONGODB),
    ]
}
