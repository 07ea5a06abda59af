//! `sriovctl status [--namespace NS] [--resource-prefix P] [-o table|json]`: the cluster's SR-IOV
//! state at a glance. Per node: the config daemon's sync status, the drain handshake, each PF
//! with its VFs; per device-plugin pool (resource): what the kubelet advertises and which pods
//! hold how many of it.
//!
//! Three LISTs (node states, Nodes, non-terminated Pods) and a pure [`cluster_status`]: the
//! report is computed from plain objects so it is tested without a cluster. Which pod holds
//! *which* VF is only known to each node's kubelet (`sriovctl pod-resources` there); the API
//! knows how many each pod requested, and that is what this shows.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use serde::Serialize;
use sriov_api::{SriovNetworkNodeState, keys};
use sriov_operator::controller::drain_plan::condition;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The operator's namespace, where the node states live (as the operator reads it).
    #[arg(long, env = "NAMESPACE", default_value = "sriov-network-operator")]
    namespace: String,
    /// The device-plugin resource prefix (as the operator reads it): a Node resource with this
    /// prefix counts as an SR-IOV pool even before a node state names it.
    #[arg(long, env = "RESOURCE_PREFIX", default_value = "openshift.io")]
    resource_prefix: String,
    #[arg(long = "output", short = 'o', value_enum, default_value = "table")]
    output: Format,
}

/// The whole report (what `-o json` prints).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub nodes: Vec<NodeStatus>,
    pub pools: Vec<PoolStatus>,
}

/// One node state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub node: String,
    pub sync_status: String,
    /// The drain handshake: the daemon's `desired-state` and the controller's `current-state`.
    pub desired_state: String,
    pub current_state: String,
    pub pfs: Vec<PfStatus>,
    pub last_sync_error: String,
    /// The drain controller's `DrainDegraded` message while it is True (an eviction refused,
    /// usually by a PodDisruptionBudget).
    pub drain_problem: String,
    /// Set when the Node object is gone but its node state remains (stale).
    pub node_missing: bool,
}

/// One PF as the daemon reported it, with what the spec asks of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PfStatus {
    pub name: String,
    pub pci_address: String,
    pub num_vfs: i32,
    pub total_vfs: i32,
    /// `spec.interfaces[].numVfs` for this PF, when the spec has it.
    pub desired_vfs: Option<i32>,
}

/// One device-plugin pool on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    pub node: String,
    pub resource: String,
    pub capacity: i64,
    pub allocatable: i64,
    pub in_use: i64,
    pub pods: Vec<PodHold>,
}

/// A pod holding `count` devices of a pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PodHold {
    pub namespace: String,
    pub name: String,
    pub count: i64,
}

/// The report from plain objects. A Node resource is an SR-IOV pool when its name is
/// `<prefix>/<resourceName>` for a `resourceName` of that node's node state spec, or when its
/// prefix is `resource_prefix`.
pub fn cluster_status(
    states: &[SriovNetworkNodeState],
    nodes: &[Node],
    pods: &[Pod],
    resource_prefix: &str,
) -> ClusterStatus {
    let node_names: BTreeSet<&str> = nodes.iter().filter_map(|n| n.metadata.name.as_deref()).collect();
    let mut out = ClusterStatus::default();
    let mut spec_resources: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for state in states {
        let name = state.metadata.name.as_deref().unwrap_or_default();
        let annotation = |k: &str| {
            state
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(k))
                .cloned()
                .unwrap_or_default()
        };
        let status = state.status.clone().unwrap_or_default();
        let mut pfs: Vec<PfStatus> = status
            .interfaces
            .iter()
            .map(|i| PfStatus {
                name: i.name.clone(),
                pci_address: i.pci_address.clone(),
                num_vfs: i.num_vfs,
                total_vfs: i.total_vfs,
                desired_vfs: state
                    .spec
                    .interfaces
                    .iter()
                    .find(|s| s.pci_address == i.pci_address)
                    .map(|s| s.num_vfs),
            })
            .collect();
        pfs.sort_by(|a, b| a.pci_address.cmp(&b.pci_address));
        let resources = spec_resources.entry(name).or_default();
        for iface in &state.spec.interfaces {
            for group in &iface.vf_groups {
                resources.insert(group.resource_name.as_str());
            }
        }
        out.nodes.push(NodeStatus {
            node: name.to_string(),
            sync_status: status.sync_status.clone(),
            desired_state: annotation(keys::DESIRED_STATE),
            current_state: annotation(keys::CURRENT_STATE),
            pfs,
            last_sync_error: status.last_sync_error.clone(),
            drain_problem: status
                .conditions
                .iter()
                .find(|c| c.type_ == condition::DRAIN_DEGRADED && c.status == "True")
                .map(|c| c.message.clone())
                .unwrap_or_default(),
            node_missing: !node_names.contains(name),
        });
    }
    out.nodes.sort_by(|a, b| a.node.cmp(&b.node));

    let prefix = format!("{}/", resource_prefix.trim_end_matches('/'));
    for node in nodes {
        let Some(name) = node.metadata.name.as_deref() else {
            continue;
        };
        let status = node.status.clone().unwrap_or_default();
        let capacity = status.capacity.unwrap_or_default();
        let allocatable = status.allocatable.unwrap_or_default();
        let known = spec_resources.get(name);
        let is_pool = |r: &str| {
            r.starts_with(&prefix)
                || r.split_once('/')
                    .is_some_and(|(_, short)| known.is_some_and(|k| k.contains(short)))
        };
        let resources: BTreeSet<&String> = capacity
            .keys()
            .chain(allocatable.keys())
            .filter(|r| is_pool(r))
            .collect();
        for resource in resources {
            let mut holds: Vec<PodHold> = pods
                .iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name))
                .filter_map(|p| {
                    let count = pod_request(p, resource);
                    (count > 0).then(|| PodHold {
                        namespace: p.metadata.namespace.clone().unwrap_or_default(),
                        name: p.metadata.name.clone().unwrap_or_default(),
                        count,
                    })
                })
                .collect();
            holds.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            out.pools.push(PoolStatus {
                node: name.to_string(),
                resource: resource.clone(),
                capacity: quantity(capacity.get(resource)),
                allocatable: quantity(allocatable.get(resource)),
                in_use: holds.iter().map(|h| h.count).sum(),
                pods: holds,
            });
        }
    }
    out
}

/// Devices of `resource` a pod holds: the kubelet allocates per container (requests; an
/// extended resource's limit equals its request, and a limit alone implies the request), plus
/// the largest init container's, as the scheduler counts them. A pod that has finished holds
/// nothing.
fn pod_request(pod: &Pod, resource: &str) -> i64 {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return 0;
    }
    let Some(spec) = &pod.spec else { return 0 };
    let of = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources
            .as_ref()
            .and_then(|r| {
                r.requests
                    .as_ref()
                    .and_then(|q| q.get(resource))
                    .or_else(|| r.limits.as_ref().and_then(|q| q.get(resource)))
            })
            .map(|q| quantity(Some(q)))
            .unwrap_or(0)
    };
    let regular: i64 = spec.containers.iter().map(of).sum();
    let init = spec.init_containers.iter().flatten().map(of).max().unwrap_or(0);
    regular.max(init)
}

/// A device count quantity ("4"); anything else (a decimal or suffixed value is not a device
/// count) reads as 0 rather than a guess.
fn quantity(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> i64 {
    q.and_then(|q| q.0.parse().ok()).unwrap_or(0)
}

pub fn run(args: &StatusArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sriovctl status: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = match rt.block_on(fetch(args)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sriovctl status: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match args.output {
        Format::Json => match serde_json::to_string_pretty(&status) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("sriovctl status: {e}");
                return ExitCode::FAILURE;
            }
        },
        Format::Table => print!("{}", table(&status)),
    }
    ExitCode::SUCCESS
}

async fn fetch(args: &StatusArgs) -> anyhow::Result<ClusterStatus> {
    use anyhow::Context as _;
    let client = kube::Client::try_default()
        .await
        .context("no cluster: set KUBECONFIG or run in a pod")?;
    let states: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), &args.namespace);
    let states = states
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing SriovNetworkNodeStates in namespace {:?}", args.namespace))?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .context("listing Nodes")?;
    let pods = Api::<Pod>::all(client)
        .list(&ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed"))
        .await
        .context("listing Pods")?;
    Ok(cluster_status(
        &states.items,
        &nodes.items,
        &pods.items,
        &args.resource_prefix,
    ))
}

/// Two fixed-width tables: nodes (with their PFs) and pools.
fn table(status: &ClusterStatus) -> String {
    let nodes: Vec<Vec<String>> = status
        .nodes
        .iter()
        .map(|n| {
            let pfs = n
                .pfs
                .iter()
                .map(|p| {
                    let desired = p.desired_vfs.map(|d| format!(" (spec {d})")).unwrap_or_default();
                    format!("{} {}/{}{desired}", display_pf(p), p.num_vfs, p.total_vfs)
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut sync = n.sync_status.clone();
            if n.node_missing {
                sync.push_str(" (Node gone)");
            }
            let problems: Vec<&str> = [n.last_sync_error.as_str(), n.drain_problem.as_str()]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
            vec![
                n.node.clone(),
                or_dash(&sync),
                or_dash(&n.desired_state),
                or_dash(&n.current_state),
                or_dash(&pfs),
                problems.join("; "),
            ]
        })
        .collect();
    let pools: Vec<Vec<String>> = status
        .pools
        .iter()
        .map(|p| {
            let pods = p
                .pods
                .iter()
                .map(|h| format!("{}/{}({})", h.namespace, h.name, h.count))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                p.node.clone(),
                p.resource.clone(),
                p.capacity.to_string(),
                p.allocatable.to_string(),
                p.in_use.to_string(),
                or_dash(&pods),
            ]
        })
        .collect();
    let mut out = grid(
        &[
            "NODE",
            "SYNC",
            "DESIRED",
            "CURRENT",
            "PFS (VFS/TOTAL)",
            "PROBLEMS",
        ],
        &nodes,
    );
    out.push('\n');
    out.push_str(&grid(
        &["NODE", "RESOURCE", "CAPACITY", "ALLOCATABLE", "IN USE", "PODS"],
        &pools,
    ));
    out
}

fn display_pf(p: &PfStatus) -> String {
    if p.name.is_empty() {
        p.pci_address.clone()
    } else {
        format!("{}({})", p.name, p.pci_address)
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

/// Columns padded to their widest cell, three spaces apart; the last column is not padded.
fn grid(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, (w, v)) in width.iter().zip(cells).enumerate() {
            if i == last {
                s.push_str(v);
            } else {
                s.push_str(&format!("{v:<w$}   "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn state() -> SriovNetworkNodeState {
        serde_json::from_value(json!({
            "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
            "metadata": {"name": "worker-0", "namespace": "sriov-network-operator",
                "annotations": {"sriovnetwork.openshift.io/desired-state": "Idle",
                                "sriovnetwork.openshift.io/current-state": "Idle"}},
            "spec": {"interfaces": [{"pciAddress": "0000:3b:00.0", "name": "ens1f0", "numVfs": 8,
                "vfGroups": [{"resourceName": "intelnics", "deviceType": "netdevice", "vfRange": "0-7",
                              "policyName": "p"}]}]},
            "status": {"syncStatus": "Succeeded", "interfaces": [
                {"name": "ens1f1", "pciAddress": "0000:3b:00.1", "numVfs": 0, "totalvfs": 64},
                {"name": "ens1f0", "pciAddress": "0000:3b:00.0", "numVfs": 8, "totalvfs": 64}]}
        }))
        .unwrap()
    }

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"capacity": {"cpu": "2", "example.com/intelnics": "8", "openshift.io/other": "2"},
                       "allocatable": {"cpu": "2", "example.com/intelnics": "7", "openshift.io/other": "2"}}
        }))
        .unwrap()
    }

    fn pod(ns: &str, name: &str, node: &str, vfs: &str, phase: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": node, "containers": [
                {"name": "a", "resources": {"requests": {"example.com/intelnics": vfs},
                                            "limits": {"example.com/intelnics": vfs}}},
                {"name": "sidecar"}]},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    #[test]
    fn pools_come_from_spec_resource_names_and_the_prefix_and_count_running_pods() {
        let pods = [
            pod("default", "a", "worker-0", "2", "Running"),
            pod("team", "b", "worker-0", "1", "Pending"),
            pod("default", "done", "worker-0", "1", "Succeeded"),
            pod("default", "elsewhere", "worker-1", "1", "Running"),
        ];
        let status = cluster_status(&[state()], &[node("worker-0")], &pods, "openshift.io");
        assert_eq!(status.nodes.len(), 1);
        let n = &status.nodes[0];
        assert_eq!(
            (
                n.sync_status.as_str(),
                n.desired_state.as_str(),
                n.current_state.as_str()
            ),
            ("Succeeded", "Idle", "Idle")
        );
        assert!(!n.node_missing);
        assert_eq!(
            n.pfs.iter().map(|p| p.pci_address.as_str()).collect::<Vec<_>>(),
            ["0000:3b:00.0", "0000:3b:00.1"]
        );
        assert_eq!(n.pfs[0].desired_vfs, Some(8));
        assert_eq!(n.pfs[1].desired_vfs, None);
        let resources: Vec<&str> = status.pools.iter().map(|p| p.resource.as_str()).collect();
        assert_eq!(
            resources,
            ["example.com/intelnics", "openshift.io/other"],
            "cpu is not a pool"
        );
        let vfs = &status.pools[0];
        assert_eq!((vfs.capacity, vfs.allocatable, vfs.in_use), (8, 7, 3));
        assert_eq!(
            vfs.pods,
            vec![
                PodHold {
                    namespace: "default".into(),
                    name: "a".into(),
                    count: 2
                },
                PodHold {
                    namespace: "team".into(),
                    name: "b".into(),
                    count: 1
                },
            ]
        );
    }

    #[test]
    fn a_node_state_without_its_node_is_flagged() {
        let status = cluster_status(&[state()], &[], &[], "openshift.io");
        assert!(status.nodes[0].node_missing);
        assert!(status.pools.is_empty());
        assert!(
            table(&status).contains("Succeeded (Node gone)"),
            "{}",
            table(&status)
        );
    }

    #[test]
    fn a_blocked_drain_shows_as_a_problem() {
        let mut s = state();
        s.status.as_mut().unwrap().conditions = vec![
            serde_json::from_value(json!({
                "type": "DrainDegraded", "status": "True", "reason": "DrainFailed",
                "message": "evicting default/db-0: blocked by PodDisruptionBudget keep-one",
                "lastTransitionTime": "2026-12-06T00:00:00Z"
            }))
            .unwrap(),
        ];
        let status = cluster_status(&[s], &[node("worker-0")], &[], "openshift.io");
        assert_eq!(
            status.nodes[0].drain_problem,
            "evicting default/db-0: blocked by PodDisruptionBudget keep-one"
        );
        assert!(table(&status).contains("blocked by PodDisruptionBudget keep-one"));
    }

    #[test]
    fn init_containers_count_as_the_scheduler_counts_them() {
        let mut p = pod("default", "a", "worker-0", "1", "Running");
        let spec = p.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![
            serde_json::from_value(json!({
                "name": "init", "resources": {"limits": {"example.com/intelnics": "3"}}
            }))
            .unwrap(),
        ]);
        assert_eq!(pod_request(&p, "example.com/intelnics"), 3);
    }

    #[test]
    fn table_lists_nodes_then_pools() {
        let status = cluster_status(
            &[state()],
            &[node("worker-0")],
            &[pod("default", "a", "worker-0", "2", "Running")],
            "openshift.io",
        );
        let t = table(&status);
        let expected = "\
NODE       SYNC        DESIRED   CURRENT   PFS (VFS/TOTAL)                                                 PROBLEMS
worker-0   Succeeded   Idle      Idle      ens1f0(0000:3b:00.0) 8/64 (spec 8), ens1f1(0000:3b:00.1) 0/64

NODE       RESOURCE                CAPACITY   ALLOCATABLE   IN USE   PODS
worker-0   example.com/intelnics   8          7             2        default/a(2)
worker-0   openshift.io/other      2          2             0        -
";
        assert_eq!(t, expected);
    }
}
