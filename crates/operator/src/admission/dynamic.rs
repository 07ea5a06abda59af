//! Validation of a `SriovNetworkNodePolicy` against the cluster (upstream
//! `dynamicValidateSriovNetworkNodePolicy`): the nodes it selects, the NICs they reported and
//! the other policies on those nodes.
//!
//! Unlike upstream, a policy that selects no node yet, or only nodes that have not reported
//! their NICs yet, is allowed with a warning: policies can be created before the nodes join.

use sriov_host::InterfaceExt;

use super::Settings;
use super::nics::SupportedNics;
use super::objects::{Cluster, Node, NodeState, Policy, policy_name};
use super::pfnames;

const INTEL: &str = "8086";
const MELLANOX: &str = "15b3";
const MLX_MAX_VFS: i32 = 128;

/// Upstream `Selected(node)`: every nodeSelector label is present with the same value.
pub fn selects(policy: &Policy, node: &Node) -> bool {
    policy
        .spec
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
}

/// Runs the dynamic rules. `Ok(warnings)` when allowed, `Err(upstream message)` when refused.
pub fn dynamic_check(policy: &Policy, cluster: &Cluster, settings: &Settings) -> Result<Vec<String>, String> {
    let name = policy_name(policy);
    let mut nodes_selected = false;
    let mut interface_selected = false;
    let mut discovered = false;
    for node in cluster.nodes.iter().filter(|n| selects(policy, n)) {
        nodes_selected = true;
        let state = cluster.node_states.iter().find(|s| s.name == node.name);
        if let Some(state) = state {
            discovered |= !state.interfaces.is_empty();
            interface_selected |= check_against_state(policy, state, node, &cluster.nics, settings)?;
        }
        for other in cluster
            .policies
            .iter()
            .filter(|p| policy_name(p) != name && selects(p, node))
        {
            check_against_policy(policy, other, state)?;
        }
    }
    if !nodes_selected {
        return Ok(vec![format!(
            "no matched node is selected by the nodeSelector in CR {name}; \
             accepted anyway (sriov-rs): it applies when a matching node joins"
        )]);
    }
    if !interface_selected {
        if discovered {
            return Err(format!(
                "no supported NIC is selected by the nicSelector in CR {name}"
            ));
        }
        return Ok(vec![format!(
            "no node selected by CR {name} has reported its NICs yet; \
             accepted anyway (sriov-rs): its nicSelector is checked when they do"
        )]);
    }
    Ok(Vec::new())
}

/// Upstream `validateNicModel`: the selector matches the PF, and the PF is a supported model
/// (or, on OpenStack/AWS nodes selected by netFilter, a supported VF model). In dev mode any
/// model counts as supported (upstream still refuses unsupported PFs here).
fn nic_selected(
    policy: &Policy,
    iface: &InterfaceExt,
    node: &Node,
    nics: &SupportedNics,
    settings: &Settings,
) -> bool {
    let sel = &policy.spec.nic_selector;
    if !sel.vendor.is_empty() && sel.vendor != iface.vendor {
        return false;
    }
    if !sel.device_id.is_empty() && sel.device_id != iface.device_id {
        return false;
    }
    if !sel.root_devices.is_empty() && !sel.root_devices.contains(&iface.pci_address) {
        return false;
    }
    if !sel.pf_names.is_empty() {
        let names: Vec<&str> = sel
            .pf_names
            .iter()
            .map(|p| sriov_host::pf_range::split_entry(p).0)
            .collect();
        let hit = names.contains(&iface.name.as_str())
            || iface.alt_names.iter().any(|a| names.contains(&a.as_str()));
        if !hit {
            return false;
        }
    }
    if settings.dev_mode || nics.is_supported_model(&iface.vendor, &iface.device_id) {
        return true;
    }
    let provider = node.provider_id.to_lowercase();
    ["openstack", "aws"].iter().any(|p| provider.contains(p))
        && !sel.net_filter.is_empty()
        && sel.net_filter == iface.net_filter
        && nics.is_vf_supported_model(&iface.vendor, &iface.device_id)
}

/// Upstream `validatePolicyForNodeState`; `Ok(true)` when some PF of the node is selected.
fn check_against_state(
    policy: &Policy,
    state: &NodeState,
    node: &Node,
    nics: &SupportedNics,
    settings: &Settings,
) -> Result<bool, String> {
    let name = policy_name(policy);
    let s = &policy.spec;
    let mut selected = false;
    for iface in state
        .interfaces
        .iter()
        .filter(|i| nic_selected(policy, i, node, nics, settings))
    {
        selected = true;
        if name != "default" && s.num_vfs == 0 {
            return Err(format!("numVfs({}) in CR {name} is not allowed", s.num_vfs));
        }
        if s.num_vfs > iface.total_vfs && iface.vendor == INTEL {
            return Err(format!(
                "numVfs({}) in CR {name} exceed the maximum allowed value({}) interface({})",
                s.num_vfs, iface.total_vfs, iface.name
            ));
        }
        if s.num_vfs > MLX_MAX_VFS && iface.vendor == MELLANOX {
            return Err(format!(
                "numVfs({}) in CR {name} exceed the maximum allowed value({MLX_MAX_VFS}) interface({})",
                s.num_vfs, iface.name
            ));
        }
        if s.externally_managed {
            if s.num_vfs > iface.num_vfs {
                return Err(format!(
                    "numVfs({}) in CR {name} is higher than the virtual functions allocated for the PF externally value({})",
                    s.num_vfs, iface.num_vfs
                ));
            }
            if s.mtu != 0 && s.mtu > iface.mtu {
                let mtu = s.mtu;
                return Err(format!(
                    "MTU({mtu}) in CR {name} is higher than the MTU for the PF externally value({})",
                    iface.mtu
                ));
            }
            if !s.link_type.is_empty() && !s.link_type.eq_ignore_ascii_case(&iface.link_type) {
                return Err(format!(
                    "LinkType({}) in CR {name} is not equal to the LinkType for the PF externally value({})",
                    s.link_type, iface.link_type
                ));
            }
        }
        if (s.vdpa_type == "virtio" || s.vdpa_type == "vhost") && iface.vendor != MELLANOX {
            return Err(format!(
                "vendor({}) in CR {name} not supported for vdpa interface({})",
                iface.vendor, iface.name
            ));
        }
    }
    Ok(selected)
}

/// Upstream `ResolveInterfaceName`: an alternative name becomes the PF's real name.
fn resolve<'a>(name: &'a str, state: Option<&'a NodeState>) -> &'a str {
    let Some(state) = state else { return name };
    for iface in &state.interfaces {
        if iface.name == name {
            return name;
        }
        if iface.alt_names.iter().any(|a| a == name) {
            return &iface.name;
        }
    }
    name
}

/// Upstream `validatePolicyForNodePolicy`: VF ranges on the same PF, root devices and
/// `excludeTopology` against another policy selecting the same node.
fn check_against_policy(current: &Policy, other: &Policy, state: Option<&NodeState>) -> Result<(), String> {
    let other_name = policy_name(other);
    'pf: for cur in &current.spec.nic_selector.pf_names {
        let Ok(c) = pfnames::parse(cur) else {
            return Err(format!("invalid PF name: {cur}"));
        };
        let c_name = resolve(c.name, state);
        for prev in &other.spec.nic_selector.pf_names {
            // An unparsable entry of the existing policy was checked when it was admitted.
            let p = pfnames::parse(prev).unwrap_or(pfnames::PfName {
                name: prev,
                range: None,
            });
            if c_name != resolve(p.name, state) {
                continue;
            }
            if current.spec.externally_managed != other.spec.externally_managed {
                return Err(format!(
                    "externallyManage is inconsistent with existing policy {other_name}"
                ));
            }
            if c.overlaps(&p) {
                return Err(format!(
                    "VF index range in {cur} is overlapped with existing policy {other_name}"
                ));
            }
            // Upstream stops at the first PF name both policies share.
            break 'pf;
        }
    }
    for root in &current.spec.nic_selector.root_devices {
        if other.spec.nic_selector.root_devices.contains(root) {
            return Err(format!(
                "root device {root} is overlapped with existing policy {other_name}"
            ));
        }
    }
    let (c, o) = (&current.spec, &other.spec);
    if c.resource_name == o.resource_name && c.exclude_topology != o.exclude_topology {
        return Err(format!(
            "excludeTopology[{}] field conflicts with policy [{other_name}].ExcludeTopology[{}] as they target the same resource[{}]",
            c.exclude_topology, o.exclude_topology, c.resource_name
        ));
    }
    Ok(())
}
