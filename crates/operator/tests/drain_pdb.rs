//! A PodDisruptionBudget blocking a drain, on the real kube-apiserver with the real
//! kube-controller-manager (its disruption controller computes the budget's status, which the
//! Eviction API consults). A separate test binary from `drain_controller.rs` because the
//! controller-manager's garbage collector and DaemonSet controller would act on that file's
//! hand-made objects.
//!
//! There is no kubelet, so the test writes the pod's status as a kubelet would (Running,
//! Ready): the Eviction API ignores budgets for Pending pods. The budget (`minAvailable: 1`)
//! then counts 1 healthy pod of 1 needed and allows no disruption, and the Eviction API
//! answers 429. Upstream retries that silently for ever with the node cordoned; here the node
//! state says so.
#![allow(clippy::unwrap_used)]

mod drain_support;

use std::time::{Duration, Instant};

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sriov_testcluster::{Cluster, require};

use drain_support::{World, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdb_blocking_eviction_is_reported_in_the_node_state_and_retried() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let Some(()) = require(cluster.start_control_loops()) else {
        return;
    };
    let Some(w) = World::new("drain-pdb").await else {
        return;
    };
    let node = "drain-pdb-w1";
    w.add_node(node, json!({})).await;
    w.add_node("drain-pdb-w2", json!({})).await;
    w.add_pod(
        "guarded",
        node,
        true,
        json!({"spec": {"terminationGracePeriodSeconds": 0}}),
    )
    .await;
    // The kubelet's part: the pod runs and is Ready.
    w.pods()
        .patch_status(
            "guarded",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"}]}})),
        )
        .await
        .unwrap();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(w.client.clone(), &w.app);
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "metadata": {"name": "keep-one"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}
    }))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    // The disruption controller has looked at it (else the API refuses every eviction with
    // "still being processed", which would test something else).
    eventually(
        "the disruption controller observed the budget",
        Duration::from_secs(30),
        || async {
            let p = pdbs.get("keep-one").await.unwrap();
            let st = p.status?;
            (st.observed_generation == p.metadata.generation
                && st.expected_pods == 1
                && st.current_healthy == 1)
                .then_some(())
        },
    )
    .await;

    let asked = Instant::now();
    w.request(node, "Drain_Required").await;
    let degraded = eventually(
        "DrainDegraded names the budget",
        Duration::from_secs(20),
        || async { w.condition(node, "DrainDegraded").await.filter(|c| c.0 == "True") },
    )
    .await;
    let reported_after = asked.elapsed();
    assert_eq!(degraded.1, "DrainFailed");
    assert!(
        degraded.2.contains("guarded") && degraded.2.contains("keep-one"),
        "{degraded:?}"
    );
    assert_eq!(w.current(node).await, "Draining");
    assert!(w.unschedulable(node).await);
    let events = w.events(node).await;
    assert!(
        events
            .iter()
            .any(|e| e.2 == "Warning" && e.1 == "DrainNode" && e.3.contains("keep-one")),
        "{events:?}"
    );
    // Still there and still blocked a few retries later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pod = w.pods().get("guarded").await.unwrap();
    assert!(pod.metadata.deletion_timestamp.is_none());
    assert_eq!(w.current(node).await, "Draining");

    // The budget goes away: the next retry evicts, the drain completes, the report clears.
    pdbs.delete("keep-one", &DeleteParams::default()).await.unwrap();
    let unblocked = Instant::now();
    eventually(
        "DrainComplete once the budget is gone",
        Duration::from_secs(45),
        || async { (w.current(node).await == "DrainComplete").then_some(()) },
    )
    .await;
    let degraded = w.condition(node, "DrainDegraded").await.unwrap();
    assert_eq!(degraded.0, "False", "{degraded:?}");
    assert!(w.pods().get_opt("guarded").await.unwrap().is_none());
    eprintln!(
        "PDB block reported {} ms after the request; drain completed {} ms after the budget was deleted",
        reported_after.as_millis(),
        unblocked.elapsed().as_millis()
    );
}
