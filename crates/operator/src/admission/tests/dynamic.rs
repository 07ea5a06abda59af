use serde_json::json;

use super::fixtures::{cluster, igb, node, policy, settings};
use crate::admission::Settings;
use crate::admission::dynamic::dynamic_check;
use crate::admission::objects::NodeState;

#[test]
fn a_matching_nic_is_allowed_without_warning() {
    assert_eq!(
        dynamic_check(&policy("p1", json!({})), &cluster(vec![]), &settings()),
        Ok(vec![])
    );
}

#[test]
fn no_matching_node_is_allowed_with_a_warning() {
    let p = policy("p1", json!({"nodeSelector": {"zone": "later"}}));
    let warnings = dynamic_check(&p, &cluster(vec![]), &settings()).expect("allowed");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("no matched node is selected by the nodeSelector in CR p1"),
        "{warnings:?}"
    );
}

#[test]
fn nodes_without_discovered_nics_are_allowed_with_a_warning() {
    let mut c = cluster(vec![]);
    c.node_states[0].interfaces.clear();
    c.nodes.push(node("w2")); // no node state at all
    let warnings = dynamic_check(&policy("p1", json!({})), &c, &settings()).expect("allowed");
    assert!(warnings[0].contains("has reported its NICs yet"), "{warnings:?}");
}

#[test]
fn no_matching_nic_on_discovered_nodes_is_refused() {
    let p = policy("p1", json!({"nicSelector": {"pfNames": ["eth9"]}}));
    assert_eq!(
        dynamic_check(&p, &cluster(vec![]), &settings()),
        Err("no supported NIC is selected by the nicSelector in CR p1".to_string())
    );
}

#[test]
fn alternative_names_select() {
    let mut c = cluster(vec![]);
    c.node_states[0].interfaces[0].alt_names = vec!["enp1s0".to_string()];
    let p = policy("p1", json!({"nicSelector": {"pfNames": ["enp1s0#0-1"]}}));
    assert_eq!(dynamic_check(&p, &c, &settings()), Ok(vec![]));
}

#[test]
fn unsupported_pf_counts_only_in_dev_mode() {
    let mut c = cluster(vec![]);
    c.node_states[0].interfaces[0].device_id = "ffff".to_string();
    let p = policy("p1", json!({}));
    assert!(dynamic_check(&p, &c, &settings()).is_err());
    let dev = Settings {
        dev_mode: true,
        ..settings()
    };
    assert_eq!(dynamic_check(&p, &c, &dev), Ok(vec![]));
}

#[test]
fn num_vfs_bounds() {
    let c = cluster(vec![]);
    assert_eq!(
        dynamic_check(&policy("p1", json!({"numVfs": 0})), &c, &settings()),
        Err("numVfs(0) in CR p1 is not allowed".to_string())
    );
    assert_eq!(
        dynamic_check(&policy("p1", json!({"numVfs": 9})), &c, &settings()),
        Err("numVfs(9) in CR p1 exceed the maximum allowed value(8) interface(eth1)".to_string())
    );
    let mut mlx = cluster(vec![]);
    let iface = &mut mlx.node_states[0].interfaces[0];
    (iface.vendor, iface.device_id, iface.total_vfs) = ("15b3".into(), "1017".into(), 255);
    assert_eq!(
        dynamic_check(&policy("p1", json!({"numVfs": 129})), &mlx, &settings()),
        Err("numVfs(129) in CR p1 exceed the maximum allowed value(128) interface(eth1)".to_string())
    );
}

#[test]
fn externally_managed_must_fit_the_pf() {
    let mut c = cluster(vec![]);
    c.node_states[0].interfaces[0].num_vfs = 2;
    let em = |spec: serde_json::Value| {
        let mut p = policy("p1", spec);
        p.spec.externally_managed = true;
        dynamic_check(&p, &c, &settings())
    };
    assert_eq!(
        em(json!({"numVfs": 4})),
        Err("numVfs(4) in CR p1 is higher than the virtual functions allocated for the PF externally value(2)".into())
    );
    assert_eq!(
        em(json!({"numVfs": 2, "mtu": 9000})),
        Err("MTU(9000) in CR p1 is higher than the MTU for the PF externally value(1500)".into())
    );
    assert_eq!(
        em(json!({"numVfs": 2, "linkType": "IB"})),
        Err("LinkType(IB) in CR p1 is not equal to the LinkType for the PF externally value(ETH)".into())
    );
    assert_eq!(
        em(json!({"numVfs": 2, "linkType": "eth", "mtu": 1500})),
        Ok(vec![])
    );
}

#[test]
fn vdpa_needs_mellanox() {
    let p = policy("p1", json!({"vdpaType": "virtio", "eSwitchMode": "switchdev"}));
    assert_eq!(
        dynamic_check(&p, &cluster(vec![]), &settings()),
        Err("vendor(8086) in CR p1 not supported for vdpa interface(eth1)".into())
    );
}

#[test]
fn overlapping_vf_ranges_on_one_pf_are_refused() {
    let existing = policy(
        "old",
        json!({"resourceName": "a", "nicSelector": {"pfNames": ["eth1#0-1"]}}),
    );
    let c = cluster(vec![existing]);
    let p = policy(
        "p1",
        json!({"resourceName": "b", "nicSelector": {"pfNames": ["eth1#1-3"]}}),
    );
    assert_eq!(
        dynamic_check(&p, &c, &settings()),
        Err("VF index range in eth1#1-3 is overlapped with existing policy old".into())
    );
    let disjoint = policy(
        "p1",
        json!({"resourceName": "b", "nicSelector": {"pfNames": ["eth1#2-3"]}}),
    );
    assert_eq!(dynamic_check(&disjoint, &c, &settings()), Ok(vec![]));
}

#[test]
fn whole_pf_twice_overlaps_but_whole_and_ranged_do_not() {
    let c = cluster(vec![policy("old", json!({"resourceName": "a"}))]);
    let whole = policy("p1", json!({"resourceName": "b"}));
    assert_eq!(
        dynamic_check(&whole, &c, &settings()),
        Err("VF index range in eth1 is overlapped with existing policy old".into())
    );
    let ranged = policy(
        "p1",
        json!({"resourceName": "b", "nicSelector": {"pfNames": ["eth1#0-1"]}}),
    );
    assert_eq!(dynamic_check(&ranged, &c, &settings()), Ok(vec![]));
}

#[test]
fn an_update_is_not_checked_against_itself() {
    let c = cluster(vec![policy("p1", json!({}))]);
    assert_eq!(
        dynamic_check(&policy("p1", json!({"numVfs": 2})), &c, &settings()),
        Ok(vec![])
    );
}

#[test]
fn alt_names_resolve_before_comparing_ranges() {
    let mut c = cluster(vec![policy(
        "old",
        json!({"resourceName": "a", "nicSelector": {"pfNames": ["eth1#0-1"]}}),
    )]);
    c.node_states[0].interfaces[0].alt_names = vec!["enp1s0".to_string()];
    let p = policy(
        "p1",
        json!({"resourceName": "b", "nicSelector": {"pfNames": ["enp1s0#0-0"]}}),
    );
    assert_eq!(
        dynamic_check(&p, &c, &settings()),
        Err("VF index range in enp1s0#0-0 is overlapped with existing policy old".into())
    );
}

#[test]
fn externally_managed_must_agree_on_a_shared_pf() {
    let mut c = cluster(vec![policy(
        "old",
        json!({"resourceName": "a", "nicSelector": {"pfNames": ["eth1#0-1"]}}),
    )]);
    c.node_states[0].interfaces[0].num_vfs = 4;
    let mut p = policy(
        "p1",
        json!({"resourceName": "b", "nicSelector": {"pfNames": ["eth1#2-3"]}}),
    );
    p.spec.externally_managed = true;
    assert_eq!(
        dynamic_check(&p, &c, &settings()),
        Err("externallyManage is inconsistent with existing policy old".into())
    );
}

#[test]
fn root_devices_and_exclude_topology_conflicts() {
    let c = cluster(vec![policy(
        "old",
        json!({"resourceName": "a", "nicSelector": {"rootDevices": ["0000:01:00.0"]}}),
    )]);
    let p = policy(
        "p1",
        json!({"resourceName": "b", "nicSelector": {"rootDevices": ["0000:01:00.0"]}}),
    );
    assert_eq!(
        dynamic_check(&p, &c, &settings()),
        Err("root device 0000:01:00.0 is overlapped with existing policy old".into())
    );
    let c = cluster(vec![policy(
        "old",
        json!({"resourceName": "a", "nicSelector": {"pfNames": ["eth1#0-1"]}}),
    )]);
    let p = policy(
        "p1",
        json!({"resourceName": "a", "excludeTopology": true, "nicSelector": {"pfNames": ["eth1#2-3"]}}),
    );
    assert_eq!(
        dynamic_check(&p, &c, &settings()),
        Err("excludeTopology[true] field conflicts with policy [old].ExcludeTopology[false] as they target the same resource[a]".into())
    );
}

#[test]
fn policies_on_other_nodes_do_not_conflict() {
    let mut other = policy("old", json!({"resourceName": "a"}));
    other.spec.node_selector = [("zone".to_string(), "b".to_string())].into();
    let mut c = cluster(vec![other]);
    c.node_states.push(NodeState {
        name: "w2".into(),
        interfaces: vec![igb("eth1", "0000:01:00.0")],
        ..Default::default()
    });
    assert_eq!(
        dynamic_check(&policy("p1", json!({"resourceName": "b"})), &c, &settings()),
        Ok(vec![])
    );
}
