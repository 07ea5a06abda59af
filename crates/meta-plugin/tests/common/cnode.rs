//! A real node whose CNI is the meta plugin: the real kubelet on Debian's containerd + runc
//! (`Cluster::start_containerd_node`), the node's CNI config `"type": "multus"` (Multus thin
//! mode) with Debian's `bridge` + `host-local` as its `delegates` (the default network), a
//! kubeconfig for a user holding only Multus' ClusterRole, and pods created through the API. So
//! the whole path runs: kubelet → containerd → `multus` → delegates.
//!
//! Shared by tests/containerd_node.rs and benches/pod_start.rs (included with `#[path]`).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use sriov_testcluster::{Cluster, CniFile, Node, NodeCni};

use crate::common::{REFERENCE_PLUGINS, prepare_api};

pub const LIMIT: Duration = Duration::from_secs(90);

/// What the test needs to know about the node's meta plugin set-up.
pub struct MetaNode<'c> {
    pub node: Node<'c>,
    /// The meta plugin's `cniDir` (its cached attachments and the delegates' results), as the host
    /// sees it.
    pub cni_dir: PathBuf,
    /// The meta plugin's `logFile`.
    pub log: PathBuf,
    /// The default network's bridge (in the host's network namespace).
    pub default_bridge: String,
    /// `X` of the node's pod subnet `198.18.X.0/24`: secondary networks use `10.22{0,1}.X.0/24`.
    pub octet: u8,
    pub image: String,
    _dir: tempfile::TempDir,
}

/// How the node runs the meta plugin: the built binary itself, or a timing wrapper (the
/// benchmark) that appends `<CNI_COMMAND> <microseconds>` to `times` per call.
pub enum Plugin {
    Direct,
    Timed { times: PathBuf },
}

impl<'c> MetaNode<'c> {
    /// A node without the meta plugin (the benchmark's floor), so that the same helpers apply:
    /// its `cniDir` and log (under `dir`) stay empty.
    pub fn wrap(node: Node<'c>, dir: tempfile::TempDir, image: String) -> MetaNode<'c> {
        let c = node.containerd().unwrap();
        let octet = c.pod_subnet().split('.').nth(2).unwrap().parse().unwrap();
        MetaNode {
            cni_dir: dir.path().join("unused-cni-dir"),
            log: dir.path().join("unused.log"),
            default_bridge: String::new(),
            octet,
            image,
            node,
            _dir: dir,
        }
    }
}

/// The node's CNI config file: Multus thin mode, the default network as `delegates`.
pub fn meta_conf(default_network: &Value, kubeconfig: &Path, cni_dir: &Path, log: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
        "capabilities": {"io.kubernetes.cri.pod-annotations": true},
        "kubeconfig": kubeconfig, "cniDir": cni_dir, "binDir": REFERENCE_PLUGINS,
        "logLevel": "verbose", "logFile": log, "logToStderr": false,
        "delegates": [default_network],
    })
}

/// Starts the node `name` with the meta plugin as its CNI.
pub async fn start<'c>(cluster: &'c Cluster, name: &str, plugin: Plugin) -> Option<MetaNode<'c>> {
    let client = cluster.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("multus.kubeconfig");
    prepare_api(cluster, &client, &kubeconfig).await;
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let multus = env!("CARGO_BIN_EXE_multus");
    match &plugin {
        Plugin::Direct => std::os::unix::fs::symlink(multus, bin.join("multus")).unwrap(),
        Plugin::Timed { times } => {
            // bash's $EPOCHREALTIME: no extra process inside the measured interval.
            let script = format!(
                "#!/bin/bash\nt0=$EPOCHREALTIME\n{multus}\nrc=$?\nt1=$EPOCHREALTIME\n\
                 echo \"$CNI_COMMAND $(( ${{t1/./}} - ${{t0/./}} ))\" >> {times}\nexit $rc\n",
                times = times.display()
            );
            let path = bin.join("multus");
            std::fs::write(&path, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let seen: Arc<Mutex<(PathBuf, PathBuf, String)>> = Arc::default();
    let seen2 = seen.clone();
    let cni = NodeCni::new(vec![bin, PathBuf::from(REFERENCE_PLUGINS)], move |ctx| {
        let cni_dir = ctx.cni_state_dir.join("multus");
        let log = ctx.node_dir.join("multus.log");
        let bridge = ctx.default_network["plugins"][0]["bridge"]
            .as_str()
            .unwrap()
            .to_string();
        *seen2.lock().unwrap() = (cni_dir.clone(), log.clone(), bridge);
        vec![CniFile {
            name: "00-multus.conf".into(),
            text: meta_conf(&ctx.default_network, &kubeconfig, &cni_dir, &log).to_string(),
        }]
    });
    let node = sriov_testcluster::require(cluster.start_containerd_node(name, cni))?;
    let c = node.containerd().unwrap();
    let octet = c.pod_subnet().split('.').nth(2).unwrap().parse().unwrap();
    let image = c.sandbox_image().to_string();
    let (cni_dir, log, default_bridge) = seen.lock().unwrap().clone();
    Some(MetaNode {
        node,
        cni_dir,
        log,
        default_bridge,
        octet,
        image,
        _dir: dir,
    })
}

/// A pod on `node` running the pause image, with the network selection annotation (if any).
pub fn pod(name: &str, node: &str, image: &str, networks: Option<&str>) -> Pod {
    let mut meta = json!({"name": name});
    if let Some(n) = networks {
        meta["annotations"] = json!({"k8s.v1.cni.cncf.io/networks": n});
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {
            "nodeName": node, "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never"}]
        }
    }))
    .unwrap()
}

pub async fn create(pods: &Api<Pod>, p: &Pod) {
    pods.create(&PostParams::default(), p).await.unwrap();
}

/// Waits until the pod is Running; its pod IP.
pub async fn running(pods: &Api<Pod>, name: &str, m: &MetaNode<'_>) -> String {
    let started = Instant::now();
    loop {
        let p = pods.get(name).await.unwrap();
        let status = p.status.unwrap_or_default();
        if status.phase.as_deref() == Some("Running")
            && let Some(ip) = status.pod_ip
        {
            return ip;
        }
        assert!(
            started.elapsed() < LIMIT,
            "pod {name} not Running after {LIMIT:?}: {status:?}\nmeta plugin log:\n{}\ncontainerd log:\n{}",
            tail(&m.log),
            tail(&m.node.containerd().unwrap().log())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Deletes the pod and waits until the API no longer has it.
pub async fn deleted(pods: &Api<Pod>, name: &str) {
    pods.delete(name, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let started = Instant::now();
    while pods.get_opt(name).await.unwrap().is_some() {
        assert!(
            started.elapsed() < LIMIT,
            "pod {name} still there after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

pub fn files(dir: &Path) -> Vec<String> {
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

/// host-local's leases of every network of the node (`<network>/<ip>`), without its `lock` and
/// `last_reserved_ip.N` bookkeeping.
pub fn leases(m: &MetaNode<'_>) -> Vec<String> {
    let networks = m.node.containerd().unwrap().cni_state_dir().join("networks");
    let mut v = Vec::new();
    for net in files(&networks) {
        for f in files(&networks.join(&net)) {
            if f != "lock" && !f.starts_with("last_reserved_ip") {
                v.push(format!("{net}/{f}"));
            }
        }
    }
    v
}

/// What the node holds for pods: leases, pod netns, libcni's results cache, the meta plugin's
/// cached attachments and its delegates' results.
#[derive(Debug, Default, PartialEq)]
pub struct Held {
    pub leases: Vec<String>,
    pub netns: Vec<String>,
    pub results: Vec<String>,
    pub attachments: Vec<String>,
    pub delegate_results: Vec<String>,
}

pub fn held(m: &MetaNode<'_>) -> Held {
    let c = m.node.containerd().unwrap();
    Held {
        leases: leases(m),
        netns: files(c.netns_dir()),
        results: files(&c.cni_state_dir().join("results")),
        attachments: files(&m.cni_dir).into_iter().filter(|f| f != "results").collect(),
        delegate_results: files(&m.cni_dir.join("results")),
    }
}

/// Waits until the node holds nothing for any pod.
pub async fn nothing_left(m: &MetaNode<'_>) {
    let started = Instant::now();
    loop {
        let h = held(m);
        if h == Held::default() {
            return;
        }
        assert!(
            started.elapsed() < LIMIT,
            "leaked: {h:?}\nmeta plugin log:\n{}",
            tail(&m.log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pids of the node's running tasks (sandboxes and containers), from `ctr tasks ls`.
pub fn task_pids(m: &MetaNode<'_>) -> Vec<u32> {
    let out = m.node.containerd().unwrap().ctr(&["tasks", "ls"]).unwrap();
    out.lines()
        .skip(1)
        .filter(|l| l.contains("RUNNING"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// `ip -j -d ARGS` inside the network namespace of process `pid`.
pub fn ip_in(pid: u32, args: &[&str]) -> Value {
    let o = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["ip", "-j", "-d"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Links in the netns of `pid`: (name, kind, mac, IPv4 addresses `a.b.c.d/len`), in ifindex order.
pub fn links_in(pid: u32) -> Vec<(String, String, String, Vec<String>)> {
    let addrs = ip_in(pid, &["-4", "addr", "show"]);
    ip_in(pid, &["link", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let name = l["ifname"].as_str().unwrap().to_string();
            let ips = addrs
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["ifname"] == l["ifname"])
                .flat_map(|a| a["addr_info"].as_array().cloned().unwrap_or_default())
                .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
                .collect();
            (
                name,
                l["linkinfo"]["info_kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                l["address"].as_str().unwrap_or_default().to_string(),
                ips,
            )
        })
        .collect()
}

/// The links enslaved to host bridge `bridge`.
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    let o = Command::new("ip")
        .args(["-j", "link", "show", "master", bridge])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(json!([]));
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["ifname"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The macvlan NAD's config: on `master`, host-local in `10.220.X.0/24` (its leases in the node's
/// `/var/lib/cni/networks/macvlan-net`), `ips` and `mac` capabilities.
pub fn macvlan_nad(master: &str, octet: u8) -> Value {
    json!({"cniVersion": "1.0.0", "name": "macvlan-net", "plugins": [
        {"type": "macvlan", "master": master, "mode": "bridge", "capabilities": {"ips": true},
         "ipam": {"type": "host-local", "ranges": [[{"subnet": format!("10.220.{octet}.0/24")}]]}},
        {"type": "tuning", "capabilities": {"mac": true}}]})
}

/// The bridge NAD's config: bridge `bridge` (the plugin creates it), host-local in
/// `10.221.X.0/24`.
pub fn bridge_nad(bridge: &str, octet: u8) -> Value {
    json!({"cniVersion": "1.0.0", "name": "bridge-net", "type": "bridge", "bridge": bridge,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": format!("10.221.{octet}.0/24")}]]}})
}
