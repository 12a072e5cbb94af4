//! Reconcile, as a table of contents. Each step is a module and says whether it needs a client:
//!
//! 1. [`validate`](crate::validate) (pure): a bad spec waits for a change.
//! 2. [`secrets`] and [`read`] (client): the Secrets the pods read (the generated ones created
//!    first, when they may be: the templates carry a digest of their values), the Deployments,
//!    the [`last_known_good`] templates, the queue depth, the probe.
//! 3. [`plan`] (pure): the workers' replicas, the templates to run, the rollout verdict, a
//!    rollback, the last good templates to record, the Events to publish.
//! 4. A rollback is recorded in the status *before* it is performed, so a lost write or a new
//!    leader never performs it twice.
//! 5. [`apply`] (client): server-side apply of every child, NetworkPolicies first, going on past a
//!    failed child; then orphans are deleted.
//! 6. [`status`] (pure, then client): the status, written only when it differs from what is there,
//!    so a steady platform sees no writes (and no watch event wakes the controller).
//!
//! Only the queue depth and the health probe are read outside the Kubernetes API; they sit behind
//! [`QueueDepthSource`] and [`HealthProbe`].

pub mod apply;
pub mod last_known_good;
pub mod plan;
pub mod read;
pub mod secrets;
pub mod status;

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::runtime::controller::Action;
use kube::{Client, Resource};

use crate::crd::FinancialAgent;
use crate::validate::{ValidatedAgent, validate};

/// Reads the OCR queue depth of an instance.
pub trait QueueDepthSource: Send + Sync {
    /// The depth (waiting plus in-progress jobs), or why it could not be read: a missing Secret
    /// or key, a refused connection, a wrong password, no answer in time.
    fn depth<'a>(&'a self, agent: &'a ValidatedAgent) -> BoxFuture<'a, Result<u64, String>>;

    /// Drops what is kept for instances not in `live` (`namespace/name`): their connections.
    fn retain<'a>(&'a self, live: &'a std::collections::HashSet<String>) -> BoxFuture<'a, ()> {
        let _ = live;
        Box::pin(async {})
    }
}

/// What the operator probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeTarget {
    /// The API's `spec.rollout.healthCheckPath` through its Service.
    Api,
    /// The workers' `/readyz` (their queue and store checks) on their admin port, through their
    /// headless Service.
    Workers,
}

/// Probes a component's health check through its Service.
pub trait HealthProbe: Send + Sync {
    /// Asks `attempts` times; `Some(true)` only when every answer was a success, `None` when it
    /// could not be asked at all.
    fn ready<'a>(
        &'a self,
        agent: &'a ValidatedAgent,
        target: ProbeTarget,
        attempts: u32,
    ) -> BoxFuture<'a, Option<bool>>;
}

/// What every reconcile shares.
#[allow(missing_debug_implementations)]
pub struct Context {
    /// The watch caches of the children a pass reads.
    pub caches: crate::cache::ChildCaches,
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes Events.
    pub events: Arc<crate::events::Publisher>,
    /// The queue depth.
    pub depth: Arc<dyn QueueDepthSource>,
    /// The API's health.
    pub probe: Arc<dyn HealthProbe>,
    /// The operator's metrics.
    pub metrics: crate::metrics::OperatorMetrics,
    /// Watch events of each instance's children.
    pub changes: apply::ChildChanges,
    /// What each instance's children were when last applied.
    pub applied: apply::AppliedDigests,
    /// The status last written for each instance.
    pub written: status::WrittenStatuses,
    /// The namespace the operator runs in.
    pub operator_namespace: String,
    /// The API server's time: every timestamp in the status is on it, so a deadline set by one
    /// replica means the same on the next.
    pub clock: Arc<crate::clock::ServerClock>,
    /// The platforms rolling out now, and how many may at once.
    pub rollouts: RolloutSlots,
}

/// The platforms whose rollout is under way, so that at most `limit` start at once (after an
/// operator upgrade every platform's templates change). A rollout holds its slot from the pass
/// that applies it until a verdict (proven, failed or rolled back); one already under way when
/// the operator starts takes its slot without waiting, so the limit bounds the rollouts this
/// operator starts, not the ones it finds.
#[derive(Debug, Default)]
pub struct RolloutSlots {
    limit: usize,
    rolling: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl RolloutSlots {
    /// At most `limit` at once; 0 for no limit.
    pub fn new(limit: usize) -> Self {
        Self { limit, rolling: std::sync::Mutex::default() }
    }

    fn rolling(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.rolling.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot for `key` to start a rollout; `Err(in_flight)` when every slot is taken by
    /// others.
    pub fn admit(&self, key: &str) -> Result<(), usize> {
        let mut rolling = self.rolling();
        if self.limit == 0 || rolling.contains(key) || rolling.len() < self.limit {
            rolling.insert(key.to_owned());
            Ok(())
        } else {
            Err(rolling.len())
        }
    }

    /// `key` is rolling out (`true`) or not (`false`, its slot is free).
    pub fn hold(&self, key: &str, rolling: bool) {
        let mut slots = self.rolling();
        if rolling {
            slots.insert(key.to_owned());
        } else {
            slots.remove(key);
        }
    }

    /// Frees the slots of instances not in `live`.
    pub fn retain(&self, live: &std::collections::HashSet<String>) {
        self.rolling().retain(|key| live.contains(key));
    }
}

/// Why a reconcile failed; each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading an object failed.
    #[error("failed to read {what}: {source}")]
    Read {
        /// The object, as `Kind name`.
        what: String,
        source: kube::Error,
    },
    /// Applying children failed (the others were applied).
    #[error("failed to apply {failed} of {total} children: {first}")]
    Apply {
        /// How many failed.
        failed: usize,
        /// How many were applied in all.
        total: usize,
        /// The first failure, with the child named.
        first: String,
    },
    /// Deleting an orphan failed.
    #[error("failed to delete {kind} {name}: {source}")]
    Delete {
        /// The orphan's kind.
        kind: String,
        /// The orphan's name.
        name: String,
        source: kube::Error,
    },
    /// Creating the generated credentials failed.
    #[error("failed to create the credentials Secret: {0}")]
    Credentials(kube::Error),
    /// The operating system's random generator failed.
    #[error("failed to generate credentials: {0}")]
    Randomness(String),
    /// Writing the status failed.
    #[error("failed to update the status: {0}")]
    Status(kube::Error),
}

impl ReconcileError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::Apply { .. } => "apply",
            Self::Delete { .. } => "delete",
            Self::Credentials(_) | Self::Randomness(_) => "credentials",
            Self::Status(_) => "status",
        }
    }
}

/// An Event reconcile publishes about the resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Warning (something a user should act on) or not.
    pub warning: bool,
    /// The reason, in CamelCase.
    pub reason: &'static str,
    /// What happened.
    pub note: String,
    /// What the operator did.
    pub action: &'static str,
}

/// Logs one decision and publishes it as an Event; a failure to publish is logged, never fatal.
pub async fn publish(events: &crate::events::Publisher, agent: &FinancialAgent, notice: &Notice) {
    let key = format!(
        "{}/{}",
        agent.metadata.namespace.as_deref().unwrap_or_default(),
        agent.metadata.name.as_deref().unwrap_or_default()
    );
    if notice.warning {
        tracing::warn!(agent = %key, reason = notice.reason, action = notice.action, "{}", notice.note);
    } else {
        tracing::info!(agent = %key, reason = notice.reason, action = notice.action, "{}", notice.note);
    }
    let occurrence = crate::events::Occurrence {
        warning: notice.warning,
        reason: notice.reason.to_owned(),
        action: notice.action.to_owned(),
        note: notice.note.clone(),
    };
    if let Err(error) = events.publish(&agent.object_ref(&()), &occurrence).await {
        tracing::warn!(%error, "failed to publish an event");
    }
}

/// Reconciles one FinancialAgent.
pub async fn reconcile(agent: Arc<FinancialAgent>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let now = ctx.clock.now();
    // The status as we last left it, even when the watch cache has not seen our write yet.
    let previous = ctx.written.latest(&agent);
    let generation = agent.metadata.generation;
    // 0. Paused by the annotation: the platform is left as it is, and the status says so.
    let paused = agent.metadata.annotations.as_ref().and_then(|a| a.get(crate::crd::annotations::PAUSE));
    if paused.is_some_and(|value| value.eq_ignore_ascii_case("true")) {
        let status = status::paused(&previous, generation, now);
        status::write_if_changed(&ctx.client, &ctx.written, &agent, &previous, &status).await?;
        if status::became_true(&previous, &status, "ReconciliationPaused") {
            let note = format!(
                "reconciling is paused by the annotation {}=true; remove it to resume",
                crate::crd::annotations::PAUSE
            );
            publish(
                &ctx.events,
                &agent,
                &Notice { warning: false, reason: "ReconciliationPaused", note, action: "Pause" },
            )
            .await;
        }
        return Ok(Action::await_change());
    }
    // 1. Validate: a bad spec waits for a change.
    let validated = match validate(&agent) {
        Ok(validated) => validated,
        Err(invalid) => {
            let status = status::invalid(&previous, generation, &invalid.0, now);
            status::write_if_changed(&ctx.client, &ctx.written, &agent, &previous, &status).await?;
            let note = invalid.0.clone();
            publish(&ctx.events, &agent, &Notice { warning: true, reason: "InvalidSpec", note, action: "Validate" })
                .await;
            return Ok(Action::await_change());
        }
    };
    // The rollback counter exists at 0 from the first reconcile, so that a first rollback is an
    // increase that alerts can see.
    ctx.metrics.rollbacks.with_label_values(&[validated.key().as_str()]);
    for direction in ["up", "down"] {
        ctx.metrics.scaling.with_label_values(&[validated.key().as_str(), direction]);
    }
    // A retry asked by the annotation: the failed revision is judged afresh.
    let stored = previous;
    let previous = match plan::retried(&stored, validated.retry.as_deref()) {
        Some((fresh, failed)) => {
            if failed {
                let note = format!(
                    "retrying version {} as the annotation {} asks; it failed before",
                    validated.spec.version,
                    crate::crd::annotations::RETRY
                );
                publish(
                    &ctx.events,
                    &agent,
                    &Notice { warning: false, reason: "RetryRequested", note, action: "Retry" },
                )
                .await;
            }
            fresh
        }
        None => stored.clone(),
    };
    // 2. The Secrets (the generated ones are created first: the templates carry a digest of their
    // values), then what the plan reads.
    let running_api = read::running_api(&ctx, &validated).await?;
    let secrets = secrets::ensure(&ctx.client, &validated, running_api.as_ref()).await?;
    let keep_managed = secrets.keep_managed;
    let mut validated = validated;
    // A Secret that cannot be used does not roll the pods: their templates keep the digests
    // they run with until it is mended.
    validated.secrets = match secrets.problem {
        None => secrets.digests,
        Some(_) => read::running_digests(&ctx, &validated).await?,
    };
    let mut observed = read::observe(&ctx, &validated, &previous).await?;
    observed.credentials = secrets.problem;
    // 3. Plan (pure).
    let mut plan = plan::plan(&validated, &observed, &previous, now);
    plan.inputs.operator_namespace = Some(ctx.operator_namespace.clone());
    // At most so many rollouts at once: a new one waits with the last good templates running.
    if plan.starts_rollout()
        && let Err(in_flight) = ctx.rollouts.admit(&validated.key())
    {
        plan.queue(&validated, &previous, observed.last_good.as_ref(), in_flight);
    }
    // A slot is taken before the rollout is applied and freed only after the pass that ends it
    // has applied (a rollback's templates too), so two rollouts never overlap.
    let rolling = matches!(plan.verdict, plan::Verdict::Progressing(_));
    if !plan.queued && rolling {
        ctx.rollouts.hold(&validated.key(), true);
    }
    // 4. A rollback is recorded before it is performed.
    let mut current = stored;
    if let Some(rollback) = &plan.rollback {
        let recorded = status::build(&validated, generation, &previous, &observed, &plan, &[], now);
        status::write_if_changed(&ctx.client, &ctx.written, &agent, &current, &recorded).await?;
        current = recorded;
        ctx.metrics.rollbacks.with_label_values(&[validated.key().as_str()]).inc();
        publish(&ctx.events, &agent, rollback).await;
    }
    // 5. Apply every child, then delete what is no longer built — unless nothing was built
    //    differently and no child changed since the last full apply.
    let key = validated.key();
    let objects = apply::objects(&validated, &plan);
    let digest = (apply::digest(&objects), ctx.changes.count(&key));
    let mut orphans = Ok(Vec::new());
    let applied = if ctx.applied.unchanged(&key, digest) {
        apply::Applied::default()
    } else {
        ctx.applied.forget(&key);
        let applied = apply::children(&ctx.client, &validated, &objects).await;
        // A managed datastore is kept while the external one replacing it cannot be used.
        let mut kept = applied.kept.clone();
        for component in &keep_managed {
            kept.extend(apply::datastore_children(&validated, *component));
        }
        // A failed deletion is reported after the status and the Events of this pass.
        orphans = apply::delete_orphans(&ctx.client, &validated, &kept).await;
        // While a datastore is kept, every pass applies and looks for orphans again: the Secret
        // that lets it go is not watched, so no event would say it appeared.
        if applied.failures.is_empty() && orphans.is_ok() && keep_managed.is_empty() {
            ctx.applied.record(&key, digest);
        }
        applied
    };
    let removed = orphans.as_ref().map(|deleted| apply::removed_datastores(&validated, deleted)).unwrap_or_default();
    // 6. Status, and the Events of this pass.
    let status = status::build(&validated, generation, &previous, &observed, &plan, &applied.failures, now);
    status::write_if_changed(&ctx.client, &ctx.written, &agent, &current, &status).await?;
    let unreadable = status::became_degraded(&current, &status, "QueueDepthUnknown").map(|message| Notice {
        warning: true,
        reason: "QueueDepthUnknown",
        note: message,
        action: "ReadQueue",
    });
    let credentials = observed.credentials.as_ref().and_then(|(reason, _)| {
        status::became_degraded(&current, &status, reason).map(|message| Notice {
            warning: true,
            reason,
            note: message,
            action: "CheckCredentials",
        })
    });
    for notice in plan
        .notices
        .iter()
        .chain(applied.notice.as_ref())
        .chain(unreadable.as_ref())
        .chain(credentials.as_ref())
        .chain(removed.iter())
    {
        publish(&ctx.events, &agent, notice).await;
    }
    if !plan.queued && !rolling {
        ctx.rollouts.hold(&key, false);
    }
    if plan.scaled {
        let direction = if plan.scale.replicas > plan.current_workers { "up" } else { "down" };
        ctx.metrics.scaling.with_label_values(&[key.as_str(), direction]).inc();
    }
    if let Some(first) = applied.failures.first() {
        return Err(ReconcileError::Apply {
            failed: applied.failures.len(),
            total: applied.total,
            first: first.clone(),
        });
    }
    orphans?;
    Ok(plan.requeue)
}
