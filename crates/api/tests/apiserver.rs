//! The generated CRDs on a real kube-apiserver (v1.36.2, `sriov-testcluster`): every CRD is
//! accepted and becomes Established, kubectl finds the kinds by their short names and prints
//! our printer columns, and the `metav1.Condition` validation on `status.conditions` makes the
//! server refuse a bad condition with 422 naming each bad field.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sriov_api::{SriovNetwork, SriovNetworkNodePolicy, SriovNetworkNodeState};
use sriov_testcluster::Cluster;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn all_crds() -> Vec<CustomResourceDefinition> {
    let mut crds = sriov_api::crd::sriov_crds();
    crds.push(sriov_api::crd::nad_crd());
    crds
}

/// The shared cluster with every CRD installed (Established) and a fresh namespace.
async fn cluster_with_crds(namespace: &str) -> Option<(&'static Cluster, kube::Client)> {
    let cluster = Cluster::shared()?;
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &all_crds())
        .await
        .unwrap();
    let ns: Api<Namespace> = Api::all(client.clone());
    let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    ns.create(&PostParams::default(), &obj).await.unwrap();
    Some((cluster, client))
}

fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join(".tools/bin/kubectl"));
    if path.is_file() {
        return Some(path);
    }
    sriov_test_support::prerequisite(
        false,
        &format!(
            "kubectl at {} (run scripts/deps/20-kubectl.sh or set KUBECTL)",
            path.display()
        ),
    );
    None
}

fn run_kubectl(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn every_crd_is_established_with_list_kind_and_short_names() {
    let Some((_, client)) = cluster_with_crds("crd-established").await else {
        return;
    };
    let api: Api<CustomResourceDefinition> = Api::all(client);
    for crd in all_crds() {
        let name = crd.metadata.name.clone().unwrap();
        let served = api.get(&name).await.unwrap();
        let conditions = served.status.unwrap().conditions.unwrap();
        for wanted in ["Established", "NamesAccepted"] {
            assert!(
                conditions.iter().any(|c| c.type_ == wanted && c.status == "True"),
                "{name}: {wanted} in {conditions:?}"
            );
        }
        let names = &served.spec.names;
        assert_eq!(
            names.list_kind.as_deref(),
            Some(format!("{}List", names.kind).as_str()),
            "{name}"
        );
    }
}

/// The checked-in CRDs, created by the real kubectl on a real apiserver that has none of them yet
/// (server-side dry run; `helm install` creates them the same way), draw no warning: the
/// apiserver warns about any schema `format` it does not know, which schemars' `uint32` was
/// (README, the newcomer's `helm install`). An apiserver of its own: on the shared one the other
/// tests have installed the CRDs already.
#[tokio::test]
async fn the_apiserver_accepts_the_crds_without_a_warning() {
    let Some(kubectl) = kubectl() else {
        return;
    };
    let Some(cluster) = sriov_testcluster::require(Cluster::start()) else {
        return;
    };
    let crds = Path::new(REPO).join("deploy/crds");
    let out = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["create", "--dry-run=server", "-f"])
        .arg(&crds)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("(server dry run)").count(),
        all_crds().len(),
        "{stdout}"
    );
    assert!(
        !stderr.contains("Warning"),
        "kubectl printed a warning:\n{stderr}"
    );
}

#[tokio::test]
async fn kubectl_finds_every_kind_by_its_short_name() {
    let Some((cluster, client)) = cluster_with_crds("crd-short").await else {
        return;
    };
    let Some(kubectl) = kubectl() else {
        return;
    };
    let policies: Api<SriovNetworkNodePolicy> = Api::namespaced(client, "crd-short");
    let policy: SriovNetworkNodePolicy = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": "policy-a"},
        "spec": {"resourceName": "intelnics", "numVfs": 6, "priority": 10, "nodeSelector": {},
                 "nicSelector": {"pfNames": ["ens1f0"]}, "deviceType": "netdevice"}
    }))
    .unwrap();
    policies.create(&PostParams::default(), &policy).await.unwrap();
    let table = run_kubectl(
        &kubectl,
        cluster.kubeconfig(),
        &["get", "sriovnnp", "-n", "crd-short"],
    );
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "RESOURCE", "PRIORITY", "VFS", "DEVICE", "TYPE", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..5],
        ["policy-a", "intelnics", "10", "6", "netdevice"],
        "{table}"
    );
    // Every short name resolves (kubectl exits 0 with an empty list otherwise).
    for short in [
        "sriovnnp",
        "sriovnns",
        "sriovnet",
        "sriovibnet",
        "ovsnet",
        "net-attach-def",
    ] {
        run_kubectl(&kubectl, cluster.kubeconfig(), &["get", short, "-n", "crd-short"]);
    }
}

#[tokio::test]
async fn node_state_columns_show_sync_status_and_vf_counts() {
    let Some((cluster, client)) = cluster_with_crds("crd-columns").await else {
        return;
    };
    let Some(kubectl) = kubectl() else {
        return;
    };
    let states: Api<SriovNetworkNodeState> = Api::namespaced(client, "crd-columns");
    let state: SriovNetworkNodeState = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": "worker-1", "annotations": {
            "sriovnetwork.openshift.io/desired-state": "Idle",
            "sriovnetwork.openshift.io/current-state": "Idle"}},
        "spec": {"interfaces": [
            {"pciAddress": "0000:01:00.1", "numVfs": 8, "vfGroups": [
                {"resourceName": "intelnics", "deviceType": "netdevice", "vfRange": "0-5", "policyName": "p"}]},
            {"pciAddress": "0000:01:00.0", "numVfs": 4}]}
    }))
    .unwrap();
    states.create(&PostParams::default(), &state).await.unwrap();
    // The first PF (in spec and status) is mid-change: 8 VFs asked, 2 there.
    let status = json!({"status": {"syncStatus": "Succeeded", "interfaces": [
        {"pciAddress": "0000:01:00.1", "name": "ens1f0", "numVfs": 2, "totalvfs": 64},
        {"pciAddress": "0000:01:00.0", "name": "ens1f1", "numVfs": 4, "totalvfs": 64}]}});
    states
        .patch_status("worker-1", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let table = run_kubectl(
        &kubectl,
        cluster.kubeconfig(),
        &["get", "sriovnns", "-n", "crd-columns", "-o", "wide"],
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "NAME",
            "SYNC STATUS",
            "DESIRED SYNC STATE",
            "CURRENT SYNC STATE",
            "PF",
            "VFS",
            "DESIRED VFS",
            "VFS ALLOCATED",
            "LAST ERROR",
            "AGE"
        ],
        "{table}"
    );
    // VFs Allocated: the VF indexes the first PF's spec gives its first pool.
    assert_eq!(
        rows[1][..8],
        ["worker-1", "Succeeded", "Idle", "Idle", "ens1f0", "2", "8", "0-5"],
        "{table}"
    );
}

#[tokio::test]
async fn a_bad_condition_is_refused_with_422_naming_each_field() {
    let Some((_, client)) = cluster_with_crds("crd-conditions").await else {
        return;
    };
    let networks: Api<SriovNetwork> = Api::namespaced(client, "crd-conditions");
    let net: SriovNetwork = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetwork",
        "metadata": {"name": "net-a"}, "spec": {"resourceName": "intelnics"}
    }))
    .unwrap();
    networks.create(&PostParams::default(), &net).await.unwrap();
    let good = json!({"type": "Ready", "status": "True", "reason": "NetworkReady",
        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1});
    let patch = json!({"status": {"conditions": [good]}});
    networks
        .patch_status("net-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("a well-formed condition is accepted");

    let bad = json!({"type": "not a type!", "status": "Maybe", "reason": "no spaces allowed",
        "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": -1});
    let patch = json!({"status": {"conditions": [bad]}});
    let err = networks
        .patch_status("net-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("a malformed condition is refused");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(status.code, 422, "{status:?}");
    for field in [
        "status.conditions[0].type",
        "status.conditions[0].status",
        "status.conditions[0].reason",
        "status.conditions[0].observedGeneration",
    ] {
        assert!(status.message.contains(field), "{field} in {}", status.message);
    }

    let missing = json!({"type": "Ready", "status": "True"});
    let patch = json!({"status": {"conditions": [missing]}});
    let err = networks
        .patch_status("net-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("a condition without reason is refused");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error, got {err:?}");
    };
    assert_eq!(status.code, 422, "{status:?}");
    for field in [
        "status.conditions[0].reason",
        "status.conditions[0].lastTransitionTime",
    ] {
        assert!(status.message.contains(field), "{field} in {}", status.message);
    }
}
