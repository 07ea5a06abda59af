//! What a re-render changes on a node: the current `SriovNetworkNodeState.spec` against the
//! rendered one, PF by PF, in words an admin reads before applying a policy (`sriovctl render
//! --diff`). Pure: two specs in, a list of changes out.

use std::collections::BTreeMap;
use std::fmt;

use sriov_api::{NodeStateInterface, NodeStateSpec, VfGroup};

/// How one PF's spec changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PfChange {
    /// The PF enters the spec: the daemon will configure it.
    Added { pci: String, summary: String },
    /// The PF leaves the spec: the daemon resets it (0 VFs).
    Removed { pci: String, summary: String },
    /// Fields of the PF's spec change; each entry reads `field: old -> new`.
    Changed { pci: String, fields: Vec<String> },
}

impl fmt::Display for PfChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PfChange::Added { pci, summary } => write!(f, "{pci}: added ({summary})"),
            PfChange::Removed { pci, summary } => {
                write!(f, "{pci}: removed (was {summary}; the daemon resets it to 0 VFs)")
            }
            PfChange::Changed { pci, fields } => write!(f, "{pci}: {}", fields.join("; ")),
        }
    }
}

/// The PF changes from `current` to `desired`, ordered by PCI address. Empty when equal.
pub fn diff_node_spec(current: &NodeStateSpec, desired: &NodeStateSpec) -> Vec<PfChange> {
    let by_pci = |s: &NodeStateSpec| -> BTreeMap<String, NodeStateInterface> {
        s.interfaces
            .iter()
            .map(|i| (i.pci_address.clone(), i.clone()))
            .collect()
    };
    let (old, new) = (by_pci(current), by_pci(desired));
    let mut changes = Vec::new();
    let all: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for pci in all {
        match (old.get(pci), new.get(pci)) {
            (None, Some(n)) => changes.push(PfChange::Added {
                pci: pci.clone(),
                summary: summary(n),
            }),
            (Some(o), None) => changes.push(PfChange::Removed {
                pci: pci.clone(),
                summary: summary(o),
            }),
            (Some(o), Some(n)) => {
                let fields = changed_fields(o, n);
                if !fields.is_empty() {
                    changes.push(PfChange::Changed {
                        pci: pci.clone(),
                        fields,
                    });
                }
            }
            (None, None) => {}
        }
    }
    changes
}

fn summary(i: &NodeStateInterface) -> String {
    let mut parts = vec![format!("numVfs {}", i.num_vfs)];
    if i.mtu != 0 {
        parts.push(format!("mtu {}", i.mtu));
    }
    if !i.e_switch_mode.is_empty() {
        parts.push(format!("eSwitchMode {}", i.e_switch_mode));
    }
    if !i.vf_groups.is_empty() {
        let groups: Vec<String> = i.vf_groups.iter().map(group).collect();
        parts.push(format!("vfGroups {}", groups.join(", ")));
    }
    parts.join(", ")
}

fn group(g: &VfGroup) -> String {
    let mut s = format!("{} {} {}", g.resource_name, g.vf_range, g.device_type);
    if g.mtu != 0 {
        s.push_str(&format!(" mtu {}", g.mtu));
    }
    if g.is_rdma {
        s.push_str(" rdma");
    }
    s
}

fn changed_fields(o: &NodeStateInterface, n: &NodeStateInterface) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            let show = |v: String| if v.is_empty() { "(unset)".to_string() } else { v };
            out.push(format!("{name} {} -> {}", show(a), show(b)));
        }
    };
    field("numVfs", o.num_vfs.to_string(), n.num_vfs.to_string());
    field("mtu", o.mtu.to_string(), n.mtu.to_string());
    field("name", o.name.clone(), n.name.clone());
    field("linkType", o.link_type.clone(), n.link_type.clone());
    field("eSwitchMode", o.e_switch_mode.clone(), n.e_switch_mode.clone());
    field(
        "externallyManaged",
        o.externally_managed.to_string(),
        n.externally_managed.to_string(),
    );
    let groups = |i: &NodeStateInterface| -> Vec<String> { i.vf_groups.iter().map(group).collect() };
    let (og, ng) = (groups(o), groups(n));
    let gone: Vec<&String> = og.iter().filter(|g| !ng.contains(g)).collect();
    let came: Vec<&String> = ng.iter().filter(|g| !og.contains(g)).collect();
    if !gone.is_empty() || !came.is_empty() {
        let mut s = "vfGroups".to_string();
        for g in gone {
            s.push_str(&format!(" -[{g}]"));
        }
        for g in came {
            s.push_str(&format!(" +[{g}]"));
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pf(pci: &str, num_vfs: i32, groups: &[(&str, &str, &str)]) -> NodeStateInterface {
        NodeStateInterface {
            pci_address: pci.to_string(),
            num_vfs,
            vf_groups: groups
                .iter()
                .map(|(r, range, t)| VfGroup {
                    resource_name: r.to_string(),
                    vf_range: range.to_string(),
                    device_type: t.to_string(),
                    ..VfGroup::default()
                })
                .collect(),
            ..NodeStateInterface::default()
        }
    }

    fn spec(pfs: Vec<NodeStateInterface>) -> NodeStateSpec {
        NodeStateSpec {
            interfaces: pfs,
            ..NodeStateSpec::default()
        }
    }

    #[test]
    fn equal_specs_have_no_changes() {
        let s = spec(vec![pf("0000:01:00.0", 4, &[("a", "0-3", "netdevice")])]);
        assert_eq!(diff_node_spec(&s, &s), vec![]);
    }

    #[test]
    fn added_removed_and_changed_pfs_in_address_order() {
        let current = spec(vec![
            pf("0000:02:00.0", 2, &[("a", "0-1", "netdevice")]),
            pf("0000:01:00.0", 4, &[("a", "0-3", "netdevice")]),
        ]);
        let mut changed = pf(
            "0000:01:00.0",
            8,
            &[("a", "0-3", "netdevice"), ("b", "4-7", "vfio-pci")],
        );
        changed.mtu = 9000;
        let desired = spec(vec![changed, pf("0000:03:00.0", 1, &[])]);
        let lines: Vec<String> = diff_node_spec(&current, &desired)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            vec![
                "0000:01:00.0: numVfs 4 -> 8; mtu 0 -> 9000; vfGroups +[b 4-7 vfio-pci]",
                "0000:02:00.0: removed (was numVfs 2, vfGroups a 0-1 netdevice; the daemon resets it to 0 VFs)",
                "0000:03:00.0: added (numVfs 1)",
            ]
        );
    }

    #[test]
    fn a_group_moving_driver_shows_both_sides() {
        let current = spec(vec![pf("0000:01:00.0", 4, &[("a", "0-3", "netdevice")])]);
        let desired = spec(vec![pf("0000:01:00.0", 4, &[("a", "0-3", "vfio-pci")])]);
        let lines: Vec<String> = diff_node_spec(&current, &desired)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            lines,
            vec!["0000:01:00.0: vfGroups -[a 0-3 netdevice] +[a 0-3 vfio-pci]"]
        );
    }
}
