//! Policies → one node's `SriovNetworkNodeState.spec` (upstream `syncSriovNetworkNodeState`,
//! `SriovNetworkNodePolicy.Apply`, `Interface.mergeConfigs`).
//!
//! The spec is rebuilt from scratch. Policies selected by the node are applied in priority
//! order (99 first … 0 last). For each PF a policy's nicSelector selects:
//! * `numVfs == 0`: the policy adds nothing (a PF no policy configures is left out of the
//!   spec, so the daemon resets it);
//! * otherwise the PF entry is the policy's (`mtu`, `numVfs`, `linkType`, `eSwitchMode`,
//!   `externallyManaged`) with one VF group whose range is the `pfNames` `#a-b` range or
//!   `0-(numVfs-1)`; when the PF already has an entry, its groups with another resource name
//!   whose range does not overlap the new group are kept, and if any were kept, or the two
//!   policies have equal priority, `mtu` and `numVfs` become the maximum of both.
//!
//! sriov-rs additions, each reported as a [`RenderNote`]: a policy asking for more VFs than the
//! PF's `totalvfs` is not applied to that PF, and a range reaching past `totalvfs` is cut at
//! the last VF (dropped if it starts past it), so every group lies within the hardware. Output
//! is sorted (PFs by PCI address, groups by range) so re-rendering is byte-identical.

use sriov_api::{NodeStateInterface, NodeStateSpec, VfGroup};
use sriov_host::InterfaceExt;

use super::RenderNote;
use super::bridges::BridgeSet;
use super::pf_selector::VfRange;
use super::policy_index::CompiledPolicy;

/// Per-node inputs besides policies and PFs.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeOptions<'a> {
    /// `rdmaMode` of the node's pool config, if any.
    pub rdma_mode: Option<&'a str>,
    /// Feature gate `manageSoftwareBridges` (OVS bridges in `spec.bridges`).
    pub manage_software_bridges: bool,
}

/// A PF entry being built, with parsed group ranges alongside the API groups.
struct PfEntry {
    iface: NodeStateInterface,
    ranges: Vec<VfRange>,
}

/// Render one node's spec from the policies it selects (in application order, see
/// [`super::PolicyIndex::selected`]) and the PFs it reported. `rdma_mode` comes from the
/// node's pool config. Notes about policies that could not be applied are appended to `notes`.
pub fn render_node_state(
    node: &str,
    selected: &[&CompiledPolicy],
    interfaces: &[InterfaceExt],
    options: &NodeOptions<'_>,
    notes: &mut Vec<RenderNote>,
) -> NodeStateSpec {
    let rdma_mode = options.rdma_mode;
    let system = rdma_mode
        .filter(|m| !m.is_empty())
        .map(|m| serde_json::json!({ "rdmaMode": m }));
    let mut spec = NodeStateSpec {
        interfaces: Vec::new(),
        bridges: None,
        system,
    };
    if interfaces.is_empty() {
        // Upstream waits for the daemon's first discovery before filling the spec.
        return spec;
    }
    let mut entries: Vec<PfEntry> = Vec::new();
    let mut bridges = BridgeSet::default();
    let mut previous_priority: Option<i32> = None;
    for policy in selected {
        let equal_priority = previous_priority == Some(policy.spec.priority);
        previous_priority = Some(policy.spec.priority);
        if options.manage_software_bridges {
            bridges.apply(node, policy, interfaces, notes);
        }
        if policy.selector.is_empty() || policy.spec.num_vfs <= 0 {
            continue;
        }
        for iface in interfaces.iter().filter(|i| policy.selector.selects(i)) {
            if let Some((group, range)) = vf_group(node, policy, iface, notes) {
                apply(&mut entries, policy, iface, group, range, equal_priority);
            }
        }
    }
    spec.bridges = bridges.into_spec();
    entries.sort_by(|a, b| a.iface.pci_address.cmp(&b.iface.pci_address));
    spec.interfaces = entries
        .into_iter()
        .map(|mut e| {
            let mut groups: Vec<(VfRange, VfGroup)> = e.ranges.into_iter().zip(e.iface.vf_groups).collect();
            groups.sort_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| a.1.resource_name.cmp(&b.1.resource_name))
            });
            e.iface.vf_groups = groups.into_iter().map(|(_, g)| g).collect();
            e.iface
        })
        .collect();
    spec
}

/// The VF group a policy gives one PF, or `None` (with a note) when the hardware cannot hold it.
fn vf_group(
    node: &str,
    policy: &CompiledPolicy,
    iface: &InterfaceExt,
    notes: &mut Vec<RenderNote>,
) -> Option<(VfGroup, VfRange)> {
    let num_vfs = policy.spec.num_vfs as u32;
    let total = iface.total_vfs;
    let mut note = |message: String| {
        notes.push(RenderNote {
            node: node.to_string(),
            policy: policy.name.clone(),
            pf: iface.pci_address.clone(),
            message,
        })
    };
    if total > 0 && policy.spec.num_vfs > total {
        note(format!(
            "numVfs {} exceeds the PF's totalvfs {total}; policy not applied to this PF",
            policy.spec.num_vfs
        ));
        return None;
    }
    let mut range = policy.selector.range_for(iface).unwrap_or(VfRange {
        first: 0,
        last: num_vfs - 1,
    });
    if total > 0 && range.last >= total as u32 {
        let last_vf = total as u32 - 1;
        if range.first > last_vf {
            note(format!(
                "VF range {range} starts past the PF's last VF {last_vf}; policy not applied to this PF"
            ));
            return None;
        }
        note(format!(
            "VF range {range} cut to {}-{last_vf}: the PF has {total} VFs at most",
            range.first
        ));
        range.last = last_vf;
    }
    let group = VfGroup {
        resource_name: policy.spec.resource_name.clone(),
        device_type: policy.spec.device_type.clone(),
        vf_range: range.to_string(),
        policy_name: policy.name.clone(),
        mtu: policy.spec.mtu,
        is_rdma: policy.spec.is_rdma,
        vdpa_type: policy.spec.vdpa_type.clone(),
    };
    Some((group, range))
}

/// Upstream `Apply` for one selected PF + `mergeConfigs`.
fn apply(
    entries: &mut Vec<PfEntry>,
    policy: &CompiledPolicy,
    iface: &InterfaceExt,
    group: VfGroup,
    range: VfRange,
    equal_priority: bool,
) {
    let mut new = PfEntry {
        iface: NodeStateInterface {
            pci_address: iface.pci_address.clone(),
            num_vfs: policy.spec.num_vfs,
            mtu: policy.spec.mtu,
            name: iface.name.clone(),
            link_type: policy.spec.link_type.clone(),
            e_switch_mode: policy.spec.e_switch_mode.clone(),
            vf_groups: vec![group],
            externally_managed: policy.spec.externally_managed,
        },
        ranges: vec![range],
    };
    let Some(old) = entries
        .iter_mut()
        .find(|e| e.iface.pci_address == iface.pci_address)
    else {
        entries.push(new);
        return;
    };
    let old_taken = std::mem::replace(
        old,
        PfEntry {
            iface: NodeStateInterface::default(),
            ranges: Vec::new(),
        },
    );
    let mut kept_any = false;
    let new_resource = policy.spec.resource_name.as_str();
    for (g, r) in old_taken.iface.vf_groups.into_iter().zip(old_taken.ranges) {
        if g.resource_name == new_resource || r.overlaps(&range) {
            continue;
        }
        kept_any = true;
        new.iface.vf_groups.push(g);
        new.ranges.push(r);
    }
    if kept_any || equal_priority {
        new.iface.mtu = new.iface.mtu.max(old_taken.iface.mtu);
        new.iface.num_vfs = new.iface.num_vfs.max(old_taken.iface.num_vfs);
    }
    *old = new;
}
