//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several operator replicas only
//! one reconciles. The decision is pure ([`lease_decision`], table-tested); [`LeaderElector`] reads
//! and writes the Lease with optimistic concurrency (`resourceVersion`), so two candidates can
//! never both win the same term. A leader that fails to renew before its lease runs out stops
//! (the process exits and restarts as a candidate), rather than risk two leaders.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

/// What a candidate should do with the lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds a live lease: wait.
    Wait,
}

fn time(value: Option<&MicroTime>) -> Option<DateTime<Utc>> {
    value.and_then(|time| DateTime::from_timestamp(time.0.as_second(), time.0.subsec_nanosecond().max(0) as u32))
}

/// Decides from the lease's spec, who we are and the time.
pub fn lease_decision(spec: Option<&LeaseSpec>, me: &str, now: DateTime<Utc>) -> LeaseDecision {
    let Some(spec) = spec else { return LeaseDecision::Acquire };
    match spec.holder_identity.as_deref() {
        None | Some("") => LeaseDecision::Acquire,
        Some(holder) if holder == me => LeaseDecision::Renew,
        Some(_) => {
            let duration = chrono::Duration::seconds(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
            let renewed = time(spec.renew_time.as_ref()).or_else(|| time(spec.acquire_time.as_ref()));
            match renewed {
                Some(renewed) if renewed + duration > now => LeaseDecision::Wait,
                _ => LeaseDecision::Acquire,
            }
        }
    }
}

fn micro(now: DateTime<Utc>) -> MicroTime {
    let timestamp =
        k8s_openapi::jiff::Timestamp::new(now.timestamp(), i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0))
            .unwrap_or_default();
    MicroTime(timestamp)
}

/// Takes part in the election for one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("LeaderElector").field("name", &self.name).field("identity", &self.identity).finish()
    }
}

impl LeaderElector {
    /// A candidate `identity` for the Lease `name` in `namespace`, held for `duration` per renewal.
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str, duration: Duration) -> Self {
        Self { api: Api::namespaced(client, namespace), name: name.to_owned(), identity: identity.to_owned(), duration }
    }

    /// One round: returns whether we hold the lease afterwards.
    pub async fn try_hold(&self) -> Result<bool, kube::Error> {
        let now = Utc::now();
        let current = self.api.get_opt(&self.name).await?;
        let decision = lease_decision(current.as_ref().and_then(|lease| lease.spec.as_ref()), &self.identity, now);
        if decision == LeaseDecision::Wait {
            return Ok(false);
        }
        let previous = current.as_ref().and_then(|lease| lease.spec.clone()).unwrap_or_default();
        let transitions = previous.lease_transitions.unwrap_or(0)
            + i32::from(decision == LeaseDecision::Acquire && current.is_some());
        let spec = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(i32::try_from(self.duration.as_secs()).unwrap_or(15)),
            acquire_time: if decision == LeaseDecision::Acquire { Some(micro(now)) } else { previous.acquire_time },
            renew_time: Some(micro(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        };
        let result = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                // `replace` carries the resourceVersion we read: a concurrent writer makes it fail.
                lease.spec = Some(spec);
                self.api.replace(&self.name, &PostParams::default(), &lease).await
            }
        };
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(response)) if response.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Waits until this candidate leads.
    pub async fn acquire(&self) {
        loop {
            match self.try_hold().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "failed to read or write the leader lease"),
            }
            tokio::time::sleep(self.duration / 3).await;
        }
    }

    /// Renews the lease every third of its duration; returns when leadership is lost.
    pub async fn keep(&self) {
        let mut last_held = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.duration / 3).await;
            match self.try_hold().await {
                Ok(true) => last_held = tokio::time::Instant::now(),
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(%error, "failed to renew the leader lease");
                    if last_held.elapsed() >= self.duration {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time")
    }

    fn held(by: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(by.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(micro(at(renewed))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn lease_decision_table() {
        assert_eq!(lease_decision(None, "a", at(0)), LeaseDecision::Acquire);
        assert_eq!(lease_decision(Some(&LeaseSpec::default()), "a", at(0)), LeaseDecision::Acquire);
        assert_eq!(lease_decision(Some(&held("a", 0)), "a", at(100)), LeaseDecision::Renew);
        assert_eq!(lease_decision(Some(&held("b", 0)), "a", at(14)), LeaseDecision::Wait);
        assert_eq!(lease_decision(Some(&held("b", 0)), "a", at(15)), LeaseDecision::Acquire);
        let mut never_renewed = held("b", 0);
        never_renewed.renew_time = None;
        assert_eq!(lease_decision(Some(&never_renewed), "a", at(1)), LeaseDecision::Acquire);
    }
}
