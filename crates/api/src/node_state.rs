//! `SriovNetworkNodeState` spec and status (upstream `sriovnetworknodestate_types.go`).
//!
//! The spec is what the operator renders for one node and what the config daemon applies; the
//! status is what the daemon discovered ([`sriov_host::InterfaceExt`]) plus its sync state.
//! One object per node, named after the node, in the operator namespace.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sriov_host::InterfaceExt;

fn is_zero(v: &i32) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// `SriovNetworkNodeState.spec`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovNetworkNodeState",
    doc = "One node: the SR-IOV configuration the operator wants (spec) and what the config daemon found and applied (status).",
    namespaced,
    status = "NodeStateStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "sriovnns",
    category = "sriov",
    printcolumn(name = "Sync Status", type_ = "string", json_path = ".status.syncStatus"),
    printcolumn(
        name = "Desired Sync State",
        type_ = "string",
        json_path = ".metadata.annotations.sriovnetwork\\.openshift\\.io/desired-state"
    ),
    printcolumn(
        name = "Current Sync State",
        type_ = "string",
        json_path = ".metadata.annotations.sriovnetwork\\.openshift\\.io/current-state"
    ),
    // The API server prints only the first match of a JSONPath (`[*]` shows one value), so the
    // per-PF columns name the first PF explicitly instead of pretending to cover every PF.
    printcolumn(
        name = "PF",
        type_ = "string",
        json_path = ".status.interfaces[0].name",
        description = "The first PF the daemon found"
    ),
    printcolumn(
        name = "VFs",
        type_ = "integer",
        json_path = ".status.interfaces[0].numVfs",
        description = "VFs the first PF has now"
    ),
    printcolumn(
        name = "Desired VFs",
        type_ = "integer",
        json_path = ".spec.interfaces[0].numVfs",
        priority = "1",
        description = "VFs the spec asks of its first PF"
    ),
    // Which VFs are given to pools lives in the spec's `vfGroups` (what the device plugin then
    // advertises); pods holding them are `sriovctl status`'s job (PodResources, not this object).
    printcolumn(
        name = "VFs Allocated",
        type_ = "string",
        json_path = ".spec.interfaces[0].vfGroups[0].vfRange",
        description = "VF indexes of the first PF the spec gives to its first resource pool"
    ),
    printcolumn(
        name = "Last Error",
        type_ = "string",
        json_path = ".status.lastSyncError",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct NodeStateSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<NodeStateInterface>,
    /// `bridges` (OVS, switchdev only): kept verbatim, sriov-rs does not manage OVS bridges yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::bridges_schema")]
    pub bridges: Option<serde_json::Value>,
    /// `system` (`rdmaMode`): kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::system_schema")]
    pub system: Option<serde_json::Value>,
}

/// One PF in the spec (`spec.interfaces[]`), fields in upstream's order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStateInterface {
    pub pci_address: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_vfs: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_type: String,
    #[serde(default, rename = "eSwitchMode", skip_serializing_if = "String::is_empty")]
    pub e_switch_mode: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vf_groups: Vec<VfGroup>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub externally_managed: bool,
}

/// A range of VFs of one PF given to one resource (`spec.interfaces[].vfGroups[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VfGroup {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_name: String,
    /// `netdevice` or `vfio-pci`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device_type: String,
    /// `"a-b"`, inclusive VF indexes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vf_range: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_name: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_rdma: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vdpa_type: String,
}

/// `SriovNetworkNodeState.status`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStateStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceExt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::bridges_schema")]
    pub bridges: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::system_schema")]
    pub system: Option<serde_json::Value>,
    /// `Succeeded`, `Failed` or `InProgress`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sync_status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_sync_error: String,
    /// The drain controller's conditions (`DrainProgressing`, `DrainDegraded`, `DrainComplete`,
    /// upstream's newer names): a drain blocked by a PodDisruptionBudget shows here instead of
    /// leaving the node cordoned without a word. The daemon never writes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// A node state's sync status values (`status.syncStatus`).
pub mod sync_status {
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const IN_PROGRESS: &str = "InProgress";
}
