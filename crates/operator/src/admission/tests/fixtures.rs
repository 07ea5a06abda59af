//! Builders for policies, nodes and node states.

use serde_json::{Value, json};

use crate::admission::objects::{Cluster, Node, NodeState, Policy, decode};
use crate::admission::{Settings, SupportedNics};
use sriov_host::InterfaceExt;

pub const NS: &str = "sriov-network-operator";

pub fn settings() -> Settings {
    Settings {
        namespace: NS.to_string(),
        dev_mode: false,
    }
}

/// A valid policy selecting `eth1` of nodes labelled `sriov=true`, with `spec` merged over it.
pub fn policy_json(name: &str, spec: Value) -> Value {
    let mut base = json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "resourceName": "intelnics",
            "nodeSelector": {"sriov": "true"},
            "numVfs": 4,
            "nicSelector": {"pfNames": ["eth1"]},
        }
    });
    if let (Some(b), Some(s)) = (base["spec"].as_object_mut(), spec.as_object()) {
        for (k, v) in s {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

pub fn policy(name: &str, spec: Value) -> Policy {
    decode("SriovNetworkNodePolicy", &policy_json(name, spec)).expect("fixture policy decodes")
}

pub fn node(name: &str) -> Node {
    Node {
        name: name.to_string(),
        labels: [("sriov".to_string(), "true".to_string())].into(),
        provider_id: String::new(),
    }
}

/// An 82576 (igb, supported) PF `eth1` with 8 VFs possible.
pub fn igb(name: &str, pci: &str) -> InterfaceExt {
    InterfaceExt {
        name: name.to_string(),
        pci_address: pci.to_string(),
        vendor: "8086".to_string(),
        device_id: "10c9".to_string(),
        total_vfs: 8,
        mtu: 1500,
        link_type: "ETH".to_string(),
        ..InterfaceExt::default()
    }
}

/// One node `w1` labelled `sriov=true` with an igb `eth1`, and `policies` already admitted.
pub fn cluster(policies: Vec<Policy>) -> Cluster {
    Cluster {
        nodes: vec![node("w1")],
        node_states: vec![NodeState {
            name: "w1".to_string(),
            interfaces: vec![igb("eth1", "0000:01:00.0")],
            sync_status: "Succeeded".to_string(),
        }],
        policies,
        operator_config: None,
        nics: SupportedNics::builtin(),
    }
}
