//! Cluster-wide settings: `SriovOperatorConfig` (only the one named `default` in the operator
//! namespace is honoured) and `SriovNetworkPoolConfig` (node pools for parallel drain and RDMA
//! mode). Upstream `sriovoperatorconfig_types.go`, `sriovnetworkpoolconfig_types.go`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn is_zero(v: &i32) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// The only `SriovOperatorConfig` name the operator reads.
pub const DEFAULT_OPERATOR_CONFIG_NAME: &str = "default";

/// `SriovOperatorConfig.spec`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovOperatorConfig",
    doc = "Cluster-wide settings of the SR-IOV operator; only the one named default in the operator namespace is used.",
    namespaced,
    status = "OperatorConfigStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "sriov",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct OperatorConfigSpec {
    /// Nodes the config daemon runs on (and that get node states); replaces the default
    /// `{node-role.kubernetes.io/worker: "", kubernetes.io/os: linux}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_daemon_node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_injector: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_operator_webhook: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0, max = 2))]
    pub log_level: i32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_drain: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_ovs_offload: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["daemon", "systemd"]))]
    pub configuration_mode: String,
    #[serde(default, rename = "useCDI", skip_serializing_if = "is_false")]
    pub use_cdi: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("items" = {"type": "string", "enum": ["mellanox"]}))]
    pub disable_plugins: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feature_gates: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_daemon_env_vars: BTreeMap<String, String>,
    /// sriov-rs extension, Harvester's `sriov-config` switch: N VFs on every SR-IOV capable NIC
    /// of the selected nodes, through policies the operator generates and owns. Upstream has
    /// no such field; an upstream operator ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sriov_config: Option<SriovSwitch>,
}

/// `SriovOperatorConfig.spec.sriovConfig`: the one switch. Enabled, the operator keeps one
/// `SriovNetworkNodePolicy` per NIC model (vendor + device ID) found on the selected nodes,
/// named `sriov-config-<vendor>-<device>` and labelled [`SRIOV_SWITCH_LABEL`]; disabled or
/// removed, it deletes them and the nodes return their NICs to 0 VFs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SriovSwitch {
    #[serde(default)]
    pub enabled: bool,
    /// VFs per NIC; a NIC model whose smallest `totalvfs` is lower gets that many instead.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub num_vfs: i32,
    /// Device-plugin resource name of the pool (default `sriov_vfs`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    /// `netdevice` (default) or `vfio-pci` (VFs for VMs, as Harvester uses them).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["netdevice", "vfio-pci"]))]
    pub device_type: String,
    /// Nodes to configure (default: `feature.node.kubernetes.io/network-sriov.capable: "true"`,
    /// the label the config daemon puts on nodes with an SR-IOV NIC).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// MTU of the PFs and VFs (unset: left as it is).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0))]
    pub mtu: i32,
}

/// Label on the policies the one switch generates: the operator deletes only these.
pub const SRIOV_SWITCH_LABEL: &str = "sriovnetwork.openshift.io/generated-by";
/// [`SRIOV_SWITCH_LABEL`]'s value.
pub const SRIOV_SWITCH_LABEL_VALUE: &str = "sriov-config";

/// `SriovOperatorConfig.status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorConfigStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub injector: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator_webhook: String,
}

/// `SriovNetworkPoolConfig.spec`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovNetworkPoolConfig",
    doc = "A pool of nodes: how many may drain at once, and their RDMA mode.",
    namespaced,
    status = "PoolConfigStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "sriov",
    printcolumn(
        name = "Max Unavailable",
        type_ = "string",
        json_path = ".spec.maxUnavailable"
    ),
    printcolumn(name = "RDMA Mode", type_ = "string", json_path = ".spec.rdmaMode"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PoolConfigSpec {
    /// OpenShift MachineConfigPool name for OVS hardware offload.
    #[serde(default, skip_serializing_if = "OvsHardwareOffloadConfig::is_empty")]
    pub ovs_hardware_offload_config: OvsHardwareOffloadConfig,
    /// Nodes in this pool; empty or absent selects every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// How many nodes of the pool may drain at once: a number or `"N%"`; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["shared", "exclusive"]))]
    pub rdma_mode: String,
}

/// `spec.ovsHardwareOffloadConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OvsHardwareOffloadConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl OvsHardwareOffloadConfig {
    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
    }
}

/// Upstream's pool status is an empty object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PoolConfigStatus {}
