//! Network CRs → NetworkAttachmentDefinition (upstream §1.6): CNI config text exactly as
//! upstream formats it, target namespace, annotations, ownership.

mod render_fixtures;

use render_fixtures::example;
use sriov_api::{
    Object, OvsNetworkSpec, SriovIBNetwork, SriovIbNetworkSpec, SriovNetwork, SriovNetworkSpec, TrunkConfig,
    parse_object,
};
use sriov_operator::render::{
    NadAction, NadContext, RenderError, nad_action, render_ib_network_nad, render_ovs_network_nad,
    render_sriov_network_nad,
};

fn ctx() -> NadContext {
    NadContext {
        operator_namespace: "sriov-network-operator".into(),
        resource_prefix: "openshift.io".into(),
    }
}

fn net(name: &str, spec: SriovNetworkSpec) -> SriovNetwork {
    let mut n = SriovNetwork::new(name, spec);
    n.metadata.namespace = Some("sriov-network-operator".into());
    n
}

fn defaulted(resource: &str) -> SriovNetworkSpec {
    SriovNetworkSpec {
        resource_name: resource.into(),
        log_level: "info".into(),
        ..Default::default()
    }
}

#[test]
fn defaulted_network_matches_upstream_text() {
    let nad = render_sriov_network_nad(&net("test", defaulted("res")), &ctx()).expect("render");
    assert_eq!(
        nad.spec.config,
        "{\n    \"cniVersion\": \"1.0.0\",\n    \"name\": \"test\",\n    \"type\": \"sriov\",\n    \"vlan\": 0,\n    \"vlanQoS\": 0,\n    \"logLevel\": \"info\",\n    \"ipam\": {}\n}"
    );
    assert_eq!(nad.metadata.namespace.as_deref(), Some("sriov-network-operator"));
    let ann = nad.metadata.annotations.expect("annotations");
    assert_eq!(ann["k8s.v1.cni.cncf.io/resourceName"], "openshift.io/res");
    assert_eq!(
        ann["sriovnetwork.openshift.io/owner-ref"],
        "SriovNetwork.sriovnetwork.openshift.io/sriov-network-operator/test"
    );
}

#[test]
fn every_sriov_field_in_upstream_order() {
    let spec = SriovNetworkSpec {
        resource_name: "res".into(),
        network_namespace: "apps".into(),
        vlan: 100,
        vlan_qos: 3,
        vlan_proto: "802.1ad".into(),
        spoof_chk: "off".into(),
        trust: "on".into(),
        link_state: "enable".into(),
        min_tx_rate: Some(0),
        max_tx_rate: Some(1000),
        capabilities: r#"{"mac": true, "ips": true}"#.into(),
        ipam: "{ \"type\": \"host-local\",\n  \"subnet\": \"10.0.0.0/24\" }".into(),
        log_level: "debug".into(),
        log_file: "/tmp/sriov.log".into(),
        ..Default::default()
    };
    let nad = render_sriov_network_nad(&net("all", spec), &ctx()).expect("render");
    let want = r#"{
    "cniVersion": "1.0.0",
    "name": "all",
    "type": "sriov",
    "vlan": 100,
    "spoofchk": "off",
    "trust": "on",
    "vlanQoS": 3,
    "vlanProto": "802.1ad",
    "min_tx_rate": 0,
    "max_tx_rate": 1000,
    "capabilities": {
        "mac": true,
        "ips": true
    },
    "link_state": "enable",
    "logLevel": "debug",
    "logFile": "/tmp/sriov.log",
    "ipam": {
        "type": "host-local",
        "subnet": "10.0.0.0/24"
    }
}"#;
    assert_eq!(nad.spec.config, want);
    assert_eq!(nad.metadata.namespace.as_deref(), Some("apps"));
}

#[test]
fn ipam_whitespace_is_stripped_even_inside_strings() {
    let mut spec = defaulted("res");
    spec.ipam = r#"{"type": "static", "routes": [{"dst": "a b"}]}"#.into();
    let nad = render_sriov_network_nad(&net("t", spec), &ctx()).expect("render");
    assert!(nad.spec.config.contains("\"dst\": \"ab\""), "{}", nad.spec.config);
}

#[test]
fn meta_plugins_chain_into_a_plugins_list() {
    let mut spec = defaulted("res");
    spec.meta_plugins = "{ \"type\": \"vrf\", \"vrfname\": \"blue\" }".into();
    spec.log_level = String::new();
    let nad = render_sriov_network_nad(&net("test", spec), &ctx()).expect("render");
    let want = "{\n    \"cniVersion\": \"1.0.0\",\n    \"name\": \"test\",\n    \"plugins\": [\n        {\n            \"type\": \"sriov\",\n            \"vlan\": 0,\n            \"vlanQoS\": 0,\n            \"ipam\": {}\n        },\n        {\n            \"type\": \"vrf\",\n            \"vrfname\": \"blue\"\n        }\n    ]\n}";
    assert_eq!(nad.spec.config, want);
}

#[test]
fn ib_network_has_no_vlan_or_log_fields() {
    let mut n = SriovIBNetwork::new(
        "ib",
        SriovIbNetworkSpec {
            resource_name: "ibres".into(),
            capabilities: r#"{"infinibandGUID": true}"#.into(),
            link_state: "auto".into(),
            ..Default::default()
        },
    );
    n.metadata.namespace = Some("sriov-network-operator".into());
    let nad = render_ib_network_nad(&n, &ctx()).expect("render");
    assert_eq!(
        nad.spec.config,
        "{\n    \"cniVersion\": \"1.0.0\",\n    \"name\": \"ib\",\n    \"type\": \"ib-sriov\",\n    \"capabilities\": {\n        \"infinibandGUID\": true\n    },\n    \"link_state\": \"auto\",\n    \"ipam\": {}\n}"
    );
    assert!(
        nad.metadata.annotations.expect("ann")["sriovnetwork.openshift.io/owner-ref"]
            .starts_with("SriovIBNetwork.")
    );
}

#[test]
fn ovs_network_fields_in_upstream_order() {
    let mut n = sriov_api::OVSNetwork::new(
        "test",
        OvsNetworkSpec {
            resource_name: "ovsres".into(),
            capabilities: r#"{"foo": "bar"}"#.into(),
            bridge: "test".into(),
            vlan: 100,
            mtu: 1500,
            trunk: vec![
                TrunkConfig {
                    id: Some(120),
                    ..Default::default()
                },
                TrunkConfig {
                    min_id: Some(500),
                    max_id: Some(550),
                    ..Default::default()
                },
            ],
            interface_type: "netdev".into(),
            ipam: r#"{"type":"foo"}"#.into(),
            ..Default::default()
        },
    );
    n.metadata.namespace = Some("sriov-network-operator".into());
    let nad = render_ovs_network_nad(&n, &ctx()).expect("render");
    let want = r#"{
    "cniVersion": "1.0.0",
    "name": "test",
    "type": "ovs",
    "capabilities": {
        "foo": "bar"
    },
    "bridge": "test",
    "vlan": 100,
    "mtu": 1500,
    "trunk": [
        {
            "id": 120
        },
        {
            "minID": 500,
            "maxID": 550
        }
    ],
    "interface_type": "netdev",
    "ipam": {
        "type": "foo"
    }
}"#;
    assert_eq!(nad.spec.config, want);
}

#[test]
fn invalid_raw_json_fields_are_errors_naming_object_and_field() {
    for (field, mutate) in [
        (
            "spec.capabilities",
            (|s: &mut SriovNetworkSpec| s.capabilities = "{mac: true}".into()) as fn(&mut SriovNetworkSpec),
        ),
        ("spec.ipam", |s| s.ipam = "{\"type\": ".into()),
        ("spec.metaPlugins", |s| {
            s.meta_plugins = "{\"type\": \"tuning\"},".into()
        }),
    ] {
        let mut spec = defaulted("res");
        mutate(&mut spec);
        match render_sriov_network_nad(&net("broken", spec), &ctx()) {
            Err(e @ RenderError::InvalidNetworkField { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("SriovNetwork/sriov-network-operator/broken"),
                    "{msg}"
                );
                assert!(msg.contains(field), "{field}: {msg}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[test]
fn network_namespace_only_allowed_in_operator_namespace() {
    let mut spec = defaulted("res");
    spec.network_namespace = "apps".into();
    let mut n = net("n", spec);
    n.metadata.namespace = Some("team-a".into());
    let err = render_sriov_network_nad(&n, &ctx()).expect_err("not allowed");
    assert!(err.to_string().contains("spec.networkNamespace"), "{err}");
    // Without networkNamespace, a network outside the operator namespace renders into its own.
    n.spec.network_namespace.clear();
    let nad = render_sriov_network_nad(&n, &ctx()).expect("render");
    assert_eq!(nad.metadata.namespace.as_deref(), Some("team-a"));
}

#[test]
fn owner_reference_only_within_one_namespace() {
    let mut n = net("n", defaulted("res"));
    n.metadata.uid = Some("uid-1".into());
    let same = render_sriov_network_nad(&n, &ctx()).expect("render");
    assert_eq!(same.metadata.owner_references.expect("owner")[0].uid, "uid-1");
    n.spec.network_namespace = "apps".into();
    let other = render_sriov_network_nad(&n, &ctx()).expect("render");
    assert!(other.metadata.owner_references.is_none());
}

#[test]
fn never_overwrite_a_nad_owned_by_someone_else() {
    let desired = render_sriov_network_nad(&net("n", defaulted("res")), &ctx()).expect("render");
    assert_eq!(nad_action(&desired, None), Ok(NadAction::Create));
    assert_eq!(nad_action(&desired, Some(&desired)), Ok(NadAction::Unchanged));

    let mut foreign = desired.clone();
    foreign.metadata.annotations.get_or_insert_default().insert(
        "sriovnetwork.openshift.io/owner-ref".into(),
        "SriovNetwork.sriovnetwork.openshift.io/other/n".into(),
    );
    let err = nad_action(&desired, Some(&foreign)).expect_err("owned by other");
    assert!(
        err.to_string()
            .contains("owned by SriovNetwork.sriovnetwork.openshift.io/other/n"),
        "{err}"
    );

    let mut unowned = desired.clone();
    unowned.metadata.annotations = None;
    unowned.spec.config = "{}".into();
    assert_eq!(
        nad_action(&desired, Some(&unowned)),
        Ok(NadAction::Update),
        "no owner annotation → taken over"
    );
}

#[test]
fn example_networks_render() {
    for (file, ipam) in [
        ("network-vm.yaml", "\"ipam\": {}"),
        (
            "network-container-host-local.yaml",
            "\"ipam\": {\n        \"type\": \"host-local\",\n        \"subnet\": \"10.56.217.0/24\",\n        \"routes\": [\n            {\n                \"dst\": \"0.0.0.0/0\"\n            }\n        ],\n        \"gateway\": \"10.56.217.1\"\n    }",
        ),
    ] {
        let Ok(Object::Network(n)) = parse_object(&example(file)) else {
            panic!("{file}")
        };
        let nad = render_sriov_network_nad(&n, &ctx()).expect(file);
        assert!(
            nad.spec
                .config
                .ends_with(&format!("    \"logLevel\": \"info\",\n    {ipam}\n}}")),
            "{file}: {}",
            nad.spec.config
        );
        assert_eq!(nad.metadata.namespace.as_deref(), Some("my-app"));
        assert_eq!(nad.metadata.name.as_deref(), Some("sriov-net"));
        assert_eq!(
            nad.metadata.annotations.expect("ann")["k8s.v1.cni.cncf.io/resourceName"],
            "openshift.io/intelnics"
        );
    }
}

#[test]
fn our_sriov_cni_accepts_the_rendered_config() {
    // Multus hands spec.config (plus deviceID) to the sriov CNI plugin: sriov-rs' own plugin
    // must read every field the operator renders.
    let spec = SriovNetworkSpec {
        resource_name: "res".into(),
        vlan: 42,
        vlan_qos: 5,
        vlan_proto: "802.1ad".into(),
        spoof_chk: "off".into(),
        trust: "on".into(),
        link_state: "disable".into(),
        min_tx_rate: Some(10),
        max_tx_rate: Some(100),
        ipam: r#"{"type": "host-local", "subnet": "10.0.0.0/24"}"#.into(),
        log_level: "debug".into(),
        log_file: "/var/log/sriov.log".into(),
        ..Default::default()
    };
    let nad = render_sriov_network_nad(&net("cni", spec), &ctx()).expect("render");
    let conf =
        sriov_cni::config::NetConf::parse(nad.spec.config.as_bytes(), false).expect("sriov-cni parses it");
    assert_eq!(conf.name, "cni");
    assert_eq!(conf.cni_version, "1.0.0");
    assert_eq!(
        conf.request.vlan,
        Some((42, 5, sriov_cni::config::VlanProto::Dot1Ad))
    );
    assert_eq!(conf.request.spoofchk, Some(false));
    assert_eq!(conf.request.trust, Some(true));
    assert_eq!(
        conf.request.link_state,
        Some(sriov_cni::config::LinkState::Disable)
    );
    assert_eq!(conf.request.rate, Some((10, 100)));
    assert_eq!(conf.ipam_type, "host-local");
    assert_eq!(
        (conf.log_level.as_str(), conf.log_file.as_str()),
        ("debug", "/var/log/sriov.log")
    );
}
