//! `SriovNetworkNodePolicy` (upstream `sriovnetworknodepolicy_types.go`): which nodes and PFs get
//! how many VFs, for which device-plugin resource.
//!
//! Field names, omit-empty behaviour, CRD defaults (`deviceType: netdevice`) and validation markers
//! (priority 0..99, mtu ≥ 1, numVfs ≥ 0, enums) follow upstream so every upstream manifest parses
//! and the generated CRD accepts/rejects what upstream's does.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn is_zero(v: &i32) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}
fn default_device_type() -> String {
    DEVICE_TYPE_NETDEVICE.to_string()
}

/// `deviceType` for kernel network devices (the CRD default).
pub const DEVICE_TYPE_NETDEVICE: &str = "netdevice";
/// `deviceType` for VFs bound to vfio-pci (DPDK, VMs).
pub const DEVICE_TYPE_VFIO_PCI: &str = "vfio-pci";

/// `SriovNetworkNodePolicy.spec`.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovNetworkNodePolicy",
    doc = "Which nodes and PFs get how many VFs, for which device-plugin resource.",
    namespaced,
    status = "NodePolicyStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "sriovnnp",
    category = "sriov",
    printcolumn(name = "Resource", type_ = "string", json_path = ".spec.resourceName"),
    printcolumn(name = "Priority", type_ = "integer", json_path = ".spec.priority"),
    printcolumn(name = "VFs", type_ = "integer", json_path = ".spec.numVfs"),
    printcolumn(name = "Device Type", type_ = "string", json_path = ".spec.deviceType"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct NodePolicySpec {
    /// Device-plugin resource name (without the `RESOURCE_PREFIX/`).
    pub resource_name: String,
    /// Exact-match node labels; all must match.
    pub node_selector: BTreeMap<String, String>,
    /// Lower number = higher priority. Absent is 0 in the API (the webhook adds 99).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0, max = 99))]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 1))]
    pub mtu: i32,
    /// VFs per selected PF.
    #[schemars(range(min = 0))]
    pub num_vfs: i32,
    pub nic_selector: NicSelector,
    #[serde(default = "default_device_type", skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["netdevice", "vfio-pci"]))]
    pub device_type: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_rdma: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub need_vhost_net: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["eth", "ETH", "ib", "IB"]))]
    pub link_type: String,
    #[serde(default, rename = "eSwitchMode", skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["legacy", "switchdev"]))]
    pub e_switch_mode: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["virtio", "vhost"]))]
    pub vdpa_type: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclude_topology: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub externally_managed: bool,
    /// OVS bridge for switchdev PFs (feature gate `manageSoftwareBridges`).
    #[serde(default, skip_serializing_if = "PolicyBridge::is_empty")]
    pub bridge: PolicyBridge,
}

impl Default for NodePolicySpec {
    /// An empty spec with the CRD defaults applied (`deviceType: netdevice`), as the API server
    /// would store it.
    fn default() -> Self {
        NodePolicySpec {
            resource_name: String::new(),
            node_selector: BTreeMap::new(),
            priority: 0,
            mtu: 0,
            num_vfs: 0,
            nic_selector: NicSelector::default(),
            device_type: default_device_type(),
            is_rdma: false,
            need_vhost_net: false,
            link_type: String::new(),
            e_switch_mode: String::new(),
            vdpa_type: String::new(),
            exclude_topology: false,
            externally_managed: false,
            bridge: PolicyBridge::default(),
        }
    }
}

/// Upstream's policy status is an empty object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodePolicyStatus {}

/// `spec.nicSelector`: which PFs of a selected node the policy applies to. Every set field must
/// match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NicSelector {
    /// PCI vendor id, hex without `0x` (e.g. `8086`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    /// PF PCI device id, hex.
    #[serde(default, rename = "deviceID", skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    /// PF PCI addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_devices: Vec<String>,
    /// PF names or alternative names, optionally with a VF range: `ens1f0#0-3`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pf_names: Vec<String>,
    /// `openstack/NetworkID:<uuid>` or `aws/NetworkID:<id>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub net_filter: String,
}

impl NicSelector {
    /// No field set: upstream's `Apply` is then a no-op.
    pub fn is_empty(&self) -> bool {
        self.vendor.is_empty()
            && self.device_id.is_empty()
            && self.root_devices.is_empty()
            && self.pf_names.is_empty()
            && self.net_filter.is_empty()
    }
}

/// `spec.bridge`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyBridge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovs: Option<OvsConfig>,
}

impl PolicyBridge {
    pub fn is_empty(&self) -> bool {
        self.ovs.is_none()
    }
}

/// `spec.bridge.ovs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OvsConfig {
    #[serde(default)]
    pub bridge: OvsBridgeConfig,
    #[serde(default)]
    pub uplink: OvsUplinkConfig,
}

/// OVSDB `Bridge` table settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OvsBridgeConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub datapath_type: String,
    #[serde(default, rename = "externalIDs", skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_config: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["secure", "standalone"]))]
    pub fail_mode: String,
}

/// The uplink of a policy's OVS bridge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OvsUplinkConfig {
    #[serde(default)]
    pub interface: OvsInterfaceConfig,
}

/// OVSDB `Interface` table settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OvsInterfaceConfig {
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(default, rename = "externalIDs", skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_config: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu_request: Option<i32>,
}
