//! Pod create → Running on a real node (the real kubelet on Debian's containerd + runc), in one
//! run and on one machine:
//! - `direct`: the node's CNI is the default network itself (`bridge` + `host-local`), no meta
//!   plugin: the floor;
//! - `multus, none`: the node's CNI is the meta plugin (same default network as its delegate),
//!   pods with no secondary network: the meta plugin's added cost over `direct`;
//! - `multus, one`: the same node, pods with one secondary network (a `bridge` + `host-local`
//!   NAD; this host has no SR-IOV VFs, so no `sriov` network here: that variant belongs to the
//!   lab).
//!
//! And the meta plugin's own time per ADD and DEL as containerd runs it: a wrapper script in the
//! node's CNI bin dir times each `multus` process (bash's `$EPOCHREALTIME` around it, so the
//! wrapper's start-up is outside the interval; it is inside the `multus` pods' create → Running).
//!
//! Pods are created one at a time (each waits for Running), kinds interleaved, after one
//! unmeasured pod per node (the first sandbox pays one-off costs). Prints p50/p90.
//! Root, containerd, the pause image and the k8s assets (`SRIOV_K8S_ASSETS`) needed.
//! `cargo bench -p sriov-meta-plugin --bench pod_start [-- PODS]` (20 of each by default).
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/cnode.rs"]
mod cnode;
#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use cnode::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use sriov_testcluster::{Cluster, NodeCni};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p-th percentile (nearest rank) of `v`, in ms.
fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn line(what: &str, v: &[f64]) {
    println!(
        "{what:<44} n={:<3} p50 {:>7.1} ms  p90 {:>7.1} ms",
        v.len(),
        pct(v, 0.5),
        pct(v, 0.9)
    );
}

/// The wrapper's lines (`ADD 12345`, microseconds) from line `from` on: ADD and DEL times in ms.
fn plugin_times(times: &Path, from: usize) -> (Vec<f64>, Vec<f64>, usize) {
    let text = std::fs::read_to_string(times).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let (mut add, mut del) = (vec![], vec![]);
    for l in &lines[from.min(lines.len())..] {
        let mut it = l.split_whitespace();
        let (cmd, us) = (it.next(), it.next().and_then(|u| u.parse::<f64>().ok()));
        match (cmd, us) {
            (Some("ADD"), Some(us)) => add.push(us / 1e3),
            (Some("DEL"), Some(us)) => del.push(us / 1e3),
            _ => {}
        }
    }
    (add, del, lines.len())
}

/// Creates a pod and times create → Running.
async fn start_pod(pods: &Api<Pod>, m: &MetaNode<'_>, name: &str, networks: Option<&str>) -> f64 {
    let t = Instant::now();
    create(pods, &pod(name, m.node.name(), &m.image, networks)).await;
    running(pods, name, m).await;
    ms(t.elapsed())
}

async fn delete_all(pods: &Api<Pod>, names: &[String]) {
    for n in names {
        deleted(pods, n).await;
    }
}

async fn bench(cluster: &'static Cluster, n: usize) {
    let client = cluster.client().unwrap();
    let ns = "meta-bench";
    common::namespace(&client, ns).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);

    // The floor: the default network straight from containerd. The node's kubeconfig etc. are
    // prepared the same way (start() with a plugin the node does not use would differ), so this
    // node is started directly.
    let direct = {
        let Some(node) = sriov_testcluster::require(
            cluster.start_containerd_node("meta-bench-direct", NodeCni::default_bridge()),
        ) else {
            return;
        };
        let image = node.containerd().unwrap().sandbox_image().to_string();
        let dir = tempfile::tempdir().unwrap();
        let m = MetaNode::wrap(node, dir, image);
        // One pod not measured: the node's first sandbox pays one-off costs.
        start_pod(&pods, &m, "direct-warm", None).await;
        let mut v = vec![];
        let mut names = vec!["direct-warm".to_string()];
        for i in 0..n {
            let name = format!("direct-{i}");
            v.push(start_pod(&pods, &m, &name, None).await);
            names.push(name);
        }
        delete_all(&pods, &names).await;
        nothing_left(&m).await;
        v
    };

    let times = tempfile::NamedTempFile::new().unwrap();
    let Some(m) = start(
        cluster,
        "meta-bench-multus",
        Plugin::Timed {
            times: times.path().to_path_buf(),
        },
    )
    .await
    else {
        return;
    };
    let t = common::tag();
    let sec_br = format!("mb{t}s");
    let _links = common::HostLinks(vec![sec_br.clone()]);
    common::nad(&client, ns, "bridge-net", &bridge_nad(&sec_br, m.octet), None).await;
    let (mut none, mut one) = (vec![], vec![]);
    let (mut none_add, mut one_add) = (vec![], vec![]);
    start_pod(&pods, &m, "multus-warm", Some("bridge-net")).await;
    let (mut none_names, mut one_names) = (vec![], vec![]);
    let mut seen = plugin_times(times.path(), 0).2;
    for i in 0..n {
        let name = format!("none-{i}");
        none.push(start_pod(&pods, &m, &name, None).await);
        none_names.push(name);
        let (add, _, s) = plugin_times(times.path(), seen);
        none_add.extend(add);
        seen = s;
        let name = format!("one-{i}");
        one.push(start_pod(&pods, &m, &name, Some("bridge-net")).await);
        one_names.push(name);
        let (add, _, s) = plugin_times(times.path(), seen);
        one_add.extend(add);
        seen = s;
    }
    // DEL runs when the kubelet stops the sandbox, which may follow the API object's removal.
    let wait_dels = |from: usize, k: usize| {
        let path = times.path().to_path_buf();
        async move {
            let started = Instant::now();
            while plugin_times(&path, from).1.len() < k && started.elapsed() < LIMIT {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    deleted(&pods, "multus-warm").await;
    wait_dels(seen, 1).await;
    seen = plugin_times(times.path(), seen).2;
    // One at a time, each waiting for its DEL, so that DELs do not overlap.
    let (mut none_del, mut one_del) = (vec![], vec![]);
    for (names, dels) in [(&none_names, &mut none_del), (&one_names, &mut one_del)] {
        for name in names {
            deleted(&pods, name).await;
            wait_dels(seen, 1).await;
            let (_, del, s) = plugin_times(times.path(), seen);
            dels.extend(del);
            seen = s;
        }
    }
    nothing_left(&m).await;

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("pod create → Running, real kubelet + containerd 1.6 + runc, {n} pods each, one at a time:");
    line("direct (default network only, no meta plugin)", &direct);
    line("multus, no secondary network", &none);
    line("multus, one secondary network (bridge NAD)", &one);
    println!(
        "  meta plugin added cost (p50): {:+.1} ms; one secondary network (p50): {:+.1} ms",
        pct(&none, 0.5) - pct(&direct, 0.5),
        pct(&one, 0.5) - pct(&none, 0.5)
    );
    println!("multus process per call as containerd ran it (incl. its delegates):");
    line("ADD, no secondary network", &none_add);
    line("ADD, one secondary network", &one_add);
    line("DEL, no secondary network", &none_del);
    line("DEL, one secondary network", &one_del);
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("pod_start: needs root (containerd, netns); skipped");
        return;
    }
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let Some(cluster) = Cluster::shared() else {
        eprintln!("pod_start: no cluster (SRIOV_K8S_ASSETS?); skipped");
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(cluster, n));
}
