//! Snapshots (insta) of a small cluster's rendered node specs, device-plugin config and NAD
//! configs. The `.snap` files are reviewed and committed; CI never writes them
//! (`INSTA_UPDATE=no`), so any change in rendered output fails until re-reviewed.

mod render_fixtures;

use render_fixtures::*;
use sriov_api::{NicSelector, Object, parse_documents};
use sriov_operator::render::{
    NadContext, render_ib_network_nad, render_ovs_network_nad, render_sriov_network_nad,
};

fn cluster() -> Cluster {
    let capable = [("feature.node.kubernetes.io/network-sriov.capable", "true")];
    let mut c = Cluster::one_node(vec![
        pf("0000:3b:00.0", "eth1v", 64),
        pf("0000:65:00.0", "ens785f0", 128),
    ]);
    c.nodes = vec![
        worker("node1", &capable),
        worker("node2", &capable),
        worker("node3", &[("zone", "b")]),
    ];
    let mut mlx = pf("0000:81:00.0", "ens2f0", 16);
    mlx.vendor = "15b3".into();
    mlx.device_id = "101d".into();
    mlx.link_type = "IB".into();
    c.interfaces
        .insert("node2".into(), vec![pf("0000:65:00.0", "ens785f0", 128), mlx]);
    c.interfaces
        .insert("node3".into(), vec![pf("0000:01:00.0", "eth0", 8)]);

    let mut ib = policy(
        "ib-rdma",
        30,
        "mlxib",
        8,
        NicSelector {
            vendor: "15b3".into(),
            ..Default::default()
        },
    );
    ib.spec.link_type = "IB".into();
    ib.spec.is_rdma = true;
    let mut part_a = policy("part-a", 40, "dpdk", 8, pf_names(&["ens785f0#0-3"]));
    part_a.spec.device_type = "vfio-pci".into();
    part_a.spec.node_selector = labels(&capable);
    let mut part_b = policy("part-b", 40, "kernel", 8, pf_names(&["ens785f0#4-7"]));
    part_b.spec.mtu = 9000;
    part_b.spec.node_selector = labels(&capable);
    let mut zone_b = policy("zone-b", 99, "zoneb", 4, pf_names(&["eth0"]));
    zone_b.spec.node_selector = labels(&[("zone", "b")]);
    c.with(example_policy("policy-harvester.yaml"))
        .with(example_policy("policy-vm-netdevice.yaml"))
        .with(ib)
        .with(part_a)
        .with(part_b)
        .with(zone_b)
}

#[test]
fn node_specs() {
    insta::assert_yaml_snapshot!(cluster().render().node_states);
}

#[test]
fn device_plugin_config_and_labels() {
    let r = cluster().render();
    let text: Vec<String> = r
        .device_plugin_config
        .iter()
        .map(|(node, json)| format!("{node} [{}]\n{json}", r.device_plugin_labels[node]))
        .collect();
    insta::assert_snapshot!(text.join("\n\n"));
}

#[test]
fn nad_configs() {
    let ctx = NadContext {
        operator_namespace: NS.into(),
        resource_prefix: "openshift.io".into(),
    };
    let mut docs = Vec::new();
    for file in ["network-vm.yaml", "network-container-host-local.yaml"] {
        docs.extend(parse_documents(&example(file)).expect(file));
    }
    let extra = r#"
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetwork
metadata: {name: full, namespace: sriov-network-operator}
spec:
  resourceName: intelnics
  vlan: 42
  vlanQoS: 5
  spoofChk: "on"
  trust: "off"
  linkState: auto
  maxTxRate: 100
  capabilities: '{"mac": true}'
  metaPlugins: |
    {"type": "tuning", "sysctl": {"net.ipv4.conf.IFNAME.arp_notify": "1"}},
    {"type": "vrf", "vrfname": "red"}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovIBNetwork
metadata: {name: ib, namespace: sriov-network-operator}
spec: {resourceName: mlxib, capabilities: '{"infinibandGUID": true}', ipam: '{"type": "whereabouts", "range": "10.1.0.0/16"}'}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: OVSNetwork
metadata: {name: ovs, namespace: sriov-network-operator}
spec: {resourceName: ovsres, bridge: br-int, vlan: 7, trunk: [{minID: 10, maxID: 20}]}
"#;
    docs.extend(parse_documents(extra).expect("extra networks"));
    let mut out = Vec::new();
    for doc in docs {
        let nad = match &doc {
            Object::Network(n) => render_sriov_network_nad(n, &ctx),
            Object::IbNetwork(n) => render_ib_network_nad(n, &ctx),
            Object::OvsNetwork(n) => render_ovs_network_nad(n, &ctx),
            other => panic!("unexpected {}", other.kind()),
        }
        .expect("render");
        out.push(format!(
            "# {}/{} ({:?})\n{}",
            nad.metadata.namespace.unwrap_or_default(),
            nad.metadata.name.unwrap_or_default(),
            nad.metadata.annotations.unwrap_or_default(),
            nad.spec.config
        ));
    }
    insta::assert_snapshot!(out.join("\n\n"));
}
