//! The one switch (`SriovOperatorConfig.spec.sriovConfig`, Harvester's `sriov-config`):
//! "SR-IOV with N VFs on every capable NIC of the selected nodes" → the policies that say so.
//!
//! A policy's `nicSelector` needs a vendor, device, name, PCI address or netFilter; "every NIC"
//! is said as one policy per NIC model (`vendor` + PF `deviceID`) reported by the selected
//! nodes' daemons. Per model rather than one policy per PCI address because the set of models is
//! small and stable (a new node of a known model needs no new policy), and per model rather than
//! per vendor so `numVfs` can be cut to what that model supports: asking a 7-VF 82576 for 8 VFs
//! is an error the webhook refuses, and one refused policy would leave every NIC unconfigured.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sriov_api::{
    NicSelector, NodePolicySpec, SRIOV_SWITCH_LABEL, SRIOV_SWITCH_LABEL_VALUE, SriovNetworkNodePolicy,
    SriovSwitch, keys,
};
use sriov_host::InterfaceExt;

use super::NodeInfo;

/// Resource name of the switch's pool when the config names none.
pub const DEFAULT_RESOURCE_NAME: &str = "sriov_vfs";
/// Name prefix of the generated policies.
pub const POLICY_PREFIX: &str = "sriov-config";

/// The policies the switch wants, sorted by name; none when it is off, absent or asks for 0
/// VFs. `owner` (the `default` SriovOperatorConfig) becomes their controller ownerReference, so
/// deleting the config deletes them too.
pub fn sriov_switch_policies(
    namespace: &str,
    switch: Option<&SriovSwitch>,
    owner: Option<&OwnerReference>,
    nodes: &[NodeInfo],
    interfaces: &BTreeMap<String, Vec<InterfaceExt>>,
) -> Vec<SriovNetworkNodePolicy> {
    let Some(switch) = switch.filter(|s| s.enabled && s.num_vfs > 0) else {
        return Vec::new();
    };
    let node_selector = if switch.node_selector.is_empty() {
        BTreeMap::from([(keys::SRIOV_CAPABLE_LABEL.to_string(), "true".to_string())])
    } else {
        switch.node_selector.clone()
    };
    // NIC model → the smallest totalvfs among the selected nodes' PFs of that model.
    let mut models: BTreeMap<(String, String), i32> = BTreeMap::new();
    for node in nodes
        .iter()
        .filter(|n| node_selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
    {
        for pf in interfaces.get(&node.name).into_iter().flatten() {
            if pf.total_vfs <= 0 || pf.externally_managed || pf.vendor.is_empty() || pf.device_id.is_empty() {
                continue;
            }
            let key = (pf.vendor.to_ascii_lowercase(), pf.device_id.to_ascii_lowercase());
            let min = models.entry(key).or_insert(pf.total_vfs);
            *min = (*min).min(pf.total_vfs);
        }
    }
    let resource_name = if switch.resource_name.is_empty() {
        DEFAULT_RESOURCE_NAME
    } else {
        &switch.resource_name
    };
    let device_type = if switch.device_type.is_empty() {
        "netdevice"
    } else {
        &switch.device_type
    };
    models
        .into_iter()
        .map(|((vendor, device), total)| SriovNetworkNodePolicy {
            metadata: ObjectMeta {
                name: Some(format!("{POLICY_PREFIX}-{vendor}-{device}")),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    SRIOV_SWITCH_LABEL.to_string(),
                    SRIOV_SWITCH_LABEL_VALUE.to_string(),
                )])),
                owner_references: owner.map(|o| vec![o.clone()]),
                ..ObjectMeta::default()
            },
            spec: NodePolicySpec {
                resource_name: resource_name.to_string(),
                node_selector: node_selector.clone(),
                priority: 99,
                mtu: switch.mtu,
                num_vfs: switch.num_vfs.min(total),
                nic_selector: NicSelector {
                    vendor,
                    device_id: device,
                    ..NicSelector::default()
                },
                device_type: device_type.to_string(),
                ..NodePolicySpec::default()
            },
            status: None,
        })
        .collect()
}

/// What to write so the cluster holds exactly the switch's `wanted` policies.
#[derive(Debug, Default, PartialEq)]
pub struct SwitchPlan<'a> {
    /// New, or different in what the switch sets (spec fields, owner).
    pub apply: Vec<&'a SriovNetworkNodePolicy>,
    /// Labelled as the switch's, no longer wanted.
    pub delete: Vec<String>,
    /// Wanted names taken by a policy without the label: a user's, left untouched (reported).
    pub conflicts: Vec<String>,
}

/// Plan the switch's writes. Policies without [`SRIOV_SWITCH_LABEL`] are never written or
/// deleted, even when they carry a name the switch wants.
pub fn sriov_switch_plan<'a>(
    wanted: &'a [SriovNetworkNodePolicy],
    existing: &[SriovNetworkNodePolicy],
) -> SwitchPlan<'a> {
    let ours = |p: &SriovNetworkNodePolicy| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SRIOV_SWITCH_LABEL))
            .is_some_and(|v| v == SRIOV_SWITCH_LABEL_VALUE)
    };
    let by_name: BTreeMap<&str, &SriovNetworkNodePolicy> = existing
        .iter()
        .filter_map(|p| Some((p.metadata.name.as_deref()?, p)))
        .collect();
    let mut plan = SwitchPlan::default();
    for w in wanted {
        let name = w.metadata.name.clone().unwrap_or_default();
        let Some(have) = by_name.get(name.as_str()) else {
            plan.apply.push(w);
            continue;
        };
        if !ours(have) {
            plan.conflicts.push(name);
            continue;
        }
        // The webhook's mutation adds `isRdma: false`: compare only what the switch sets.
        let differs = have.spec.resource_name != w.spec.resource_name
            || have.spec.node_selector != w.spec.node_selector
            || have.spec.num_vfs != w.spec.num_vfs
            || have.spec.mtu != w.spec.mtu
            || have.spec.nic_selector != w.spec.nic_selector
            || have.spec.device_type != w.spec.device_type
            || have.spec.priority != w.spec.priority
            || have.metadata.owner_references != w.metadata.owner_references;
        if differs {
            plan.apply.push(w);
        }
    }
    plan.delete = existing
        .iter()
        .filter(|p| ours(p))
        .filter_map(|p| p.metadata.name.clone())
        .filter(|name| !wanted.iter().any(|w| w.metadata.name.as_deref() == Some(name)))
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pf(pci: &str, vendor: &str, device: &str, total: i32) -> InterfaceExt {
        InterfaceExt {
            pci_address: pci.into(),
            vendor: vendor.into(),
            device_id: device.into(),
            total_vfs: total,
            ..InterfaceExt::default()
        }
    }

    fn node(name: &str, capable: bool) -> NodeInfo {
        let mut labels = BTreeMap::new();
        if capable {
            labels.insert(keys::SRIOV_CAPABLE_LABEL.to_string(), "true".to_string());
        }
        NodeInfo {
            name: name.into(),
            labels,
        }
    }

    fn switch(enabled: bool, n: i32) -> SriovSwitch {
        SriovSwitch {
            enabled,
            num_vfs: n,
            ..SriovSwitch::default()
        }
    }

    fn hardware() -> (Vec<NodeInfo>, BTreeMap<String, Vec<InterfaceExt>>) {
        let nodes = vec![node("a", true), node("b", true), node("plain", false)];
        let interfaces = BTreeMap::from([
            (
                "a".to_string(),
                vec![
                    pf("0000:01:00.0", "8086", "10C9", 7),
                    pf("0000:02:00.0", "15b3", "1017", 127),
                ],
            ),
            ("b".to_string(), vec![pf("0000:01:00.0", "8086", "10c9", 7)]),
            // Not selected: its NIC model must not produce a policy.
            ("plain".to_string(), vec![pf("0000:05:00.0", "8086", "1592", 256)]),
        ]);
        (nodes, interfaces)
    }

    #[test]
    fn one_policy_per_nic_model_of_the_selected_nodes_cut_to_the_model() {
        let (nodes, interfaces) = hardware();
        let policies = sriov_switch_policies("sriov", Some(&switch(true, 8)), None, &nodes, &interfaces);
        let summary: Vec<(String, String, String, i32)> = policies
            .iter()
            .map(|p| {
                (
                    p.metadata.name.clone().unwrap(),
                    p.spec.nic_selector.vendor.clone(),
                    p.spec.nic_selector.device_id.clone(),
                    p.spec.num_vfs,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("sriov-config-15b3-1017".into(), "15b3".into(), "1017".into(), 8),
                ("sriov-config-8086-10c9".into(), "8086".into(), "10c9".into(), 7),
            ]
        );
        let p = &policies[0];
        assert_eq!(p.spec.resource_name, DEFAULT_RESOURCE_NAME);
        assert_eq!(p.spec.device_type, "netdevice");
        assert_eq!(p.spec.priority, 99);
        assert_eq!(
            p.spec.node_selector,
            BTreeMap::from([(keys::SRIOV_CAPABLE_LABEL.to_string(), "true".to_string())])
        );
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .unwrap()
                .get(SRIOV_SWITCH_LABEL)
                .map(String::as_str),
            Some(SRIOV_SWITCH_LABEL_VALUE)
        );
        assert_eq!(p.metadata.namespace.as_deref(), Some("sriov"));
    }

    #[test]
    fn off_absent_or_zero_vfs_wants_nothing() {
        let (nodes, interfaces) = hardware();
        assert!(sriov_switch_policies("s", None, None, &nodes, &interfaces).is_empty());
        assert!(sriov_switch_policies("s", Some(&switch(false, 8)), None, &nodes, &interfaces).is_empty());
        assert!(sriov_switch_policies("s", Some(&switch(true, 0)), None, &nodes, &interfaces).is_empty());
    }

    #[test]
    fn a_custom_selector_resource_and_device_type_are_used() {
        let (nodes, interfaces) = hardware();
        let mut s = switch(true, 4);
        s.node_selector = BTreeMap::from([("kubernetes.io/hostname".to_string(), "plain".to_string())]);
        s.resource_name = "intelnics".into();
        s.device_type = "vfio-pci".into();
        s.mtu = 9000;
        let mut nodes = nodes;
        nodes[2]
            .labels
            .insert("kubernetes.io/hostname".into(), "plain".into());
        let policies = sriov_switch_policies("s", Some(&s), None, &nodes, &interfaces);
        assert_eq!(policies.len(), 1);
        assert_eq!(
            policies[0].metadata.name.as_deref(),
            Some("sriov-config-8086-1592")
        );
        assert_eq!(policies[0].spec.num_vfs, 4);
        assert_eq!(policies[0].spec.device_type, "vfio-pci");
        assert_eq!(policies[0].spec.resource_name, "intelnics");
        assert_eq!(policies[0].spec.mtu, 9000);
    }

    #[test]
    fn externally_managed_and_non_sriov_pfs_are_left_alone() {
        let nodes = vec![node("a", true)];
        let mut managed = pf("0000:01:00.0", "8086", "10c9", 7);
        managed.externally_managed = true;
        let interfaces = BTreeMap::from([(
            "a".to_string(),
            vec![managed, pf("0000:03:00.0", "8086", "1533", 0)],
        )]);
        assert!(sriov_switch_policies("s", Some(&switch(true, 4)), None, &nodes, &interfaces).is_empty());
    }

    #[test]
    fn the_plan_applies_what_differs_and_deletes_only_our_stale_policies() {
        let (nodes, interfaces) = hardware();
        let wanted = sriov_switch_policies("s", Some(&switch(true, 8)), None, &nodes, &interfaces);
        // Nothing yet: apply both.
        let plan = sriov_switch_plan(&wanted, &[]);
        assert_eq!(plan.apply.len(), 2);
        assert!(plan.delete.is_empty() && plan.conflicts.is_empty());
        // Same in the cluster (with the webhook's isRdma default): nothing to do.
        let mut existing = wanted.clone();
        existing[0].spec.is_rdma = false;
        assert_eq!(sriov_switch_plan(&wanted, &existing), SwitchPlan::default());
        // A changed numVfs is re-applied; a stale one of ours deleted; a user's policy untouched.
        existing[1].spec.num_vfs = 3;
        let mut stale = wanted[0].clone();
        stale.metadata.name = Some("sriov-config-1af4-1041".into());
        let mut users = wanted[0].clone();
        users.metadata.name = Some("mine".into());
        users.metadata.labels = None;
        existing.extend([stale, users]);
        let plan = sriov_switch_plan(&wanted, &existing);
        assert_eq!(
            plan.apply
                .iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect::<Vec<_>>(),
            ["sriov-config-8086-10c9"]
        );
        assert_eq!(plan.delete, ["sriov-config-1af4-1041"]);
        // Switch off: every policy of ours goes, the user's stays.
        let plan = sriov_switch_plan(&[], &existing);
        assert!(plan.apply.is_empty());
        assert_eq!(
            plan.delete,
            [
                "sriov-config-15b3-1017",
                "sriov-config-8086-10c9",
                "sriov-config-1af4-1041"
            ]
        );
    }

    #[test]
    fn a_users_policy_with_a_wanted_name_is_reported_not_overwritten() {
        let (nodes, interfaces) = hardware();
        let wanted = sriov_switch_policies("s", Some(&switch(true, 8)), None, &nodes, &interfaces);
        let mut users = wanted[0].clone();
        users.metadata.labels = None;
        users.spec.num_vfs = 1;
        let plan = sriov_switch_plan(&wanted, &[users]);
        assert_eq!(plan.conflicts, ["sriov-config-15b3-1017"]);
        assert_eq!(plan.apply.len(), 1);
        assert!(plan.delete.is_empty());
    }
}
