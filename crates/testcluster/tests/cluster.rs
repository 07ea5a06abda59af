//! The harness itself against the real binaries: the API server answers with RBAC-admin
//! credentials, CRDs install and become Established, a kubelet registers Ready, runs a pod on
//! the fake runtime, comes back after a restart, and teardown (drop, and SIGKILL of the test
//! process) leaves no process, mount or directory behind.
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use sriov_testcluster::{Cluster, require};

#[tokio::test]
async fn apiserver_answers_with_admin_rights() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let client = cluster.client().unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, sriov_testcluster::K8S_VERSION);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");
    assert!(names.contains(&"kube-system".to_string()), "{names:?}");
    // RBAC is on: a client cert outside system:masters is refused (403), so the admin's access
    // above is the CA-signed O=system:masters cert at work, not an open server.
    let dir = tempfile::tempdir().unwrap();
    let nobody = dir.path().join("nobody.kubeconfig");
    cluster.kubeconfig_for("nobody", "nobodies", &nobody).unwrap();
    let kc = kube::config::Kubeconfig::read_from(&nobody).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let denied: Api<Namespace> = Api::all(kube::Client::try_from(config).unwrap());
    match denied.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("expected 403 for an unprivileged user, got {other:?}"),
    }
    let times = cluster.startup_times();
    eprintln!("apiserver ready in {:?}", times.apiserver_ready);
    assert!(times.apiserver_ready > Duration::ZERO);
}

#[tokio::test]
async fn sriov_crds_become_established_and_serve_objects() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let client = cluster.client().unwrap();
    let mut crds = sriov_api::crd::sriov_crds();
    crds.push(sriov_api::crd::nad_crd());
    sriov_testcluster::crd::install(&client, &crds).await.unwrap();
    let ns: Api<Namespace> = Api::all(client.clone());
    let _ = ns
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "tc-crds"}})).unwrap(),
        )
        .await;
    let policies: Api<sriov_api::SriovNetworkNodePolicy> = Api::namespaced(client, "tc-crds");
    let policy: sriov_api::SriovNetworkNodePolicy = serde_json::from_value(serde_json::json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": "p1"},
        "spec": {"resourceName": "intelnics", "numVfs": 4, "nodeSelector": {},
                 "nicSelector": {"pfNames": ["ens1f0"]}}
    }))
    .unwrap();
    policies.create(&PostParams::default(), &policy).await.unwrap();
    let back = policies.get("p1").await.unwrap();
    assert_eq!(back.spec.num_vfs, 4);
    assert_eq!(back.spec.resource_name, "intelnics");
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by init) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| !s.lines().any(|l| l.starts_with("State:") && l.contains('Z')))
}

fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .map(String::from)
        .collect()
}

/// Waits until no pid lives, nothing is mounted under `dir` and `dir` is gone.
fn assert_torn_down(pids: &[u32], dir: &Path, limit: Duration) {
    let started = Instant::now();
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        let mounts = mounts_under(dir);
        if left.is_empty() && mounts.is_empty() && !dir.exists() {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "after {limit:?}: processes {left:?}, mounts {mounts:?}, {} exists: {}",
            dir.display(),
            dir.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn kubelet_registers_ready_runs_a_pod_and_survives_restart() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let Some(mut node) = require(cluster.start_node("tc-node-1")) else {
        return;
    };
    eprintln!("node Ready in {:?}", node.ready_after());
    let client = cluster.client().unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    let obj = nodes.get("tc-node-1").await.unwrap();
    let ready = obj.status.unwrap().conditions.unwrap();
    assert!(ready.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let registration = node.device_plugin_dir().join("kubelet.sock");
    assert!(registration.exists(), "{}", registration.display());
    assert!(node.pod_resources_socket().exists());
    assert!(node.plugins_registry_dir().is_dir());
    // The kubelet runs in its own mount namespace, where /var/lib/kubelet/device-plugins is
    // this node's directory; its self-bind-mount of the root dir stays in there too.
    let kubelet_mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", node.pids()[0])).unwrap();
    assert!(
        kubelet_mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/var/lib/kubelet/device-plugins")),
        "{kubelet_mounts}"
    );
    assert_eq!(mounts_under(node.root_dir()), Vec::<String>::new());

    // A pod bound to the node reaches Running on the fake runtime.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tc-pod"},
        "spec": {"nodeName": "tc-node-1", "containers": [{"name": "c", "image": "example.invalid/pause:1"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_phase(&pods, "tc-pod", "Running").await;

    let before = node.pids();
    node.restart().unwrap();
    let after = node.pids();
    assert_ne!(before[0], after[0], "a new kubelet process");
    assert!(!alive(before[0]), "the old kubelet is gone");
    assert!(registration.exists(), "registration socket re-created");
    assert_eq!(before[1], after[1], "fakecri kept running");
    wait_phase(&pods, "tc-pod", "Running").await;

    node.stop();
    assert!(!node.is_running());
    assert!(!alive(after[0]));
    node.start().unwrap();
    assert!(node.is_running());

    pods.delete("tc-pod", &Default::default()).await.unwrap();
    let dir: PathBuf = node.root_dir().parent().unwrap().to_path_buf();
    let pids = node.pids();
    drop(node);
    assert_torn_down(&pids, &dir, Duration::from_secs(5));
    assert!(
        nodes.get_opt("tc-node-1").await.unwrap().is_none(),
        "Node object deleted"
    );
}

/// With the control loops started, a DaemonSet gets its pod on the kubelet's node (the
/// controller-manager creates it) and a pod without nodeName is bound by the scheduler.
#[tokio::test]
async fn control_loops_place_daemonset_and_unbound_pods_on_the_node() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    if require(cluster.start_control_loops()).is_none() {
        return;
    }
    let Some(node) = require(cluster.start_node("tc-node-loops")) else {
        return;
    };
    let client = cluster.client().unwrap();
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({"metadata": {"name": "tc-loops"}})).unwrap(),
    )
    .await
    .unwrap();
    let ds: k8s_openapi::api::apps::v1::DaemonSet = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tc-ds"},
        "spec": {
            "selector": {"matchLabels": {"app": "tc-ds"}},
            "template": {
                "metadata": {"labels": {"app": "tc-ds"}},
                "spec": {"containers": [{"name": "c", "image": "example.invalid/agent:1"}]}
            }
        }
    }))
    .unwrap();
    Api::<k8s_openapi::api::apps::v1::DaemonSet>::namespaced(client.clone(), "tc-loops")
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "tc-loops");
    let started = Instant::now();
    let ds_pod = loop {
        let list = pods
            .list(&ListParams::default().labels("app=tc-ds"))
            .await
            .unwrap();
        let running = list
            .items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        if let Some(p) = running {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no DaemonSet pod Running"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ds_pod.spec.unwrap().node_name.as_deref(), Some(node.name()));

    let bare: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tc-unbound"},
        "spec": {"containers": [{"name": "c", "image": "example.invalid/pause:1"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &bare).await.unwrap();
    wait_phase(&pods, "tc-unbound", "Running").await;
    let bound = pods.get("tc-unbound").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some(node.name()));
    ns.delete("tc-loops", &Default::default()).await.unwrap();
}

async fn wait_phase(pods: &Api<Pod>, name: &str, phase: &str) {
    let started = Instant::now();
    loop {
        let p = pods.get(name).await.unwrap();
        let now = p.status.and_then(|s| s.phase).unwrap_or_default();
        if now == phase {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "pod {name}: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the `sriov-testcluster` binary (shared cluster + node `node`) and returns it with the
/// pids and data dir it reports; `None` when the prerequisites are missing (outside CI).
fn doomed_cluster(node: &str, extra: &[&str]) -> Option<(std::process::Child, Vec<u32>, PathBuf)> {
    let prerequisites = sriov_testcluster::Assets::control_plane()
        .and_then(|a| a.check_node())
        .and_then(|()| sriov_testcluster::node::require_root());
    require(prerequisites)?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sriov-testcluster"))
        .args(["--node", node])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let pids: Vec<u32> = serde_json::from_value(info["pids"].clone()).unwrap();
    assert_eq!(pids.len(), 4, "etcd, apiserver, kubelet, fakecri: {info}");
    assert!(pids.iter().all(|p| alive(*p)));
    let dir = PathBuf::from(info["dataDir"].as_str().unwrap());
    assert!(dir.join(format!("nodes/{node}/root")).is_dir());
    Some((child, pids, dir))
}

/// The test process dies by SIGKILL (no destructor, no panic hook runs): the reaper still stops
/// etcd, the API server, the kubelet and fakecri, unmounts and removes the data dir.
#[test]
fn sigkill_of_the_test_process_leaves_nothing_behind() {
    let Some((mut child, pids, dir)) = doomed_cluster("tc-killed", &[]) else {
        return;
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_torn_down(&pids, &dir, Duration::from_secs(15));
}

/// The process panics with the shared cluster (a static, never dropped) and a node up.
#[test]
fn a_panic_leaves_nothing_behind() {
    let Some((mut child, pids, dir)) = doomed_cluster("tc-panicked", &["--panic"]) else {
        return;
    };
    drop(child.stdin.take()); // EOF: the binary panics
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(101), "exit status of a panic: {status:?}");
    assert_torn_down(&pids, &dir, Duration::from_secs(15));
}

/// A cluster of its own is torn down when dropped.
#[test]
fn dropping_an_own_cluster_tears_it_down() {
    let Some(cluster) = require(Cluster::start()) else {
        return;
    };
    let pids = cluster.pids();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| alive(*p)));
    let dir = cluster.data_dir().to_path_buf();
    assert!(dir.join("admin.kubeconfig").is_file());
    drop(cluster);
    assert_torn_down(&pids, &dir, Duration::from_secs(1));
}
