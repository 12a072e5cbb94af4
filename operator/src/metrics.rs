//! The operator's metrics, registered once on the process registry.

use finagent_platform::metrics::Metrics;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts};

/// Counters and histograms of the operator.
#[derive(Clone, Debug)]
pub struct OperatorMetrics {
    /// Reconciles by outcome (`ok`, `error`).
    pub reconciles: IntCounterVec,
    /// Reconcile errors by kind (the failed step).
    pub errors: IntCounterVec,
    /// Reconcile durations.
    pub duration: HistogramVec,
    /// Scaling decisions that changed the workers, by direction.
    pub scaling: IntCounterVec,
    /// Rollbacks performed.
    pub rollbacks: IntCounterVec,
    /// 1 while this replica holds the leader Lease and reconciles, 0 while it waits.
    pub leader: IntGauge,
    /// Requests to the Kubernetes API, by verb (`get`, `list`, `watch`, `patch`, …).
    pub kubernetes_requests: IntCounterVec,
    /// Writes refused because this replica's lease had passed its renew deadline.
    pub fenced_writes: IntCounter,
}

impl OperatorMetrics {
    /// Registers the metrics.
    pub fn register(metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let reconciles = IntCounterVec::new(
            Opts::new("finagent_operator_reconciles_total", "Reconciles by outcome."),
            &["outcome"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new("finagent_operator_reconcile_errors_total", "Reconcile errors by failed step."),
            &["kind"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("finagent_operator_reconcile_duration_seconds", "Reconcile duration in seconds."),
            &["outcome"],
        )?;
        let scaling = IntCounterVec::new(
            Opts::new("finagent_operator_scaling_decisions_total", "Worker scaling decisions by direction."),
            &["financialagent", "direction"],
        )?;
        let rollbacks = IntCounterVec::new(
            Opts::new("finagent_operator_rollbacks_total", "Rollbacks to the last known good revision."),
            &["financialagent"],
        )?;
        let leader = IntGauge::new("finagent_operator_leader", "1 while this replica leads and reconciles.")?;
        let kubernetes_requests = IntCounterVec::new(
            Opts::new("finagent_operator_kubernetes_requests_total", "Requests to the Kubernetes API by verb."),
            &["verb"],
        )?;
        let fenced_writes = IntCounter::new(
            "finagent_operator_fenced_writes_total",
            "Writes refused because the leader lease was not renewed within the renew deadline.",
        )?;
        metrics.registry().register(Box::new(fenced_writes.clone()))?;
        for collector in [&reconciles, &errors, &scaling, &rollbacks, &kubernetes_requests] {
            metrics.registry().register(Box::new(collector.clone()))?;
        }
        metrics.registry().register(Box::new(duration.clone()))?;
        metrics.registry().register(Box::new(leader.clone()))?;
        Ok(Self { reconciles, errors, duration, scaling, rollbacks, leader, kubernetes_requests, fenced_writes })
    }

    /// Drops the series of a resource that no longer exists (`namespace/name`).
    pub fn forget(&self, key: &str) {
        let _ = self.rollbacks.remove_label_values(&[key]);
        for direction in ["up", "down"] {
            let _ = self.scaling.remove_label_values(&[key, direction]);
        }
    }

    /// The resources that have series.
    pub fn keys(&self) -> std::collections::HashSet<String> {
        use prometheus::core::Collector;
        self.rollbacks
            .collect()
            .iter()
            .flat_map(|family| family.get_metric().iter())
            .filter_map(|metric| {
                metric.get_label().iter().find(|label| label.name() == "financialagent").map(|l| l.value().to_owned())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forgotten_resource_has_no_series_left() {
        let metrics = OperatorMetrics::register(&Metrics::new()).expect("registered");
        metrics.rollbacks.with_label_values(&["shop/a"]).inc();
        metrics.scaling.with_label_values(&["shop/a", "up"]);
        metrics.rollbacks.with_label_values(&["shop/b"]);
        assert_eq!(metrics.keys(), ["shop/a".to_owned(), "shop/b".to_owned()].into());
        metrics.forget("shop/a");
        assert_eq!(metrics.keys(), ["shop/b".to_owned()].into());
    }
}
