//! Parsing user manifests: the shared examples are accepted as upstream accepts them, CRD
//! defaults are applied, and every bad input is an error naming the object and the field.

use sriov_api::{ApiError, Object, parse_documents, parse_object};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/examples");

fn example(name: &str) -> String {
    let path = format!("{EXAMPLES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn harvester_policy_parses_with_its_pf_name_range() {
    let Object::NodePolicy(p) = parse_object(&example("policy-harvester.yaml")).expect("parse") else {
        panic!("not a policy")
    };
    assert_eq!(p.metadata.name.as_deref(), Some("sriov-policy-202207221730"));
    assert_eq!(p.spec.nic_selector.pf_names, vec!["eth1v#1-8".to_string()]);
    assert_eq!(p.spec.num_vfs, 8);
    assert_eq!(p.spec.mtu, 9000);
    assert_eq!(p.spec.priority, 99);
    assert_eq!(p.spec.device_type, "vfio-pci");
}

#[test]
fn vm_netdevice_policy_keeps_pci_address_and_hex_ids_as_strings() {
    let Object::NodePolicy(p) = parse_object(&example("policy-vm-netdevice.yaml")).expect("parse") else {
        panic!("not a policy")
    };
    assert_eq!(p.spec.nic_selector.root_devices, vec!["0000:65:00.0".to_string()]);
    assert_eq!(p.spec.nic_selector.device_id, "1593");
    assert_eq!(p.spec.nic_selector.vendor, "8086");
    assert_eq!(p.spec.priority, 0, "no webhook ran: priority absent is 0");
}

#[test]
fn networks_parse_and_get_the_crd_default_log_level() {
    for name in ["network-vm.yaml", "network-container-host-local.yaml"] {
        let Object::Network(n) = parse_object(&example(name)).expect(name) else {
            panic!("{name}")
        };
        assert_eq!(n.spec.log_level, "info", "{name}");
        assert_eq!(n.spec.network_namespace, "my-app", "{name}");
        assert!(n.spec.ipam.trim_start().starts_with('{'), "{name}");
    }
}

#[test]
fn policy_device_type_defaults_to_netdevice() {
    let yaml = "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodePolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  resourceName: r\n  nodeSelector: {}\n  numVfs: 1\n  nicSelector: {pfNames: [eth0]}\n";
    let Object::NodePolicy(p) = parse_object(yaml).expect("parse") else {
        panic!()
    };
    assert_eq!(p.spec.device_type, "netdevice");
}

#[test]
fn multi_document_stream_yields_every_object_in_order() {
    let text = [example("policy-harvester.yaml"), example("network-vm.yaml")].join("\n---\n");
    let objs = parse_documents(&text).expect("parse");
    let kinds: Vec<&str> = objs.iter().map(Object::kind).collect();
    assert_eq!(kinds, ["SriovNetworkNodePolicy", "SriovNetwork"]);
}

fn invalid_field(text: &str) -> (String, String, String) {
    match parse_object(text) {
        Err(ApiError::InvalidField {
            kind, name, field, ..
        }) => (kind, name, field),
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

const POLICY_HEAD: &str = "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodePolicy\nmetadata: {name: bad, namespace: ns}\n";

#[test]
fn negative_num_vfs_names_object_and_field() {
    let text = format!(
        "{POLICY_HEAD}spec: {{resourceName: r, nodeSelector: {{}}, numVfs: -1, nicSelector: {{pfNames: [eth0]}}}}"
    );
    let err = parse_object(&text).expect_err("negative numVfs");
    let msg = err.to_string();
    assert!(
        msg.contains("SriovNetworkNodePolicy/bad") && msg.contains("spec.numVfs"),
        "{msg}"
    );
    assert_eq!(
        invalid_field(&text),
        (
            "SriovNetworkNodePolicy".into(),
            "bad".into(),
            "spec.numVfs".into()
        )
    );
}

#[test]
fn wrong_field_type_names_object_and_field() {
    let text = format!(
        "{POLICY_HEAD}spec: {{resourceName: r, nodeSelector: {{}}, numVfs: eight, nicSelector: {{pfNames: [eth0]}}}}"
    );
    assert_eq!(invalid_field(&text).2, "spec.numVfs");
    let text = format!(
        "{POLICY_HEAD}spec: {{resourceName: r, nodeSelector: {{}}, numVfs: 1, nicSelector: {{pfNames: eth0}}}}"
    );
    assert_eq!(invalid_field(&text).2, "spec.nicSelector.pfNames");
}

#[test]
fn enum_and_range_violations_name_the_field() {
    let text = format!(
        "{POLICY_HEAD}spec: {{resourceName: r, nodeSelector: {{}}, numVfs: 1, deviceType: vfio, nicSelector: {{pfNames: [eth0]}}}}"
    );
    assert_eq!(invalid_field(&text).2, "spec.deviceType");
    let text = format!(
        "{POLICY_HEAD}spec: {{resourceName: r, nodeSelector: {{}}, numVfs: 1, priority: 100, nicSelector: {{pfNames: [eth0]}}}}"
    );
    assert_eq!(invalid_field(&text).2, "spec.priority");
}

#[test]
fn missing_required_field_is_named() {
    let text = format!(
        "{POLICY_HEAD}spec: {{resourceName: r, nodeSelector: {{}}, nicSelector: {{pfNames: [eth0]}}}}"
    );
    assert_eq!(invalid_field(&text).2, "spec.numVfs");
}

#[test]
fn wrong_api_version_and_unknown_kind_are_named() {
    let text = example("policy-harvester.yaml")
        .replace("sriovnetwork.openshift.io/v1", "sriovnetwork.openshift.io/v2");
    match parse_object(&text) {
        Err(e @ ApiError::WrongApiVersion { .. }) => {
            assert!(
                e.to_string()
                    .contains("SriovNetworkNodePolicy/sriov-policy-202207221730"),
                "{e}"
            );
            assert!(e.to_string().contains("apiVersion"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let text =
        example("policy-harvester.yaml").replace("kind: SriovNetworkNodePolicy", "kind: SriovNodePolicy");
    assert!(matches!(parse_object(&text), Err(ApiError::UnknownKind { .. })));
}

#[test]
fn malformed_yaml_is_a_syntax_error_not_a_panic() {
    for text in ["spec: [unclosed", "a: b: c", "\t- x\n: :", "{\"apiVersion\": 1,"] {
        assert!(
            matches!(
                parse_documents(text),
                Err(ApiError::Syntax { .. } | ApiError::NotAnObject { .. })
            ),
            "{text}"
        );
    }
    assert!(matches!(
        parse_object("- 1\n- 2"),
        Err(ApiError::NotAnObject { .. })
    ));
}

#[test]
fn null_optional_fields_are_pruned_like_the_api_server_does() {
    let text = "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetwork\nmetadata: {name: net1}\nspec:\n  resourceName: r\n  ipam:\n  vlan:\n";
    let Object::Network(n) = parse_object(text).expect("parse") else {
        panic!()
    };
    assert_eq!(n.spec.ipam, "");
    assert_eq!(n.spec.vlan, 0);
}

#[test]
fn unknown_fields_are_refused_like_kubectl_strict_validation() {
    let text = format!(
        "{POLICY_HEAD}spec: {{resourceName: r, nodeSelector: {{}}, numVfs: 1, nicSelector: {{pfNames: [eth0], bogus: 1}}}}"
    );
    assert_eq!(invalid_field(&text).2, "spec.nicSelector.bogus");
}
