//! A real node: the real kubelet on Debian's containerd + runc (`Cluster::start_containerd_node`),
//! the default network Debian's `bridge` + `host-local`. Pods get real sandboxes with network
//! namespaces of their own and an IP from host-local; deleting them frees the lease; restarts of
//! containerd and of the kubelet leak nothing; dropping the node leaves no process, link,
//! cgroup or directory behind. Needs root and scripts/deps/45-containerd.sh +
//! 46-pause-image.sh (under CI=true, missing them fails).
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use sriov_testcluster::containerd::DEFAULT_NETWORK;
use sriov_testcluster::{Cluster, Node, NodeCni, require};

const LIMIT: Duration = Duration::from_secs(60);

fn pod(name: &str, node: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never"}]
        }
    }))
    .unwrap()
}

/// Waits until the pod is Running; its IP.
async fn running(pods: &Api<Pod>, name: &str, node: &Node<'_>) -> String {
    let started = Instant::now();
    loop {
        let p = pods.get(name).await.unwrap();
        let status = p.status.unwrap_or_default();
        if status.phase.as_deref() == Some("Running") {
            return status.pod_ip.unwrap();
        }
        assert!(
            started.elapsed() < LIMIT,
            "pod {name} not Running after {LIMIT:?}: {status:?}\ncontainerd log:\n{}",
            tail(&node.containerd().unwrap().log())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deleted(pods: &Api<Pod>, name: &str) {
    pods.delete(name, &DeleteParams::default()).await.unwrap();
    let started = Instant::now();
    while pods.get_opt(name).await.unwrap().is_some() {
        assert!(
            started.elapsed() < LIMIT,
            "pod {name} still there after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// host-local's leases of the default network: one file per leased IP (besides its `lock` and
/// `last_reserved_ip.0` bookkeeping).
fn leases(node: &Node<'_>) -> Vec<String> {
    let dir = node
        .containerd()
        .unwrap()
        .cni_state_dir()
        .join("networks")
        .join(DEFAULT_NETWORK);
    files(&dir)
        .into_iter()
        .filter(|f| f != "lock" && !f.starts_with("last_reserved_ip"))
        .collect()
}

/// Everything that must be empty when the node runs no pod: leases, pod network namespaces,
/// libcni's result cache.
fn leftovers(node: &Node<'_>) -> (Vec<String>, Vec<String>, Vec<String>) {
    let c = node.containerd().unwrap();
    (
        leases(node),
        files(c.netns_dir()),
        files(&c.cni_state_dir().join("results")),
    )
}

async fn assert_nothing_left(node: &Node<'_>) {
    let started = Instant::now();
    loop {
        let left = leftovers(node);
        if left.0.is_empty() && left.1.is_empty() && left.2.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "leaked (leases, netns, CNI results): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pids of the pod's tasks (sandbox and container), from `ctr tasks ls`.
fn task_pids(node: &Node<'_>) -> Vec<u32> {
    let out = node.containerd().unwrap().ctr(&["tasks", "ls"]).unwrap();
    out.lines()
        .skip(1)
        .filter(|l| l.contains("RUNNING"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

fn ipv4_in(subnet24: &str, ip: &str) -> bool {
    let prefix = subnet24.trim_end_matches("0/24");
    ip.starts_with(prefix)
}

#[tokio::test]
async fn pod_gets_its_own_netns_and_a_host_local_ip_and_delete_frees_it() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let Some(node) = require(cluster.start_containerd_node("tc-cnode-1", NodeCni::default_bridge())) else {
        return;
    };
    eprintln!("containerd node Ready in {:?}", node.ready_after());
    let c = node.containerd().unwrap();
    let image = c.sandbox_image().to_string();
    let pods: Api<Pod> = Api::namespaced(cluster.client().unwrap(), "default");
    pods.create(&PostParams::default(), &pod("cnode-a", "tc-cnode-1", &image))
        .await
        .unwrap();
    let ip = running(&pods, "cnode-a", &node).await;
    assert!(ipv4_in(c.pod_subnet(), &ip), "{ip} not in {}", c.pod_subnet());

    // host-local leased exactly that IP; one network namespace, libcni cached one result.
    assert_eq!(leases(&node), vec![ip.clone()]);
    assert_eq!(files(c.netns_dir()).len(), 1, "{:?}", files(c.netns_dir()));
    // libcni's cache: the default network's result and containerd's loopback.
    let results = files(&c.cni_state_dir().join("results"));
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| r.starts_with(&format!("{DEFAULT_NETWORK}-"))),
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r.starts_with("cni-loopback-")),
        "{results:?}"
    );

    // The sandbox and the container run in one network namespace, not the host's, whose eth0
    // has the pod IP.
    let pids = task_pids(&node);
    assert_eq!(pids.len(), 2, "sandbox + container: {pids:?}");
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let pod_ns: Vec<PathBuf> = pids
        .iter()
        .map(|p| std::fs::read_link(format!("/proc/{p}/ns/net")).unwrap())
        .collect();
    assert_ne!(pod_ns[0], host_ns);
    // containerd puts each container in /k8s.io/<id> (the kubelet's cgroupsPerQOS is off): the
    // cgroups the node's teardown removes.
    for p in &pids {
        let cgroups = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
        let pids_cg = cgroups.lines().find(|l| l.contains(":pids:")).unwrap();
        assert!(pids_cg.contains(":pids:/k8s.io/"), "{pids_cg}");
    }
    assert_eq!(pod_ns[0], pod_ns[1]);
    let addr = Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", pids[0]))
        .args(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    let addr = String::from_utf8_lossy(&addr.stdout);
    assert!(addr.contains(&format!("inet {ip}/24")), "{addr}");

    // The API server reaches the kubelet at the node IP (a veth address) with its client
    // certificate: `kubectl logs` works (the pause container logs nothing).
    let logs = pods.logs("cnode-a", &Default::default()).await;
    assert_eq!(logs.unwrap(), "");

    deleted(&pods, "cnode-a").await;
    assert_nothing_left(&node).await;
    assert!(task_pids(&node).is_empty());
}

#[tokio::test]
async fn containerd_and_kubelet_restarts_leak_nothing_and_teardown_is_complete() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let Some(mut node) = require(cluster.start_containerd_node("tc-cnode-2", NodeCni::default_bridge()))
    else {
        return;
    };
    let image = node.containerd().unwrap().sandbox_image().to_string();
    let pods: Api<Pod> = Api::namespaced(cluster.client().unwrap(), "default");
    pods.create(&PostParams::default(), &pod("cnode-b", "tc-cnode-2", &image))
        .await
        .unwrap();
    let ip = running(&pods, "cnode-b", &node).await;

    // containerd restarts: the pod keeps its sandbox, IP and lease; a new pod still starts.
    node.restart_containerd().unwrap();
    pods.create(&PostParams::default(), &pod("cnode-c", "tc-cnode-2", &image))
        .await
        .unwrap();
    let ip_c = running(&pods, "cnode-c", &node).await;
    // The kubelet restarts: same.
    node.restart().unwrap();
    assert_eq!(running(&pods, "cnode-b", &node).await, ip);
    assert_eq!(running(&pods, "cnode-c", &node).await, ip_c);
    let mut want = vec![ip.clone(), ip_c.clone()];
    want.sort();
    assert_eq!(leases(&node), want);
    assert_eq!(files(node.containerd().unwrap().netns_dir()).len(), 2);

    // Deleting after the restarts frees everything.
    deleted(&pods, "cnode-b").await;
    deleted(&pods, "cnode-c").await;
    assert_nothing_left(&node).await;

    // Teardown with a pod still running: no process of the node's mount namespace (kubelet,
    // containerd, shims, anchor) or container stays, nor its links, cgroups or directory.
    pods.create(&PostParams::default(), &pod("cnode-d", "tc-cnode-2", &image))
        .await
        .unwrap();
    running(&pods, "cnode-d", &node).await;
    let c = node.containerd().unwrap();
    let mnt = c.mount_namespace().unwrap().to_string();
    let node_ip = c.node_ip().to_string();
    let tasks = task_pids(&node);
    let dir = node.root_dir().parent().unwrap().to_path_buf();
    let containers: Vec<String> = files(
        &c.netns_dir()
            .parent()
            .unwrap()
            .join("state/io.containerd.runtime.v2.task/k8s.io"),
    );
    assert!(!containers.is_empty());
    drop(node);
    let in_ns = in_mount_namespace(&mnt);
    assert!(in_ns.is_empty(), "processes left in {mnt}: {in_ns:?}");
    for p in tasks {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        assert!(
            status.is_empty() || status.lines().any(|l| l.starts_with("State:") && l.contains('Z')),
            "container process {p} survived"
        );
    }
    let addrs = Command::new("ip").args(["-o", "-4", "addr"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&addrs.stdout).contains(&format!("{node_ip}/")));
    for id in containers {
        for ctl in ["pids", "memory", "cpu", "freezer"] {
            let cg = Path::new("/sys/fs/cgroup").join(ctl).join("k8s.io").join(&id);
            assert!(!cg.exists(), "{} left", cg.display());
        }
    }
    assert!(!dir.exists(), "{} left", dir.display());
}

fn in_mount_namespace(mnt: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path().join("ns/mnt")).is_ok_and(|l| l.to_string_lossy() == mnt))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The test process dies by SIGKILL with a pod running on its containerd node: no destructor
/// runs, and the shims and containers are no children of it. The reaper's run of the node's
/// teardown script still kills them all and removes the node's links and directories.
#[tokio::test]
async fn sigkill_of_the_test_process_tears_the_containerd_node_down() {
    let prerequisites = sriov_testcluster::Assets::control_plane()
        .and_then(|a| sriov_testcluster::containerd::prerequisites(&a));
    if require(prerequisites).is_none() {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sriov-testcluster"))
        .args(["--containerd-node", "tc-cnode-killed"])
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
    let c = &info["containerd"];
    let mnt = c["mountNamespace"].as_str().unwrap().to_string();
    let node_ip = c["nodeIp"].as_str().unwrap().to_string();
    let dir = PathBuf::from(info["dataDir"].as_str().unwrap());
    let kc = kube::config::Kubeconfig::read_from(info["kubeconfig"].as_str().unwrap()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
    let image = c["sandboxImage"].as_str().unwrap();
    pods.create(&PostParams::default(), &pod("cnode-k", "tc-cnode-killed", image))
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let phase = pods.get("cnode-k").await.unwrap().status.and_then(|s| s.phase);
        if phase.as_deref() == Some("Running") {
            break;
        }
        assert!(started.elapsed() < LIMIT, "cnode-k: {phase:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tasks = Command::new("ctr")
        .arg("--address")
        .arg(c["socket"].as_str().unwrap())
        .args(["-n", "k8s.io", "tasks", "ls", "-q"])
        .output()
        .unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&tasks.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(ids.len(), 2, "sandbox + container: {ids:?}");
    assert!(!in_mount_namespace(&mnt).is_empty());

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let started = Instant::now();
    loop {
        let left = in_mount_namespace(&mnt);
        let cgroups: Vec<PathBuf> = ids
            .iter()
            .map(|id| Path::new("/sys/fs/cgroup/pids/k8s.io").join(id))
            .filter(|p| p.exists())
            .collect();
        let addrs = Command::new("ip").args(["-o", "-4", "addr"]).output().unwrap();
        let ip_left = String::from_utf8_lossy(&addrs.stdout).contains(&format!("{node_ip}/"));
        if left.is_empty() && cgroups.is_empty() && !ip_left && !dir.exists() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "after SIGKILL: processes {left:?} in {mnt}, cgroups {cgroups:?}, node IP left: {ip_left}, {} exists: {}",
            dir.display(),
            dir.exists()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An image's name, the command its pod runs, an env var, what the output contains.
type ImageRun = (
    &'static str,
    &'static [&'static str],
    Option<(&'static str, &'static str)>,
    &'static str,
);

/// The component images (`./scripts/images components`, a release build for the musl target:
/// minutes, so not part of the default run) import into containerd and their static binaries
/// run in real containers on an empty base, as their image's user.
#[tokio::test]
#[ignore = "needs ./scripts/images components; run with --ignored"]
async fn component_images_run_on_the_real_node() {
    let dir = std::env::var_os("SRIOV_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/images"));
    let images: [ImageRun; 6] = [
        (
            "sriov-cni",
            &["/usr/bin/sriov"],
            Some(("CNI_COMMAND", "VERSION")),
            "supportedVersions",
        ),
        (
            "sriov-network-config-daemon",
            &["/usr/bin/sriov-network-config-daemon", "--help"],
            None,
            "Usage:",
        ),
        (
            "sriov-network-device-plugin",
            &["/usr/bin/sriovdp", "--help"],
            None,
            "Usage:",
        ),
        (
            "network-resources-injector",
            &["/usr/bin/network-resources-injector", "--help"],
            None,
            "Usage:",
        ),
        (
            "sriov-network-webhook",
            &["/usr/bin/sriov-network-webhook", "--help"],
            None,
            "Usage:",
        ),
        ("sriovctl", &["/usr/bin/sriovctl", "--help"], None, "Usage:"),
    ];
    for (name, ..) in &images {
        let tarball = dir.join(format!("{name}.tar"));
        sriov_test_support::require!(
            tarball.is_file(),
            "{} (./scripts/images components)",
            tarball.display()
        );
    }
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let Some(node) = require(cluster.start_containerd_node("tc-cnode-images", NodeCni::default_bridge()))
    else {
        return;
    };
    let c = node.containerd().unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client().unwrap(), "default");
    for (name, command, env, expect) in images {
        let image = c.import_image(&dir.join(format!("{name}.tar"))).unwrap();
        let env: Vec<serde_json::Value> = env
            .iter()
            .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
            .collect();
        let pod_name = format!("img-{name}");
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name},
            "spec": {
                "nodeName": "tc-cnode-images",
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never",
                                "command": command, "env": env}]
            }
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        let started = Instant::now();
        loop {
            let phase = pods.get(&pod_name).await.unwrap().status.and_then(|s| s.phase);
            if phase.as_deref() == Some("Succeeded") {
                break;
            }
            assert!(
                phase.as_deref() != Some("Failed") && started.elapsed() < LIMIT,
                "{pod_name}: {phase:?}: {:?}",
                pods.logs(&pod_name, &Default::default()).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let logs = pods.logs(&pod_name, &Default::default()).await.unwrap();
        assert!(logs.contains(expect), "{name}: {logs}");
        eprintln!("{name}: ran ({} bytes of output)", logs.len());
        deleted(&pods, &pod_name).await;
    }
    assert_nothing_left(&node).await;
}
