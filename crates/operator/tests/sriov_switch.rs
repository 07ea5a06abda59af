//! The one switch (`SriovOperatorConfig.spec.sriovConfig`) on a real kube-apiserver (v1.36.2,
//! `sriov-testcluster`): the controller generates one policy per NIC model of the selected nodes,
//! the render turns it into N VFs on every capable PF, an unrelated event writes nothing, a user's
//! policy is never touched, and turning the switch off deletes the generated policies so the
//! render drops the PFs and the daemon's plan resets them to 0 VFs.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use sriov_api::{SriovNetworkNodePolicy, SriovNetworkNodeState, SriovOperatorConfig};
use sriov_daemon::from_status::host_from_status;
use sriov_daemon::plan::{Action, PlanContext, plan};
use sriov_host::InterfaceExt;
use sriov_operator::admission::nics::SupportedNics;
use sriov_operator::controller::metrics::OperatorMetrics;
use sriov_operator::controller::{OperatorContext, sriov_switch};
use sriov_operator::render::{ClusterInput, NodeInfo, render_cluster};
use sriov_testcluster::Cluster;

const NS: &str = "switch-operator";
const LABEL: &str = "sriovnetwork.openshift.io/generated-by=sriov-config";

fn igb(pci: &str, num_vfs: i32) -> serde_json::Value {
    json!({"name": "eth1", "pciAddress": pci, "vendor": "8086", "deviceID": "10c9", "driver": "igb",
           "totalvfs": 7, "numVfs": num_vfs, "mtu": 1500, "linkType": "ETH"})
}

async fn wait_for<F, Fut, T>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn generated(api: &Api<SriovNetworkNodePolicy>) -> Vec<SriovNetworkNodePolicy> {
    let mut list = api
        .list(&ListParams::default().labels(LABEL))
        .await
        .unwrap()
        .items;
    list.sort_by_key(|p| p.name_any());
    list
}

/// What the operator's render makes of the cluster's objects as they are now.
async fn render_now(client: &kube::Client) -> BTreeMap<String, Vec<(String, i32)>> {
    let nodes: Vec<NodeInfo> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| NodeInfo {
            name: n.name_any(),
            labels: n.labels().clone(),
        })
        .collect();
    let states = Api::<SriovNetworkNodeState>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let interfaces: BTreeMap<String, Vec<InterfaceExt>> = states
        .iter()
        .map(|s| (s.name_any(), s.status.clone().unwrap_or_default().interfaces))
        .collect();
    let policies = Api::<SriovNetworkNodePolicy>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let rendered = render_cluster(&ClusterInput {
        namespace: NS,
        operator_config: None,
        nodes: &nodes,
        interfaces: &interfaces,
        policies: &policies,
        pools: &[],
        supported_nics: &SupportedNics::default(),
    })
    .unwrap();
    rendered
        .node_states
        .into_iter()
        .filter(|(node, _)| node.starts_with("sw-"))
        .map(|(node, spec)| {
            (
                node,
                spec.interfaces
                    .iter()
                    .map(|i| (i.pci_address.clone(), i.num_vfs))
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_switch_owns_one_policy_per_nic_model_and_turning_it_off_returns_the_nics_to_zero() {
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    // Two capable workers with an 82576 (the lab's igb), one worker without the capable label
    // whose NIC model must not get a policy.
    let nodes: Api<Node> = Api::all(client.clone());
    let states: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), NS);
    for (name, capable, iface) in [
        ("sw-a", true, igb("0000:00:03.0", 0)),
        ("sw-b", true, igb("0000:00:04.0", 0)),
        (
            "sw-c",
            false,
            json!({"name": "ens5", "pciAddress": "0000:05:00.0", "vendor": "8086",
                               "deviceID": "1592", "totalvfs": 256, "numVfs": 0}),
        ),
    ] {
        let mut labels = json!({"node-role.kubernetes.io/worker": "", "kubernetes.io/os": "linux"});
        if capable {
            labels["feature.node.kubernetes.io/network-sriov.capable"] = json!("true");
        }
        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
        let state: SriovNetworkNodeState = serde_json::from_value(json!({
            "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
            "metadata": {"name": name}, "spec": {}
        }))
        .unwrap();
        states.create(&PostParams::default(), &state).await.unwrap();
        states
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"syncStatus": "Succeeded", "interfaces": [iface]}})),
            )
            .await
            .unwrap();
    }
    // A user's own policy: the switch must never touch it.
    let policies: Api<SriovNetworkNodePolicy> = Api::namespaced(client.clone(), NS);
    let users: SriovNetworkNodePolicy = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": "users-own"},
        "spec": {"resourceName": "mine", "numVfs": 2, "nodeSelector": {"kubernetes.io/hostname": "nowhere"},
                 "nicSelector": {"vendor": "8086"}}
    }))
    .unwrap();
    let users = policies.create(&PostParams::default(), &users).await.unwrap();

    let configs: Api<SriovOperatorConfig> = Api::namespaced(client.clone(), NS);
    let config: SriovOperatorConfig = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovOperatorConfig",
        "metadata": {"name": "default"},
        "spec": {"sriovConfig": {"enabled": true, "numVfs": 4, "deviceType": "vfio-pci"}}
    }))
    .unwrap();
    let config = configs.create(&PostParams::default(), &config).await.unwrap();

    let ctx = OperatorContext {
        client: client.clone(),
        namespace: NS.to_string(),
        metrics: Arc::new(OperatorMetrics::new()),
    };
    let controller = tokio::spawn(sriov_switch::run(ctx.clone()));

    // One policy for the one NIC model of the selected nodes, owned by the config.
    let made = wait_for("the generated policy", || async {
        let list = generated(&policies).await;
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(
        made.iter().map(|p| p.name_any()).collect::<Vec<_>>(),
        ["sriov-config-8086-10c9"]
    );
    let p = &made[0];
    assert_eq!(p.spec.num_vfs, 4);
    assert_eq!(p.spec.device_type, "vfio-pci");
    assert_eq!(p.spec.resource_name, "sriov_vfs");
    assert_eq!(
        (
            p.spec.nic_selector.vendor.as_str(),
            p.spec.nic_selector.device_id.as_str()
        ),
        ("8086", "10c9")
    );
    let owner = &p.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("SriovOperatorConfig", "default", config.uid().unwrap().as_str())
    );

    // The render makes that 4 VFs on both capable nodes' PFs, nothing on the other node.
    let rendered = render_now(&client).await;
    assert_eq!(rendered["sw-a"], [("0000:00:03.0".to_string(), 4)]);
    assert_eq!(rendered["sw-b"], [("0000:00:04.0".to_string(), 4)]);
    assert_eq!(rendered["sw-c"], []);

    // An unrelated event (a label on a node) triggers a pass that writes nothing.
    let before = p.resource_version();
    nodes
        .patch(
            "sw-c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"unrelated": "x"}}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        generated(&policies).await[0].resource_version(),
        before,
        "a pass with nothing to change wrote"
    );

    // A bigger numVfs is cut to the model's totalvfs (7), as the webhook would require.
    configs
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sriovConfig": {"numVfs": 16}}})),
        )
        .await
        .unwrap();
    wait_for("numVfs cut to 7", || async {
        generated(&policies)
            .await
            .first()
            .filter(|p| p.spec.num_vfs == 7)
            .map(|_| ())
    })
    .await;

    // The daemon on sw-a reaches 7 VFs (status as it would report it).
    states
        .patch_status(
            "sw-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"interfaces": [igb("0000:00:03.0", 7)]}})),
        )
        .await
        .unwrap();

    // Switch off: the generated policy goes, the user's stays untouched.
    configs
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"sriovConfig": {"enabled": false}}})),
        )
        .await
        .unwrap();
    wait_for("generated policies deleted", || async {
        generated(&policies).await.is_empty().then_some(())
    })
    .await;
    let still = policies.get("users-own").await.unwrap();
    assert_eq!(
        still.resource_version(),
        users.resource_version(),
        "the user's policy was written"
    );

    // The render no longer configures the PF, and the daemon's plan for sw-a (7 VFs now, which
    // it configured) is to return it to 0 VFs.
    let rendered = render_now(&client).await;
    assert_eq!(rendered["sw-a"], []);
    let status = states.get("sw-a").await.unwrap().status.unwrap();
    let spec = sriov_api::NodeStateSpec::default();
    let plan = plan(
        &spec,
        &host_from_status(&status.interfaces),
        &PlanContext::default(),
    )
    .unwrap();
    let resets: Vec<(String, u32, u32)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::SetNumVfs { pf, from, to } => Some((pf.to_string(), *from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(resets, [("0000:00:03.0".to_string(), 7, 0)]);

    controller.abort();
    let metrics = ctx.metrics.encode().unwrap();
    assert!(
        metrics.contains("sriov_operator_reconcile_duration_seconds_count{controller=\"sriov-switch\"}"),
        "{metrics}"
    );
}
