//! `operator run`: leader election, the controller, the admin endpoints and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;

use crate::adapters::{RedisDepth, ServiceProbe};
use crate::crd::FinancialAgent;
use crate::leader::LeaderElector;
use crate::metrics::OperatorMetrics;
use crate::reconcile::{Context, ReconcileError, reconcile};
use finagent_platform::admin::{self, Readiness};
use finagent_platform::metrics::Metrics;

/// Options of `operator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "ADMIN_LISTEN", default_value = "0.0.0.0:9090")]
    pub admin_listen: SocketAddr,
    /// Namespace of the leader-election Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "finagent-system")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "finagent-operator")]
    pub lease_name: String,
    /// This replica's identity in the election (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "finagent-operator-local")]
    pub identity: String,
}

fn error_policy(
    _agent: Arc<FinancialAgent>,
    error: &ReconcileError,
    shared: Arc<(Arc<Context>, OperatorMetrics)>,
) -> Action {
    shared.1.errors.with_label_values(&[error.kind()]).inc();
    tracing::warn!(%error, "reconcile failed; retrying soon");
    Action::requeue(Duration::from_secs(15))
}

/// Runs the operator until SIGTERM, or until it loses leadership (then it exits to stand again).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
    let metrics = Metrics::new();
    let operator_metrics = OperatorMetrics::register(&metrics)?;
    let readiness = {
        let client = client.clone();
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

    let elector = LeaderElector::new(
        client.clone(),
        &args.lease_namespace,
        &args.lease_name,
        &args.identity,
        Duration::from_secs(15),
    );
    tracing::info!(identity = %args.identity, "waiting to lead");
    tokio::select! {
        () = elector.acquire() => {}
        () = finagent_platform::shutdown::signal() => return Ok(()),
    }
    tracing::info!(identity = %args.identity, "leading");
    operator_metrics.leader.set(1);

    let reporter = Reporter { controller: "finagent-operator".into(), instance: Some(args.identity.clone()) };
    let context = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        depth: Arc::new(RedisDepth::new(client.clone())),
        probe: Arc::new(ServiceProbe::default()),
        metrics: operator_metrics.clone(),
    });
    let config = watcher::Config::default();
    // Watch what we own, so a deleted or edited child is repaired at once; the queue depth has no
    // watch, so reconcile asks to be requeued every poll interval.
    let controller = Controller::new(Api::<FinancialAgent>::all(client.clone()), config.clone())
        .owns(Api::<Deployment>::all(client.clone()), config.clone())
        .owns(Api::<StatefulSet>::all(client.clone()), config.clone())
        .owns(Api::<Service>::all(client.clone()), config.clone())
        .owns(Api::<ServiceAccount>::all(client.clone()), config.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), config.clone())
        .owns(Api::<PodDisruptionBudget>::all(client.clone()), config.clone())
        .owns(Api::<Ingress>::all(client.clone()), config.clone())
        .owns(Api::<NetworkPolicy>::all(client.clone()), config)
        .graceful_shutdown_on(finagent_platform::shutdown::signal());
    let timed = move |agent: Arc<FinancialAgent>, context: Arc<(Arc<Context>, OperatorMetrics)>| async move {
        let started = Instant::now();
        let outcome = reconcile(agent, context.0.clone()).await;
        let label = if outcome.is_ok() { "ok" } else { "error" };
        context.1.reconciles.with_label_values(&[label]).inc();
        context.1.duration.with_label_values(&[label]).observe(started.elapsed().as_secs_f64());
        outcome
    };
    let running =
        controller.run(timed, error_policy, Arc::new((context, operator_metrics))).for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        });
    tokio::select! {
        () = running => tracing::info!("controller stopped"),
        () = elector.keep() => anyhow::bail!("lost the leader lease; exiting so that one leader runs"),
    }
    Ok(())
}
