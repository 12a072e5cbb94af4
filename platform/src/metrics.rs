//! The one Prometheus registry of a process.
//!
//! Built once at start and handed to each component, which registers its own collectors on it;
//! the admin router renders it at `/metrics`. Process metrics (CPU, memory, file descriptors) are
//! registered up front.

use prometheus::{Encoder, Registry, TextEncoder};

/// A process's metrics registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// A registry with process metrics registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            // Only fails on a duplicate registration, impossible on a fresh registry.
            let _ = registry.register(Box::new(process));
        }
        Self { registry }
    }

    /// The registry, for components to register their collectors on.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(error) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "failed to encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{IntCounter, Opts};

    #[test]
    fn registered_metrics_are_rendered() {
        let metrics = Metrics::new();
        let counter = IntCounter::with_opts(Opts::new("finagent_test_total", "A test counter.")).expect("valid");
        metrics.registry().register(Box::new(counter.clone())).expect("registers");
        counter.inc_by(3);
        let text = metrics.render();
        assert!(text.contains("# TYPE finagent_test_total counter"), "{text}");
        assert!(text.contains("finagent_test_total 3"), "{text}");
    }
}
