//! Shared by the node-state controller tests and benchmark: objects created the way the
//! cluster's other actors create them (an admin's Nodes and config, the config daemon's node
//! state with its reported hardware), the controller started in-process, the render core run
//! on the same input, and the API server's own request counters.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use sriov_api::{SriovNetworkNodePolicy, SriovNetworkNodeState, SriovNetworkPoolConfig, SriovOperatorConfig};
use sriov_host::InterfaceExt;
use sriov_operator::admission::nics::SupportedNics;
use sriov_operator::controller::OperatorContext;
use sriov_operator::controller::metrics::OperatorMetrics;
use sriov_operator::controller::node_states::{NodeStatesOptions, run_with};
use sriov_operator::render::{ClusterInput, ClusterRender, NodeInfo, render_cluster};

pub async fn install_crds(client: &kube::Client) {
    sriov_testcluster::crd::install(client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
}

pub async fn create_namespace(client: &kube::Client, ns: &str) {
    let body: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &body)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("namespace {ns}: {e}"),
    }
}

/// The `default` SriovOperatorConfig, as an admin (or the operator binary) creates it.
pub async fn create_operator_config(client: &kube::Client, ns: &str, selector: BTreeMap<String, String>) {
    let config: SriovOperatorConfig = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovOperatorConfig",
        "metadata": {"name": "default", "namespace": ns},
        "spec": {"configDaemonNodeSelector": selector},
    }))
    .unwrap();
    Api::<SriovOperatorConfig>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &config)
        .await
        .unwrap();
}

pub async fn create_node(client: &kube::Client, name: &str, labels: &BTreeMap<String, String>) {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
}

/// What the config daemon does on a node: its node state's status with the discovered PFs
/// (the object is created first when the operator has not yet).
pub async fn report_interfaces(client: &kube::Client, ns: &str, node: &str, interfaces: &[InterfaceExt]) {
    let api: Api<SriovNetworkNodeState> = Api::namespaced(client.clone(), ns);
    let state: SriovNetworkNodeState = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": node, "namespace": ns}, "spec": {},
    }))
    .unwrap();
    match api.create(&PostParams::default(), &state).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("node state {node}: {e}"),
    }
    let status = json!({"status": {"interfaces": interfaces, "syncStatus": "Succeeded"}});
    api.patch_status(node, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// The node-state controller in this process, with its own metrics.
pub fn spawn_controller(
    client: &kube::Client,
    ns: &str,
    options: NodeStatesOptions,
) -> (tokio::task::JoinHandle<()>, Arc<OperatorMetrics>) {
    let metrics = Arc::new(OperatorMetrics::new());
    let ctx = OperatorContext {
        client: client.clone(),
        namespace: ns.to_string(),
        metrics: metrics.clone(),
    };
    let task = tokio::spawn(async move {
        if let Err(e) = run_with(ctx, options).await {
            panic!("node-state controller stopped: {e}");
        }
    });
    (task, metrics)
}

/// Everything the render reads, listed from the cluster.
pub struct ClusterObjects {
    pub config: Option<SriovOperatorConfig>,
    pub nodes: Vec<NodeInfo>,
    pub interfaces: BTreeMap<String, Vec<InterfaceExt>>,
    pub policies: Vec<SriovNetworkNodePolicy>,
    pub pools: Vec<SriovNetworkPoolConfig>,
    pub node_states: BTreeMap<String, SriovNetworkNodeState>,
    pub config_map: Option<ConfigMap>,
    /// Each Node's device-plugin label.
    pub labels: BTreeMap<String, Option<String>>,
}

pub async fn list_objects(client: &kube::Client, ns: &str) -> ClusterObjects {
    let lp = Default::default();
    let nodes = Api::<Node>::all(client.clone()).list(&lp).await.unwrap().items;
    let states = Api::<SriovNetworkNodeState>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .unwrap()
        .items;
    ClusterObjects {
        config: Api::<SriovOperatorConfig>::namespaced(client.clone(), ns)
            .get_opt("default")
            .await
            .unwrap(),
        labels: nodes
            .iter()
            .map(|n| {
                let l = n.metadata.labels.as_ref();
                let v = l
                    .and_then(|l| l.get("sriovnetwork.openshift.io/device-plugin"))
                    .cloned();
                (n.metadata.name.clone().unwrap(), v)
            })
            .collect(),
        nodes: nodes
            .iter()
            .map(|n| NodeInfo {
                name: n.metadata.name.clone().unwrap(),
                labels: n.metadata.labels.clone().unwrap_or_default(),
            })
            .collect(),
        interfaces: states
            .iter()
            .filter_map(|s| Some((s.metadata.name.clone()?, s.status.as_ref()?.interfaces.clone())))
            .collect(),
        policies: Api::<SriovNetworkNodePolicy>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .unwrap()
            .items,
        pools: Api::<SriovNetworkPoolConfig>::namespaced(client.clone(), ns)
            .list(&lp)
            .await
            .unwrap()
            .items,
        node_states: states
            .into_iter()
            .map(|s| (s.metadata.name.clone().unwrap(), s))
            .collect(),
        config_map: Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get_opt("device-plugin-config")
            .await
            .unwrap(),
    }
}

/// What the render core (`sriovctl render`'s) gives for these objects.
pub fn render_expected(objects: &ClusterObjects, ns: &str) -> ClusterRender {
    let nics = SupportedNics::builtin();
    let input = ClusterInput {
        namespace: ns,
        operator_config: objects.config.as_ref().map(|c| &c.spec),
        nodes: &objects.nodes,
        interfaces: &objects.interfaces,
        policies: &objects.policies,
        pools: &objects.pools,
        supported_nics: &nics,
    };
    render_cluster(&input).unwrap()
}

/// Differences between the cluster and `expected` (empty: converged). Nodes outside the
/// config-daemon selector are only checked for having no node state.
pub fn differences(objects: &ClusterObjects, expected: &ClusterRender) -> Vec<String> {
    let mut out = Vec::new();
    for (name, spec) in &expected.node_states {
        match objects.node_states.get(name) {
            None => out.push(format!("{name}: no node state")),
            Some(s) if s.spec != *spec => out.push(format!(
                "{name}: spec {} != rendered {}",
                serde_json::to_string(&s.spec).unwrap(),
                serde_json::to_string(spec).unwrap()
            )),
            Some(_) => {}
        }
    }
    for name in objects.node_states.keys() {
        if !expected.node_states.contains_key(name) {
            out.push(format!("{name}: node state not rendered"));
        }
    }
    let data = objects.config_map.as_ref().and_then(|c| c.data.clone());
    if data.as_ref() != Some(&expected.device_plugin_config) {
        out.push(format!(
            "ConfigMap data {data:?} != {:?}",
            expected.device_plugin_config
        ));
    }
    for (node, label) in &expected.device_plugin_labels {
        if objects.labels.get(node).cloned().flatten().as_deref() != Some(*label) {
            out.push(format!("{node}: label {:?} != {label}", objects.labels.get(node)));
        }
    }
    out
}

pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) if start.elapsed() > limit => panic!("{what} not reached after {limit:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Verbs that change something (server-side apply is counted as `APPLY`).
pub const WRITE_VERBS: [&str; 6] = ["POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"];

/// Writes among `counts`, restricted to `resources` (prefix match on `resource[/sub]`).
pub fn writes(counts: &BTreeMap<(String, String), u64>, resource: &str) -> u64 {
    counts
        .iter()
        .filter(|((verb, res), _)| {
            WRITE_VERBS.contains(&verb.as_str())
                && (res == resource || res.starts_with(&format!("{resource}/")))
        })
        .map(|(_, n)| n)
        .sum()
}

pub fn e810(name: &str, pci: &str) -> InterfaceExt {
    InterfaceExt {
        name: name.into(),
        pci_address: pci.into(),
        vendor: "8086".into(),
        device_id: "1593".into(),
        driver: "ice".into(),
        mtu: 1500,
        total_vfs: 64,
        link_type: "ETH".into(),
        ..Default::default()
    }
}

/// Events (`events.k8s.io/v1`) about the node state `name` in `ns`: (type, reason, note, regarding uid).
pub async fn node_state_events(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Vec<(String, String, String, String)> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("SriovNetworkNodeState") && r.name.as_deref() == Some(name)
            })
        })
        .map(|e| {
            let uid = e
                .regarding
                .as_ref()
                .and_then(|r| r.uid.clone())
                .unwrap_or_default();
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
                uid,
            )
        })
        .collect()
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
