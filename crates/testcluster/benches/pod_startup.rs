//! Pod create → Running on a real node (the kubelet on Debian's containerd + runc, a sandbox
//! from our pause image, the default network bridge + host-local called by containerd), with
//! its floor in the same run: the same kubelet and API server on the fake CRI (no container, no
//! netns, no CNI). One pod at a time, each deleted before the next; p50 / p90 / max printed.
//!
//! `cargo bench -p sriov-testcluster --bench pod_startup [-- PODS]` (root; PODS defaults to 10).
//! What is timed is the API server's, the kubelet's and containerd's work, so the harness's own
//! build profile does not matter (`--profile dev` avoids a release build of kube-rs).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use sriov_testcluster::{Cluster, Node, NodeCni, require};

fn pod(name: &str, node: &str, image: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent"}]
        }
    }))
    .unwrap()
}

/// Create → Running of `count` pods on `node`, one at a time.
async fn measure(cluster: &Cluster, node: &Node<'_>, image: &str, count: usize) -> Vec<Duration> {
    let pods: Api<Pod> = Api::namespaced(cluster.client().unwrap(), "default");
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("startup-{}-{i}", node.name());
        let started = Instant::now();
        pods.create(&PostParams::default(), &pod(&name, node.name(), image))
            .await
            .unwrap();
        loop {
            let phase = pods.get(&name).await.unwrap().status.and_then(|s| s.phase);
            if phase.as_deref() == Some("Running") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{name}: {phase:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(started.elapsed());
        pods.delete(&name, &DeleteParams::default()).await.unwrap();
        while pods.get_opt(&name).await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    times
}

fn report(what: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<34} pods {:>3}  p50 {:>7.1} ms  p90 {:>7.1} ms  max {:>7.1} ms",
        times.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(1.0))
    );
    at(0.5)
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("PODS: a number"))
        .unwrap_or(10);
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let floor = {
        let Some(node) = require(cluster.start_node("bench-fakecri")) else {
            return;
        };
        let times = rt.block_on(measure(cluster, &node, "example.invalid/pause:1", count));
        report("fake CRI (floor: kubelet + API)", times)
    };
    let real = {
        let Some(node) =
            require(cluster.start_containerd_node("bench-containerd", NodeCni::default_bridge()))
        else {
            return;
        };
        let image = node.containerd().unwrap().sandbox_image().to_string();
        let times = rt.block_on(measure(cluster, &node, &image, count));
        report("containerd + runc + bridge CNI", times)
    };
    println!(
        "real sandbox + container + CNI add: {:.1} ms over the floor at p50",
        (real.as_secs_f64() - floor.as_secs_f64()) * 1000.0
    );
}
