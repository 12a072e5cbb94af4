//! Reconcile, as a table of contents. Each step is a module and says whether it needs a client:
//!
//! 1. [`validate`](crate::validate) (pure): a bad spec waits for a change.
//! 2. [`read`] (client): the Deployments, the last good templates, the queue depth, the probe.
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
pub mod plan;
pub mod read;
pub mod status;

use std::sync::Arc;

use chrono::Utc;
use futures::future::BoxFuture;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};

use crate::crd::FinancialAgent;
use crate::validate::{ValidatedAgent, validate};

/// Reads the OCR queue depth of an instance.
pub trait QueueDepthSource: Send + Sync {
    /// The depth (waiting plus in-progress jobs), or why it could not be read: a missing Secret
    /// or key, a refused connection, a wrong password, no answer in time.
    fn depth<'a>(&'a self, agent: &'a ValidatedAgent) -> BoxFuture<'a, Result<u64, String>>;
}

/// Probes the API's health check through its Service.
pub trait HealthProbe: Send + Sync {
    /// Asks `attempts` times; `Some(true)` only when every answer was a success, `None` when it
    /// could not be asked at all.
    fn ready<'a>(&'a self, agent: &'a ValidatedAgent, attempts: u32) -> BoxFuture<'a, Option<bool>>;
}

/// What every reconcile shares.
#[allow(missing_debug_implementations)]
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
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
}

/// Why a reconcile failed; each variant names the step.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading an object failed.
    #[error("failed to read {what}: {source}")]
    Read {
        /// What.
        what: String,
        /// Why.
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
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// Why.
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

/// Publishes one Event; a failure to publish is logged, never fatal.
pub async fn publish(recorder: &Recorder, agent: &FinancialAgent, notice: &Notice) {
    let event = Event {
        type_: if notice.warning { EventType::Warning } else { EventType::Normal },
        reason: notice.reason.to_owned(),
        note: Some(notice.note.clone()),
        action: notice.action.to_owned(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &agent.object_ref(&())).await {
        tracing::warn!(%error, "failed to publish an event");
    }
}

/// Reconciles one FinancialAgent.
pub async fn reconcile(agent: Arc<FinancialAgent>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let now = Utc::now();
    // The status as we last left it, even when the watch cache has not seen our write yet.
    let previous = ctx.written.latest(&agent);
    let generation = agent.metadata.generation;
    // 1. Validate: a bad spec waits for a change.
    let validated = match validate(&agent) {
        Ok(validated) => validated,
        Err(invalid) => {
            let status = status::invalid(&previous, generation, &invalid.0, now);
            status::write_if_changed(&ctx.client, &ctx.written, &agent, &previous, &status).await?;
            let note = invalid.0.clone();
            publish(&ctx.recorder, &agent, &Notice { warning: true, reason: "InvalidSpec", note, action: "Validate" })
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
    // 2. Read.
    apply::ensure_credentials(&ctx.client, &validated).await?;
    let observed = read::observe(&ctx, &validated, &previous).await?;
    // 3. Plan (pure).
    let plan = plan::plan(&validated, &observed, &previous, now);
    // 4. A rollback is recorded before it is performed.
    let mut current = previous.clone();
    if let Some(rollback) = &plan.rollback {
        let recorded = status::build(&validated, generation, &previous, &observed, &plan, &[], now);
        status::write_if_changed(&ctx.client, &ctx.written, &agent, &current, &recorded).await?;
        current = recorded;
        ctx.metrics.rollbacks.with_label_values(&[validated.key().as_str()]).inc();
        publish(&ctx.recorder, &agent, rollback).await;
    }
    // 5. Apply every child, then delete what is no longer built — unless nothing was built
    //    differently and no child changed since the last full apply.
    let key = validated.key();
    let objects = apply::objects(&validated, &plan);
    let digest = (apply::digest(&objects), ctx.changes.count(&key));
    let mut orphans = Ok(());
    let applied = if ctx.applied.unchanged(&key, digest) {
        apply::Applied::default()
    } else {
        ctx.applied.forget(&key);
        let applied = apply::children(&ctx.client, &validated, &objects).await;
        // A failed deletion is reported after the status and the Events of this pass.
        orphans = apply::delete_orphans(&ctx.client, &validated, &applied.kept).await;
        if applied.failures.is_empty() && orphans.is_ok() {
            ctx.applied.record(&key, digest);
        }
        applied
    };
    // 6. Status, and the Events of this pass.
    let status = status::build(&validated, generation, &previous, &observed, &plan, &applied.failures, now);
    status::write_if_changed(&ctx.client, &ctx.written, &agent, &current, &status).await?;
    let unreadable = status::became_degraded(&current, &status, "QueueDepthUnknown").map(|message| Notice {
        warning: true,
        reason: "QueueDepthUnknown",
        note: message,
        action: "ReadQueue",
    });
    for notice in plan.notices.iter().chain(applied.notice.as_ref()).chain(unreadable.as_ref()) {
        publish(&ctx.recorder, &agent, notice).await;
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
