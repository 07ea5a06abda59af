//! Starts the process's shared cluster (and with `--node NAME` a kubelet on the fake CRI, with
//! `--containerd-node NAME` one on containerd with the default bridge network), prints one JSON line
//! describing it (kubeconfig, data dir, pids, start-up times), then holds it until stdin closes.
//! For poking at the cluster by hand (`kubectl --kubeconfig ...`) and for the harness's teardown
//! tests, which SIGKILL this process, or close stdin with `--panic` given (it then panics with the
//! cluster in a static, whose destructor never runs), and check that nothing is left behind.
//!
//! `--in-cluster-api` starts a cluster of its own whose pods reach the API server as in-cluster
//! clients (`ClusterOptions::in_cluster_api`, needs root) and `--control-loops` adds
//! kube-controller-manager and kube-scheduler: with `--containerd-node` that is the whole
//! single-node cluster a Helm chart installs into (scripts/newcomer-walkthrough).
//!
//! `--remote-node NAME --remote-server URL --remote-dir DIR` also writes `DIR/admin.kubeconfig`,
//! `DIR/node.kubeconfig` (the node's identity `system:node:NAME`) and `DIR/multus.kubeconfig` (user
//! `multus`, which holds nothing until bound, e.g. to Multus' ClusterRole), self-contained and pointing
//! at URL: lab/demo and lab/run-tests use them for a real kubelet in the QEMU guest, which reaches this API
//! server through a forward to the `server` printed in the JSON line.

use std::io::Read;

use sriov_testcluster::{Cluster, ClusterOptions};

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut panic_at_eof, mut node_name, mut containerd_node) = (false, None, None);
    let (mut in_cluster_api, mut control_loops) = (false, false);
    let (mut remote_node, mut remote_server, mut remote_dir) = (None, None, None);
    while let Some(a) = args.next() {
        let slot = match a.as_str() {
            "--panic" => {
                panic_at_eof = true;
                continue;
            }
            "--in-cluster-api" => {
                in_cluster_api = true;
                continue;
            }
            "--control-loops" => {
                control_loops = true;
                continue;
            }
            "--node" => &mut node_name,
            "--containerd-node" => &mut containerd_node,
            "--remote-node" => &mut remote_node,
            "--remote-server" => &mut remote_server,
            "--remote-dir" => &mut remote_dir,
            _ => return usage(&format!("unknown argument {a:?}")),
        };
        match args.next() {
            Some(v) => *slot = Some(v),
            None => return usage(&format!("{a} needs a value")),
        }
    }
    let remote = match (remote_node, remote_server, remote_dir) {
        (Some(n), Some(s), Some(d)) => Some((n, s, std::path::PathBuf::from(d))),
        (None, None, None) => None,
        _ => return usage("--remote-node, --remote-server and --remote-dir go together"),
    };
    // The shared cluster lives in a static: no destructor runs at exit, the reaper tears it down.
    // So does the in-cluster one, leaked to the same lifetime.
    let cluster: &'static Cluster = if in_cluster_api {
        match sriov_testcluster::require(Cluster::start_with(ClusterOptions { in_cluster_api: true })) {
            Some(c) => Box::leak(Box::new(c)),
            None => return std::process::ExitCode::FAILURE,
        }
    } else {
        match Cluster::shared() {
            Some(c) => c,
            None => return std::process::ExitCode::FAILURE,
        }
    };
    if control_loops && let Err(e) = cluster.start_control_loops() {
        eprintln!("sriov-testcluster: control loops: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let started = match (node_name.as_deref(), containerd_node.as_deref()) {
        (Some(_), Some(_)) => return usage("--node and --containerd-node exclude each other"),
        (Some(n), None) => Some(cluster.start_node(n)),
        (None, Some(n)) => {
            Some(cluster.start_containerd_node(n, sriov_testcluster::NodeCni::default_bridge()))
        }
        (None, None) => None,
    };
    let node = match started.transpose() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("sriov-testcluster: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some((name, server, dir)) = &remote {
        let written = std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                cluster
                    .kubeconfig_for_remote("admin", "system:masters", server, &dir.join("admin.kubeconfig"))
                    .and_then(|()| {
                        cluster.kubeconfig_for_remote(
                            &format!("system:node:{name}"),
                            "system:nodes",
                            server,
                            &dir.join("node.kubeconfig"),
                        )
                    })
                    .and_then(|()| {
                        cluster.kubeconfig_for_remote(
                            "multus",
                            "multus",
                            server,
                            &dir.join("multus.kubeconfig"),
                        )
                    })
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            eprintln!("sriov-testcluster: remote kubeconfigs in {}: {e}", dir.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    let mut pids = cluster.pids();
    pids.extend(node.iter().flat_map(|n| n.pids()));
    let line = serde_json::json!({
        "kubeconfig": cluster.kubeconfig(),
        "server": cluster.server(),
        "dataDir": cluster.data_dir(),
        "pids": pids,
        "nodeRootDir": node.as_ref().map(|n| n.root_dir().to_path_buf()),
        "apiserverReadyMs": cluster.startup_times().apiserver_ready.as_millis() as u64,
        "nodeReadyMs": node.as_ref().map(|n| n.ready_after().as_millis() as u64),
        "containerd": node.as_ref().and_then(|n| n.containerd()).map(|c| serde_json::json!({
            "socket": c.socket(),
            "mountNamespace": c.mount_namespace(),
            "nodeIp": c.node_ip(),
            "sandboxImage": c.sandbox_image(),
            "cniBinDir": c.cni_bin_dir(),
            "netnsDir": c.netns_dir(),
        })),
    });
    println!("{line}");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    if panic_at_eof {
        panic!("sriov-testcluster: panicking with the cluster up, as asked (--panic)");
    }
    drop(node);
    std::process::ExitCode::SUCCESS
}

fn usage(why: &str) -> std::process::ExitCode {
    eprintln!("sriov-testcluster: {why}");
    eprintln!(
        "usage: sriov-testcluster [--node NAME | --containerd-node NAME] [--in-cluster-api] [--control-loops] [--panic] [--remote-node NAME --remote-server URL --remote-dir DIR]"
    );
    std::process::ExitCode::from(2)
}
