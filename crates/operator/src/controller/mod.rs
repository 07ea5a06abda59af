//! The operator's controllers: thin I/O around the pure `render` and `admission` cores.
//!
//! Each controller reads from kube-runtime reflector caches (no per-object GETs), decides with
//! a plain function, and writes only what differs, with server-side apply under the one field
//! manager [`FIELD_MANAGER`]. The binary (`bin/sriov-network-operator.rs`) starts them with one
//! shared [`OperatorContext`].

pub mod default_config;
pub mod drain;
mod drain_evict;
pub mod drain_plan;
mod drain_report;
pub mod events;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod networks;
pub mod node_states;
pub mod operator_config;
pub mod serve;
pub mod settings;
pub mod sriov_switch;
pub mod supervise;
pub mod webhook_certs;

use std::sync::Arc;

/// The one server-side-apply field manager every controller writes with, so the apiserver's
/// `managedFields` show a single owner and a re-apply of the same object is a no-op.
pub const FIELD_MANAGER: &str = "sriov-network-operator";

/// What every controller needs: the client, the operator namespace and the shared metrics.
#[derive(Clone)]
pub struct OperatorContext {
    pub client: kube::Client,
    /// The operator's namespace (env `NAMESPACE`): policies, node states, the device-plugin
    /// ConfigMap and the DaemonSets live here.
    pub namespace: String,
    pub metrics: Arc<metrics::OperatorMetrics>,
}
