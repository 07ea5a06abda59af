//! The node-state controller on the real kube-apiserver (sriov-testcluster) with the project's
//! CRDs: the shared example policies applied with the real `kubectl` converge to exactly what
//! the render core (`sriovctl render`'s) gives; a node state outlives its Node by the stale
//! delay; the metrics report VFs per resource and nodes by sync status. No kubelet: Nodes are
//! created as objects and the config daemon's reports are written as it writes them.
#![allow(clippy::unwrap_used)]

mod node_states_support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use node_states_support::*;
use serde_json::json;
use sriov_api::{SriovNetworkNodePolicy, SriovNetworkNodeState};
use sriov_operator::controller::node_states::NodeStatesOptions;
use sriov_operator::controller::node_states::plan::KEEP_UNTIL_ANNOTATION;
use sriov_testcluster::Cluster;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/examples")
}

#[tokio::test]
async fn the_examples_converge_to_what_the_render_core_gives() {
    let kubectl = sriov_test_support::require_binary!("kubectl");
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    install_crds(&client).await;
    // The examples' own namespace.
    let ns = "sriov-network-operator";
    create_namespace(&client, ns).await;
    let daemon = labels(&[("ex-daemon", "yes")]);
    create_operator_config(&client, ns, daemon.clone()).await;
    let capable = ("feature.node.kubernetes.io/network-sriov.capable", "true");
    // ex-w1: both example NICs; ex-w2: capable, not discovered yet; ex-w3: not capable;
    // ex-cp: runs no config daemon.
    create_node(&client, "ex-w1", &labels(&[("ex-daemon", "yes"), capable])).await;
    create_node(&client, "ex-w2", &labels(&[("ex-daemon", "yes"), capable])).await;
    create_node(&client, "ex-w3", &labels(&[("ex-daemon", "yes")])).await;
    create_node(&client, "ex-cp", &labels(&[capable])).await;
    let mut igb = e810("eth1v", "0000:66:00.0");
    igb.device_id = "10c9".into();
    igb.total_vfs = 8;
    igb.driver = "igb".into();
    report_interfaces(&client, ns, "ex-w1", &[e810("ens1f0", "0000:65:00.0"), igb]).await;
    report_interfaces(&client, ns, "ex-w3", &[e810("ens2f0", "0000:3b:00.0")]).await;

    let (controller, metrics) = spawn_controller(&client, ns, NodeStatesOptions::default());
    for file in ["policy-vm-netdevice.yaml", "policy-harvester.yaml"] {
        let out = std::process::Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig())
            .args(["apply", "-f"])
            .arg(examples().join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl apply {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let c = &client;
    wait_for("node states = render", Duration::from_secs(20), || async move {
        let objects = list_objects(c, ns).await;
        let diff = differences(&objects, &render_expected(&objects, ns));
        if diff.is_empty() {
            Ok(())
        } else {
            Err(format!("{diff:#?}"))
        }
    })
    .await;

    let objects = list_objects(&client, ns).await;
    let expected = render_expected(&objects, ns);
    // The render gave something real: both policies on ex-w1's two NICs, nothing elsewhere.
    assert_eq!(
        expected.node_states.keys().collect::<Vec<_>>(),
        ["ex-w1", "ex-w2", "ex-w3"]
    );
    let w1 = &objects.node_states["ex-w1"].spec;
    let vfs: Vec<(&str, i32)> = w1
        .interfaces
        .iter()
        .map(|i| (i.pci_address.as_str(), i.num_vfs))
        .collect();
    assert_eq!(vfs, [("0000:65:00.0", 2), ("0000:66:00.0", 8)]);
    assert!(objects.node_states["ex-w2"].spec.interfaces.is_empty());
    assert!(objects.node_states["ex-w3"].spec.interfaces.is_empty());
    assert_eq!(objects.labels["ex-w1"].as_deref(), Some("Enabled"));
    assert_eq!(objects.labels["ex-w3"].as_deref(), Some("Disabled"));
    assert_eq!(objects.labels["ex-cp"], None);
    let cm = objects.config_map.as_ref().unwrap();
    assert!(cm.data.as_ref().unwrap()["ex-w1"].contains("\"resourceName\":\"intelnics\""));
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("SriovOperatorConfig", "default")
    );
    let state_owner = &objects.node_states["ex-w1"]
        .metadata
        .owner_references
        .as_ref()
        .unwrap()[0];
    assert_eq!(state_owner.uid, owner.uid);

    // 2 VFs of the E810 + the Harvester range on the 8-VF PF, both resource "intelnics".
    let rendered_vfs: i64 = w1
        .interfaces
        .iter()
        .flat_map(|i| &i.vf_groups)
        .map(|g| {
            let (a, b) = g.vf_range.split_once('-').unwrap();
            b.parse::<i64>().unwrap() - a.parse::<i64>().unwrap() + 1
        })
        .sum();
    // The gauges are computed from the states a pass read, so a state that pass created (ex-w2's,
    // no status yet: "Unknown") is counted by the pass its watch event triggers: wait for it.
    let metrics = &metrics;
    wait_for("metrics = objects", Duration::from_secs(20), || async move {
        let text = metrics.encode().unwrap();
        let vf_line = text
            .lines()
            .find(|l| l.starts_with("sriov_operator_resource_vfs{resource=\"intelnics\"}"))
            .ok_or_else(|| text.clone())?;
        let wanted = [
            format!(" {rendered_vfs}"),
            "sriov_operator_nodes{sync_status=\"Succeeded\"} 2".to_string(),
            "sriov_operator_nodes{sync_status=\"Unknown\"} 1".to_string(),
        ];
        if vf_line.ends_with(&wanted[0]) && text.contains(&wanted[1]) && text.contains(&wanted[2]) {
            Ok(())
        } else {
            Err(format!("want {wanted:?} in:\n{text}"))
        }
    })
    .await;
    let text = metrics.encode().unwrap();
    assert!(text.contains("sriov_operator_reconcile_duration_seconds_count{controller=\"node-states\"}"));
    controller.abort();
}

#[tokio::test]
async fn a_node_state_outlives_its_node_by_the_stale_delay() {
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    install_crds(&client).await;
    let ns = "stale-delay";
    create_namespace(&client, ns).await;
    let daemon = labels(&[("stale-daemon", "yes")]);
    create_operator_config(&client, ns, daemon.clone()).await;
    for n in ["st-keep", "st-gone", "st-unselected"] {
        create_node(&client, n, &daemon).await;
        report_interfaces(&client, ns, n, &[e810("ens1f0", "0000:3b:00.0")]).await;
    }
    let delay = Duration::from_secs(3);
    let options = NodeStatesOptions {
        stale_delay: delay,
        ..Default::default()
    };
    let (controller, _) = spawn_controller(&client, ns, options);
    let nodes: &Api<Node> = &Api::all(client.clone());
    let states: &Api<SriovNetworkNodeState> = &Api::namespaced(client.clone(), ns);
    let c = &client;
    wait_for("labels set", Duration::from_secs(20), || async move {
        let objects = list_objects(c, ns).await;
        let diff = differences(&objects, &render_expected(&objects, ns));
        if diff.is_empty() {
            Ok(())
        } else {
            Err(format!("{diff:?}"))
        }
    })
    .await;

    nodes.delete("st-gone", &DeleteParams::default()).await.unwrap();
    // No longer selected for the config daemon: same as gone for its node state, and the
    // Node, still there, loses the device-plugin label.
    let unlabel = json!({"metadata": {"labels": {"stale-daemon": null}}});
    nodes
        .patch("st-unselected", &PatchParams::default(), &Patch::Merge(&unlabel))
        .await
        .unwrap();
    let marked_at = std::time::Instant::now();
    wait_for("keep-until annotations", Duration::from_secs(10), || async move {
        for n in ["st-gone", "st-unselected"] {
            let s = states.get(n).await.map_err(|e| e.to_string())?;
            if !s
                .metadata
                .annotations
                .unwrap_or_default()
                .contains_key(KEEP_UNTIL_ANNOTATION)
            {
                return Err(format!("{n}: no annotation yet"));
            }
        }
        let node = nodes.get("st-unselected").await.map_err(|e| e.to_string())?;
        match node
            .metadata
            .labels
            .unwrap_or_default()
            .get("sriovnetwork.openshift.io/device-plugin")
        {
            None => Ok(()),
            Some(v) => Err(format!("label still {v}")),
        }
    })
    .await;
    assert!(states.get_opt("st-keep").await.unwrap().is_some());
    wait_for(
        "stale node states deleted",
        delay + Duration::from_secs(10),
        || async move {
            let left: Vec<String> = states
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter_map(|s| s.metadata.name)
                .collect();
            if left == ["st-keep"] {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    )
    .await;
    // The keep-until annotation holds whole seconds: never deleted before the delay (less
    // the sub-second the annotation's rounding can take off).
    assert!(
        marked_at.elapsed() + Duration::from_secs(1) >= delay,
        "deleted after {:?}, delay {delay:?}",
        marked_at.elapsed()
    );
    controller.abort();
}

/// Events the controller publishes on a node state: `SpecChanged` (Normal) each time a pass
/// changes the spec, saying what changed; `PolicyNotRendered` (Warning) once for a policy the
/// node's hardware cannot hold, not again on later passes.
#[tokio::test]
async fn the_node_state_gets_events_for_spec_changes_and_unrenderable_policies() {
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    install_crds(&client).await;
    let ns = "state-events";
    create_namespace(&client, ns).await;
    let daemon = labels(&[("events-daemon", "yes")]);
    create_operator_config(&client, ns, daemon.clone()).await;
    create_node(&client, "ev-w1", &daemon).await;
    // totalvfs 64.
    report_interfaces(&client, ns, "ev-w1", &[e810("ens1f0", "0000:3b:00.0")]).await;
    let (controller, _) = spawn_controller(&client, ns, NodeStatesOptions::default());
    let policies: Api<SriovNetworkNodePolicy> = Api::namespaced(client.clone(), ns);
    let policy = |name: &str, num_vfs: i32, priority: i32| -> SriovNetworkNodePolicy {
        serde_json::from_value(json!({
            "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"resourceName": name.replace('-', "_"), "nodeSelector": {"events-daemon": "yes"},
                     "numVfs": num_vfs, "priority": priority, "nicSelector": {"pfNames": ["ens1f0"]}},
        }))
        .unwrap()
    };
    policies
        .create(&Default::default(), &policy("fits", 8, 10))
        .await
        .unwrap();
    let c = &client;
    let spec_changed = |note: &'static str| async move {
        let events = node_state_events(c, ns, "ev-w1").await;
        if events
            .iter()
            .any(|e| e.0 == "Normal" && e.1 == "SpecChanged" && e.2 == note)
        {
            Ok(events)
        } else {
            Err(format!("{events:?}"))
        }
    };
    wait_for(
        "SpecChanged for the new spec",
        Duration::from_secs(20),
        || async {
            spec_changed("policies fits; ens1f0 0000:3b:00.0 numVfs 8")
                .await
                .map(|_| ())
        },
    )
    .await;
    let uid = Api::<SriovNetworkNodeState>::namespaced(client.clone(), ns)
        .get("ev-w1")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let events = node_state_events(&client, ns, "ev-w1").await;
    assert!(
        events.iter().all(|e| e.3 == uid),
        "events regard the node state: {events:?}"
    );

    let patch = json!({"spec": {"numVfs": 16}});
    policies
        .patch("fits", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for("SpecChanged for numVfs 16", Duration::from_secs(20), || async {
        spec_changed("policies fits; ens1f0 0000:3b:00.0 numVfs 8 -> 16")
            .await
            .map(|_| ())
    })
    .await;

    // 100 VFs on a 64-VF PF (no webhook here to refuse it): not rendered, the spec stays.
    policies
        .create(&Default::default(), &policy("too-many", 100, 5))
        .await
        .unwrap();
    let warning = "policy too-many, PF 0000:3b:00.0: numVfs 100 exceeds the PF's totalvfs 64; policy not applied to this PF";
    wait_for("PolicyNotRendered", Duration::from_secs(20), || async {
        let events = node_state_events(c, ns, "ev-w1").await;
        if events
            .iter()
            .any(|e| e.0 == "Warning" && e.1 == "PolicyNotRendered" && e.2 == warning)
        {
            Ok(())
        } else {
            Err(format!("{events:?}"))
        }
    })
    .await;
    // Another pass (a Node relabelled) renders the same problem: no second warning, and the
    // spec did not change: no SpecChanged either.
    let relabel = json!({"metadata": {"labels": {"unrelated": "x"}}});
    Api::<Node>::all(client.clone())
        .patch("ev-w1", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = node_state_events(&client, ns, "ev-w1").await;
    let count = |reason: &str| events.iter().filter(|e| e.1 == reason).count();
    assert_eq!(count("PolicyNotRendered"), 1, "{events:?}");
    assert_eq!(count("SpecChanged"), 2, "{events:?}");
    controller.abort();
}
