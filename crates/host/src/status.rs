//! Upstream's `SriovNetworkNodeState.status.interfaces` shape (`InterfaceExt` / `VirtualFunction`),
//! field for field and with upstream's JSON names, quirks included (`totalvfs`, `Vfs`, `Vlan`,
//! `vfID` without omitempty). The config daemon publishes these unchanged.

use serde::{Deserialize, Serialize};

fn is_zero(v: &i32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// One PF as the node state reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InterfaceExt {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub pci_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    #[serde(default, rename = "deviceID", skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub net_filter: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_vfs: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_speed: String,
    /// `ETH` or `IB`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_type: String,
    /// `up` or `down`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_admin_state: String,
    #[serde(default, rename = "eSwitchMode", skip_serializing_if = "String::is_empty")]
    pub e_switch_mode: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub externally_managed: bool,
    #[serde(default, rename = "totalvfs", skip_serializing_if = "is_zero")]
    pub total_vfs: i32,
    #[serde(default, rename = "Vfs", skip_serializing_if = "Vec::is_empty")]
    pub vfs: Vec<VirtualFunction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alt_names: Vec<String>,
}

/// One VF as the node state reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct VirtualFunction {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub assigned: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub pci_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    #[serde(default, rename = "deviceID", skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    #[serde(default, rename = "Vlan", skip_serializing_if = "is_zero")]
    pub vlan: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    #[serde(rename = "vfID")]
    pub vf_id: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vdpa_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub representor_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub guid: String,
}
