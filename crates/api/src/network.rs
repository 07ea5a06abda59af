//! The network kinds a user writes to get a NetworkAttachmentDefinition: `SriovNetwork`,
//! `SriovIBNetwork` and `OVSNetwork` (upstream `sriovnetwork_types.go`, `sriovibnetwork_types.go`,
//! `ovsnetwork_types.go`).
//!
//! `capabilities`, `ipam` and `metaPlugins` are raw JSON strings, exactly as upstream: the
//! renderer inserts them verbatim, so their validity is checked at render time, not here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn is_zero(v: &i32) -> bool {
    *v == 0
}
/// Drops schemars' `format: uint32` from an unsigned field's schema: it is no OpenAPI format the
/// apiserver knows, Helm warns on it at install (`unrecognized format "uint32"`), and
/// controller-gen writes none for upstream's `uint` fields. The `minimum`/`maximum` stay.
fn no_unsigned_format(schema: &mut schemars::Schema) {
    if schema
        .get("format")
        .and_then(|f| f.as_str())
        .is_some_and(|f| f.starts_with("uint"))
    {
        schema.remove("format");
    }
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn default_log_level() -> String {
    "info".to_string()
}

/// Status of every network kind: upstream's `ConditionStatus` (a `Ready` condition).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NetworkStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// `SriovNetwork.spec`: an Ethernet VF network rendered as an `sriov` CNI config.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovNetwork",
    doc = "An Ethernet SR-IOV network; the operator renders it into a NetworkAttachmentDefinition (CNI type sriov).",
    namespaced,
    status = "NetworkStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "sriovnet",
    category = "sriov",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Resource",
        type_ = "string",
        json_path = ".spec.resourceName",
        priority = "1"
    ),
    printcolumn(
        name = "Target Namespace",
        type_ = "string",
        json_path = ".spec.networkNamespace",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct SriovNetworkSpec {
    /// Namespace of the NAD; only allowed when the network is in the operator namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_namespace: String,
    pub resource_name: String,
    /// Raw JSON object, e.g. `{"mac": true, "ips": true}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capabilities: String,
    /// Raw JSON IPAM config; all whitespace is stripped when rendered.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipam: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0, max = 4094))]
    pub vlan: i32,
    #[serde(default, rename = "vlanQoS", skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0, max = 7))]
    pub vlan_qos: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["802.1q", "802.1Q", "802.1ad", "802.1AD"]))]
    pub vlan_proto: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["on", "off"]))]
    pub spoof_chk: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["on", "off"]))]
    pub trust: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["auto", "enable", "disable"]))]
    pub link_state: String,
    /// Mbps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_tx_rate: Option<i32>,
    /// Mbps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_tx_rate: Option<i32>,
    /// Raw JSON plugin objects (comma separated) chained after the sriov plugin.
    #[serde(default, rename = "metaPlugins", skip_serializing_if = "String::is_empty")]
    pub meta_plugins: String,
    #[serde(default = "default_log_level", skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["panic", "error", "warning", "info", "debug", ""]))]
    pub log_level: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_file: String,
}

impl Default for SriovNetworkSpec {
    /// An empty spec with the CRD defaults applied (`logLevel: info`).
    fn default() -> Self {
        SriovNetworkSpec {
            network_namespace: String::new(),
            resource_name: String::new(),
            capabilities: String::new(),
            ipam: String::new(),
            vlan: 0,
            vlan_qos: 0,
            vlan_proto: String::new(),
            spoof_chk: String::new(),
            trust: String::new(),
            link_state: String::new(),
            min_tx_rate: None,
            max_tx_rate: None,
            meta_plugins: String::new(),
            log_level: default_log_level(),
            log_file: String::new(),
        }
    }
}

/// `SriovIBNetwork.spec`: an InfiniBand VF network rendered as an `ib-sriov` CNI config.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "SriovIBNetwork",
    doc = "An InfiniBand SR-IOV network; rendered into a NetworkAttachmentDefinition (CNI type ib-sriov).",
    namespaced,
    status = "NetworkStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "sriovibnet",
    category = "sriov",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Resource",
        type_ = "string",
        json_path = ".spec.resourceName",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct SriovIbNetworkSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_namespace: String,
    pub resource_name: String,
    /// Raw JSON object, e.g. `{"infinibandGUID": true}`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capabilities: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipam: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("enum" = ["auto", "enable", "disable"]))]
    pub link_state: String,
    #[serde(default, rename = "metaPlugins", skip_serializing_if = "String::is_empty")]
    pub meta_plugins: String,
}

/// `OVSNetwork.spec`: an OVS (switchdev) network rendered as an `ovs` CNI config.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "sriovnetwork.openshift.io",
    version = "v1",
    kind = "OVSNetwork",
    doc = "An OVS network for switchdev VFs; rendered into a NetworkAttachmentDefinition (CNI type ovs).",
    namespaced,
    status = "NetworkStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "ovsnet",
    category = "sriov",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Bridge", type_ = "string", json_path = ".spec.bridge", priority = "1"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct OvsNetworkSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_namespace: String,
    pub resource_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capabilities: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipam: String,
    #[serde(default, rename = "metaPlugins", skip_serializing_if = "String::is_empty")]
    pub meta_plugins: String,
    /// OVS bridge name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bridge: String,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    #[schemars(range(min = 0, max = 4095), transform = no_unsigned_format)]
    pub vlan: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    #[schemars(transform = no_unsigned_format)]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trunk: Vec<TrunkConfig>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_type: String,
}

/// One OVS trunk entry: a VLAN id or an id range.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrunkConfig {
    #[serde(default, rename = "minID", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4095), transform = no_unsigned_format)]
    pub min_id: Option<u32>,
    #[serde(default, rename = "maxID", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4095), transform = no_unsigned_format)]
    pub max_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4095), transform = no_unsigned_format)]
    pub id: Option<u32>,
}
