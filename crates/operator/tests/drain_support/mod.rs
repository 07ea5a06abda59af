//! Shared by the drain controller's tests on the real kube-apiserver: one operator namespace
//! per test, Node objects without kubelets, node states as the node-state controller creates
//! them, the config daemon's side of the handshake played by the test, and the drain
//! controller itself (`controller::drain::run`) running in the test's runtime.
#![allow(clippy::unwrap_used, dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use sriov_api::SriovNetworkNodeState;
use sriov_api::keys::{CURRENT_STATE, DESIRED_STATE, NODE_DRAIN_STATE};
use sriov_operator::controller::OperatorContext;
use sriov_operator::controller::metrics::OperatorMetrics;
use sriov_testcluster::Cluster;
use tokio::task::JoinHandle;

pub const PREFIX: &str = "openshift.io";
pub const SRIOV_RESOURCE: &str = "openshift.io/intel_sriov";

pub struct World {
    pub client: Client,
    /// The operator namespace (node states, pools, events).
    pub ns: String,
    /// Where the workload pods live.
    pub app: String,
    pub metrics: Arc<OperatorMetrics>,
    controller: JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.controller.abort();
    }
}

/// The drain controller for operator namespace `ns`, running on the test's runtime.
fn start_controller(
    cluster: &'static Cluster,
    client: &Client,
    ns: &str,
    metrics: &Arc<OperatorMetrics>,
) -> JoinHandle<()> {
    let ctx = OperatorContext {
        client: client.clone(),
        namespace: ns.to_string(),
        metrics: metrics.clone(),
    };
    tokio::spawn(async move {
        let config = Some(cluster.config().clone());
        if let Err(e) =
            sriov_operator::controller::drain::run_with_config(ctx, PREFIX.to_string(), config).await
        {
            panic!("drain controller stopped: {e}");
        }
    })
}

impl World {
    /// Stops the drain controller (as a crash or a leader change would) and starts a new one
    /// with nothing in memory.
    pub async fn restart_controller(&mut self) {
        self.controller.abort();
        let _ = (&mut self.controller).await;
        let cluster = Cluster::shared().unwrap();
        self.controller = start_controller(cluster, &self.client, &self.ns, &self.metrics);
    }

    /// Namespaces `<name>-op` and `<name>-app`, the CRDs, and the drain controller running.
    pub async fn new(name: &str) -> Option<World> {
        let cluster = Cluster::shared()?;
        let client = cluster.client().unwrap();
        sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
            .await
            .unwrap();
        let ns = format!("{name}-op");
        let app = format!("{name}-app");
        for n in [&ns, &app] {
            let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": n}})).unwrap();
            Api::<Namespace>::all(client.clone())
                .create(&PostParams::default(), &obj)
                .await
                .unwrap();
        }
        let metrics = Arc::new(OperatorMetrics::new());
        let controller = start_controller(cluster, &client, &ns, &metrics);
        Some(World {
            client,
            ns,
            app,
            metrics,
            controller,
        })
    }

    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    pub fn states(&self) -> Api<SriovNetworkNodeState> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.app)
    }

    /// A Node object (no kubelet) and its node state, both at `Idle`, as the cluster looks
    /// after the daemon and the drain controller first met.
    pub async fn add_node(&self, name: &str, labels: serde_json::Value) {
        let node: Node = serde_json::from_value(json!({"metadata": {
            "name": name, "labels": labels, "annotations": {NODE_DRAIN_STATE: "Idle"}}}))
        .unwrap();
        self.nodes().create(&PostParams::default(), &node).await.unwrap();
        let state: SriovNetworkNodeState = serde_json::from_value(json!({
            "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
            "metadata": {"name": name, "annotations": {CURRENT_STATE: "Idle", DESIRED_STATE: "Idle"}},
            "spec": {}
        }))
        .unwrap();
        self.states()
            .create(&PostParams::default(), &state)
            .await
            .unwrap();
    }

    /// The config daemon's side: Node `state` and node state `desired-state`.
    pub async fn request(&self, node: &str, value: &str) {
        let p = json!({"metadata": {"annotations": {DESIRED_STATE: value}}});
        self.states()
            .patch(node, &PatchParams::default(), &Patch::Merge(&p))
            .await
            .unwrap();
        let p = json!({"metadata": {"annotations": {NODE_DRAIN_STATE: value}}});
        self.nodes()
            .patch(node, &PatchParams::default(), &Patch::Merge(&p))
            .await
            .unwrap();
    }

    pub async fn current(&self, node: &str) -> String {
        let s = self.states().get(node).await.unwrap();
        s.annotations().get(CURRENT_STATE).cloned().unwrap_or_default()
    }

    pub async fn unschedulable(&self, node: &str) -> bool {
        let n = self.nodes().get(node).await.unwrap();
        n.spec.and_then(|s| s.unschedulable).unwrap_or(false)
    }

    /// The node state's condition `type_` as (status, reason, message).
    pub async fn condition(&self, node: &str, type_: &str) -> Option<(String, String, String)> {
        let s = self.states().get(node).await.unwrap();
        s.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_)
            .map(|c| (c.status, c.reason, c.message))
    }

    /// A pod bound to `node` (no scheduler here). `sriov`: its container requests a VF.
    /// `grace`: `terminationGracePeriodSeconds` (`None`: the default 30 s).
    pub async fn add_pod(&self, name: &str, node: &str, sriov: bool, extra: serde_json::Value) -> Pod {
        let resources = if sriov {
            json!({"requests": {SRIOV_RESOURCE: "1"}, "limits": {SRIOV_RESOURCE: "1"}})
        } else {
            json!({"requests": {"cpu": "10m"}})
        };
        let mut v = json!({
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "example/none", "resources": resources}]}
        });
        merge(&mut v, extra);
        let pod: Pod = serde_json::from_value(v).unwrap();
        self.pods().create(&PostParams::default(), &pod).await.unwrap()
    }

    /// Events on node state `node`: (reason, action, type, note).
    pub async fn events(&self, node: &str) -> Vec<(String, String, String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(self.client.clone(), &self.ns);
        let list = api.list(&ListParams::default()).await.unwrap();
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(node))
            .map(|e| {
                (
                    e.reason.unwrap_or_default(),
                    e.action.unwrap_or_default(),
                    e.type_.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

/// Polls `check` every 100 ms until it returns `Some`, failing after `limit` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
