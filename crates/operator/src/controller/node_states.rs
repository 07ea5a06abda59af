//! The node-state controller: policies + Nodes + what each config daemon reported → every
//! daemon node's `SriovNetworkNodeState.spec`, the `device-plugin-config` ConfigMap (a key per
//! node) and the `sriovnetwork.openshift.io/device-plugin` Node label (upstream's
//! `SriovNetworkNodePolicyReconciler`, `../shared/reference/upstream-operator.md` §1.3–1.5).
//!
//! Thin I/O around pure functions: reflectors keep every input in memory (policies, Nodes as
//! metadata only, node states, pool configs, the operator config, the operator namespace's
//! ConfigMaps); a debounced trigger runs one pass that renders every node with
//! [`render_cluster`] from those caches (no GET per node), diffs the result with
//! [`plan::plan_writes`] and writes only what differs: node states and the ConfigMap by
//! server-side apply under [`FIELD_MANAGER`], labels by a merge patch as upstream does. A
//! quiet cluster costs no request; a policy change writes only the nodes whose spec changed.
//!
//! Debounce: a pass runs once no event arrived for [`NodeStatesOptions::quiet`] (50 ms), and at
//! the latest [`NodeStatesOptions::max_delay`] (2 s) after the first event. Upstream waits a
//! fixed 1 s after a policy event; a burst of `kubectl apply` arrives events a few milliseconds
//! apart, a pass over 1,000 nodes renders in a few milliseconds, so 50 ms coalesces a burst
//! without adding a second to every change (the change target is 0.5 s). The cap keeps a steady
//! trickle of events from postponing the pass forever; it was 500 ms, but 50 policies created by
//! one client take about 550 ms to arrive, and a pass cut into such a burst wrote 1,450 node
//! states instead of 1,000 (the benchmark's converge, docs/operator.md): every write a partial
//! pass makes costs more than the wait it saves.

pub mod observe;
pub mod plan;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use sriov_api::keys::DEVICE_PLUGIN_LABEL;
use sriov_api::operator_config::DEFAULT_OPERATOR_CONFIG_NAME;
use sriov_api::{
    NodeStateSpec, SriovNetworkNodePolicy, SriovNetworkNodeState, SriovNetworkPoolConfig, SriovOperatorConfig,
};
use sriov_host::InterfaceExt;
use tokio::sync::Notify;

use super::events::Events;
use super::metrics::{ResourceLabel, SyncStatusLabel};
use super::{FIELD_MANAGER, OperatorContext};
use crate::admission::nics::SupportedNics;
use crate::render::{ClusterInput, ClusterRender, NodeInfo, RenderError, RenderNote, render_cluster};
use observe::{PendingWrites, Snapshot, Version, observe_node_state, owned_by};
use plan::{KEEP_UNTIL_ANNOTATION, NodeStateWrite, ObservedConfigMap, ObservedNodeState, Plan, plan_writes};
use report::NodeStateEvent;

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "node-states";
/// The device-plugin ConfigMap (a key per node; the device plugin reads `/etc/pcidp/$NODE_NAME`).
pub const DEVICE_PLUGIN_CONFIG_MAP: &str = "device-plugin-config";
/// The ConfigMap of supported NIC ids; the built-in list when absent.
pub const SUPPORTED_NICS_CONFIG_MAP: &str = "supported-nic-ids";
/// Upstream's default stale node-state delay (`STALE_NODE_STATE_CLEANUP_DELAY_MINUTES`).
pub const DEFAULT_STALE_DELAY: Duration = Duration::from_secs(30 * 60);

/// Why the controller stopped or a pass failed. Each variant names the object.
#[derive(Debug, thiserror::Error)]
pub enum NodeStatesError {
    #[error("STALE_NODE_STATE_CLEANUP_DELAY_MINUTES={0:?} is not a number of minutes >= 0")]
    StaleDelay(String),
    #[error("render: {0}")]
    Render(Box<RenderError>),
    #[error("SriovOperatorConfig {namespace}/default has no metadata.uid yet")]
    ConfigWithoutUid { namespace: String },
    #[error("{verb} {kind} {name}: {source}")]
    Write {
        verb: &'static str,
        kind: &'static str,
        name: String,
        source: Box<kube::Error>,
    },
    #[error("the {0} watch ended")]
    WatchEnded(&'static str),
}

/// Timings of the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatesOptions {
    /// How long a node state outlives its node (0: deleted at once).
    pub stale_delay: Duration,
    /// A pass runs once no event arrived for this long...
    pub quiet: Duration,
    /// ... or this long after the first event, whichever comes first.
    pub max_delay: Duration,
    /// Writes in flight at once.
    pub concurrency: usize,
}

impl Default for NodeStatesOptions {
    fn default() -> Self {
        NodeStatesOptions {
            stale_delay: DEFAULT_STALE_DELAY,
            quiet: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            // The benchmark's floor (node-state applies at 4/16/32/64 in flight) still fell
            // from 32 to 64; kube's client speaks HTTP/1.1, one connection per request in flight.
            concurrency: 64,
        }
    }
}

impl NodeStatesOptions {
    /// The defaults with upstream's `STALE_NODE_STATE_CLEANUP_DELAY_MINUTES` (`value`, when set).
    pub fn with_stale_delay_minutes(value: Option<&str>) -> Result<Self, NodeStatesError> {
        let mut options = NodeStatesOptions::default();
        if let Some(v) = value {
            let minutes: u64 = v
                .trim()
                .parse()
                .map_err(|_| NodeStatesError::StaleDelay(v.to_string()))?;
            options.stale_delay = Duration::from_secs(minutes.saturating_mul(60));
        }
        Ok(options)
    }
}

/// Runs the controller until a watch ends (it does not in normal operation). The stale delay
/// comes from `STALE_NODE_STATE_CLEANUP_DELAY_MINUTES` (upstream's variable; invalid values
/// fall back to 30 minutes with an error logged, as upstream does).
pub async fn run(ctx: OperatorContext) -> Result<(), NodeStatesError> {
    let env = std::env::var("STALE_NODE_STATE_CLEANUP_DELAY_MINUTES").ok();
    let options = NodeStatesOptions::with_stale_delay_minutes(env.as_deref()).unwrap_or_else(|e| {
        tracing::error!(controller = CONTROLLER, "{e}; using 30 minutes");
        NodeStatesOptions::default()
    });
    run_with(ctx, options).await
}

/// The reflector caches the passes read.
struct Caches {
    nodes: Store<PartialObjectMeta<Node>>,
    node_states: Store<SriovNetworkNodeState>,
    policies: Store<SriovNetworkNodePolicy>,
    pools: Store<SriovNetworkPoolConfig>,
    configs: Store<SriovOperatorConfig>,
    config_maps: Store<ConfigMap>,
}

/// [`run`] with explicit timings (tests shorten the stale delay).
pub async fn run_with(ctx: OperatorContext, options: NodeStatesOptions) -> Result<(), NodeStatesError> {
    let trigger = Arc::new(Notify::new());
    let client = ctx.client.clone();
    let ns = ctx.namespace.as_str();
    let mut tasks = tokio::task::JoinSet::new();
    let caches = Caches {
        nodes: reflect(&mut tasks, "Node", Api::all(client.clone()), &trigger, |a, b| {
            a.metadata.labels != b.metadata.labels
        }),
        node_states: reflect(
            &mut tasks,
            "SriovNetworkNodeState",
            Api::namespaced(client.clone(), ns),
            &trigger,
            node_state_changed,
        ),
        policies: reflect(
            &mut tasks,
            "SriovNetworkNodePolicy",
            Api::namespaced(client.clone(), ns),
            &trigger,
            |a, b| a.spec != b.spec,
        ),
        pools: reflect(
            &mut tasks,
            "SriovNetworkPoolConfig",
            Api::namespaced(client.clone(), ns),
            &trigger,
            |a, b| a.spec != b.spec,
        ),
        configs: reflect(
            &mut tasks,
            "SriovOperatorConfig",
            Api::namespaced(client.clone(), ns),
            &trigger,
            |a, b| a.spec != b.spec || a.metadata.uid != b.metadata.uid,
        ),
        config_maps: reflect(
            &mut tasks,
            "ConfigMap",
            Api::namespaced(client.clone(), ns),
            &trigger,
            |a, b| a.data != b.data || a.metadata.owner_references != b.metadata.owner_references,
        ),
    };
    for ready in [
        caches.nodes.wait_until_ready().await.is_ok(),
        caches.node_states.wait_until_ready().await.is_ok(),
        caches.policies.wait_until_ready().await.is_ok(),
        caches.pools.wait_until_ready().await.is_ok(),
        caches.configs.wait_until_ready().await.is_ok(),
        caches.config_maps.wait_until_ready().await.is_ok(),
    ] {
        if !ready {
            return Err(NodeStatesError::WatchEnded("cache"));
        }
    }
    tracing::info!(controller = CONTROLLER, namespace = ns, "caches synced");
    let mut pending = PendingWrites::default();
    let mut shown = Shown::default();
    let mut reported = Reported {
        events: Events::new(ctx.client.clone()),
        notes: BTreeSet::new(),
    };
    let mut wake_at: Option<tokio::time::Instant> = Some(tokio::time::Instant::now());
    let mut backoff = Duration::from_secs(1);
    loop {
        tokio::select! {
            _ = trigger.notified() => debounce(&trigger, &options).await,
            _ = sleep_until(wake_at) => {}
            ended = tasks.join_next() => {
                let kind = ended.and_then(Result::ok).unwrap_or("watch");
                return Err(NodeStatesError::WatchEnded(kind));
            }
        }
        let started = Instant::now();
        let result = pass(&ctx, &caches, &mut pending, &mut shown, &mut reported, &options).await;
        ctx.metrics
            .observe_reconcile(CONTROLLER, started.elapsed(), result.is_err());
        wake_at = match result {
            Ok(deadline) => {
                backoff = Duration::from_secs(1);
                deadline.map(|t| {
                    let wait = t.duration_since(Timestamp::now()).unsigned_abs();
                    tokio::time::Instant::now() + wait + Duration::from_millis(10)
                })
            }
            Err(e) => {
                tracing::warn!(controller = CONTROLLER, error = %e, retry_in = ?backoff, "pass failed");
                let at = tokio::time::Instant::now() + backoff;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                Some(at)
            }
        };
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// After a first event: wait until `quiet` passes without one, at most `max_delay` in all.
async fn debounce(trigger: &Notify, options: &NodeStatesOptions) {
    let limit = tokio::time::Instant::now() + options.max_delay;
    loop {
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(options.quiet) => return,
            _ = tokio::time::sleep_until(limit) => return,
        }
    }
}

/// Whether a node-state event can change what a pass decides (its own status heartbeats
/// aside: only discovered interfaces and sync status, for the metric, count).
fn node_state_changed(a: &SriovNetworkNodeState, b: &SriovNetworkNodeState) -> bool {
    fn status(s: &SriovNetworkNodeState) -> Option<(&Vec<InterfaceExt>, &str)> {
        s.status
            .as_ref()
            .map(|st| (&st.interfaces, st.sync_status.as_str()))
    }
    a.spec != b.spec
        || status(a) != status(b)
        || a.metadata.owner_references != b.metadata.owner_references
        || a.annotations().get(KEEP_UNTIL_ANNOTATION) != b.annotations().get(KEEP_UNTIL_ANNOTATION)
}

/// Starts a reflector for `api` (managedFields dropped to save memory) and returns its store;
/// events that add, delete or `changed` an object (compared with the cached one) fire `trigger`.
fn reflect<K>(
    tasks: &mut tokio::task::JoinSet<&'static str>,
    kind: &'static str,
    api: Api<K>,
    trigger: &Arc<Notify>,
    changed: fn(&K, &K) -> bool,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store::<K>();
    let cached = reader.clone();
    let trigger = trigger.clone();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .map_ok(move |event| {
            let fire = match &event {
                watcher::Event::Apply(o) => cached
                    .get(&reflector::ObjectRef::from_obj(o))
                    .is_none_or(|old| changed(&old, o)),
                watcher::Event::Delete(_) | watcher::Event::InitDone => true,
                watcher::Event::Init | watcher::Event::InitApply(_) => false,
            };
            if fire {
                trigger.notify_one();
            }
            event
        })
        .reflect(writer);
    tasks.spawn(async move {
        stream
            .for_each(|event| {
                if let Err(e) = event {
                    tracing::warn!(controller = CONTROLLER, kind, error = %e, "watch error (retrying)");
                }
                std::future::ready(())
            })
            .await;
        kind
    });
    reader
}

/// Metric label sets last exported, so series that vanished can be removed.
#[derive(Default)]
struct Shown {
    resources: BTreeSet<String>,
    statuses: BTreeSet<String>,
}

/// Where the controller's Events go, and the render problems already published.
struct Reported {
    events: Events,
    notes: BTreeSet<RenderNote>,
}

/// One pass: render from the caches, plan, write, then publish the Events. Returns when to
/// look again for stale node states.
async fn pass(
    ctx: &OperatorContext,
    caches: &Caches,
    pending: &mut PendingWrites,
    shown: &mut Shown,
    reported: &mut Reported,
    options: &NodeStatesOptions,
) -> Result<Option<Timestamp>, NodeStatesError> {
    let ns = ctx.namespace.as_str();
    let Some(config) = caches
        .configs
        .state()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(DEFAULT_OPERATOR_CONFIG_NAME))
    else {
        // Upstream renders nothing until the `default` SriovOperatorConfig exists.
        tracing::info!(
            controller = CONTROLLER,
            namespace = ns,
            "no SriovOperatorConfig default yet"
        );
        return Ok(None);
    };
    let owner = owner_reference(&config).ok_or_else(|| NodeStatesError::ConfigWithoutUid {
        namespace: ns.to_string(),
    })?;
    let started = Instant::now();
    let states = caches.node_states.state();
    let render = render_from_caches(ns, &config, caches, &states)?;
    let snapshot = snapshot(caches, &states, &owner.uid);
    let observed = pending.observe(&snapshot);
    let plan = plan_writes(&render, &observed, Timestamp::now(), options.stale_delay);
    export_metrics(ctx, &render, &states, shown);
    let planned = started.elapsed();
    let spec_changes = report::spec_changes(&plan, &observed);
    let (applied, result) = if plan.is_empty() {
        tracing::debug!(controller = CONTROLLER, ?planned, "nothing to write");
        (BTreeMap::new(), Ok(()))
    } else {
        let (applied, result) = write(ctx, &owner, &plan, &snapshot, pending, options).await;
        tracing::info!(
            controller = CONTROLLER,
            node_states = plan.node_states.len(),
            node_labels = plan.node_labels.len(),
            config_map = plan.config_map.is_some(),
            ?planned,
            took = ?started.elapsed(),
            "wrote changes"
        );
        (applied, result)
    };
    // Events come after every write of the pass: they are for people, the writes for the
    // config daemons and the device plugin, which should not wait behind them.
    let mut uids: BTreeMap<String, Option<String>> = states
        .iter()
        .map(|s| (s.name_any(), s.metadata.uid.clone()))
        .collect();
    uids.extend(applied.iter().map(|(n, u)| (n.clone(), u.clone())));
    let warnings = report::new_render_warnings(&render.notes, &mut reported.notes, |n| uids.contains_key(n));
    let events: Vec<NodeStateEvent> = spec_changes
        .into_iter()
        .filter(|e| applied.contains_key(&e.node_state))
        .chain(warnings)
        .collect();
    if !events.is_empty() {
        publish(ns, &reported.events, &events, &uids, options.concurrency).await;
    }
    result.map(|()| plan.next_deadline)
}

/// Publishes `events` about the node states (their uids from `uids`, when known), at most
/// `concurrency` at once.
async fn publish(
    ns: &str,
    sink: &Events,
    events: &[NodeStateEvent],
    uids: &BTreeMap<String, Option<String>>,
    concurrency: usize,
) {
    // Owned items and a cloned sink: a stream of futures borrowing from the pass is not `Send`
    // in the way the controller's task needs.
    let items: Vec<(ObjectReference, EventType, String, String)> = events
        .iter()
        .map(|e| {
            let reference = ObjectReference {
                api_version: Some(sriov_api::API_VERSION.to_string()),
                kind: Some("SriovNetworkNodeState".to_string()),
                name: Some(e.node_state.clone()),
                namespace: Some(ns.to_string()),
                uid: uids.get(&e.node_state).cloned().flatten(),
                ..ObjectReference::default()
            };
            let type_ = if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            (reference, type_, e.reason.to_string(), e.note.clone())
        })
        .collect();
    futures::stream::iter(items)
        .map(|(reference, type_, reason, note)| {
            let sink = sink.clone();
            let publish: futures::future::BoxFuture<'static, ()> = Box::pin(async move {
                sink.record(&reference, type_, &reason, report::ACTION, note)
                    .await
            });
            publish
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<()>>()
        .await;
}

/// The controller reference node states and the ConfigMap carry (upstream
/// `SetControllerReference(dc, …)`).
fn owner_reference(config: &SriovOperatorConfig) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: sriov_api::API_VERSION.to_string(),
        kind: "SriovOperatorConfig".to_string(),
        name: config.metadata.name.clone()?,
        uid: config.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// [`render_cluster`] over the cached objects.
fn render_from_caches(
    ns: &str,
    config: &SriovOperatorConfig,
    caches: &Caches,
    states: &[Arc<SriovNetworkNodeState>],
) -> Result<ClusterRender, NodeStatesError> {
    let nodes: Vec<NodeInfo> = caches
        .nodes
        .state()
        .iter()
        .map(|n| NodeInfo {
            name: n.name_any(),
            labels: n.metadata.labels.clone().unwrap_or_default(),
        })
        .collect();
    let interfaces: BTreeMap<String, Vec<InterfaceExt>> = states
        .iter()
        .filter_map(|s| Some((s.name_any(), s.status.as_ref()?.interfaces.clone())))
        .collect();
    let policies: Vec<SriovNetworkNodePolicy> =
        caches.policies.state().iter().map(|p| (**p).clone()).collect();
    let pools: Vec<SriovNetworkPoolConfig> = caches.pools.state().iter().map(|p| (**p).clone()).collect();
    let nics = supported_nics(caches);
    let input = ClusterInput {
        namespace: ns,
        operator_config: Some(&config.spec),
        nodes: &nodes,
        interfaces: &interfaces,
        policies: &policies,
        pools: &pools,
        supported_nics: &nics,
    };
    let render = render_cluster(&input).map_err(|e| NodeStatesError::Render(Box::new(e)))?;
    for note in &render.notes {
        tracing::debug!(controller = CONTROLLER, node = %note.node, policy = %note.policy, pf = %note.pf, "{}", note.message);
    }
    Ok(render)
}

/// The `supported-nic-ids` ConfigMap's list, or the built-in one (absent or unreadable).
fn supported_nics(caches: &Caches) -> SupportedNics {
    let Some(cm) = caches
        .config_maps
        .find(|cm| cm.metadata.name.as_deref() == Some(SUPPORTED_NICS_CONFIG_MAP))
    else {
        return SupportedNics::builtin();
    };
    let parsed = serde_json::to_value(&*cm)
        .map_err(|e| e.to_string())
        .and_then(|v| SupportedNics::from_config_map(&v).map_err(|e| e.to_string()));
    parsed.unwrap_or_else(|e| {
        tracing::warn!(controller = CONTROLLER, "{e}; using the built-in NIC list");
        SupportedNics::builtin()
    })
}

/// The caches' view of what the plan diffs against.
fn snapshot(caches: &Caches, states: &[Arc<SriovNetworkNodeState>], owner_uid: &str) -> Snapshot {
    let node_states = states
        .iter()
        .map(|s| (s.name_any(), observe_node_state(s, owner_uid)))
        .collect();
    let config_map = caches
        .config_maps
        .find(|cm| cm.metadata.name.as_deref() == Some(DEVICE_PLUGIN_CONFIG_MAP))
        .map(|cm| {
            let observed = ObservedConfigMap {
                data: cm.data.clone().unwrap_or_default(),
                owned: owned_by(
                    cm.metadata.owner_references.as_deref().unwrap_or_default(),
                    owner_uid,
                ),
            };
            (cm.metadata.resource_version.clone(), observed)
        });
    let node_labels = caches
        .nodes
        .state()
        .iter()
        .map(|n| {
            let label = n.labels().get(DEVICE_PLUGIN_LABEL).cloned();
            (n.name_any(), (n.metadata.resource_version.clone(), label))
        })
        .collect();
    Snapshot {
        node_states,
        config_map,
        node_labels,
    }
}

fn export_metrics(
    ctx: &OperatorContext,
    render: &ClusterRender,
    states: &[Arc<SriovNetworkNodeState>],
    shown: &mut Shown,
) {
    let vfs = plan::vfs_per_resource(render);
    for gone in shown.resources.iter().filter(|r| !vfs.contains_key(*r)) {
        ctx.metrics.vfs_per_resource.remove(&ResourceLabel {
            resource: gone.clone(),
        });
    }
    for (resource, n) in &vfs {
        let label = ResourceLabel {
            resource: resource.clone(),
        };
        ctx.metrics.vfs_per_resource.get_or_create(&label).set(*n);
    }
    shown.resources = vfs.into_keys().collect();
    let statuses = plan::nodes_by_sync_status(
        states
            .iter()
            .map(|s| s.status.as_ref().map_or("", |st| st.sync_status.as_str())),
    );
    for gone in shown.statuses.iter().filter(|s| !statuses.contains_key(*s)) {
        ctx.metrics.nodes_by_sync_status.remove(&SyncStatusLabel {
            sync_status: gone.clone(),
        });
    }
    for (status, n) in &statuses {
        let label = SyncStatusLabel {
            sync_status: status.clone(),
        };
        ctx.metrics.nodes_by_sync_status.get_or_create(&label).set(*n);
    }
    shown.statuses = statuses.into_keys().collect();
}

/// What one write changed, for [`PendingWrites`] (and a node state's uid, for its Events).
enum Written {
    NodeState(String, Version, Option<(ObservedNodeState, Option<String>)>),
    Label(String, Version, Option<String>),
    ConfigMap(Version, ObservedConfigMap),
}

/// Performs `plan` with at most `options.concurrency` requests in flight, node states first,
/// then the ConfigMap, then the labels (what the config daemons wait for goes first); every
/// successful write is remembered in `pending`. Returns the node states applied (name → uid)
/// and the first error, after the other writes finished.
async fn write(
    ctx: &OperatorContext,
    owner: &OwnerReference,
    plan: &Plan,
    snapshot: &Snapshot,
    pending: &mut PendingWrites,
    options: &NodeStatesOptions,
) -> (BTreeMap<String, Option<String>>, Result<(), NodeStatesError>) {
    let ns = ctx.namespace.as_str();
    let states: Api<SriovNetworkNodeState> = Api::namespaced(ctx.client.clone(), ns);
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), ns);
    let apply = PatchParams::apply(FIELD_MANAGER).force();
    let merge = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let mut jobs: Vec<futures::future::BoxFuture<'_, Result<Written, NodeStatesError>>> = Vec::new();
    for w in &plan.node_states {
        let before = snapshot.node_states.get(w.name()).and_then(|(v, _)| v.clone());
        let discovered = snapshot
            .node_states
            .get(w.name())
            .is_some_and(|(_, s)| s.discovered);
        let (states, apply) = (&states, &apply);
        jobs.push(Box::pin(async move {
            match w {
                NodeStateWrite::Apply {
                    name,
                    spec,
                    keep_until,
                } => {
                    let body = node_state_body(ns, name, owner, spec, keep_until.as_deref());
                    let applied = states
                        .patch_metadata(name, apply, &Patch::Apply(&body))
                        .await
                        .map_err(write_error("apply", "SriovNetworkNodeState", name))?;
                    let written = ObservedNodeState {
                        spec: spec.clone(),
                        discovered,
                        keep_until: keep_until.clone(),
                        owned: true,
                    };
                    let uid = applied.metadata.uid;
                    Ok(Written::NodeState(name.clone(), before, Some((written, uid))))
                }
                NodeStateWrite::Delete { name } => {
                    match states.delete(name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(write_error("delete", "SriovNetworkNodeState", name)(e)),
                    }
                    tracing::info!(controller = CONTROLLER, node_state = %name, "deleted: its node is gone");
                    Ok(Written::NodeState(name.clone(), before, None))
                }
            }
        }));
    }
    if let Some(data) = &plan.config_map {
        let before = snapshot.config_map.as_ref().and_then(|(v, _)| v.clone());
        let (config_maps, apply) = (&config_maps, &apply);
        jobs.push(Box::pin(async move {
            let body = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": DEVICE_PLUGIN_CONFIG_MAP, "namespace": ns, "ownerReferences": [owner]},
                "data": data,
            });
            config_maps
                .patch(DEVICE_PLUGIN_CONFIG_MAP, apply, &Patch::Apply(&body))
                .await
                .map_err(write_error("apply", "ConfigMap", DEVICE_PLUGIN_CONFIG_MAP))?;
            let written = ObservedConfigMap {
                data: data.clone(),
                owned: true,
            };
            Ok(Written::ConfigMap(before, written))
        }));
    }
    for (node, label) in &plan.node_labels {
        let before = snapshot.node_labels.get(node).and_then(|(v, _)| v.clone());
        let (nodes, merge) = (&nodes, &merge);
        jobs.push(Box::pin(async move {
            let body = json!({"metadata": {"labels": {DEVICE_PLUGIN_LABEL: label}}});
            match nodes.patch(node, merge, &Patch::Merge(&body)).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(write_error("label", "Node", node)(e)),
            }
            Ok(Written::Label(node.clone(), before, label.clone()))
        }));
    }
    let mut results = futures::stream::iter(jobs).buffer_unordered(options.concurrency.max(1));
    let mut first_error = None;
    let mut applied = BTreeMap::new();
    while let Some(result) = results.next().await {
        match result {
            Ok(Written::NodeState(name, before, Some((written, uid)))) => {
                pending.wrote_node_state(&name, before, Some(written));
                applied.insert(name, uid);
            }
            Ok(Written::NodeState(name, before, None)) => pending.wrote_node_state(&name, before, None),
            Ok(Written::Label(node, before, label)) => pending.wrote_node_label(&node, before, label),
            Ok(Written::ConfigMap(before, written)) => pending.wrote_config_map(before, written),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    (applied, first_error.map_or(Ok(()), Err))
}

/// The node-state object this controller applies: spec, controller reference, keep-until.
pub fn node_state_body(
    ns: &str,
    name: &str,
    owner: &OwnerReference,
    spec: &NodeStateSpec,
    keep_until: Option<&str>,
) -> serde_json::Value {
    let mut metadata = json!({"name": name, "namespace": ns, "ownerReferences": [owner]});
    if let Some(t) = keep_until {
        metadata["annotations"] = json!({ KEEP_UNTIL_ANNOTATION: t });
    }
    json!({
        "apiVersion": sriov_api::API_VERSION,
        "kind": "SriovNetworkNodeState",
        "metadata": metadata,
        "spec": spec,
    })
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn write_error<'a>(
    verb: &'static str,
    kind: &'static str,
    name: &'a str,
) -> impl FnOnce(kube::Error) -> NodeStatesError + 'a {
    move |source| NodeStatesError::Write {
        verb,
        kind,
        name: name.to_string(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_stale_delay_is_read_in_minutes_as_upstream() {
        let o = NodeStatesOptions::with_stale_delay_minutes(Some("0")).unwrap();
        assert_eq!(o.stale_delay, Duration::ZERO);
        let o = NodeStatesOptions::with_stale_delay_minutes(None).unwrap();
        assert_eq!(o.stale_delay, DEFAULT_STALE_DELAY);
        let e = NodeStatesOptions::with_stale_delay_minutes(Some("-1")).unwrap_err();
        assert!(e.to_string().contains("\"-1\""), "{e}");
    }

    #[test]
    fn the_applied_body_carries_the_owner_and_only_a_set_annotation() {
        let owner = OwnerReference {
            api_version: "sriovnetwork.openshift.io/v1".into(),
            kind: "SriovOperatorConfig".into(),
            name: "default".into(),
            uid: "u1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let body = node_state_body("ns", "w1", &owner, &NodeStateSpec::default(), None);
        assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert!(body["metadata"].get("annotations").is_none());
        assert_eq!(body["spec"], json!({}));
        let body = node_state_body("ns", "w1", &owner, &NodeStateSpec::default(), Some("t"));
        assert_eq!(body["metadata"]["annotations"][KEEP_UNTIL_ANNOTATION], "t");
    }
}
