//! Step 2, with a client: what the decisions need. The two Deployments as they run now (before
//! this pass applies anything: the rollout is judged on them), the last known good templates, the
//! queue depth, and — only when its answer can matter — the health probe.

use crate::reconcile::last_known_good::LastKnownGood;
use crate::reconcile::last_known_good::last_known_good_name;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use super::{Context, ProbeTarget, ReconcileError};
use crate::build::child_name;
use crate::crd::FinancialAgentStatus;
use crate::validate::ValidatedAgent;
use finagent_core::names::Component;

/// What this pass observed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// The API's Deployment.
    pub api: Option<Deployment>,
    /// The workers' Deployment.
    pub worker: Option<Deployment>,
    /// The last known good templates.
    pub last_good: Option<LastKnownGood>,
    /// The queue depth (`None`: Redis could not be read).
    pub depth: Option<u64>,
    /// Why the queue depth could not be read.
    pub depth_error: Option<String>,
    /// The API probe's answer (`None`: not asked, or could not be asked).
    pub probe: Option<bool>,
    /// The workers' probe's answer, the same way.
    pub worker_probe: Option<bool>,
    /// Why the generated credentials are not usable (reason, message), when they are not.
    pub credentials: Option<(&'static str, String)>,
    /// The components the platform needs besides the API and the workers (managed Redis and
    /// MongoDB, Prometheus): name, ready replicas, wanted replicas.
    pub supporting: Vec<(String, i32, i32)>,
}

/// A child of the resource: from the watch cache when one holds its kind, else from the API server.
async fn child<T>(ctx: &Context, agent: &ValidatedAgent, kind: &str, name: String) -> Result<Option<T>, ReconcileError>
where
    T: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    if let Some(found) = ctx.caches.get::<T>(kind, &agent.namespace, &name).await {
        return Ok(found);
    }
    let api: Api<T> = Api::namespaced(ctx.client.clone(), &agent.namespace);
    api.get_opt(&name).await.map_err(|source| ReconcileError::Read { what: format!("{kind} {name}"), source })
}

/// Replicas of a Deployment still running an older template, and available replicas.
pub fn old_and_available(deployment: Option<&Deployment>) -> (i32, i32) {
    let status = deployment.and_then(|d| d.status.as_ref());
    let replicas = status.and_then(|s| s.replicas).unwrap_or(0);
    let updated = status.and_then(|s| s.updated_replicas).unwrap_or(0);
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0);
    ((replicas - updated).max(0), available)
}

/// How many times to ask the probe: `None` when its answer cannot matter (nothing available, or
/// old pods still behind the Service, which could answer for the new revision); else up to three
/// tries, so the answers come from several pods.
pub fn probe_attempts(api: Option<&Deployment>) -> Option<u32> {
    let (old, available) = old_and_available(api);
    (old == 0 && available >= 1).then(|| u32::try_from(available.min(3)).unwrap_or(1))
}

/// Reads what the plan needs.
pub async fn observe(
    ctx: &Context,
    agent: &ValidatedAgent,
    previous: &FinancialAgentStatus,
) -> Result<Observed, ReconcileError> {
    let api = child::<Deployment>(ctx, agent, "Deployment", child_name(agent, Component::ApiServer)).await?;
    let worker = child::<Deployment>(ctx, agent, "Deployment", child_name(agent, Component::OcrWorker)).await?;
    let map = child::<ConfigMap>(ctx, agent, "ConfigMap", last_known_good_name(agent)).await?;
    // The datastores and Prometheus, when the operator runs them: Ready covers them too.
    let mut supporting = Vec::new();
    for (runs, component) in [
        (agent.spec.redis.managed, Component::Redis),
        (agent.spec.mongodb.managed, Component::Mongodb),
        (agent.spec.prometheus.enabled, Component::Prometheus),
    ] {
        if !runs {
            continue;
        }
        let name = child_name(agent, component);
        let (ready, replicas) = if component == Component::Prometheus {
            let found = child::<Deployment>(ctx, agent, "Deployment", name).await?;
            let status = found.as_ref().and_then(|d| d.status.clone()).unwrap_or_default();
            (status.ready_replicas.unwrap_or(0), found.and_then(|d| d.spec.replicas).unwrap_or(1))
        } else {
            let found = child::<StatefulSet>(ctx, agent, "StatefulSet", name).await?;
            let status = found.as_ref().and_then(|s| s.status.clone()).unwrap_or_default();
            (status.ready_replicas.unwrap_or(0), found.and_then(|s| s.spec.replicas).unwrap_or(1))
        };
        supporting.push((component.as_str().to_owned(), ready, replicas));
    }
    let last_good = LastKnownGood::from_config_map(map);
    let (depth, depth_error) = match ctx.depth.depth(agent).await {
        Ok(depth) => (Some(depth), None),
        Err(error) => (None, Some(error)),
    };
    // While the last good revision runs in place of a failed one, probing would only ask the old
    // pods. A failed revision that still runs (nothing to roll back to, or rollbacks off) is
    // probed, so that it recovers once it becomes healthy.
    let desired = crate::build::workloads::desired_revision(agent);
    let holding_back = super::last_known_good::holds_back(agent, &desired, previous, last_good.as_ref());
    let mut probes = [None, None];
    for (answer, (deployment, target)) in
        probes.iter_mut().zip([(api.as_ref(), ProbeTarget::Api), (worker.as_ref(), ProbeTarget::Workers)])
    {
        if let (Some(attempts), false) = (probe_attempts(deployment), holding_back) {
            *answer = ctx.probe.ready(agent, target, attempts).await;
        }
    }
    let [probe, worker_probe] = probes;
    Ok(Observed { api, worker, last_good, depth, depth_error, probe, worker_probe, credentials: None, supporting })
}

/// The API's Deployment as it runs (from the watch cache).
pub async fn running_api(ctx: &Context, agent: &ValidatedAgent) -> Result<Option<Deployment>, ReconcileError> {
    child::<Deployment>(ctx, agent, "Deployment", child_name(agent, Component::ApiServer)).await
}

/// The digests of the Secret values the running templates were built with: kept while a Secret
/// cannot be used, so a broken Secret never rolls the pods.
pub async fn running_digests(
    ctx: &Context,
    agent: &ValidatedAgent,
) -> Result<crate::validate::SecretDigests, ReconcileError> {
    let mut digests = [None, None];
    for (slot, component) in digests.iter_mut().zip([Component::ApiServer, Component::OcrWorker]) {
        let deployment = child::<Deployment>(ctx, agent, "Deployment", child_name(agent, component)).await?;
        *slot = deployment
            .map(|d| d.spec)
            .and_then(|spec| spec.template.metadata)
            .and_then(|metadata| metadata.annotations)
            .and_then(|mut annotations| annotations.remove(crate::build::workloads::SECRET_DIGEST_ANNOTATION));
    }
    let [api, worker] = digests;
    Ok(crate::validate::SecretDigests { api, worker })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentStatus;

    fn deployment(replicas: i32, updated: i32, available: i32) -> Deployment {
        Deployment {
            status: Some(DeploymentStatus {
                replicas: Some(replicas),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        }
    }

    #[test]
    fn the_probe_is_asked_only_when_every_answer_comes_from_the_new_revision() {
        // Old pods behind the Service could answer for the new revision: not asked.
        assert_eq!(probe_attempts(Some(&deployment(3, 2, 3))), None);
        // Nothing available: nothing to ask.
        assert_eq!(probe_attempts(Some(&deployment(2, 2, 0))), None);
        assert_eq!(probe_attempts(None), None);
        // Several tries, so one lucky pod does not prove a revision; at most three.
        assert_eq!(probe_attempts(Some(&deployment(2, 2, 2))), Some(2));
        assert_eq!(probe_attempts(Some(&deployment(8, 8, 8))), Some(3));
    }
}
