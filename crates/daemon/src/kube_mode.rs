//! Kubernetes mode: this node's `SriovNetworkNodeState` (named after the node, in the operator
//! namespace) is the desired spec; status goes to its `status` subresource; disruptive changes go
//! through upstream's drain handshake (§1.10): the daemon sets the NodeState annotation
//! `desired-state` and the Node annotation `state` to `Drain_Required`, waits for the drain
//! controller's `current-state: DrainComplete`, applies, then sets both back to `Idle`.
//! Non-disruptive changes (the common case in sriov-rs) skip the handshake entirely.
//! The node is labelled `feature.node.kubernetes.io/network-sriov.capable=true` when discovery
//! finds an SR-IOV capable PF.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, WatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use sriov_api::drain::{DRAIN_COMPLETE, DRAIN_REQUIRED, IDLE};
use sriov_api::keys::{CURRENT_STATE, DESIRED_STATE, NODE_DRAIN_STATE};
use sriov_api::{NodeStateStatus, SriovNetworkNodeState};
use sriov_host::HostDevices;
use tokio::runtime::Handle;

use crate::engine::{Backend, Desired, DrainAnswer, Engine, IN_PROGRESS, SyncReport};
use crate::plan::Plan;

pub use sriov_api::keys::SRIOV_CAPABLE_LABEL;

/// The API side of one node.
pub struct KubeBackend {
    rt: Handle,
    states: Api<SriovNetworkNodeState>,
    nodes: Api<Node>,
    node: String,
    /// `current-state` annotation as last read (drain controller's side).
    pub current_state: String,
    /// `desired-state` annotation as last read or written (ours).
    pub desired_state: String,
    /// The capable label value last written (`None`: not written by this process yet).
    labelled: Option<bool>,
    last_status: Option<NodeStateStatus>,
}

impl KubeBackend {
    pub fn new(rt: Handle, client: Client, namespace: &str, node: &str) -> Self {
        KubeBackend {
            rt,
            states: Api::namespaced(client.clone(), namespace),
            nodes: Api::all(client),
            node: node.to_string(),
            current_state: String::new(),
            desired_state: String::new(),
            labelled: None,
            last_status: None,
        }
    }

    /// Reads this node's SriovNetworkNodeState (`None` until the operator creates it).
    pub fn fetch(&mut self) -> kube::Result<Option<SriovNetworkNodeState>> {
        let obj = self.rt.block_on(self.states.get_opt(&self.node))?;
        if let Some(o) = &obj {
            let ann = o.annotations();
            self.current_state = ann.get(CURRENT_STATE).cloned().unwrap_or_default();
            self.desired_state = ann.get(DESIRED_STATE).cloned().unwrap_or_default();
        }
        Ok(obj)
    }

    /// Sets the capable label from discovery (writes only when it changes).
    pub fn label(&mut self, devices: &HostDevices) {
        let capable = devices.pfs.iter().any(|p| p.sriov_capable());
        if self.labelled == Some(capable) {
            return;
        }
        let value = if capable {
            json!("true")
        } else {
            serde_json::Value::Null
        };
        let patch = json!({"metadata": {"labels": {SRIOV_CAPABLE_LABEL: value}}});
        match self.rt.block_on(
            self.nodes
                .patch(&self.node, &PatchParams::default(), &Patch::Merge(&patch)),
        ) {
            Ok(_) => self.labelled = Some(capable),
            Err(e) => tracing::warn!(node = %self.node, error = %e, "cannot label the node"),
        }
    }

    fn annotate(&mut self, value: &str) -> kube::Result<()> {
        let p = json!({"metadata": {"annotations": {DESIRED_STATE: value}}});
        self.rt.block_on(
            self.states
                .patch(&self.node, &PatchParams::default(), &Patch::Merge(&p)),
        )?;
        let p = json!({"metadata": {"annotations": {NODE_DRAIN_STATE: value}}});
        self.rt.block_on(
            self.nodes
                .patch(&self.node, &PatchParams::default(), &Patch::Merge(&p)),
        )?;
        self.desired_state = value.to_string();
        Ok(())
    }

    /// Blocks until the NodeState changes or `timeout` passes (a watch on this one object).
    pub fn wait_change(&self, resource_version: &str, timeout: Duration, stop: &AtomicBool) {
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={}", self.node))
            .timeout(timeout.as_secs() as u32);
        let fut = async {
            match self.states.watch(&wp, resource_version).await {
                Ok(stream) => {
                    let mut stream = Box::pin(stream);
                    let _ = stream.next().await;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "watch failed, polling");
                    tokio::time::sleep(timeout.min(Duration::from_secs(5))).await;
                }
            }
        };
        let stopped = async {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        self.rt.block_on(async {
            tokio::select! {
                _ = tokio::time::timeout(timeout + Duration::from_secs(5), fut) => {}
                _ = stopped => {}
            }
        });
    }
}

impl Backend for KubeBackend {
    fn publish(&mut self, status: &NodeStateStatus) {
        if self.last_status.as_ref() == Some(status) {
            return;
        }
        let patch = json!({"status": status});
        match self.rt.block_on(self.states.patch_status(
            &self.node,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )) {
            Ok(_) => self.last_status = Some(status.clone()),
            Err(e) => tracing::error!(node = %self.node, error = %e, "cannot publish status"),
        }
    }

    fn request_drain(&mut self, plan: &Plan) -> DrainAnswer {
        if self.current_state == DRAIN_COMPLETE {
            return DrainAnswer::Proceed;
        }
        if self.desired_state != DRAIN_REQUIRED
            && let Err(e) = self.annotate(DRAIN_REQUIRED)
        {
            return DrainAnswer::Wait(format!("cannot request the drain: {e}"));
        }
        let cur = if self.current_state.is_empty() {
            "unset"
        } else {
            self.current_state.as_str()
        };
        DrainAnswer::Wait(format!("{}; drain requested, current-state {cur}", plan.verdict))
    }

    fn release_drain(&mut self) {
        if let Err(e) = self.annotate(IDLE) {
            tracing::error!(node = %self.node, error = %e, "cannot release the drain");
        }
    }
}

/// One iteration: read the NodeState, label the node, sync. `None` when the NodeState does not
/// exist yet.
pub fn sync_once(
    engine: &Engine<'_>,
    backend: &mut KubeBackend,
) -> kube::Result<Option<(SyncReport, String)>> {
    let Some(obj) = backend.fetch()? else {
        return Ok(None);
    };
    if let Ok(devices) = engine.host.discover() {
        backend.label(&devices);
    }
    let desired = Desired {
        spec: obj.spec.clone(),
        generation: obj.metadata.generation.unwrap_or(0),
    };
    let report = engine.sync(&desired, backend);
    Ok(Some((report, obj.resource_version().unwrap_or_default())))
}

/// Runs the Kubernetes mode until SIGTERM/SIGINT.
pub fn run(engine: &Engine<'_>, node: &str, namespace: &str, resync: Duration) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    crate::signals::on_terminate({
        let stop = stop.clone();
        move || stop.store(true, Ordering::SeqCst)
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let client = rt.block_on(Client::try_default())?;
    let mut backend = KubeBackend::new(rt.handle().clone(), client, namespace, node);
    tracing::info!(node, namespace, "Kubernetes mode");
    while !stop.load(Ordering::SeqCst) {
        match sync_once(engine, &mut backend) {
            Ok(Some((report, rv))) => {
                // Waiting for a drain or after a failure: look again soon; else on change or resync.
                let soon = report.status.sync_status == IN_PROGRESS
                    || report.status.sync_status == crate::engine::FAILED;
                backend.wait_change(&rv, if soon { Duration::from_secs(5) } else { resync }, &stop);
            }
            Ok(None) => {
                tracing::info!(node, "no SriovNetworkNodeState for this node yet");
                std::thread::sleep(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::warn!(error = %e, "API error, retrying");
                std::thread::sleep(Duration::from_secs(5));
            }
        }
    }
    Ok(())
}
