//! `operator run`: leader election, the controller, the admin endpoints and graceful shutdown.
//!
//! The controller is quiet when nothing changes: the FinancialAgent watch passes on only changes
//! of the spec (its `metadata.generation`), not the status writes of our own passes; children are
//! watched by label only (never the cluster's other ConfigMaps or Services), so a child edited
//! or deleted by hand is repaired at once; and the one timer is the queue-depth poll. Failed
//! passes are retried with exponential backoff, counted by failed step, and reported as a Warning
//! Event on the resource.

use finagent_core::names::env;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, ResourceExt};

use crate::adapters::{ConnectTo, RedisDepth, ServiceProbe};
use crate::crd::FinancialAgent;
use crate::leader::{LeaderElector, LeaseTimings};
use crate::metrics::OperatorMetrics;
use crate::owned::{OWNED_KINDS, children_selector};
use crate::reconcile::apply::{AppliedDigests, ChildChanges};
use crate::reconcile::{Context, Notice, ReconcileError, publish, reconcile};
use finagent_platform::admin::{self, Readiness};
use finagent_platform::metrics::Metrics;

/// Options of `operator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = env::ADMIN_LISTEN, default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(long, env = env::POD_NAMESPACE, default_value = "finagent-system")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, env = env::LEASE_NAME, default_value = "finagent-operator")]
    pub lease_name: String,
    /// This replica's identity in the election (the pod name).
    #[arg(long, env = env::POD_NAME, default_value = "finagent-operator-local")]
    pub identity: String,
    /// How long the lease lasts without renewal, in seconds.
    #[arg(long, env = env::LEASE_DURATION_SECONDS, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// How long the leader keeps trying to renew before it stops leading, in seconds (less than
    /// the lease duration).
    #[arg(long, env = env::LEASE_RENEW_DEADLINE_SECONDS, default_value_t = 10)]
    pub lease_renew_deadline_seconds: u64,
    /// How often the leader renews the lease, in seconds (less than the renew deadline).
    #[arg(long, env = env::LEASE_RENEW_PERIOD_SECONDS, default_value_t = 5)]
    pub lease_renew_period_seconds: u64,
    /// How often a standby looks at the lease, and how soon a failed renewal is tried again, in
    /// seconds (at most the renew period).
    #[arg(long, env = env::LEASE_RETRY_PERIOD_SECONDS, default_value_t = 2)]
    pub lease_retry_period_seconds: u64,
    /// Watch FinancialAgents (and their children) in this namespace only; every namespace when
    /// unset.
    #[arg(long, env = env::WATCH_NAMESPACE)]
    pub namespace: Option<String>,
    /// For an operator outside the cluster: connect to a second address for an in-cluster one,
    /// `HOST:PORT=HOST:PORT` (e.g. `shop-redis.finance.svc:6379=127.0.0.1:6380`), comma-separated
    /// or repeated; a host may hold one `*` (`*-redis.finance.svc:6379=…` covers every instance
    /// in `finance`, those created later too). Used for the queue-depth reads and the health
    /// probe; empty in a cluster.
    #[arg(long, env = env::CONNECT_TO, value_delimiter = ',')]
    pub connect_to: Vec<String>,
    /// At most this many platforms start a rollout at once (after an operator upgrade, every
    /// platform's templates change); the others wait with their last good templates running.
    /// 0 for no limit.
    #[arg(long, env = env::MAX_CONCURRENT_ROLLOUTS, default_value_t = 5)]
    pub max_concurrent_rollouts: usize,
}

impl RunArgs {
    fn timings(&self) -> anyhow::Result<LeaseTimings> {
        let timings = LeaseTimings {
            duration: Duration::from_secs(self.lease_duration_seconds),
            renew_deadline: Duration::from_secs(self.lease_renew_deadline_seconds),
            renew_period: Duration::from_secs(self.lease_renew_period_seconds),
            retry_period: Duration::from_secs(self.lease_retry_period_seconds),
        };
        timings.check().map_err(anyhow::Error::msg)?;
        Ok(timings)
    }
}

/// The exponential backoff of a failing resource: 2 s, 4 s, … up to 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(2u64.saturating_mul(1 << failures.saturating_sub(1).min(8)).min(300))
}

/// What the controller's callbacks share.
struct Shared {
    context: Arc<Context>,
    metrics: OperatorMetrics,
    /// Consecutive failures by `namespace/name`, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

fn error_policy(agent: Arc<FinancialAgent>, error: &ReconcileError, shared: Arc<Shared>) -> Action {
    shared.metrics.errors.with_label_values(&[error.kind()]).inc();
    let key = format!("{}/{}", agent.namespace().unwrap_or_default(), agent.name_any());
    let failures = {
        let mut map = shared.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = map.entry(key.clone()).or_insert(0);
        *count += 1;
        *count
    };
    // The backoff never outlasts the queue poll: a pass that failed on one child (a refused
    // Ingress, say) still scaled the workers, and the next poll must come on time.
    let poll = Duration::from_secs(u64::try_from(agent.spec.ocr_worker.poll_interval_seconds).unwrap_or(10).max(1));
    let delay = backoff(failures).min(poll);
    tracing::warn!(%error, agent = %key, failures, retry_in = ?delay, "reconcile failed");
    // Apply failures already carry their own Event and condition.
    if !matches!(error, ReconcileError::Apply { .. }) {
        let notice = Notice { warning: true, reason: "ReconcileFailed", note: error.to_string(), action: "Reconcile" };
        let events = shared.context.events.clone();
        tokio::spawn(async move { publish(&events, &agent, &notice).await });
    }
    Action::requeue(delay)
}

async fn prune_every_minute(
    agents: reflector::Store<FinancialAgent>,
    mut ready: crate::cache::Ready,
    context: Arc<Context>,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if ready.wait_for(|ready| *ready).await.is_err() {
            return;
        }
        let state = agents.state();
        let keys: std::collections::HashSet<String> = state
            .iter()
            .map(|agent| format!("{}/{}", agent.namespace().unwrap_or_default(), agent.name_any()))
            .collect();
        let uids: std::collections::HashSet<String> = state.iter().filter_map(|agent| agent.uid()).collect();
        context.changes.retain(&keys);
        context.applied.retain(&keys);
        context.rollouts.retain(&keys);
        context.written.retain(&uids);
        context.depth.retain(&keys).await;
        for gone in context.metrics.keys().difference(&keys) {
            tracing::info!(agent = %gone, "forgetting a deleted FinancialAgent");
            context.metrics.forget(gone);
        }
    }
}

/// Marks a watch as listed once its first full list has been delivered.
fn mark_listed<K>(event: &Result<watcher::Event<K>, watcher::Error>, listed: &tokio::sync::watch::Sender<bool>) {
    if matches!(event, Ok(watcher::Event::InitDone)) {
        listed.send_replace(true);
    }
}

/// What wakes the controller about a resource: a new generation of its spec, or a change of the
/// annotations that steer it (pause, retry). Our own status writes change neither.
fn spec_or_steering(agent: &FinancialAgent) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    agent.metadata.generation.hash(&mut hasher);
    let annotations = agent.metadata.annotations.as_ref();
    for key in [crate::crd::annotations::PAUSE, crate::crd::annotations::RETRY] {
        annotations.and_then(|a| a.get(key)).hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// The User-Agent of this replica's requests, which is how an audit log tells replicas apart.
pub fn user_agent(identity: &str) -> String {
    format!("finagent-operator/{} ({identity})", env!("CARGO_PKG_VERSION"))
}

/// Whether a request changes anything (reads and watches do not).
pub fn is_write(method: &http::Method) -> bool {
    !matches!(*method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS)
}

/// A client that names this replica and counts its requests by verb; with a `fence`, it refuses
/// every write while the fence is closed, before the request leaves.
fn build_client(
    config: kube::Config,
    metrics: &OperatorMetrics,
    identity: &str,
    fence: Option<crate::leader::Fence>,
    clock: Arc<crate::clock::ServerClock>,
) -> anyhow::Result<Client> {
    let dated = tower::util::MapResponseLayer::new(move |response: http::Response<Box<kube::client::DynBody>>| {
        if let Some(date) = response.headers().get(http::header::DATE).and_then(|value| value.to_str().ok()) {
            clock.observe_header(date, chrono::Utc::now());
        }
        response
    });
    let counter = metrics.kubernetes_requests.clone();
    let agent = http::HeaderValue::from_str(&user_agent(identity))?;
    let named = tower::util::MapRequestLayer::new(move |mut request: http::Request<kube::client::Body>| {
        let watch = request.uri().query().is_some_and(|query| query.split('&').any(|pair| pair == "watch=true"));
        let verb = if watch { "watch".to_owned() } else { request.method().as_str().to_lowercase() };
        counter.with_label_values(&[verb.as_str()]).inc();
        request.headers_mut().insert(http::header::USER_AGENT, agent.clone());
        request
    });
    let refused = metrics.fenced_writes.clone();
    let fenced = tower::filter::FilterLayer::new(move |request: http::Request<kube::client::Body>| {
        let open = fence.as_ref().is_none_or(|fence| fence.allows(tokio::time::Instant::now()));
        if open || !is_write(request.method()) {
            return Ok(request);
        }
        refused.inc();
        tracing::warn!(method = %request.method(), uri = %request.uri(), "refused a write: the leader lease was not renewed within the renew deadline");
        Err(FencedWrite)
    });
    Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(&dated).with_layer(&fenced).with_layer(&named).build())
}

/// A write refused by the fence.
#[derive(Debug, thiserror::Error)]
#[error("refused a write: this replica's leader lease was not renewed within the renew deadline")]
pub struct FencedWrite;

/// Runs the operator until SIGTERM (then it releases the lease), or until it loses leadership
/// (then it exits, to stand again as a candidate).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let timings = args.timings()?;
    let connect_to = ConnectTo::parse(&args.connect_to).map_err(anyhow::Error::msg)?;
    let metrics = Metrics::new();
    let operator_metrics = OperatorMetrics::register(&metrics)?;
    let config = kube::Config::infer().await?;
    // The lease has a client of its own, outside the fence: renewing is what opens it.
    let clock = Arc::new(crate::clock::ServerClock::default());
    let lease_client = build_client(config.clone(), &operator_metrics, &args.identity, None, clock.clone())?;
    let readiness = {
        let client = lease_client.clone();
        Readiness::new().with_check("kubernetes", move || {
            let client = client.clone();
            Box::pin(async move { client.apiserver_version().await.map(|_| ()).map_err(|error| error.to_string()) })
        })
    };
    tokio::spawn(admin::serve(
        args.admin_listen,
        admin::router(metrics.clone(), readiness),
        finagent_platform::shutdown::signal(),
    ));

    let elector = LeaderElector::new(lease_client, &args.lease_namespace, &args.lease_name, &args.identity, timings);
    let client = build_client(config, &operator_metrics, &args.identity, Some(elector.fence()), clock.clone())?;
    tracing::info!(identity = %args.identity, "waiting to lead");
    tokio::select! {
        () = elector.acquire() => {}
        () = finagent_platform::shutdown::signal() => return Ok(()),
    }
    tracing::info!(identity = %args.identity, "leading");
    operator_metrics.leader.set(1);

    let changes = ChildChanges::default();
    // The kinds a pass reads come from the watches' stores (`cache.rs`).
    let mut writers = std::collections::HashMap::new();
    let mut stores = Vec::new();
    for owned in OWNED_KINDS.into_iter().filter(|owned| crate::cache::CACHED_KINDS.contains(&owned.kind)) {
        let writer = reflector::store::Writer::<DynamicObject>::new(owned.api_resource());
        let (listed, ready) = tokio::sync::watch::channel(false);
        stores.push((owned.kind, owned.api_resource(), writer.as_reader(), ready));
        writers.insert(owned.kind, (writer, listed));
    }
    let context = Arc::new(Context {
        caches: crate::cache::ChildCaches::new(stores),
        changes: changes.clone(),
        applied: AppliedDigests::default(),
        written: crate::reconcile::status::WrittenStatuses::default(),
        operator_namespace: args.lease_namespace.clone(),
        clock,
        client: client.clone(),
        events: Arc::new(crate::events::Publisher::new(client.clone(), "finagent-operator", &args.identity)),
        depth: Arc::new(RedisDepth::new(client.clone(), connect_to.clone())),
        probe: Arc::new(ServiceProbe::new(connect_to)),
        metrics: operator_metrics.clone(),
        rollouts: crate::reconcile::RolloutSlots::new(args.max_concurrent_rollouts),
    });
    let agents: Api<FinancialAgent> = match &args.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    // Only spec changes wake the controller; our own status writes do not.
    let (reader, writer) = reflector::store();
    let (listed, ready) = tokio::sync::watch::channel(false);
    let trigger = reflector(writer, watcher(agents, watcher::Config::default()))
        .inspect(move |event| mark_listed(event, &listed))
        .default_backoff()
        .applied_objects()
        .predicate_filter(spec_or_steering, Default::default());
    // Every minute, what is kept per resource (applied digests, written statuses, Redis
    // connections, metric series) is dropped for resources that no longer exist.
    tokio::spawn(prune_every_minute(reader.clone(), ready, context.clone()));
    let mut controller = Controller::for_stream(trigger, reader);
    // Children by label only; each event is also counted, so a pass knows whether anything
    // happened to an instance's children since it last applied them.
    let children = watcher::Config::default().labels(&children_selector());
    for owned in OWNED_KINDS {
        let resource = owned.api_resource();
        let api: Api<DynamicObject> = match &args.namespace {
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let changes = changes.clone();
        let touch = move |event: &Result<DynamicObject, watcher::Error>| {
            if let Ok(object) = event
                && let Some(instance) = object.labels().get(finagent_core::names::labels::INSTANCE)
            {
                changes.touch(&object.namespace().unwrap_or_default(), instance);
            }
        };
        let events = watcher(api, children.clone()).default_backoff();
        controller = match writers.remove(owned.kind) {
            Some((writer, listed)) => controller.owns_stream_with(
                events
                    .reflect(writer)
                    .inspect(move |event| mark_listed(event, &listed))
                    .touched_objects()
                    .inspect(touch)
                    .boxed(),
                resource,
            ),
            None => controller.owns_stream_with(events.touched_objects().inspect(touch).boxed(), resource),
        };
    }
    let shared = Arc::new(Shared { context, metrics: operator_metrics.clone(), failures: Mutex::default() });
    let timed = move |agent: Arc<FinancialAgent>, shared: Arc<Shared>| async move {
        let started = Instant::now();
        let key = format!("{}/{}", agent.namespace().unwrap_or_default(), agent.name_any());
        let outcome = reconcile(agent, shared.context.clone()).await;
        let label = if outcome.is_ok() { "ok" } else { "error" };
        if outcome.is_ok() {
            shared.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
        }
        shared.metrics.reconciles.with_label_values(&[label]).inc();
        shared.metrics.duration.with_label_values(&[label]).observe(started.elapsed().as_secs_f64());
        outcome
    };
    let running = controller
        .graceful_shutdown_on(finagent_platform::shutdown::signal())
        .run(timed, error_policy, shared)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        });
    tokio::select! {
        () = running => {
            tracing::info!("controller stopped; releasing the leader lease");
            operator_metrics.leader.set(0);
            if let Err(error) = elector.release().await {
                tracing::warn!(%error, "failed to release the leader lease");
            }
        }
        () = elector.keep() => {
            operator_metrics.leader.set(0);
            anyhow::bail!("lost the leader lease; exiting so that one leader runs");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_two_seconds_up_to_five_minutes() {
        let delays: Vec<u64> = (1..=10).map(|failures| backoff(failures).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX).as_secs(), 300);
    }
}
