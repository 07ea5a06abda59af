//! The drain controller: upstream's annotation handshake (§1.10) as thin I/O around
//! [`drain_plan`](super::drain_plan).
//!
//! Reflectors on Nodes, node states and pools feed one loop: every change (or a finished
//! eviction task) re-plans from the caches, so a quiet cluster costs no request. Starting a
//! drain cordons the node (`spec.unschedulable`) and sets `current-state: Draining`; a task
//! per draining node then lists the node's pods (`spec.nodeName` field selector: one LIST per
//! attempt instead of a cluster-wide pod cache, which at thousands of pods would cost more
//! memory than the whole operator), evicts through the `policy/v1` Eviction API, and waits for
//! the pods to be gone; the loop then answers `DrainComplete`. When the daemon is back to
//! `Idle` the loop uncordons and answers `Idle`.
//!
//! An eviction refused with 429 (a PodDisruptionBudget) is retried with backoff, and — unlike
//! upstream, which retries silently for ever — shown on the node state as the condition
//! `DrainDegraded=True` naming the pod and the budget, with a Warning Event.
//!
//! Writes are JSON merge patches under [`FIELD_MANAGER`], not server-side apply: the node-state
//! controller applies the same objects' spec with that manager, and an apply here that carried
//! only annotations would remove its fields.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use sriov_api::drain::{DRAIN_COMPLETE, DRAINING, IDLE};
use sriov_api::keys::{CURRENT_STATE, DESIRED_STATE, NODE_DRAIN_STATE, USE_EXTERNAL_DRAINER};
use sriov_api::{SriovNetworkNodeState, SriovNetworkPoolConfig};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::drain_evict::Evictor;
use super::drain_plan::{Action, DrainCondition, DrainMode, NodeFacts, StateFacts, plan};
use super::drain_report::{EventSink, patch_params, publish, write_conditions};
use super::{FIELD_MANAGER, OperatorContext};

/// After a failed write the loop tries again this much later (upstream's
/// `DrainControllerRequeueTime`).
const RETRY: Duration = Duration::from_secs(5);

/// What stops the drain controller (it runs until the process ends otherwise).
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("the {0} watch ended")]
    WatchEnded(&'static str),
}

/// Runs the drain controller until a watch fails for good. `resource_prefix` is the
/// operator's `RESOURCE_PREFIX`: a `Drain_Required` evicts pods requesting `<prefix>…`.
/// Evictions go through a client built from the inferred configuration (in-cluster or
/// `KUBECONFIG`, as the binary's) without kube's retry layer: see [`run_with_config`].
pub async fn run(ctx: OperatorContext, resource_prefix: String) -> Result<(), DrainError> {
    let config = match kube::Config::infer().await {
        Ok(config) => Some(config),
        Err(e) => {
            // Evictions then go through the shared client, whose 429 retries delay a
            // PodDisruptionBudget report by minutes: say why.
            tracing::warn!(error = %e, "drain: no configuration for the eviction client (in-cluster or KUBECONFIG); using the shared client");
            None
        }
    };
    run_with_config(ctx, resource_prefix, config).await
}

/// [`run`], with the configuration for the eviction client given (`config` must point at the
/// cluster `ctx.client` talks to). kube's default client retries a 429 up to 15 times and
/// honours the apiserver's `Retry-After: 10`: a PodDisruptionBudget refusal would surface
/// only after ~150 s per pod. Evictions therefore use a client with `default_retry` off, so
/// the 429 comes back at once and is reported; this controller does its own backoff.
/// Without a configuration `ctx.client` evicts (reports then come late, not never).
pub async fn run_with_config(
    ctx: OperatorContext,
    resource_prefix: String,
    config: Option<kube::Config>,
) -> Result<(), DrainError> {
    let client = ctx.client.clone();
    let evicting = match config.map(|mut c| {
        c.default_retry = false;
        Client::try_from(c)
    }) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "no eviction client without retries; using the shared client");
            client.clone()
        }
        None => {
            tracing::warn!("no client configuration; evictions use the shared client (429s retried by kube)");
            client.clone()
        }
    };
    let wake = Arc::new(Notify::new());
    let (nodes, nodes_w) = reflector::store::<Node>();
    let (states, states_w) = reflector::store::<SriovNetworkNodeState>();
    let (pools, pools_w) = reflector::store::<SriovNetworkPoolConfig>();
    let watches = futures::future::try_join3(
        follow(
            "Nodes",
            // The cache keeps what the planner reads (labels, annotations, unschedulable): a
            // Node's status (images, conditions) and managedFields are most of its bytes.
            watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).modify(|n: &mut Node| {
                n.status = None;
                n.metadata.managed_fields = None;
            }),
            nodes_w,
            wake.clone(),
        ),
        follow(
            "SriovNetworkNodeStates",
            // Annotations and the status conditions matter here, not the discovered PFs/VFs.
            watcher(
                Api::<SriovNetworkNodeState>::namespaced(client.clone(), &ctx.namespace),
                watcher::Config::default(),
            )
            .modify(|s: &mut SriovNetworkNodeState| {
                s.metadata.managed_fields = None;
                if let Some(st) = s.status.as_mut() {
                    st.interfaces.clear();
                }
            }),
            states_w,
            wake.clone(),
        ),
        follow(
            "SriovNetworkPoolConfigs",
            watcher(
                Api::<SriovNetworkPoolConfig>::namespaced(client.clone(), &ctx.namespace),
                watcher::Config::default(),
            ),
            pools_w,
            wake.clone(),
        ),
    );
    let mut controller = Controller::new(ctx, resource_prefix, evicting, nodes, states, pools, wake.clone());
    let looping = async {
        // Plan only from complete caches: a half-listed pool would look like spare capacity.
        // (`wait_until_ready` fails only when its writer is dropped, i.e. the watch ended,
        // which the `watches` branch reports.)
        let _ = controller.nodes.wait_until_ready().await;
        let _ = controller.states.wait_until_ready().await;
        let _ = controller.pools.wait_until_ready().await;
        controller.run_loop().await
    };
    tokio::select! {
        r = watches => r.map(|_| ()),
        never = looping => match never {},
    }
}

/// Feeds one watch into its store and wakes the loop on every event.
async fn follow<K>(
    what: &'static str,
    stream: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    writer: reflector::store::Writer<K>,
    wake: Arc<Notify>,
) -> Result<(), DrainError>
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    let mut events = std::pin::pin!(stream.default_backoff().reflect(writer));
    while let Some(event) = events.next().await {
        match event {
            Ok(_) => wake.notify_one(),
            Err(source) => {
                // default_backoff retries; a hard error here is logged and the watch goes on.
                tracing::warn!(what, error = %source, "watch error");
            }
        }
    }
    Err(DrainError::WatchEnded(what))
}

/// One node's eviction task and the mode it runs in.
struct Task {
    mode: DrainMode,
    handle: JoinHandle<()>,
    /// Set by the task when the node's pods are gone, before it wakes the loop (the loop may
    /// look before the task has returned, so the handle's state is not the signal).
    drained: Arc<AtomicBool>,
}

/// The loop's state: caches, the clients, the `current-state` values written but maybe not
/// yet in the cache, and the eviction tasks.
struct Controller {
    ctx: OperatorContext,
    prefix: String,
    /// Evictions only: no retry layer (see [`run_with_config`]).
    evicting: Client,
    nodes: Store<Node>,
    states: Store<SriovNetworkNodeState>,
    pools: Store<SriovNetworkPoolConfig>,
    wake: Arc<Notify>,
    recorder: EventSink,
    /// `current-state` we wrote, by node: the cache may not show it yet, and counting a node
    /// as Idle that we just started would let two nodes of a `maxUnavailable: 1` pool drain.
    written: HashMap<String, String>,
    tasks: HashMap<String, Task>,
    /// Last `Wait` reported per node (so the Pending condition is written once, not per pass).
    waiting: HashMap<String, String>,
}

impl Controller {
    fn new(
        ctx: OperatorContext,
        prefix: String,
        evicting: Client,
        nodes: Store<Node>,
        states: Store<SriovNetworkNodeState>,
        pools: Store<SriovNetworkPoolConfig>,
        wake: Arc<Notify>,
    ) -> Self {
        let recorder = EventSink {
            client: ctx.client.clone(),
            reporter: Reporter {
                controller: FIELD_MANAGER.to_string(),
                instance: std::env::var("POD_NAME").ok(),
            },
        };
        Controller {
            ctx,
            prefix,
            evicting,
            nodes,
            states,
            pools,
            wake,
            recorder,
            written: HashMap::new(),
            tasks: HashMap::new(),
            waiting: HashMap::new(),
        }
    }

    async fn run_loop(&mut self) -> std::convert::Infallible {
        let mut retry_at: Option<Instant> = None;
        loop {
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = retry => {}
            }
            let started = Instant::now();
            let failed = self.pass().await;
            self.ctx
                .metrics
                .observe_reconcile("drain", started.elapsed(), failed);
            retry_at = failed.then(|| Instant::now() + RETRY);
        }
    }

    /// The facts the planner needs, from the caches plus our own recent writes.
    fn facts(&mut self) -> Vec<NodeFacts> {
        let ns = self.ctx.namespace.clone();
        let mut facts = Vec::new();
        for node in self.nodes.state() {
            let name = node.name_any();
            let state = self.states.get(&reflector::ObjectRef::new(&name).within(&ns));
            let state = state.map(|s| {
                let ann = s.annotations();
                let mut current = ann.get(CURRENT_STATE).cloned();
                if let Some(ours) = self.written.get(&name) {
                    if current.as_ref() == Some(ours) {
                        // The cache caught up: from now on it is the truth again.
                        self.written.remove(&name);
                    } else {
                        current = Some(ours.clone());
                    }
                }
                StateFacts {
                    current,
                    desired: ann.get(DESIRED_STATE).cloned(),
                    external_drainer: ann.get(USE_EXTERNAL_DRAINER).map(String::as_str) == Some("true"),
                }
            });
            facts.push(NodeFacts {
                name: name.clone(),
                labels: node.labels().clone(),
                request: node.annotations().get(NODE_DRAIN_STATE).cloned(),
                state,
            });
        }
        facts
    }

    /// One pass: plan, act. Returns whether anything failed (the loop then retries soon).
    async fn pass(&mut self) -> bool {
        let facts = self.facts();
        let pools = self.pools.state();
        let pool_refs: Vec<&SriovNetworkPoolConfig> = pools.iter().map(|p| p.as_ref()).collect();
        let actions = plan(&facts, &pool_refs);
        // Tasks of nodes no longer draining (released, node or state gone) stop.
        let draining: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Drain { node, .. } => Some(node.as_str()),
                _ => None,
            })
            .collect();
        let stale: Vec<String> = self
            .tasks
            .keys()
            .filter(|n| !draining.contains(&n.as_str()))
            .cloned()
            .collect();
        for node in stale {
            self.stop_task(&node).await;
        }
        let mut failed = false;
        for action in actions {
            if let Err(e) = self.act(&action).await {
                tracing::warn!(?action, error = %e, "drain step failed");
                failed = true;
            }
        }
        failed
    }

    async fn act(&mut self, action: &Action) -> Result<(), kube::Error> {
        match action {
            Action::InitAnnotations {
                node,
                node_request,
                current,
                desired,
            } => {
                if *node_request {
                    self.annotate_node(node, IDLE).await?;
                }
                let mut ann = serde_json::Map::new();
                if *current {
                    ann.insert(CURRENT_STATE.into(), json!(IDLE));
                }
                if *desired {
                    ann.insert(DESIRED_STATE.into(), json!(IDLE));
                }
                if !ann.is_empty() {
                    self.patch_state(node, json!({"metadata": {"annotations": ann}}))
                        .await?;
                }
                Ok(())
            }
            Action::Wait {
                node,
                pool,
                limit,
                busy,
            } => {
                let why = format!(
                    "waiting for a drain slot: pool {pool} allows {limit} node(s) at once and has {busy} draining"
                );
                if self.waiting.get(node) != Some(&why) {
                    tracing::info!(node, %why, "drain pending");
                    self.set_conditions(node, DrainCondition::Pending(why.clone()))
                        .await?;
                    self.waiting.insert(node.clone(), why);
                }
                Ok(())
            }
            Action::Invalid { node, message } => {
                if self.waiting.get(node) != Some(message) {
                    tracing::error!(node, %message, "cannot drain");
                    self.event(node, EventType::Warning, "DrainNode", message.clone())
                        .await;
                    self.set_conditions(node, DrainCondition::Pending(message.clone()))
                        .await?;
                    self.waiting.insert(node.clone(), message.clone());
                }
                Ok(())
            }
            Action::Start { node, mode } => {
                self.waiting.remove(node);
                if *mode == DrainMode::Skip {
                    // Single node and a reboot: nowhere to move pods, no cordon (upstream).
                    self.set_current(node, DRAIN_COMPLETE).await?;
                    self.set_conditions(node, DrainCondition::Complete).await?;
                    self.event(
                        node,
                        EventType::Normal,
                        "DrainNode",
                        "single node: drain skipped before reboot".into(),
                    )
                    .await;
                    return Ok(());
                }
                self.cordon(node, true).await?;
                self.set_current(node, DRAINING).await?;
                self.set_conditions(node, DrainCondition::Draining).await?;
                self.event(
                    node,
                    EventType::Normal,
                    "DrainNode",
                    format!("node drain started ({})", mode_text(*mode)),
                )
                .await;
                self.spawn_task(node, *mode);
                Ok(())
            }
            Action::Drain { node, mode } => self.drive(node, *mode).await,
            Action::Release { node } => {
                self.waiting.remove(node);
                self.stop_task(node).await;
                self.cordon(node, false).await?;
                self.set_current(node, IDLE).await?;
                self.set_conditions(node, DrainCondition::Idle).await?;
                self.event(
                    node,
                    EventType::Normal,
                    "CompleteDrain",
                    "node un drain completed".into(),
                )
                .await;
                Ok(())
            }
        }
    }

    /// A `Draining` node: make sure its task runs (after a restart or a mode change), and once
    /// it reports the pods gone, answer `DrainComplete`.
    async fn drive(&mut self, node: &str, mode: DrainMode) -> Result<(), kube::Error> {
        let running = self
            .tasks
            .get(node)
            .map(|t| (t.mode, t.drained.load(Ordering::SeqCst), t.handle.is_finished()));
        let finished = match running {
            Some((m, _, _)) if m != mode => {
                self.stop_task(node).await;
                None
            }
            Some((_, true, _)) => {
                self.tasks.remove(node);
                Some(true)
            }
            // Still evicting or waiting.
            Some((_, false, false)) => return Ok(()),
            // Ended without draining (it panicked): run it again.
            Some((_, false, true)) => {
                self.tasks.remove(node);
                None
            }
            None => None,
        };
        match finished {
            Some(true) => {
                self.set_conditions(node, DrainCondition::Complete).await?;
                self.set_current(node, DRAIN_COMPLETE).await?;
                self.event(
                    node,
                    EventType::Normal,
                    "DrainNode",
                    "node drain completed".into(),
                )
                .await;
                Ok(())
            }
            _ => {
                // Not started (controller restarted mid-drain) or ended abnormally: (re)cordon
                // and run it, as upstream re-runs cordon + drain.
                self.cordon(node, true).await?;
                self.spawn_task(node, mode);
                Ok(())
            }
        }
    }

    fn spawn_task(&mut self, node: &str, mode: DrainMode) {
        let worker = Evictor {
            client: self.ctx.client.clone(),
            evicting: self.evicting.clone(),
            namespace: self.ctx.namespace.clone(),
            node: node.to_string(),
            mode,
            prefix: self.prefix.clone(),
            recorder: self.recorder.clone(),
        };
        let wake = self.wake.clone();
        let drained = Arc::new(AtomicBool::new(false));
        let flag = drained.clone();
        let handle = tokio::spawn(async move {
            worker.drain().await;
            flag.store(true, Ordering::SeqCst);
            wake.notify_one();
        });
        self.tasks.insert(
            node.to_string(),
            Task {
                mode,
                handle,
                drained,
            },
        );
    }

    async fn stop_task(&mut self, node: &str) {
        if let Some(task) = self.tasks.remove(node) {
            task.handle.abort();
            let _ = task.handle.await;
        }
    }

    async fn cordon(&self, node: &str, unschedulable: bool) -> Result<(), kube::Error> {
        let cached = self
            .nodes
            .get(&reflector::ObjectRef::new(node))
            .and_then(|n| n.spec.as_ref().and_then(|s| s.unschedulable))
            .unwrap_or(false);
        if cached == unschedulable {
            return Ok(());
        }
        let value = if unschedulable { json!(true) } else { json!(null) };
        Api::<Node>::all(self.ctx.client.clone())
            .patch(
                node,
                &patch_params(),
                &Patch::Merge(json!({"spec": {"unschedulable": value}})),
            )
            .await?;
        tracing::info!(node, unschedulable, "cordon");
        Ok(())
    }

    async fn annotate_node(&self, node: &str, value: &str) -> Result<(), kube::Error> {
        Api::<Node>::all(self.ctx.client.clone())
            .patch(
                node,
                &patch_params(),
                &Patch::Merge(json!({"metadata": {"annotations": {NODE_DRAIN_STATE: value}}})),
            )
            .await?;
        Ok(())
    }

    async fn patch_state(&self, node: &str, patch: serde_json::Value) -> Result<(), kube::Error> {
        Api::<SriovNetworkNodeState>::namespaced(self.ctx.client.clone(), &self.ctx.namespace)
            .patch(node, &patch_params(), &Patch::Merge(patch))
            .await?;
        Ok(())
    }

    async fn set_current(&mut self, node: &str, value: &str) -> Result<(), kube::Error> {
        self.patch_state(node, json!({"metadata": {"annotations": {CURRENT_STATE: value}}}))
            .await?;
        tracing::info!(node, current_state = value, "drain state");
        self.written.insert(node.to_string(), value.to_string());
        Ok(())
    }

    async fn set_conditions(&self, node: &str, state: DrainCondition) -> Result<(), kube::Error> {
        let api = Api::<SriovNetworkNodeState>::namespaced(self.ctx.client.clone(), &self.ctx.namespace);
        let cached = self
            .states
            .get(&reflector::ObjectRef::new(node).within(&self.ctx.namespace));
        write_conditions(&api, node, cached.as_deref(), state).await
    }

    async fn event(&self, node: &str, type_: EventType, action: &str, note: String) {
        let cached = self
            .states
            .get(&reflector::ObjectRef::new(node).within(&self.ctx.namespace));
        if let Some(state) = cached {
            publish(&self.recorder, &state, type_, action, note).await;
        }
    }
}

fn mode_text(mode: DrainMode) -> &'static str {
    match mode {
        DrainMode::SriovPods => "pods using SR-IOV resources",
        DrainMode::AllPods => "all pods",
        DrainMode::Skip => "skipped",
    }
}
