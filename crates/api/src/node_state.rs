//! `SriovNetworkNodeState` spec and status (upstream `sriovnetworknodestate_types.go`).
//!
//! The spec is what the operator renders for one node and what the config daemon applies; the
//! status is what the daemon discovered ([`sriov_host::InterfaceExt`]) plus its sync state.

use serde::{Deserialize, Serialize};
use sriov_host::InterfaceExt;

fn is_zero(v: &i32) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// `SriovNetworkNodeState.spec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStateSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<NodeStateInterface>,
    /// `bridges` (OVS, switchdev only): kept verbatim, sriov-rs does not manage OVS bridges yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridges: Option<serde_json::Value>,
    /// `system` (`rdmaMode`): kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<serde_json::Value>,
}

/// One PF in the spec (`spec.interfaces[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "is_false")]
    pub externally_managed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vf_groups: Vec<VfGroup>,
}

/// A range of VFs of one PF given to one resource (`spec.interfaces[].vfGroups[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStateStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceExt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridges: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<serde_json::Value>,
    /// `Succeeded`, `Failed` or `InProgress`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sync_status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_sync_error: String,
}
