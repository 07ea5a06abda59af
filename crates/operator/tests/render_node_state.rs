//! Policies → SriovNetworkNodeState.spec: one test per upstream rule (§1.4 of the reference).

mod render_fixtures;

use render_fixtures::*;
use sriov_api::{NicSelector, NodeStateInterface, OperatorConfigSpec};
use sriov_operator::render::RenderError;

fn only_pf(c: &Cluster) -> NodeStateInterface {
    let r = c.render();
    let spec = &r.node_states["node1"];
    assert_eq!(spec.interfaces.len(), 1, "{spec:?}");
    spec.interfaces[0].clone()
}

fn groups(i: &NodeStateInterface) -> Vec<(String, String, String)> {
    i.vf_groups
        .iter()
        .map(|g| (g.resource_name.clone(), g.vf_range.clone(), g.policy_name.clone()))
        .collect()
}

#[test]
fn single_policy_gives_the_whole_range_and_pf_fields() {
    let mut p = policy("p1", 50, "resA", 4, pf_names(&["eth0"]));
    p.spec.mtu = 9000;
    p.spec.link_type = "eth".into();
    p.spec.is_rdma = true;
    let i = only_pf(&Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)]).with(p));
    assert_eq!(
        (i.pci_address.as_str(), i.name.as_str(), i.num_vfs, i.mtu),
        ("0000:01:00.0", "eth0", 4, 9000)
    );
    assert_eq!(i.link_type, "eth");
    assert_eq!(groups(&i), [("resA".into(), "0-3".into(), "p1".into())]);
    assert!(i.vf_groups[0].is_rdma);
    assert_eq!(i.vf_groups[0].mtu, 9000);
    assert_eq!(i.vf_groups[0].device_type, "netdevice");
}

#[test]
fn lower_priority_number_wins_an_overlapping_range() {
    let mut high = policy("zz-high", 10, "resHigh", 2, pf_names(&["eth0"]));
    high.spec.mtu = 1500;
    let mut low = policy("aa-low", 20, "resLow", 6, pf_names(&["eth0"]));
    low.spec.mtu = 9000;
    let i = only_pf(
        &Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)])
            .with(low)
            .with(high),
    );
    assert_eq!(groups(&i), [("resHigh".into(), "0-1".into(), "zz-high".into())]);
    // Different priority and nothing kept: the winner's PF fields replace the loser's.
    assert_eq!((i.num_vfs, i.mtu), (2, 1500));
}

#[test]
fn equal_priority_ties_go_to_the_later_name_and_take_max_mtu_and_num_vfs() {
    let mut a = policy("a", 30, "resA", 6, pf_names(&["eth0"]));
    a.spec.mtu = 9000;
    let b = policy("b", 30, "resB", 2, pf_names(&["eth0"]));
    let i = only_pf(
        &Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)])
            .with(b)
            .with(a),
    );
    assert_eq!(groups(&i), [("resB".into(), "0-1".into(), "b".into())]);
    assert_eq!((i.num_vfs, i.mtu), (6, 9000));
}

#[test]
fn pf_name_ranges_partition_one_pf_and_merge_num_vfs_and_mtu() {
    let mut a = policy("a", 10, "resA", 8, pf_names(&["eth0#0-3"]));
    a.spec.mtu = 1500;
    let mut b = policy("b", 20, "resB", 8, pf_names(&["eth0#4-7"]));
    b.spec.mtu = 9000;
    b.spec.device_type = "vfio-pci".into();
    let i = only_pf(
        &Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 16)])
            .with(a)
            .with(b),
    );
    assert_eq!(
        groups(&i),
        [
            ("resA".into(), "0-3".into(), "a".into()),
            ("resB".into(), "4-7".into(), "b".into())
        ]
    );
    assert_eq!(i.vf_groups[1].device_type, "vfio-pci");
    assert_eq!((i.num_vfs, i.mtu), (8, 9000), "groups kept → max of both");
}

#[test]
fn same_resource_name_replaces_the_older_group_even_without_overlap() {
    let a = policy("a", 10, "res", 8, pf_names(&["eth0#0-3"]));
    let b = policy("b", 20, "res", 8, pf_names(&["eth0#4-7"]));
    let i = only_pf(
        &Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 16)])
            .with(a)
            .with(b),
    );
    assert_eq!(groups(&i), [("res".into(), "0-3".into(), "a".into())]);
}

#[test]
fn overlapping_partial_ranges_keep_only_the_winner() {
    let a = policy("a", 10, "resA", 8, pf_names(&["eth0#2-5"]));
    let b = policy("b", 20, "resB", 8, pf_names(&["eth0#0-2"]));
    let c = policy("c", 30, "resC", 8, pf_names(&["eth0#6-7"]));
    let i = only_pf(
        &Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 16)])
            .with(a)
            .with(b)
            .with(c),
    );
    assert_eq!(
        groups(&i),
        [
            ("resA".into(), "2-5".into(), "a".into()),
            ("resC".into(), "6-7".into(), "c".into())
        ]
    );
}

#[test]
fn num_vfs_zero_leaves_the_pf_out() {
    let p = policy("p", 10, "res", 0, pf_names(&["eth0"]));
    let r = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)])
        .with(p)
        .render();
    assert!(r.node_states["node1"].interfaces.is_empty());
}

#[test]
fn num_vfs_zero_does_not_remove_what_a_lower_priority_policy_configured() {
    // Upstream quirk kept: a numVfs 0 policy adds nothing, it does not delete.
    let low = policy("low", 90, "res", 4, pf_names(&["eth0"]));
    let zero = policy("zero", 10, "res", 0, pf_names(&["eth0"]));
    let i = only_pf(
        &Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)])
            .with(low)
            .with(zero),
    );
    assert_eq!(groups(&i), [("res".into(), "0-3".into(), "low".into())]);
}

#[test]
fn nic_selector_fields_all_must_match() {
    let mut a = pf("0000:01:00.0", "eth0", 8);
    a.net_filter = "openstack/NetworkID:abc".into();
    let mut b = pf("0000:02:00.0", "eth1", 8);
    b.device_id = "158b".into();
    b.alt_names = vec!["enp2s0".into()];
    let mut c = pf("0000:03:00.0", "eth2", 8);
    c.vendor = "15b3".into();
    let pfs = vec![a, b, c];
    let cases: Vec<(NicSelector, Vec<&str>)> = vec![
        (
            NicSelector {
                vendor: "8086".into(),
                ..Default::default()
            },
            vec!["0000:01:00.0", "0000:02:00.0"],
        ),
        (
            NicSelector {
                vendor: "8086".into(),
                device_id: "158b".into(),
                ..Default::default()
            },
            vec!["0000:02:00.0"],
        ),
        (
            NicSelector {
                root_devices: vec!["0000:03:00.0".into()],
                ..Default::default()
            },
            vec!["0000:03:00.0"],
        ),
        (pf_names(&["enp2s0"]), vec!["0000:02:00.0"]),
        (
            NicSelector {
                net_filter: "openstack/NetworkID:abc".into(),
                ..Default::default()
            },
            vec!["0000:01:00.0"],
        ),
        (
            NicSelector {
                net_filter: "openstack/NetworkID:other".into(),
                ..Default::default()
            },
            vec![],
        ),
        (
            NicSelector {
                vendor: "15b3".into(),
                pf_names: vec!["eth0".into()],
                ..Default::default()
            },
            vec![],
        ),
        (NicSelector::default(), vec![]),
    ];
    for (sel, want) in cases {
        let r = Cluster::one_node(pfs.clone())
            .with(policy("p", 10, "res", 2, sel.clone()))
            .render();
        let got: Vec<&str> = r.node_states["node1"]
            .interfaces
            .iter()
            .map(|i| i.pci_address.as_str())
            .collect();
        assert_eq!(got, want, "{sel:?}");
    }
}

#[test]
fn alternative_name_range_is_honoured() {
    let mut p0 = pf("0000:01:00.0", "eth0", 8);
    p0.alt_names = vec!["enp1s0f0".into()];
    let i =
        only_pf(&Cluster::one_node(vec![p0]).with(policy("p", 10, "res", 8, pf_names(&["enp1s0f0#2-5"]))));
    assert_eq!(groups(&i), [("res".into(), "2-5".into(), "p".into())]);
}

#[test]
fn externally_managed_and_eswitch_mode_are_copied() {
    let mut p = policy("p", 10, "res", 2, pf_names(&["eth0"]));
    p.spec.externally_managed = true;
    p.spec.e_switch_mode = "switchdev".into();
    let i = only_pf(&Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)]).with(p));
    assert!(i.externally_managed);
    assert_eq!(i.e_switch_mode, "switchdev");
}

#[test]
fn node_selection_defaults_to_linux_workers_and_honours_config_daemon_selector() {
    let mut c = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)]);
    c.nodes.push(sriov_operator::render::NodeInfo {
        name: "master".into(),
        labels: labels(&[
            ("kubernetes.io/os", "linux"),
            ("node-role.kubernetes.io/control-plane", ""),
        ]),
    });
    let r = c.render();
    assert_eq!(r.node_states.keys().collect::<Vec<_>>(), ["node1"]);

    c.config = Some(OperatorConfigSpec {
        config_daemon_node_selector: labels(&[("node-role.kubernetes.io/control-plane", "")]),
        ..Default::default()
    });
    let r = c.render();
    assert_eq!(r.node_states.keys().collect::<Vec<_>>(), ["master"]);
}

#[test]
fn policy_node_selector_must_match_every_label() {
    let mut c = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)]);
    c.nodes.push(worker("node2", &[("sriov", "true"), ("zone", "a")]));
    c.interfaces
        .insert("node2".into(), vec![pf("0000:01:00.0", "eth0", 8)]);
    let mut p = policy("p", 10, "res", 2, pf_names(&["eth0"]));
    p.spec.node_selector = labels(&[("sriov", "true"), ("zone", "a")]);
    let mut q = policy("q", 10, "res2", 2, pf_names(&["eth0"]));
    q.spec.node_selector = labels(&[("sriov", "true"), ("zone", "b")]);
    let r = c.with(p).with(q).render();
    assert!(r.node_states["node1"].interfaces.is_empty());
    assert_eq!(r.node_states["node2"].interfaces[0].vf_groups[0].policy_name, "p");
}

#[test]
fn node_without_reported_interfaces_gets_an_empty_spec() {
    let mut c = Cluster::one_node(vec![]).with(policy("p", 10, "res", 2, pf_names(&["eth0"])));
    c.interfaces.clear();
    let r = c.render();
    assert_eq!(r.node_states["node1"], Default::default());
}

#[test]
fn policies_outside_the_operator_namespace_and_the_legacy_default_are_ignored() {
    let mut elsewhere = policy("elsewhere", 10, "res", 2, pf_names(&["eth0"]));
    elsewhere.metadata.namespace = Some("default".into());
    let legacy = policy("default", 10, "res", 2, pf_names(&["eth0"]));
    let r = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)])
        .with(elsewhere)
        .with(legacy)
        .render();
    assert!(r.node_states["node1"].interfaces.is_empty());
    assert_eq!(r.device_plugin_labels["node1"], "Disabled");
}

#[test]
fn bad_pf_name_range_is_an_error_naming_policy_field_and_value() {
    for bad in ["eth0#3", "eth0#a-2", "eth0#5-2", "eth0#1-2#3", "eth0#-1-2"] {
        let c = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)]).with(policy(
            "broken",
            10,
            "res",
            8,
            pf_names(&["eth1", bad]),
        ));
        match c.try_render() {
            Err(e @ RenderError::InvalidPfName { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("SriovNetworkNodePolicy/broken"), "{msg}");
                assert!(msg.contains("spec.nicSelector.pfNames[1]"), "{msg}");
                assert!(msg.contains(bad), "{msg}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn groups_never_exceed_total_vfs() {
    let c = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 4), pf("0000:02:00.0", "eth1", 4)])
        .with(policy("too-many", 10, "resA", 8, pf_names(&["eth0"])))
        .with(policy("past-end", 10, "resB", 4, pf_names(&["eth1#2-6"])))
        .with(policy("all-past", 20, "resC", 4, pf_names(&["eth1#5-6"])));
    let r = c.render();
    let spec = &r.node_states["node1"];
    assert_eq!(spec.interfaces.len(), 1, "{spec:?}");
    assert_eq!(
        groups(&spec.interfaces[0]),
        [("resB".into(), "2-3".into(), "past-end".into())]
    );
    let notes: Vec<(&str, &str)> = r
        .notes
        .iter()
        .map(|n| (n.policy.as_str(), n.pf.as_str()))
        .collect();
    assert!(notes.contains(&("too-many", "0000:01:00.0")), "{notes:?}");
    assert!(notes.contains(&("past-end", "0000:02:00.0")), "{notes:?}");
    assert!(notes.contains(&("all-past", "0000:02:00.0")), "{notes:?}");
}

#[test]
fn output_is_sorted_and_independent_of_reported_order() {
    let pfs = vec![
        pf("0000:03:00.0", "eth2", 8),
        pf("0000:01:00.0", "eth0", 8),
        pf("0000:02:00.0", "eth1", 8),
    ];
    let mut reversed = pfs.clone();
    reversed.reverse();
    let p = || {
        policy(
            "p",
            10,
            "res",
            2,
            NicSelector {
                vendor: "8086".into(),
                ..Default::default()
            },
        )
    };
    let a = Cluster::one_node(pfs).with(p()).render();
    let b = Cluster::one_node(reversed).with(p()).render();
    assert_eq!(a, b);
    let order: Vec<&str> = a.node_states["node1"]
        .interfaces
        .iter()
        .map(|i| i.pci_address.as_str())
        .collect();
    assert_eq!(order, ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0"]);
}

#[test]
fn rdma_mode_comes_from_the_node_pool() {
    let mut c = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)]);
    let mut pool = sriov_api::SriovNetworkPoolConfig::new(
        "rdma",
        sriov_api::PoolConfigSpec {
            rdma_mode: "exclusive".into(),
            ..Default::default()
        },
    );
    pool.metadata.namespace = Some(NS.into());
    c.pools.push(pool);
    let r = c.render();
    assert_eq!(
        r.node_states["node1"].system,
        Some(serde_json::json!({"rdmaMode": "exclusive"}))
    );
}

#[test]
fn harvester_example_policy_renders_its_pf_name_range() {
    let mut c = Cluster::one_node(vec![
        pf("0000:3b:00.0", "eth1v", 64),
        pf("0000:3b:00.1", "eth2", 64),
    ]);
    c.nodes[0].labels.insert(
        "feature.node.kubernetes.io/network-sriov.capable".into(),
        "true".into(),
    );
    let r = c.with(example_policy("policy-harvester.yaml")).render();
    let spec = &r.node_states["node1"];
    assert_eq!(spec.interfaces.len(), 1);
    let i = &spec.interfaces[0];
    assert_eq!((i.name.as_str(), i.num_vfs, i.mtu), ("eth1v", 8, 9000));
    assert_eq!(
        groups(i),
        [(
            "intelnics".into(),
            "1-8".into(),
            "sriov-policy-202207221730".into()
        )]
    );
    assert_eq!(i.vf_groups[0].device_type, "vfio-pci");
}

#[test]
fn vm_netdevice_example_policy_selects_by_vendor_device_and_root_device() {
    let mut c = Cluster::one_node(vec![
        pf("0000:65:00.0", "ens785f0", 128),
        pf("0000:65:00.1", "ens785f1", 128),
    ]);
    c.nodes[0].labels.insert(
        "feature.node.kubernetes.io/network-sriov.capable".into(),
        "true".into(),
    );
    let r = c.with(example_policy("policy-vm-netdevice.yaml")).render();
    let spec = &r.node_states["node1"];
    assert_eq!(spec.interfaces.len(), 1);
    assert_eq!(
        groups(&spec.interfaces[0]),
        [("intelnics".into(), "0-1".into(), "vf-policy".into())]
    );
}

#[test]
fn a_node_in_two_pools_gets_no_rdma_mode_and_a_note_and_offload_pools_do_not_count() {
    let mut c = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)]);
    for (name, offload) in [("a", ""), ("b", "mcp-offload")] {
        let mut pool = sriov_api::SriovNetworkPoolConfig::new(
            name,
            sriov_api::PoolConfigSpec {
                rdma_mode: "shared".into(),
                ..Default::default()
            },
        );
        pool.spec.ovs_hardware_offload_config.name = offload.into();
        pool.metadata.namespace = Some(NS.into());
        c.pools.push(pool);
    }
    let r = c.render();
    assert_eq!(
        r.node_states["node1"].system,
        Some(serde_json::json!({"rdmaMode": "shared"}))
    );
    c.pools[1].spec.ovs_hardware_offload_config.name.clear();
    let r = c.render();
    assert_eq!(r.node_states["node1"].system, None);
    assert!(
        r.notes
            .iter()
            .any(|n| n.node == "node1" && n.message.contains("more than one pool")),
        "{:?}",
        r.notes
    );
}

#[test]
fn equal_priority_is_judged_against_the_previous_selected_policy_not_this_pf() {
    // Upstream quirk kept: "equal priority" compares with the policy applied just before,
    // even when that one configured another PF.
    let mut big = policy("a-big", 20, "resA", 8, pf_names(&["eth0"]));
    big.spec.mtu = 9000;
    let other = policy("b-other", 10, "resO", 2, pf_names(&["eth1"]));
    let small = policy("c-small", 10, "resB", 2, pf_names(&["eth0"]));
    let r = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8), pf("0000:02:00.0", "eth1", 8)])
        .with(big)
        .with(other)
        .with(small)
        .render();
    let eth0 = &r.node_states["node1"].interfaces[0];
    assert_eq!(groups(eth0), [("resB".into(), "0-1".into(), "c-small".into())]);
    assert_eq!((eth0.num_vfs, eth0.mtu), (8, 9000));
}

#[test]
fn software_bridges_follow_policies_only_with_the_feature_gate() {
    use sriov_api::policy::{OvsConfig, PolicyBridge};
    let mut p = policy("ovs", 10, "res", 4, pf_names(&["eth0", "eth1"]));
    p.spec.e_switch_mode = "switchdev".into();
    p.spec.mtu = 9000;
    p.spec.bridge = PolicyBridge {
        ovs: Some(OvsConfig::default()),
    };
    let mut no_bridge = policy("plain", 5, "res2", 2, pf_names(&["eth1"]));
    no_bridge.spec.e_switch_mode = "switchdev".into();
    let mut c = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8), pf("0000:02:00.0", "eth1", 8)])
        .with(p)
        .with(no_bridge);
    assert_eq!(c.render().node_states["node1"].bridges, None, "gate off");
    c.config = Some(OperatorConfigSpec {
        feature_gates: [("manageSoftwareBridges".to_string(), true)].into(),
        ..Default::default()
    });
    let bridges = c.render().node_states["node1"].bridges.clone().expect("bridges");
    assert_eq!(
        bridges,
        serde_json::json!({"ovs": [{
            "name": "br-0000_01_00.0",
            "bridge": {},
            "uplinks": [{"pciAddress": "0000:01:00.0", "name": "eth0", "interface": {"mtuRequest": 9000}}]
        }]}),
        "eth1's bridge is removed by the later policy without bridge config"
    );
}
