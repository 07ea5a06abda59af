//! `sriovctl status` against a real kube-apiserver (v1.36.2, `sriov-testcluster`): a node state
//! with its status written through the status subresource, a Node whose status advertises a VF
//! pool (as the kubelet does after the device plugin registers), and pods bound to that node.
//! The binary reads them with the kubeconfig and reports sync status, PFs, the pool and who holds
//! it, as JSON and as a table.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sriov_api::SriovNetworkNodeState;
use sriov_testcluster::Cluster;

const NS: &str = "status-operator";
const NODE: &str = "status-worker";

#[tokio::test]
async fn status_reports_nodes_pfs_pools_and_the_pods_holding_them() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in [NS, "status-apps"] {
        let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        namespaces.create(&PostParams::default(), &obj).await.unwrap();
    }

    // The Node, and its status as the kubelet reports it once sriovdp registered 4 VFs.
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": NODE}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    nodes
        .patch_status(
            NODE,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "capacity": {"cpu": "2", "pods": "110", "openshift.io/lab_vfs": "4"},
                "allocatable": {"cpu": "2", "pods": "110", "openshift.io/lab_vfs": "4"}
            }})),
        )
        .await
        .unwrap();

    // The node state: spec from the operator, status from the daemon.
    let states: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), NS);
    let state: SriovNetworkNodeState = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": NODE, "annotations": {
            "sriovnetwork.openshift.io/desired-state": "Drain_Required",
            "sriovnetwork.openshift.io/current-state": "Draining"}},
        "spec": {"interfaces": [{"pciAddress": "0000:00:03.0", "name": "eth1", "numVfs": 4,
            "vfGroups": [{"resourceName": "lab_vfs", "deviceType": "netdevice", "vfRange": "0-3",
                          "policyName": "lab"}]}]}
    }))
    .unwrap();
    states.create(&PostParams::default(), &state).await.unwrap();
    states
        .patch_status(
            NODE,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "syncStatus": "InProgress",
                "lastSyncError": "",
                "interfaces": [{"name": "eth1", "pciAddress": "0000:00:03.0", "numVfs": 2,
                                "totalvfs": 7, "vendor": "8086", "deviceID": "10c9"}]
            }})),
        )
        .await
        .unwrap();

    // Two pods on the node holding 1 and 2 VFs, one elsewhere.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "status-apps");
    for (name, node, vfs) in [
        ("one", NODE, "1"),
        ("two", NODE, "2"),
        ("away", "other-node", "1"),
    ] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pause",
                "resources": {"requests": {"openshift.io/lab_vfs": vfs},
                              "limits": {"openshift.io/lab_vfs": vfs}}}]}
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }

    let run = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_sriovctl"))
            .args(["status", "--namespace", NS, "-o", format])
            .env("KUBECONFIG", cluster.kubeconfig())
            .env_remove("RESOURCE_PREFIX")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sriovctl status -o {format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let report: Value = serde_json::from_str(&run("json")).unwrap();
    let node = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == NODE)
        .unwrap();
    assert_eq!(node["syncStatus"], "InProgress");
    assert_eq!(node["desiredState"], "Drain_Required");
    assert_eq!(node["currentState"], "Draining");
    assert_eq!(
        node["pfs"],
        json!([{"name": "eth1", "pciAddress": "0000:00:03.0", "numVfs": 2, "totalVfs": 7, "desiredVfs": 4}])
    );
    assert_eq!(node["nodeMissing"], false);
    let pools: Vec<&Value> = report["pools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["node"] == NODE)
        .collect();
    assert_eq!(
        pools,
        [
            &json!({"node": NODE, "resource": "openshift.io/lab_vfs", "capacity": 4, "allocatable": 4,
                  "inUse": 3, "pods": [{"namespace": "status-apps", "name": "one", "count": 1},
                                       {"namespace": "status-apps", "name": "two", "count": 2}]})
        ]
    );

    let table = run("table");
    let node_line = table.lines().find(|l| l.starts_with(NODE)).unwrap();
    for cell in [
        "InProgress",
        "Drain_Required",
        "Draining",
        "eth1(0000:00:03.0) 2/7 (spec 4)",
    ] {
        assert!(
            node_line.contains(cell),
            "{cell:?} missing from {node_line:?}\n{table}"
        );
    }
    assert!(table.contains("status-apps/one(1),status-apps/two(2)"), "{table}");

    // No cluster: a clear error, non-zero exit.
    let out = Command::new(env!("CARGO_BIN_EXE_sriovctl"))
        .args(["status"])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sriovctl status:"), "{stderr}");
}
