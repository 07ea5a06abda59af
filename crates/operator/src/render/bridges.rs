//! OVS bridges for switchdev PFs in the node state (`spec.bridges.ovs`, upstream
//! `ApplyBridgeConfig`, only with the `manageSoftwareBridges` feature gate).
//!
//! For each PF a policy selects: a policy without `bridge.ovs` removes the bridge whose uplink
//! is that PF; a policy with it sets bridge `br-<pci, ':' → '_'>` with the PF as its single
//! uplink (`mtuRequest` = the policy's mtu). Bridges stay sorted by name. A policy whose bridge
//! config upstream would refuse (not switchdev, non-Ethernet link, externally managed) is
//! skipped with a note instead of failing every node.

use serde_json::{Value, json};
use sriov_host::InterfaceExt;

use super::RenderNote;
use super::policy_index::CompiledPolicy;

/// The feature gate enabling bridge management.
pub const MANAGE_SOFTWARE_BRIDGES: &str = "manageSoftwareBridges";

/// One bridge entry (upstream `OVSConfigExt`), kept as JSON as the node-state type carries it.
#[derive(Clone, Debug)]
struct Bridge {
    name: String,
    uplink_pci: String,
    json: Value,
}

/// Bridges being built for one node.
#[derive(Debug, Default)]
pub struct BridgeSet(Vec<Bridge>);

impl BridgeSet {
    /// Apply one policy (in application order) to the PFs it selects.
    pub fn apply(
        &mut self,
        node: &str,
        policy: &CompiledPolicy,
        interfaces: &[InterfaceExt],
        notes: &mut Vec<RenderNote>,
    ) {
        if policy.selector.is_empty() {
            return;
        }
        let spec = &policy.spec;
        if let Some(ovs) = &spec.bridge.ovs {
            let problem = if spec.e_switch_mode != "switchdev" {
                Some("eSwitchMode must be switchdev to use software bridge management")
            } else if !spec.link_type.is_empty() && !spec.link_type.eq_ignore_ascii_case("eth") {
                Some("linkType must be eth or ETH to use software bridge management")
            } else if spec.externally_managed {
                Some("software bridge management can't be used when link is externally managed")
            } else {
                None
            };
            if let Some(message) = problem {
                notes.push(RenderNote {
                    node: node.to_string(),
                    policy: policy.name.clone(),
                    pf: String::new(),
                    message: format!("{message}; bridge config skipped"),
                });
                return;
            }
            for iface in interfaces.iter().filter(|i| policy.selector.selects(i)) {
                let mut interface = serde_json::to_value(&ovs.uplink.interface).unwrap_or_else(|_| json!({}));
                if spec.mtu > 0
                    && let Some(map) = interface.as_object_mut()
                {
                    map.insert("mtuRequest".into(), json!(spec.mtu));
                }
                let name = format!("br-{}", iface.pci_address.replace(':', "_"));
                let bridge = serde_json::to_value(&ovs.bridge).unwrap_or_else(|_| json!({}));
                let entry = Bridge {
                    name: name.clone(),
                    uplink_pci: iface.pci_address.clone(),
                    json: json!({
                        "name": name,
                        "bridge": bridge,
                        "uplinks": [{"pciAddress": iface.pci_address, "name": iface.name, "interface": interface}],
                    }),
                };
                match self.0.binary_search_by(|b| b.name.cmp(&entry.name)) {
                    Ok(i) => self.0[i] = entry,
                    Err(i) => self.0.insert(i, entry),
                }
            }
        } else {
            for iface in interfaces.iter().filter(|i| policy.selector.selects(i)) {
                self.0.retain(|b| b.uplink_pci != iface.pci_address);
            }
        }
    }

    /// `spec.bridges`, `None` when there is no bridge.
    pub fn into_spec(self) -> Option<Value> {
        if self.0.is_empty() {
            return None;
        }
        Some(json!({ "ovs": self.0.into_iter().map(|b| b.json).collect::<Vec<_>>() }))
    }
}
