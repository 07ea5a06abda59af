//! Policies → device-plugin config JSON (upstream §1.5, with its quirks) and the node label.

mod render_fixtures;

use render_fixtures::*;
use sriov_api::NicSelector;

fn dp(c: &Cluster) -> String {
    c.render().device_plugin_config["node1"].clone()
}

#[test]
fn matches_upstream_conformance_shape_exactly() {
    let mut p = policy("p", 10, "resourceXXX", 4, pf_names(&["ens1f0#0-3"]));
    p.spec.exclude_topology = true;
    let c = Cluster::one_node(vec![pf("0000:01:00.0", "ens1f0", 8)]).with(p);
    assert_eq!(
        dp(&c),
        r#"{"resourceList":[{"resourceName":"resourceXXX","excludeTopology":true,"selectors":{"pfNames":["ens1f0#0-3"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null}]}"#
    );
    assert_eq!(c.render().device_plugin_labels["node1"], "Enabled");
}

#[test]
fn node_without_policies_gets_null_list_and_disabled_label() {
    let r = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)]).render();
    assert_eq!(r.device_plugin_config["node1"], r#"{"resourceList":null}"#);
    assert_eq!(r.device_plugin_labels["node1"], "Disabled");
}

#[test]
fn selected_policy_without_matching_nic_still_enables_the_plugin() {
    let r = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)])
        .with(policy("p", 10, "res", 2, pf_names(&["nope"])))
        .render();
    assert!(r.node_states["node1"].interfaces.is_empty());
    assert_eq!(r.device_plugin_labels["node1"], "Enabled");
}

#[test]
fn vendor_device_root_devices_use_the_vf_device_id() {
    let mut c = Cluster::one_node(vec![pf("0000:65:00.0", "ens785f0", 128)]);
    c.nodes[0].labels.insert(
        "feature.node.kubernetes.io/network-sriov.capable".into(),
        "true".into(),
    );
    let c = c.with(example_policy("policy-vm-netdevice.yaml"));
    assert_eq!(
        dp(&c),
        r#"{"resourceList":[{"resourceName":"intelnics","selectors":{"vendors":["8086"],"devices":["1889"],"rootDevices":["0000:65:00.0"],"IsRdma":false,"NeedVhostNet":false},"SelectorObj":null}]}"#
    );
}

#[test]
fn num_vfs_zero_uses_the_pf_device_id_and_unknown_models_add_no_device() {
    let p = policy(
        "p",
        10,
        "res",
        0,
        NicSelector {
            vendor: "8086".into(),
            device_id: "1593".into(),
            ..Default::default()
        },
    );
    let q = policy(
        "q",
        10,
        "res2",
        2,
        NicSelector {
            vendor: "8086".into(),
            device_id: "ffff".into(),
            ..Default::default()
        },
    );
    let json = dp(&Cluster::one_node(vec![]).with(p).with(q));
    assert!(
        json.contains(r#""resourceName":"res","selectors":{"vendors":["8086"],"devices":["1593"]"#),
        "{json}"
    );
    assert!(
        json.contains(r#""resourceName":"res2","selectors":{"vendors":["8086"],"IsRdma""#),
        "{json}"
    );
}

#[test]
fn same_resource_name_merges_selectors_in_priority_order() {
    let mut a = policy("a", 10, "shared", 4, pf_names(&["eth0#0-1", "eth0#0-1"]));
    a.spec.is_rdma = true;
    a.spec.link_type = "ib".into();
    a.spec.nic_selector.root_devices = vec!["0000:01:00.0".into(), "0000:01:00.0".into()];
    let mut b = policy("b", 20, "shared", 4, pf_names(&["enp2s0#2-3"]));
    b.spec.need_vhost_net = true;
    b.spec.link_type = "eth".into();
    b.spec.exclude_topology = true;
    b.spec.nic_selector.root_devices = vec!["0000:02:00.0".into()];
    let mut eth1 = pf("0000:02:00.0", "eth1", 8);
    eth1.alt_names = vec!["enp2s0".into()];
    let json = dp(&Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8), eth1])
        .with(a)
        .with(b));
    // b (priority 20) is applied first and creates the resource; a merges into it and, being
    // last, sets excludeTopology (false). rootDevices keep b's first-policy form, a's are unioned.
    assert_eq!(
        json,
        r#"{"resourceList":[{"resourceName":"shared","selectors":{"pfNames":["eth1#2-3","eth0#0-1"],"rootDevices":["0000:02:00.0","0000:01:00.0"],"linkTypes":["ether","infiniband"],"IsRdma":false,"NeedVhostNet":true},"SelectorObj":null}]}"#
    );
}

#[test]
fn vfio_pci_gets_no_link_type_and_net_filter_becomes_pci_addresses() {
    let mut a = policy("a", 10, "vfio", 2, pf_names(&["eth0"]));
    a.spec.device_type = "vfio-pci".into();
    a.spec.link_type = "eth".into();
    let b = policy(
        "b",
        10,
        "osp",
        2,
        NicSelector {
            net_filter: "openstack/NetworkID:n1".into(),
            ..Default::default()
        },
    );
    let mut p1 = pf("0000:01:00.0", "eth0", 8);
    p1.net_filter = "openstack/NetworkID:n1".into();
    let json = dp(&Cluster::one_node(vec![p1, pf("0000:02:00.0", "eth1", 8)])
        .with(a)
        .with(b));
    assert!(
        json.contains(r#"{"resourceName":"vfio","selectors":{"pfNames":["eth0"],"IsRdma":false"#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"resourceName":"osp","selectors":{"pciAddresses":["0000:01:00.0"],"IsRdma""#),
        "{json}"
    );
}

#[test]
fn strings_are_html_escaped_like_go() {
    let json = dp(&Cluster::one_node(vec![]).with(policy("p", 10, "r", 1, pf_names(&["a<b>&c"]))));
    assert!(json.contains(r#""pfNames":["a\u003cb\u003e\u0026c"]"#), "{json}");
}

#[test]
fn every_daemon_node_gets_a_config_key() {
    let mut c = Cluster::one_node(vec![]);
    c.nodes.push(worker("node2", &[]));
    let r = c.with(policy("p", 10, "r", 1, pf_names(&["eth0"]))).render();
    assert_eq!(
        r.device_plugin_config.keys().collect::<Vec<_>>(),
        ["node1", "node2"]
    );
}

#[test]
fn our_device_plugin_accepts_every_rendered_config() {
    // The consumer of this JSON is the device plugin: sriov-rs' own parser must read what the
    // operator writes (upstream's shape), keep every resource and the capitalised flags.
    let mut a = policy("a", 10, "rdma", 4, pf_names(&["eth0#0-1"]));
    a.spec.is_rdma = true;
    a.spec.link_type = "eth".into();
    let mut b = policy(
        "b",
        20,
        "vhost",
        4,
        NicSelector {
            vendor: "8086".into(),
            device_id: "1593".into(),
            ..Default::default()
        },
    );
    b.spec.need_vhost_net = true;
    b.spec.exclude_topology = true;
    let r = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)])
        .with(a)
        .with(b)
        .render();
    let config = sriov_device_plugin::config::Config::parse(&r.device_plugin_config["node1"], "openshift.io")
        .expect("device plugin parses the rendered config");
    let names: Vec<&str> = config
        .resources
        .iter()
        .map(|r| r.resource_name.as_str())
        .collect();
    assert_eq!(names, ["vhost", "rdma"]);
    let vhost = &config.resources[0];
    assert!(vhost.exclude_topology);
    assert!(vhost.selectors[0].need_vhost_net);
    assert_eq!(vhost.selectors[0].devices, ["1889"]);
    let rdma = &config.resources[1];
    assert!(rdma.selectors[0].is_rdma);
    assert_eq!(rdma.selectors[0].link_types, ["ether"]);
    assert_eq!(rdma.selectors[0].pf_names.len(), 1);
}
