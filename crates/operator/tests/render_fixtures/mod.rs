//! Builders for render tests: policies, nodes and reported PFs with only the fields a test
//! cares about, plus the shared example manifests.
#![allow(dead_code, clippy::result_large_err)]

use std::collections::BTreeMap;

use sriov_api::{NicSelector, NodePolicySpec, Object, SriovNetworkNodePolicy, parse_documents};
use sriov_host::InterfaceExt;
use sriov_operator::admission::nics::SupportedNics;
use sriov_operator::render::{ClusterInput, ClusterRender, NodeInfo, RenderError, render_cluster};

pub const NS: &str = "sriov-network-operator";

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A worker node as upstream's default selector wants it, plus extra labels.
pub fn worker(name: &str, extra: &[(&str, &str)]) -> NodeInfo {
    let mut l = labels(&[
        ("node-role.kubernetes.io/worker", ""),
        ("kubernetes.io/os", "linux"),
    ]);
    l.extend(labels(extra));
    NodeInfo {
        name: name.to_string(),
        labels: l,
    }
}

pub fn pf(pci: &str, name: &str, total_vfs: i32) -> InterfaceExt {
    InterfaceExt {
        pci_address: pci.to_string(),
        name: name.to_string(),
        vendor: "8086".to_string(),
        device_id: "1593".to_string(),
        total_vfs,
        mtu: 1500,
        link_type: "ETH".to_string(),
        ..Default::default()
    }
}

pub fn pf_names(names: &[&str]) -> NicSelector {
    NicSelector {
        pf_names: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A policy in the operator namespace selecting every node (empty nodeSelector).
pub fn policy(
    name: &str,
    priority: i32,
    resource: &str,
    num_vfs: i32,
    nic: NicSelector,
) -> SriovNetworkNodePolicy {
    let mut p = SriovNetworkNodePolicy::new(
        name,
        NodePolicySpec {
            resource_name: resource.to_string(),
            priority,
            num_vfs,
            nic_selector: nic,
            device_type: "netdevice".to_string(),
            ..Default::default()
        },
    );
    p.metadata.namespace = Some(NS.to_string());
    p
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub nodes: Vec<NodeInfo>,
    pub interfaces: BTreeMap<String, Vec<InterfaceExt>>,
    pub policies: Vec<SriovNetworkNodePolicy>,
    pub pools: Vec<sriov_api::SriovNetworkPoolConfig>,
    pub config: Option<sriov_api::OperatorConfigSpec>,
    pub nics: SupportedNics,
}

impl Cluster {
    /// One worker `node1` with the given PFs.
    pub fn one_node(pfs: Vec<InterfaceExt>) -> Cluster {
        Cluster {
            nodes: vec![worker("node1", &[])],
            interfaces: BTreeMap::from([("node1".to_string(), pfs)]),
            policies: Vec::new(),
            pools: Vec::new(),
            config: None,
            nics: SupportedNics::builtin(),
        }
    }

    pub fn with(mut self, p: SriovNetworkNodePolicy) -> Cluster {
        self.policies.push(p);
        self
    }

    pub fn try_render(&self) -> Result<ClusterRender, RenderError> {
        render_cluster(&ClusterInput {
            namespace: NS,
            operator_config: self.config.as_ref(),
            nodes: &self.nodes,
            interfaces: &self.interfaces,
            policies: &self.policies,
            pools: &self.pools,
            supported_nics: &self.nics,
        })
    }

    pub fn render(&self) -> ClusterRender {
        self.try_render().expect("render")
    }
}

pub fn example(name: &str) -> String {
    let path = format!("{}/../../../shared/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .or_else(|_| std::fs::read_to_string(format!("/work/shared/examples/{name}")))
        .unwrap_or_else(|e| panic!("read example {name}: {e}"))
}

pub fn example_policy(name: &str) -> SriovNetworkNodePolicy {
    match parse_documents(&example(name)).expect("parse example").remove(0) {
        Object::NodePolicy(p) => *p,
        other => panic!("{name} is a {}", other.kind()),
    }
}
