//! Writes the node-state controller makes, counted by the real kube-apiserver itself
//! (`apiserver_request_total` on its `/metrics`): none once converged and 60 s pass with nothing
//! changing; relabelling one node of 100 writes exactly one node state. The controller's
//! Events (resource `events`) are counted apart: none when quiet, one for the relabel. One test
//! in this binary, so no other test's requests are counted.
#![allow(clippy::unwrap_used)]

mod node_states_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use node_states_support::*;
use serde_json::json;
use sriov_api::SriovNetworkNodePolicy;
use sriov_operator::controller::node_states::NodeStatesOptions;
use sriov_testcluster::Cluster;
use sriov_testcluster::metrics::{delta, request_counts};

const NS: &str = "writes";
const NODES: usize = 100;
const POOLS: usize = 5;

#[tokio::test]
async fn a_quiet_cluster_gets_no_write_and_one_relabel_writes_one_node_state() {
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    install_crds(&client).await;
    create_namespace(&client, NS).await;
    create_operator_config(&client, NS, labels(&[("writes-daemon", "yes")])).await;
    for n in 0..NODES {
        let name = format!("wr-{n:03}");
        let pool = format!("pool-{}", n % POOLS);
        create_node(
            &client,
            &name,
            &labels(&[("writes-daemon", "yes"), ("pool", &pool)]),
        )
        .await;
        let pfs = [e810("ens1f0", "0000:3b:00.0"), e810("ens1f1", "0000:3b:00.1")];
        report_interfaces(&client, NS, &name, &pfs).await;
    }
    let policies: Api<SriovNetworkNodePolicy> = Api::namespaced(client.clone(), NS);
    for p in 0..POOLS {
        let policy: SriovNetworkNodePolicy = serde_json::from_value(json!({
            "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
            "metadata": {"name": format!("pool-{p}"), "namespace": NS},
            "spec": {"resourceName": format!("res{p}"), "nodeSelector": {"pool": format!("pool-{p}")},
                     "numVfs": 4 + p, "nicSelector": {"pfNames": [if p % 2 == 0 { "ens1f0" } else { "ens1f1" }]}},
        }))
        .unwrap();
        policies.create(&PostParams::default(), &policy).await.unwrap();
    }

    let (controller, _) = spawn_controller(&client, NS, NodeStatesOptions::default());
    let c = &client;
    wait_for("convergence", Duration::from_secs(60), || async move {
        let objects = list_objects(c, NS).await;
        let diff = differences(&objects, &render_expected(&objects, NS));
        if diff.is_empty() {
            Ok(())
        } else {
            Err(format!("{} differences: {:?}", diff.len(), diff.first()))
        }
    })
    .await;
    // Every node state got its spec, so each gets one SpecChanged Event (published after the
    // pass's writes); wait for them so that none falls into the quiet minute.
    wait_for("100 SpecChanged events", Duration::from_secs(30), || async move {
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c.clone(), NS);
        let n = api
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("SpecChanged"))
            .count();
        if n == NODES {
            Ok(())
        } else {
            Err(format!("{n} events"))
        }
    })
    .await;
    // Let the watch events of the last writes arrive and any pass they trigger finish.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = request_counts(&client).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let quiet = delta(&before, &request_counts(&client).await);
    println!("requests in 60 quiet seconds: {quiet:?}");
    // Events are counted apart from the controller's object writes, and must be none too.
    for resource in ["sriovnetworknodestates", "configmaps", "nodes", "events"] {
        assert_eq!(
            writes(&quiet, resource),
            0,
            "{resource} written while nothing changed: {quiet:?}"
        );
    }

    // wr-000 moves from pool-0 (ens1f0, 4 VFs) to pool-1 (ens1f1, 5 VFs).
    let before = request_counts(&client).await;
    let relabel = json!({"metadata": {"labels": {"pool": "pool-1"}}});
    Api::<Node>::all(client.clone())
        .patch("wr-000", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();
    wait_for("wr-000 re-rendered", Duration::from_secs(10), || async move {
        let objects = list_objects(c, NS).await;
        let spec = &objects.node_states["wr-000"].spec;
        let diff = differences(&objects, &render_expected(&objects, NS));
        match spec.interfaces.first() {
            Some(i) if i.name == "ens1f1" && diff.is_empty() => Ok(()),
            _ => Err(format!("{diff:?}")),
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let relabelled = delta(&before, &request_counts(&client).await);
    println!("requests after one relabel: {relabelled:?}");
    assert_eq!(writes(&relabelled, "sriovnetworknodestates"), 1, "{relabelled:?}");
    // Its device-plugin config key changed: one ConfigMap write; the label stays Enabled, so
    // the only Node write is the test's relabel.
    assert_eq!(writes(&relabelled, "configmaps"), 1, "{relabelled:?}");
    assert_eq!(writes(&relabelled, "nodes"), 1, "{relabelled:?}");
    // And one Event, on that node state, saying what changed (counted apart from the writes).
    assert_eq!(writes(&relabelled, "events"), 1, "{relabelled:?}");
    let events = node_state_events(&client, NS, "wr-000").await;
    let changes: Vec<&str> = events
        .iter()
        .filter(|e| e.1 == "SpecChanged")
        .map(|e| e.2.as_str())
        .collect();
    assert_eq!(changes.len(), 2, "{events:?}");
    assert!(
        changes.contains(&"policies pool-1; ens1f1 0000:3b:00.1 numVfs 5; ens1f0 0000:3b:00.0 released"),
        "{changes:?}"
    );
    controller.abort();
}
