//! The thin adapters behind the decisions: the queue depth read from each instance's Redis, and
//! the API's health check probed through its Service.
//!
//! Both reach in-cluster addresses (`<service>.<namespace>.svc:<port>`). An operator running
//! outside the cluster (development, or the test control plane, whose pods are simulated) cannot
//! resolve those; [`ConnectTo`] maps such an address to one it can reach, the way `curl
//! --connect-to` does. Empty by default: in a cluster nothing is rewritten.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use finagent_core::names::{Component, InstanceName};
use finagent_platform::queue::redis::QueueDepthReader;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use tokio::sync::Mutex;

use crate::build::child_name;
use crate::build::workloads::{credentials_secret_name, secret_keys};
use crate::reconcile::{HealthProbe, ProbeTarget, QueueDepthSource};
use crate::validate::ValidatedAgent;

/// How long one reading may take before it counts as unreachable.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// `host:port` → `host:port` rewrites for addresses the operator cannot reach as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectTo {
    exact: HashMap<String, String>,
    /// `from` addresses with one `*` (any characters), in the order given.
    patterns: Vec<(String, String, String)>,
}

impl ConnectTo {
    /// Parses `from=to` pairs, e.g. `shop-redis.finance.svc:6379=127.0.0.1:6380`. A `from` host may
    /// hold one `*` standing for any characters (`*-redis.finance.svc:6379=127.0.0.1:6380` sends
    /// every instance's Redis in `finance` there), so instances created after the start are
    /// reached too. An exact address wins over a pattern; patterns are tried in the order given.
    pub fn parse(pairs: &[String]) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut patterns = Vec::new();
        for pair in pairs.iter().flat_map(|pairs| pairs.split(',')).filter(|pair| !pair.trim().is_empty()) {
            let (from, to) = pair
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("--connect-to {pair:?}: expected HOST:PORT=HOST:PORT"))?;
            for side in [from, to] {
                if side.rsplit_once(':').is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err()) {
                    return Err(format!("--connect-to {pair:?}: {side:?} is not HOST:PORT"));
                }
            }
            match from.split_once('*') {
                Some((_, after)) if after.contains('*') => {
                    return Err(format!("--connect-to {pair:?}: at most one * in an address"));
                }
                Some((before, after)) => patterns.push((before.to_owned(), after.to_owned(), to.to_owned())),
                None => {
                    map.insert(from.to_owned(), to.to_owned());
                }
            }
        }
        Ok(Self { exact: map, patterns })
    }

    /// Where to connect for `host:port`.
    pub fn address(&self, host: &str, port: u16) -> String {
        let address = format!("{host}:{port}");
        if let Some(to) = self.exact.get(&address) {
            return to.clone();
        }
        self.patterns
            .iter()
            .find(|(before, after, _)| {
                address.len() >= before.len() + after.len() && address.starts_with(before) && address.ends_with(after)
            })
            .map_or(address.clone(), |(_, _, to)| to.clone())
    }

    /// `url` with its `host:port` rewritten when mapped (the scheme, credentials and path kept).
    pub fn url(&self, url: &str, default_port: u16) -> String {
        let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(authority, path)| (authority, path));
        let (credentials, host_port) = authority.rsplit_once('@').map_or(("", authority), |(c, h)| (c, h));
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => (host, port.parse().unwrap_or(default_port)),
            _ => (host_port, default_port),
        };
        let address = self.address(host, port);
        let at = if credentials.is_empty() { String::new() } else { format!("{credentials}@") };
        let slash = if rest.contains('/') { "/" } else { "" };
        format!("{scheme}://{at}{address}{slash}{path}")
    }
}

/// Why a reading gave nothing: it outlasted [`READ_TIMEOUT`].
fn no_answer() -> String {
    format!("Redis did not answer within {} s", READ_TIMEOUT.as_secs())
}

/// One connection per instance, by key. Readings of different instances never wait for each
/// other: the map is locked only to look up or store a connection, never across a connection or
/// a reading, so one instance's unresponsive Redis cannot delay another's.
#[derive(Clone, Default)]
pub struct DepthReaders {
    readers: Arc<Mutex<HashMap<String, (String, QueueDepthReader)>>>,
}

impl std::fmt::Debug for DepthReaders {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("DepthReaders").finish_non_exhaustive()
    }
}

impl DepthReaders {
    /// The depth of `instance`'s queue at `url`, or why it could not be read (unreachable,
    /// refused, a wrong password, or too slow: 3 s at most).
    pub async fn read(&self, key: &str, url: &str, instance: &InstanceName) -> Result<u64, String> {
        match tokio::time::timeout(READ_TIMEOUT, self.read_unbounded(key, url, instance)).await {
            Ok(result) => result,
            Err(_) => Err(no_answer()),
        }
    }

    async fn read_unbounded(&self, key: &str, url: &str, instance: &InstanceName) -> Result<u64, String> {
        let known = self.readers.lock().await.get(key).filter(|(known, _)| known == url).map(|(_, r)| r.clone());
        let reader = match known {
            Some(reader) => reader,
            None => {
                let reader = QueueDepthReader::connect(url, instance)
                    .await
                    .map_err(|error| format!("cannot connect to Redis: {error}"))?;
                self.readers.lock().await.insert(key.to_owned(), (url.to_owned(), reader.clone()));
                reader
            }
        };
        match reader.depth().await {
            Ok(depth) => Ok(depth.total()),
            Err(error) => {
                tracing::warn!(%error, instance = %key, "failed to read the queue depth");
                self.readers.lock().await.remove(key);
                Err(format!("cannot read the queue from Redis: {error}"))
            }
        }
    }
}

/// Reads queue depths from each instance's Redis, finding it from the resource's spec and
/// Secrets.
#[derive(Clone)]
pub struct RedisDepth {
    client: Client,
    connect_to: ConnectTo,
    readers: DepthReaders,
}

impl std::fmt::Debug for RedisDepth {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RedisDepth").finish_non_exhaustive()
    }
}

impl RedisDepth {
    /// Reads Secrets with `client` to find each Redis.
    pub fn new(client: Client, connect_to: ConnectTo) -> Self {
        Self { client, connect_to, readers: DepthReaders::default() }
    }

    async fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Result<String, String> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|error| format!("cannot read Secret {name}: {error}"))?
            .ok_or_else(|| format!("Secret {name} does not exist"))?;
        let bytes = secret.data.and_then(|data| data.get(key).map(|value| value.0.clone()));
        let bytes = bytes.ok_or_else(|| format!("Secret {name} has no key {key}"))?;
        String::from_utf8(bytes).map_err(|_| format!("Secret {name}: key {key} is not UTF-8"))
    }

    async fn url(&self, agent: &ValidatedAgent) -> Result<String, String> {
        let url = match &agent.spec.redis.url_secret_ref {
            Some(reference) if !agent.spec.redis.managed => {
                self.secret_value(&agent.namespace, &reference.name, &reference.key).await?
            }
            _ => {
                let password = self
                    .secret_value(&agent.namespace, &credentials_secret_name(agent), secret_keys::REDIS_PASSWORD)
                    .await?;
                let host = format!("{}.{}.svc", child_name(agent, Component::Redis), agent.namespace);
                format!("redis://:{password}@{host}:{}/", finagent_core::names::ports::REDIS)
            }
        };
        Ok(self.connect_to.url(url.trim(), finagent_core::names::ports::REDIS))
    }

    async fn read(&self, agent: &ValidatedAgent) -> Result<u64, String> {
        let url = self.url(agent).await?;
        let instance: InstanceName =
            agent.name.parse().map_err(|_| format!("{} is not an instance name", agent.name))?;
        self.readers.read(&agent.key(), &url, &instance).await
    }
}

impl QueueDepthSource for RedisDepth {
    fn depth<'a>(&'a self, agent: &'a ValidatedAgent) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            match tokio::time::timeout(READ_TIMEOUT, self.read(agent)).await {
                Ok(result) => result,
                Err(_) => Err(no_answer()),
            }
        })
    }

    fn retain<'a>(&'a self, live: &'a std::collections::HashSet<String>) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.readers.readers.lock().await.retain(|key, _| live.contains(key)) })
    }
}

/// Probes `GET <healthCheckPath>` on the API's Service, each try on a new connection (no idle
/// connection is kept, so the Service spreads the tries over its pods).
#[derive(Clone, Debug)]
pub struct ServiceProbe {
    connect_to: ConnectTo,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<hyper::body::Bytes>,
    >,
}

impl ServiceProbe {
    /// A probe rewriting addresses with `connect_to`.
    pub fn new(connect_to: ConnectTo) -> Self {
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        Self { connect_to, http }
    }

    async fn once(&self, agent: &ValidatedAgent, target: ProbeTarget) -> bool {
        let (url, path) = match target {
            ProbeTarget::Api => (
                self.connect_to.url(&crate::build::workloads::api_service_url(agent), 80),
                agent.spec.rollout.health_check_path.as_str(),
            ),
            ProbeTarget::Workers => (
                self.connect_to
                    .url(&crate::build::workloads::worker_admin_url(agent), finagent_core::names::ports::ADMIN),
                "/readyz",
            ),
        };
        let url = url.trim_end_matches('/').to_owned();
        let Ok(uri) = format!("{url}{path}").parse::<hyper::Uri>() else {
            return false;
        };
        match tokio::time::timeout(READ_TIMEOUT, self.http.get(uri.clone())).await {
            Ok(Ok(response)) if response.status().is_success() => true,
            Ok(Ok(response)) => {
                tracing::debug!(%uri, status = %response.status(), "health check failed");
                false
            }
            Ok(Err(error)) => {
                tracing::debug!(%uri, %error, "health check unreachable");
                false
            }
            Err(_) => {
                tracing::debug!(%uri, "health check timed out");
                false
            }
        }
    }
}

impl HealthProbe for ServiceProbe {
    fn ready<'a>(
        &'a self,
        agent: &'a ValidatedAgent,
        target: ProbeTarget,
        attempts: u32,
    ) -> BoxFuture<'a, Option<bool>> {
        Box::pin(async move {
            for _ in 0..attempts.max(1) {
                // Unreachable or silent counts as not ready: a rollout is never judged healthy blind.
                if !self.once(agent, target).await {
                    return Some(false);
                }
            }
            Some(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_rewrites_only_mapped_addresses() {
        let map = ConnectTo::parse(&[
            "shop-redis.finance.svc:6379=127.0.0.1:7000,shop-api-server.finance.svc:80=127.0.0.1:8080".into(),
        ])
        .expect("parses");
        assert_eq!(map.url("redis://:secret@shop-redis.finance.svc:6379/", 6379), "redis://:secret@127.0.0.1:7000/");
        assert_eq!(map.url("http://shop-api-server.finance.svc", 80), "http://127.0.0.1:8080");
        assert_eq!(map.url("redis://other.svc:6379/0", 6379), "redis://other.svc:6379/0");
        assert_eq!(ConnectTo::default().url("redis://a:1/", 6379), "redis://a:1/");
        assert!(ConnectTo::parse(&["nonsense".into()]).is_err());
        assert!(ConnectTo::parse(&["a:1=b".into()]).is_err());
        assert_eq!(ConnectTo::parse(&[String::new()]).expect("empty"), ConnectTo::default());
    }

    #[test]
    fn a_pattern_reaches_instances_created_later_and_an_exact_address_wins() {
        let map = ConnectTo::parse(&[
            "*-redis.finance.svc:6379=127.0.0.1:7000,shop-redis.finance.svc:6379=127.0.0.1:7001".into(),
            "*.finance.svc:80=127.0.0.1:8080".into(),
        ])
        .expect("parses");
        assert_eq!(map.address("new-redis.finance.svc", 6379), "127.0.0.1:7000");
        assert_eq!(map.address("shop-redis.finance.svc", 6379), "127.0.0.1:7001", "exact first");
        assert_eq!(map.address("shop-api-server.finance.svc", 80), "127.0.0.1:8080");
        // Another namespace, another port, or a host too short to hold both ends: unchanged.
        assert_eq!(map.address("new-redis.retail.svc", 6379), "new-redis.retail.svc:6379");
        assert_eq!(map.address("new-redis.finance.svc", 6380), "new-redis.finance.svc:6380");
        assert_eq!(map.address("-redis.finance.svc", 6379), "127.0.0.1:7000", "* may be empty");
        assert!(ConnectTo::parse(&["*-*.svc:1=a:2".into()]).is_err());
        let wide =
            ConnectTo::parse(&["*.ns.svc:80=127.0.0.1:1".into(), "*.ns.svc:9090=127.0.0.1:2".into()]).expect("parses");
        assert_eq!(wide.url("http://one-ocr-worker.ns.svc:9090", 9090), "http://127.0.0.1:2");
        assert_eq!(wide.url("http://one-api-server.ns.svc", 80), "http://127.0.0.1:1");
    }
}
