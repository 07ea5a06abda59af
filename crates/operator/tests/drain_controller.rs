//! The drain controller against the real kube-apiserver (v1.36.2, `sriov-testcluster`), with no
//! controller-manager: Nodes are objects without kubelets, pods are bound by `spec.nodeName`,
//! and the test plays the config daemon's side of the handshake. Without a kubelet nothing
//! finishes a graceful deletion, so an evicted pod stays `Terminating` until the test, playing
//! the kubelet, deletes it with grace period 0; the drain must wait for that. No garbage
//! collector runs here either, so a pod owned by a DaemonSet that does not exist stays put
//! (the controller only reads the owner reference). PodDisruptionBudgets need the disruption
//! controller: see `drain_pdb.rs`.
#![allow(clippy::unwrap_used)]

mod drain_support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use sriov_api::keys::CURRENT_STATE;
use sriov_api::{SriovNetworkNodeState, SriovNetworkPoolConfig};

use drain_support::{World, eventually};

const LIMIT: Duration = Duration::from_secs(20);

/// `Drain_Required` on a node with an SR-IOV pod, a plain pod and a DaemonSet pod: the node is
/// cordoned, only the SR-IOV pod is evicted (and waited for), `DrainComplete` comes only once
/// it is gone; the daemon's `Idle` uncordons and answers `Idle`. Events and conditions on the
/// node state tell the story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_required_evicts_only_sriov_pods_cordons_and_uncordons() {
    let Some(w) = World::new("drain-one").await else {
        return;
    };
    let node = "drain-one-w1";
    w.add_node(node, json!({})).await;
    let vf_user = w.add_pod("vf-user", node, true, json!({})).await;
    w.add_pod("plain", node, false, json!({})).await;
    w.add_pod(
        "ds-pod",
        node,
        true,
        json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
            "name": "sriov-device-plugin", "uid": "6a1d5f4e-0000-4000-8000-000000000001", "controller": true}]}}),
    )
    .await;

    w.request(node, "Drain_Required").await;
    eventually("the node is cordoned and Draining", LIMIT, || async {
        (w.unschedulable(node).await && w.current(node).await == "Draining").then_some(())
    })
    .await;
    // The eviction was accepted: the pod is being deleted gracefully (30 s by default), and
    // with no kubelet it stays Terminating.
    let evicted = eventually("the SR-IOV pod is evicted", LIMIT, || async {
        let p = w.pods().get("vf-user").await.unwrap();
        p.metadata.deletion_timestamp.is_some().then_some(p)
    })
    .await;
    assert_eq!(evicted.uid(), vf_user.uid());
    assert_eq!(evicted.metadata.deletion_grace_period_seconds, Some(30));
    // Not complete while the pod is still there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.current(node).await, "Draining");
    let progressing = w.condition(node, "DrainProgressing").await.unwrap();
    assert_eq!(progressing.0, "True", "{progressing:?}");

    // The kubelet's part: the container stopped, the pod object goes.
    w.pods()
        .delete("vf-user", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("DrainComplete after the pod is gone", LIMIT, || async {
        (w.current(node).await == "DrainComplete").then_some(())
    })
    .await;
    for untouched in ["plain", "ds-pod"] {
        let p = w.pods().get(untouched).await.unwrap();
        assert!(p.metadata.deletion_timestamp.is_none(), "{untouched} was evicted");
    }
    assert!(
        w.unschedulable(node).await,
        "still cordoned while the daemon applies"
    );
    let complete = w.condition(node, "DrainComplete").await.unwrap();
    assert_eq!(
        (complete.0.as_str(), complete.1.as_str()),
        ("True", "DrainCompleted")
    );

    // The daemon applied and says Idle.
    w.request(node, "Idle").await;
    eventually("uncordoned and Idle", LIMIT, || async {
        (!w.unschedulable(node).await && w.current(node).await == "Idle").then_some(())
    })
    .await;
    let complete = eventually("conditions back to idle", LIMIT, || async {
        w.condition(node, "DrainComplete")
            .await
            .filter(|c| c.1 == "DrainNotNeeded")
    })
    .await;
    assert_eq!(complete.0, "False");

    let events = eventually("the CompleteDrain event", LIMIT, || async {
        let e = w.events(node).await;
        e.iter().any(|e| e.1 == "CompleteDrain").then_some(e)
    })
    .await;
    assert!(events.iter().all(|e| e.0 == "DrainController"), "{events:?}");
    let actions: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert!(actions.contains(&"DrainNode"), "{events:?}");
    assert!(events.iter().any(|e| e.3 == "node drain completed"), "{events:?}");
    // Converged: the controller's own writes (annotations, conditions, events) do not feed
    // back into more writes.
    let state_rv = w.states().get(node).await.unwrap().resource_version();
    let node_rv = w.nodes().get(node).await.unwrap().resource_version();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.states().get(node).await.unwrap().resource_version(), state_rv);
    assert_eq!(w.nodes().get(node).await.unwrap().resource_version(), node_rv);
    let metrics = w.metrics.encode().unwrap();
    assert!(
        metrics.contains("sriov_operator_reconcile_duration_seconds_count{controller=\"drain\"}"),
        "{metrics}"
    );
}

/// `Reboot_Required` evicts every pod but the DaemonSet's; a pod with
/// `terminationGracePeriodSeconds: 0` is deleted by the eviction itself (the apiserver deletes
/// at once when the grace period is 0), so no kubelet is needed to finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_required_evicts_all_but_daemonset_pods() {
    let Some(w) = World::new("drain-reboot").await else {
        return;
    };
    let node = "drain-reboot-w1";
    // A second node, so this is not a single-node cluster whatever else runs.
    w.add_node(node, json!({})).await;
    w.add_node("drain-reboot-w2", json!({})).await;
    let quick = json!({"spec": {"terminationGracePeriodSeconds": 0}});
    w.add_pod("vf-user", node, true, quick.clone()).await;
    w.add_pod("plain", node, false, quick.clone()).await;
    w.add_pod(
        "ds-pod",
        node,
        false,
        json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet",
            "name": "node-agent", "uid": "6a1d5f4e-0000-4000-8000-000000000002", "controller": true}]}}),
    )
    .await;
    w.add_pod("elsewhere", "drain-reboot-w2", false, quick).await;

    w.request(node, "Reboot_Required").await;
    eventually("DrainComplete", LIMIT, || async {
        (w.current(node).await == "DrainComplete").then_some(())
    })
    .await;
    let left: Vec<String> = w
        .pods()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["ds-pod", "elsewhere"]);
    assert!(w.unschedulable(node).await);
    assert!(!w.unschedulable("drain-reboot-w2").await);
}

/// Records every `current-state` the apiserver stores for the namespace's node states, in
/// the server's order (one watch), and returns the largest number of nodes that were
/// `Draining`/`DrainComplete` at the same time, plus the order in which nodes first drained.
async fn watch_drains(
    states: Api<SriovNetworkNodeState>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> (usize, Vec<String>) {
    let mut stream = std::pin::pin!(watcher(states, watcher::Config::default()).applied_objects());
    let mut now: BTreeMap<String, String> = BTreeMap::new();
    let mut peak = 0;
    let mut order = Vec::new();
    let mut stop = stop;
    loop {
        tokio::select! {
            _ = &mut stop => return (peak, order),
            ev = stream.next() => {
                let Some(Ok(s)) = ev else { continue };
                let cur = s.annotations().get(CURRENT_STATE).cloned().unwrap_or_default();
                if cur == "Draining" && now.get(&s.name_any()) != Some(&cur) {
                    order.push(s.name_any());
                }
                now.insert(s.name_any(), cur);
                let busy = now.values().filter(|v| *v == "Draining" || *v == "DrainComplete").count();
                peak = peak.max(busy);
            }
        }
    }
}

async fn add_pool(w: &World, name: &str, selector: serde_json::Value, max: serde_json::Value) {
    let pool: SriovNetworkPoolConfig = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkPoolConfig",
        "metadata": {"name": name},
        "spec": {"nodeSelector": {"matchLabels": selector}, "maxUnavailable": max}
    }))
    .unwrap();
    Api::<SriovNetworkPoolConfig>::namespaced(w.client.clone(), &w.ns)
        .create(&PostParams::default(), &pool)
        .await
        .unwrap();
}

/// Two nodes of a `maxUnavailable: 1` pool ask at once: one drains, the other waits (its
/// conditions say why) and starts only after the first is back to `Idle`. The watch sees
/// every stored state in order, so "never two at once" is checked on all of them, not samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_max_unavailable_one_drains_one_node_at_a_time() {
    let Some(w) = World::new("drain-pool").await else {
        return;
    };
    add_pool(&w, "rack-a", json!({"drain-pool": "a"}), json!(1)).await;
    let (a, b) = ("drain-pool-a1", "drain-pool-a2");
    for n in [a, b] {
        w.add_node(n, json!({"drain-pool": "a"})).await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let watch = tokio::spawn(watch_drains(w.states(), rx));
    tokio::time::sleep(Duration::from_millis(300)).await;

    w.request(a, "Drain_Required").await;
    w.request(b, "Drain_Required").await;
    let first = eventually("one node DrainComplete", LIMIT, || async {
        for n in [a, b] {
            if w.current(n).await == "DrainComplete" {
                return Some(n);
            }
        }
        None
    })
    .await;
    let second = if first == a { b } else { a };
    let pending = eventually("the other is told it waits", LIMIT, || async {
        w.condition(second, "DrainComplete")
            .await
            .filter(|c| c.1 == "DrainPending" && !c.2.is_empty())
    })
    .await;
    assert!(pending.2.contains("pool rack-a allows 1"), "{pending:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        w.current(second).await,
        "Idle",
        "the second waits while the first holds the slot"
    );
    assert!(!w.unschedulable(second).await);

    w.request(first, "Idle").await;
    eventually("the second drains once the first is Idle", LIMIT, || async {
        (w.current(second).await == "DrainComplete").then_some(())
    })
    .await;
    assert_eq!(w.current(first).await, "Idle");
    w.request(second, "Idle").await;
    eventually("both Idle", LIMIT, || async {
        (w.current(second).await == "Idle").then_some(())
    })
    .await;
    tx.send(()).unwrap();
    let (peak, order) = watch.await.unwrap();
    assert_eq!(peak, 1, "two nodes of a maxUnavailable: 1 pool drained at once");
    assert_eq!(order, [first, second]);
}

/// `maxUnavailable: "50%"` of a 4-node pool: two drain at once, the other two wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_pool_drains_its_share_at_once() {
    let Some(w) = World::new("drain-pct").await else {
        return;
    };
    add_pool(&w, "half", json!({"drain-pct": "x"}), json!("50%")).await;
    let nodes: Vec<String> = (1..=4).map(|i| format!("drain-pct-w{i}")).collect();
    for n in &nodes {
        w.add_node(n, json!({"drain-pct": "x"})).await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let watch = tokio::spawn(watch_drains(w.states(), rx));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in &nodes {
        w.request(n, "Drain_Required").await;
    }
    let done = eventually("two nodes DrainComplete", LIMIT, || async {
        let mut done = Vec::new();
        for n in &nodes {
            if w.current(n).await == "DrainComplete" {
                done.push(n.clone());
            }
        }
        (done.len() == 2).then_some(done)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut busy = 0;
    for n in &nodes {
        if w.current(n).await != "Idle" {
            busy += 1;
        }
    }
    assert_eq!(busy, 2, "50% of 4 is 2");
    for n in &done {
        w.request(n, "Idle").await;
    }
    eventually("the other two drain", LIMIT, || async {
        let mut complete = 0;
        for n in &nodes {
            if !done.contains(n) && w.current(n).await == "DrainComplete" {
                complete += 1;
            }
        }
        (complete == 2).then_some(())
    })
    .await;
    tx.send(()).unwrap();
    let (peak, order) = watch.await.unwrap();
    assert_eq!(peak, 2);
    assert_eq!(order.len(), 4);
}

/// A node state and Node without the handshake annotations (a daemon that has not started
/// yet): the controller creates them as `Idle`, as upstream, so the daemon and tools find them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_handshake_annotations_are_created_as_idle() {
    let Some(w) = World::new("drain-init").await else {
        return;
    };
    let node = "drain-init-w1";
    let n: k8s_openapi::api::core::v1::Node =
        serde_json::from_value(json!({"metadata": {"name": node}})).unwrap();
    w.nodes().create(&PostParams::default(), &n).await.unwrap();
    let s: SriovNetworkNodeState = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": node}, "spec": {}
    }))
    .unwrap();
    w.states().create(&PostParams::default(), &s).await.unwrap();
    eventually("annotations created", LIMIT, || async {
        let s = w.states().get(node).await.unwrap();
        let n = w.nodes().get(node).await.unwrap();
        let idle = |v: Option<&String>| v.map(String::as_str) == Some("Idle");
        (idle(s.annotations().get(CURRENT_STATE))
            && idle(s.annotations().get(sriov_api::keys::DESIRED_STATE))
            && idle(n.annotations().get(sriov_api::keys::NODE_DRAIN_STATE)))
        .then_some(())
    })
    .await;
    assert!(!w.unschedulable(node).await);
}

/// The operator restarts while a node is `Draining` (an evicted pod still terminating): the new
/// controller, with nothing in memory, picks the drain up from the annotations and completes it
/// once the pod is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_resumes_a_drain_in_progress() {
    let Some(mut w) = World::new("drain-resume").await else {
        return;
    };
    let node = "drain-resume-w1";
    w.add_node(node, json!({})).await;
    w.add_pod("vf-user", node, true, json!({})).await;
    w.request(node, "Drain_Required").await;
    eventually("the SR-IOV pod is evicted", LIMIT, || async {
        let p = w.pods().get("vf-user").await.unwrap();
        p.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await;
    assert_eq!(w.current(node).await, "Draining");

    w.restart_controller().await;
    w.pods()
        .delete("vf-user", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("the new controller completes the drain", LIMIT, || async {
        (w.current(node).await == "DrainComplete").then_some(())
    })
    .await;
    w.request(node, "Idle").await;
    eventually("uncordoned and Idle", LIMIT, || async {
        (!w.unschedulable(node).await && w.current(node).await == "Idle").then_some(())
    })
    .await;
}
