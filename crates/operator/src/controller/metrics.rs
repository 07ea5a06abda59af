//! Prometheus metrics of the operator, served on `--metrics-bind-address`.
//!
//! Upstream documents `sriov_operator_reconcile_duration_seconds` but never implements it; here
//! every controller records each reconcile's duration and outcome under its own `controller`
//! label, so a slow or failing controller is visible without reading logs.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-controller series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: String,
}

/// Labels of the node sync-status gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncStatusLabel {
    pub sync_status: String,
}

/// Labels of the VFs-per-resource gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    pub resource: String,
}

/// Every metric the operator exports, registered once in [`OperatorMetrics::new`].
pub struct OperatorMetrics {
    registry: Registry,
    pub reconcile_duration: Family<ControllerLabel, Histogram>,
    pub reconcile_errors: Family<ControllerLabel, Counter>,
    pub nodes_by_sync_status: Family<SyncStatusLabel, Gauge>,
    pub vfs_per_resource: Family<ResourceLabel, Gauge>,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OperatorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sriov_operator");
        let reconcile_duration = Family::<ControllerLabel, Histogram>::new_with_constructor(|| {
            // 100 µs .. ~6.5 s: a render of 1,000 nodes sits in the middle.
            Histogram::new(exponential_buckets(0.0001, 4.0, 9))
        });
        let reconcile_errors = Family::<ControllerLabel, Counter>::default();
        let nodes_by_sync_status = Family::<SyncStatusLabel, Gauge>::default();
        let vfs_per_resource = Family::<ResourceLabel, Gauge>::default();
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, per controller",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error, per controller",
            reconcile_errors.clone(),
        );
        registry.register(
            "nodes",
            "SriovNetworkNodeStates by status.syncStatus",
            nodes_by_sync_status.clone(),
        );
        registry.register(
            "resource_vfs",
            "VFs configured for each device-plugin resource, summed over nodes",
            vfs_per_resource.clone(),
        );
        OperatorMetrics {
            registry,
            reconcile_duration,
            reconcile_errors,
            nodes_by_sync_status,
            vfs_per_resource,
        }
    }

    /// Record one reconcile of `controller`: its duration and whether it failed.
    pub fn observe_reconcile(&self, controller: &str, took: Duration, failed: bool) {
        let label = ControllerLabel {
            controller: controller.to_string(),
        };
        self.reconcile_duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        if failed {
            self.reconcile_errors.get_or_create(&label).inc();
        }
    }

    /// The registry in Prometheus text format (what `/metrics` serves).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_failed_reconcile_is_counted_under_its_controller() {
        let m = OperatorMetrics::new();
        m.observe_reconcile("node-states", Duration::from_millis(3), false);
        m.observe_reconcile("networks", Duration::from_millis(1), true);
        let text = m.encode().unwrap();
        assert!(text.contains("sriov_operator_reconcile_errors_total{controller=\"networks\"} 1"), "{text}");
        assert!(!text.contains("sriov_operator_reconcile_errors_total{controller=\"node-states\"}"), "{text}");
        assert!(text.contains("sriov_operator_reconcile_duration_seconds_count{controller=\"node-states\"} 1"), "{text}");
    }
}
