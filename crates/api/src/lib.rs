//! `sriovnetwork.openshift.io/v1` API types with upstream's JSON names, defaults and validation,
//! the CRDs generated from them, and the parsing of user manifests into typed objects.
//!
//! Every type here is plain data (serde + schemars, no client): the operator's decisions are
//! pure functions over these types, and `sriovctl` reads the same YAML a cluster admin applies.

// kube's `printcolumn(...)` repeats the same keys once per column; not a real duplicate.
#![allow(clippy::duplicated_attributes)]

pub mod crd;
pub mod nad;
pub mod network;
pub mod node_state;
pub mod operator_config;
pub mod parse;
pub mod policy;
pub(crate) mod schema;
pub mod schema_check;
pub mod selection;

pub use nad::{NadSpec, NetworkAttachmentDefinition};
pub use network::{
    NetworkStatus, OVSNetwork, OvsNetworkSpec, SriovIBNetwork, SriovIbNetworkSpec, SriovNetwork,
    SriovNetworkSpec, TrunkConfig,
};
pub use node_state::{NodeStateInterface, NodeStateSpec, NodeStateStatus, SriovNetworkNodeState, VfGroup};
pub use operator_config::{
    OperatorConfigSpec, OperatorConfigStatus, PoolConfigSpec, SRIOV_SWITCH_LABEL, SRIOV_SWITCH_LABEL_VALUE,
    SriovNetworkPoolConfig, SriovOperatorConfig, SriovSwitch,
};
pub use parse::{ApiError, Object, parse_documents, parse_object};
pub use policy::{NicSelector, NodePolicySpec, SriovNetworkNodePolicy};

/// The API group of every sriov-rs kind except the NAD.
pub const GROUP: &str = "sriovnetwork.openshift.io";
/// `apiVersion` of every sriov-rs kind.
pub const API_VERSION: &str = "sriovnetwork.openshift.io/v1";
/// `apiVersion` of `NetworkAttachmentDefinition`.
pub const NAD_API_VERSION: &str = "k8s.cni.cncf.io/v1";

/// The drain handshake's annotation values (upstream `pkg/consts`). The config daemon writes a
/// request ([`IDLE`](drain::IDLE), [`DRAIN_REQUIRED`](drain::DRAIN_REQUIRED),
/// [`REBOOT_REQUIRED`](drain::REBOOT_REQUIRED)) to the Node's [`keys::NODE_DRAIN_STATE`] and the
/// node state's [`keys::DESIRED_STATE`]; the drain controller answers in the node state's
/// [`keys::CURRENT_STATE`] ([`IDLE`](drain::IDLE), [`DRAINING`](drain::DRAINING),
/// [`DRAIN_COMPLETE`](drain::DRAIN_COMPLETE)). External drainers and tooling read the same
/// strings, so they are upstream's byte for byte.
pub mod drain {
    pub const IDLE: &str = "Idle";
    /// Evict the pods using SR-IOV resources.
    pub const DRAIN_REQUIRED: &str = "Drain_Required";
    /// Evict every pod (the node reboots).
    pub const REBOOT_REQUIRED: &str = "Reboot_Required";
    pub const DRAINING: &str = "Draining";
    pub const DRAIN_COMPLETE: &str = "DrainComplete";
}

/// Well-known label and annotation keys (upstream `pkg/consts`), shared by the operator, the
/// daemon and the drain controller.
pub mod keys {
    /// Node label for SR-IOV capable nodes (node-feature-discovery's name, as Harvester expects);
    /// the config daemon sets it, the one switch selects on it by default.
    pub const SRIOV_CAPABLE_LABEL: &str = "feature.node.kubernetes.io/network-sriov.capable";
    /// Node label gating the device-plugin DaemonSet: `Enabled` / `Disabled`.
    pub const DEVICE_PLUGIN_LABEL: &str = "sriovnetwork.openshift.io/device-plugin";
    pub const DEVICE_PLUGIN_ENABLED: &str = "Enabled";
    pub const DEVICE_PLUGIN_DISABLED: &str = "Disabled";
    /// Node annotation: drain request written by the daemon.
    pub const NODE_DRAIN_STATE: &str = "sriovnetwork.openshift.io/state";
    /// NodeState annotation: desired drain state (daemon).
    pub const DESIRED_STATE: &str = "sriovnetwork.openshift.io/desired-state";
    /// NodeState annotation: current drain state (drain controller).
    pub const CURRENT_STATE: &str = "sriovnetwork.openshift.io/current-state";
    /// NodeState annotation: `"true"` when the daemon runs with `USE_EXTERNAL_DRAINER=true`;
    /// the drain controller then leaves the node to the external drainer.
    pub const USE_EXTERNAL_DRAINER: &str = "sriovnetwork.openshift.io/use-external-drainer";
    /// NAD annotation naming the network CR that owns it.
    pub const OWNER_REF: &str = "sriovnetwork.openshift.io/owner-ref";
    /// NAD annotation with `<RESOURCE_PREFIX>/<resourceName>`.
    pub const RESOURCE_NAME: &str = "k8s.v1.cni.cncf.io/resourceName";
    /// Network CR annotation: namespace the NAD was last created in.
    pub const LAST_NETWORK_NAMESPACE: &str = "operator.sriovnetwork.openshift.io/last-network-namespace";
}
