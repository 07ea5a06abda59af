//! The operator's decisions as plain functions over plain data: policies + nodes + what each
//! node reported → each node's `SriovNetworkNodeState.spec`, device-plugin config and
//! device-plugin label; network CRs → NADs. No I/O here: the controllers and `sriovctl render`
//! call these and do the reading and writing.
//!
//! Outputs follow upstream byte for byte where a consumer parses them (device-plugin JSON, NAD
//! `spec.config`). Where upstream fails or misbehaves, sriov-rs deliberately differs, and says so:
//! * a `pfNames` range written with an alternative name is honoured (upstream only honours
//!   ranges on the primary name and silently gives such PFs the whole `0-(numVfs-1)` range);
//! * a policy asking for more VFs than a PF's `totalvfs`, or a range past it, is not applied /
//!   cut to the hardware, with a [`RenderNote`] (upstream renders it and the daemon fails);
//! * a netFilter policy on a node that has not reported its interfaces yet leaves that
//!   device-plugin resource out, with a note (upstream fails the whole sync for every node);
//! * the node-state output is sorted (PFs by PCI address, groups by range) so a re-render is
//!   byte-identical whatever order the daemon reported PFs in;
//! * NAD string values are JSON-escaped (upstream pastes them raw, producing invalid JSON for a
//!   `"` or `\`), and a `'` in a raw JSON field works (it breaks upstream's YAML template).

// Render errors carry the object, field and value as owned strings; they are the cold path.
#![allow(clippy::result_large_err)]

pub mod bridges;
pub mod device_plugin;
pub mod diff;
pub mod go_json;
pub mod manifests;
pub mod nad;
pub mod node_state;
pub mod pf_selector;
pub mod policy_index;
pub mod pools;
pub mod sriov_switch;

use std::collections::BTreeMap;

use sriov_api::{NodeStateSpec, OperatorConfigSpec, SriovNetworkNodePolicy, SriovNetworkPoolConfig};
use sriov_host::InterfaceExt;

pub use device_plugin::{
    NetDeviceSelectors, ResourceConfList, ResourceConfig, device_plugin_label, render_device_plugin_config,
};
pub use diff::{PfChange, diff_node_spec};
pub use nad::{
    NadAction, NadContext, nad_action, render_ib_network_nad, render_ovs_network_nad,
    render_sriov_network_nad,
};
pub use node_state::{NodeOptions, render_node_state};
pub use pf_selector::{PfName, PfSelector, VfRange};
pub use policy_index::{CompiledPolicy, PolicyIndex};
pub use pools::{label_selector_matches, pool_for_node};

use crate::admission::nics::SupportedNics;

/// Why something could not be rendered. Each variant names the object, the field and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("SriovNetworkNodePolicy/{policy}: field {field}: invalid PF name {value:?}: {reason}")]
    InvalidPfName {
        policy: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("{kind}/{namespace}/{name}: field {field}: {reason} (value {value:?})")]
    InvalidNetworkField {
        kind: String,
        namespace: String,
        name: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error(
        "NetworkAttachmentDefinition {namespace}/{name} already exists and is owned by {owner}, not {expected}; left unchanged"
    )]
    NadOwnedByOther {
        namespace: String,
        name: String,
        owner: String,
        expected: String,
    },
}

/// Something the render decided not to do for one node, policy and PF, and why. Not an error:
/// the rest of the node still renders.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RenderNote {
    pub node: String,
    pub policy: String,
    /// PCI address, empty when the note is not about one PF.
    pub pf: String,
    pub message: String,
}

/// A node as the render sees it: its name and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Upstream's config-daemon node selector when `configDaemonNodeSelector` is empty.
pub fn default_daemon_node_selector() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("node-role.kubernetes.io/worker".to_string(), String::new()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
    ])
}

/// Whether the config daemon runs on this node (and so it gets a node state and a
/// device-plugin config): all labels of `configDaemonNodeSelector`, or of the default selector.
pub fn is_daemon_node(node: &NodeInfo, config: Option<&OperatorConfigSpec>) -> bool {
    let default;
    let selector = match config {
        Some(c) if !c.config_daemon_node_selector.is_empty() => &c.config_daemon_node_selector,
        _ => {
            default = default_daemon_node_selector();
            &default
        }
    };
    selector.iter().all(|(k, v)| node.labels.get(k) == Some(v))
}

/// Everything one policy render reads.
#[derive(Clone, Copy, Debug)]
pub struct ClusterInput<'a> {
    /// The operator namespace: only policies there count.
    pub namespace: &'a str,
    /// The `default` SriovOperatorConfig's spec; `None` behaves as an empty one.
    pub operator_config: Option<&'a OperatorConfigSpec>,
    pub nodes: &'a [NodeInfo],
    /// Each node's `status.interfaces`, by node name (missing = not discovered yet).
    pub interfaces: &'a BTreeMap<String, Vec<InterfaceExt>>,
    pub policies: &'a [SriovNetworkNodePolicy],
    pub pools: &'a [SriovNetworkPoolConfig],
    pub supported_nics: &'a SupportedNics,
}

/// What one policy render decides, per daemon node (keys are node names, sorted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterRender {
    pub node_states: BTreeMap<String, NodeStateSpec>,
    /// `device-plugin-config` ConfigMap data: node name → upstream's JSON.
    pub device_plugin_config: BTreeMap<String, String>,
    /// `sriovnetwork.openshift.io/device-plugin` label value per node.
    pub device_plugin_labels: BTreeMap<String, &'static str>,
    pub notes: Vec<RenderNote>,
}

/// Render node states, device-plugin configs and labels for every daemon node.
pub fn render_cluster(input: &ClusterInput<'_>) -> Result<ClusterRender, RenderError> {
    let index = PolicyIndex::new(input.policies, input.namespace)?;
    let pools: Vec<&SriovNetworkPoolConfig> = input
        .pools
        .iter()
        .filter(|p| {
            p.metadata
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == input.namespace)
        })
        .collect();
    let manage_software_bridges = input
        .operator_config
        .and_then(|c| c.feature_gates.get(bridges::MANAGE_SOFTWARE_BRIDGES))
        .copied()
        .unwrap_or(false);
    let mut out = ClusterRender::default();
    let no_interfaces: Vec<InterfaceExt> = Vec::new();
    for node in input
        .nodes
        .iter()
        .filter(|n| is_daemon_node(n, input.operator_config))
    {
        let selected = index.selected(&node.labels);
        let interfaces = input.interfaces.get(&node.name).unwrap_or(&no_interfaces);
        let rdma_mode = match pool_for_node(&pools, &node.labels) {
            Ok(pool) => pool.map(|p| p.spec.rdma_mode.as_str()),
            Err(message) => {
                out.notes.push(RenderNote {
                    node: node.name.clone(),
                    policy: String::new(),
                    pf: String::new(),
                    message,
                });
                None
            }
        };
        let options = NodeOptions {
            rdma_mode,
            manage_software_bridges,
        };
        let spec = render_node_state(&node.name, &selected, interfaces, &options, &mut out.notes);
        let dp = render_device_plugin_config(
            &node.name,
            &selected,
            interfaces,
            input.supported_nics,
            &mut out.notes,
        );
        out.device_plugin_labels
            .insert(node.name.clone(), dp.device_plugin_label());
        out.device_plugin_config
            .insert(node.name.clone(), dp.to_upstream_json());
        out.node_states.insert(node.name.clone(), spec);
    }
    out.notes.sort();
    out.notes.dedup();
    Ok(out)
}
