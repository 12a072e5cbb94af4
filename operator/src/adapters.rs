//! The thin adapters behind the decisions: the queue depth read from each instance's Redis, and
//! the API's `/readyz` probed through its Service.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use finagent_core::names::{Component, InstanceName};
use finagent_platform::queue::redis::RedisQueue;
use finagent_platform::queue::{JobQueue, QueuePolicy};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use tokio::sync::Mutex;

use crate::build::child_name;
use crate::build::workloads::{credentials_secret_name, secret_keys};
use crate::reconcile::{HealthProbe, QueueDepthSource};
use crate::validate::ValidatedAgent;

/// How long one reading may take before it counts as unreachable.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads queue depths from each instance's Redis, keeping one connection per instance.
#[derive(Clone)]
pub struct RedisDepth {
    client: Client,
    queues: Arc<Mutex<HashMap<String, (String, RedisQueue)>>>,
}

impl std::fmt::Debug for RedisDepth {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RedisDepth").finish_non_exhaustive()
    }
}

impl RedisDepth {
    /// Reads Secrets with `client` to find each Redis.
    pub fn new(client: Client) -> Self {
        Self { client, queues: Arc::default() }
    }

    async fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace).get_opt(name).await.ok()??;
        let bytes = secret.data?.get(key)?.0.clone();
        String::from_utf8(bytes).ok()
    }

    async fn url(&self, agent: &ValidatedAgent) -> Option<String> {
        match &agent.spec.redis.url_secret_ref {
            Some(reference) if !agent.spec.redis.managed => {
                self.secret_value(&agent.namespace, &reference.name, &reference.key).await
            }
            _ => {
                let password = self
                    .secret_value(&agent.namespace, &credentials_secret_name(agent), secret_keys::REDIS_PASSWORD)
                    .await?;
                let host = format!("{}.{}.svc", child_name(agent, Component::Redis), agent.namespace);
                Some(format!("redis://:{password}@{host}:{}/", finagent_core::names::ports::REDIS))
            }
        }
    }

    async fn read(&self, agent: &ValidatedAgent) -> Option<u64> {
        let key = format!("{}/{}", agent.namespace, agent.name);
        let url = self.url(agent).await?;
        let mut queues = self.queues.lock().await;
        let fresh = !matches!(queues.get(&key), Some((known, _)) if *known == url);
        if fresh {
            let instance: InstanceName = agent.name.parse().ok()?;
            let queue = RedisQueue::connect(&url, &instance, QueuePolicy::default()).await.ok()?;
            queues.insert(key.clone(), (url, queue));
        }
        let (_, queue) = queues.get(&key)?;
        match queue.depth().await {
            Ok(depth) => Some(depth.total()),
            Err(error) => {
                tracing::warn!(%error, agent = %agent.name, "failed to read the queue depth");
                queues.remove(&key);
                None
            }
        }
    }
}

impl QueueDepthSource for RedisDepth {
    fn depth<'a>(&'a self, agent: &'a ValidatedAgent) -> BoxFuture<'a, Option<u64>> {
        Box::pin(async move { tokio::time::timeout(READ_TIMEOUT, self.read(agent)).await.ok().flatten() })
    }
}

/// Probes `GET <healthCheckPath>` on the API's Service.
#[derive(Clone, Debug)]
pub struct ServiceProbe {
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<hyper::body::Bytes>,
    >,
}

impl Default for ServiceProbe {
    fn default() -> Self {
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Self { http }
    }
}

impl HealthProbe for ServiceProbe {
    fn ready<'a>(&'a self, agent: &'a ValidatedAgent) -> BoxFuture<'a, Option<bool>> {
        Box::pin(async move {
            let url =
                format!("{}{}", crate::build::workloads::api_service_url(agent), agent.spec.rollout.health_check_path);
            let uri: hyper::Uri = url.parse().ok()?;
            match tokio::time::timeout(READ_TIMEOUT, self.http.get(uri)).await {
                Ok(Ok(response)) => Some(response.status().is_success()),
                // Unreachable or silent counts as not ready: a rollout is never judged healthy blind.
                _ => Some(false),
            }
        })
    }
}
