//! The network controller: `SriovNetwork`, `SriovIBNetwork` and `OVSNetwork` →
//! `NetworkAttachmentDefinition` (upstream `generic_network_controller.go`).
//!
//! One kube-runtime `Controller` per kind. Each watches its kind cluster-wide, every NAD (an
//! edit or delete by hand is mapped back to its network and undone) and every Namespace (a
//! target namespace created after its network gets its NAD). Reconcile reads the NAD and the
//! namespace from those reflector caches, never with a GET, decides with the pure functions of
//! [`plan`], and writes only what differs: the NAD by server-side apply under
//! [`FIELD_MANAGER`], the `Ready` condition by server-side apply of the status, the finalizer and
//! the `last-network-namespace` annotation by merge patch.

pub mod plan;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sriov_api::keys::{LAST_NETWORK_NAMESPACE, OWNER_REF};
use sriov_api::{NetworkAttachmentDefinition, OVSNetwork, SriovIBNetwork, SriovNetwork};

use super::events::Events;
use super::{FIELD_MANAGER, OperatorContext};
use crate::render::{
    NadContext, RenderError, render_ib_network_nad, render_ovs_network_nad, render_sriov_network_nad,
};
use plan::{NAD_FINALIZER, Readiness, Step};

/// The controller's name: its metrics label and its name in the operator's supervisor.
pub const CONTROLLER: &str = "networks";
/// Retry delay after a failed reconcile (upstream's controller-runtime backs off from 5 ms; a
/// fixed 5 s keeps a broken apiserver from being hammered).
const RETRY: Duration = Duration::from_secs(5);

/// Why a reconcile failed (it is retried after [`RETRY`]).
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{kind} {namespace}/{name}: {action}: {source}")]
    Api {
        kind: String,
        namespace: String,
        name: String,
        action: &'static str,
        source: kube::Error,
    },
    #[error("{0} watch ended: {1}")]
    Watch(&'static str, String),
}

/// A network kind the controller renders into a NAD.
// `RenderError` is the render core's error, large by design (it names object and field).
#[allow(clippy::result_large_err)]
pub trait NetworkKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    fn render_nad(&self, ctx: &NadContext) -> Result<NetworkAttachmentDefinition, RenderError>;
    fn network_namespace(&self) -> &str;
    fn conditions(&self) -> &[Condition];
}

macro_rules! network_kind {
    ($ty:ty, $render:path) => {
        #[allow(clippy::result_large_err)]
        impl NetworkKind for $ty {
            fn render_nad(&self, ctx: &NadContext) -> Result<NetworkAttachmentDefinition, RenderError> {
                $render(self, ctx)
            }
            fn network_namespace(&self) -> &str {
                &self.spec.network_namespace
            }
            fn conditions(&self) -> &[Condition] {
                self.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or(&[])
            }
        }
    };
}
network_kind!(SriovNetwork, render_sriov_network_nad);
network_kind!(SriovIBNetwork, render_ib_network_nad);
network_kind!(OVSNetwork, render_ovs_network_nad);

/// Runs the three network controllers until one of them stops. `RESOURCE_PREFIX` (mandatory in
/// the binary) gives the NADs' resource-name annotation.
pub async fn run(ctx: OperatorContext) -> Result<(), NetworkError> {
    let nad = NadContext {
        operator_namespace: ctx.namespace.clone(),
        resource_prefix: std::env::var("RESOURCE_PREFIX").unwrap_or_default(),
    };
    run_with(ctx, nad).await
}

/// [`run`] with the render context given (tests; a binary that already parsed its environment).
pub async fn run_with(ctx: OperatorContext, nad: NadContext) -> Result<(), NetworkError> {
    // The first to stop stops all three (the supervisor then restarts them together).
    tokio::try_join!(
        run_kind::<SriovNetwork>(ctx.clone(), nad.clone()),
        run_kind::<SriovIBNetwork>(ctx.clone(), nad.clone()),
        run_kind::<OVSNetwork>(ctx, nad),
    )
    .map(|_| ())
}

/// What one kind's reconciles share.
struct State {
    ctx: OperatorContext,
    nad: NadContext,
    nads: Store<NetworkAttachmentDefinition>,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    events: Events,
}

async fn run_kind<K: NetworkKind>(ctx: OperatorContext, nad: NadContext) -> Result<(), NetworkError> {
    let client = ctx.client.clone();
    let kind = K::kind(&()).to_string();
    let (networks, networks_writer) = reflector::store::<K>();
    let network_stream = reflector::reflector(
        networks_writer,
        watcher(Api::<K>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();

    let (nads, nads_writer) = reflector::store::<NetworkAttachmentDefinition>();
    let nad_stream = reflector::reflector(
        nads_writer,
        watcher(
            Api::<NetworkAttachmentDefinition>::all(client.clone()),
            watcher::Config::default(),
        )
        .modify(|n| n.managed_fields_mut().clear()),
    )
    .default_backoff()
    .touched_objects();

    let (namespaces, namespaces_writer) = reflector::store::<PartialObjectMeta<Namespace>>();
    let namespace_stream = reflector::reflector(
        namespaces_writer,
        // `Api<PartialObjectMeta<_>>` asks for metadata only.
        watcher(
            Api::<PartialObjectMeta<Namespace>>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();

    let operator_ns = ctx.namespace.clone();
    let nad_kind = kind.clone();
    let nad_mapper = move |n: NetworkAttachmentDefinition| {
        plan::networks_of_nad(&n, &nad_kind, &operator_ns)
            .into_iter()
            .map(|(ns, name)| ObjectRef::<K>::new(&name).within(&ns))
            .collect::<Vec<_>>()
    };
    let by_target = networks.clone();
    let namespace_mapper = move |ns: PartialObjectMeta<Namespace>| {
        let created = ns.name_any();
        by_target
            .state()
            .iter()
            .filter(|n| {
                plan::target_namespace(n.network_namespace(), n.namespace().as_deref().unwrap_or(""))
                    == created
            })
            .map(|n| ObjectRef::from_obj(n.as_ref()))
            .collect::<Vec<_>>()
    };

    let events = Events::new(client.clone());
    let state = Arc::new(State {
        ctx,
        nad,
        nads,
        namespaces,
        events,
    });
    let controller = Controller::for_stream(network_stream, networks)
        .watches_stream(nad_stream, nad_mapper)
        .watches_stream(namespace_stream, namespace_mapper);
    tracing::info!(kind = %kind, "network controller started");
    controller
        .run(reconcile::<K>, error_policy::<K>, state)
        .for_each(|result| async move {
            match result {
                Ok(_) => {}
                // A NAD or Namespace event for a network that does not exist: nothing to do.
                Err(kube::runtime::controller::Error::ObjectNotFound(r)) => {
                    tracing::debug!("no network {r}")
                }
                Err(e) => tracing::warn!("network controller: {e}"),
            }
        })
        .await;
    Err(NetworkError::Watch(
        "network controller",
        format!("{kind} stream ended"),
    ))
}

fn error_policy<K: NetworkKind>(_obj: Arc<K>, err: &NetworkError, _state: Arc<State>) -> Action {
    tracing::warn!("{err}; retrying in {RETRY:?}");
    Action::requeue(RETRY)
}

async fn reconcile<K: NetworkKind>(obj: Arc<K>, state: Arc<State>) -> Result<Action, NetworkError> {
    let started = Instant::now();
    // Reconciles must see the NADs and namespaces that exist, or a NAD would look missing. The
    // stores fill while the controller polls their streams, so this waits only at start.
    let (n, s) = tokio::join!(state.nads.wait_until_ready(), state.namespaces.wait_until_ready());
    n.and(s)
        .map_err(|e| NetworkError::Watch("NetworkAttachmentDefinition/Namespace", e.to_string()))?;
    let result = reconcile_inner(obj.as_ref(), &state).await;
    state
        .ctx
        .metrics
        .observe_reconcile(CONTROLLER, started.elapsed(), result.is_err());
    result
}

fn api_error<K: NetworkKind>(obj: &K, action: &'static str) -> impl FnOnce(kube::Error) -> NetworkError {
    let (kind, namespace, name) = (
        K::kind(&()).to_string(),
        obj.namespace().unwrap_or_default(),
        obj.name_any(),
    );
    move |source| NetworkError::Api {
        kind,
        namespace,
        name,
        action,
        source,
    }
}

async fn reconcile_inner<K: NetworkKind>(obj: &K, state: &State) -> Result<Action, NetworkError> {
    let operator_ns = state.nad.operator_namespace.as_str();
    let cr_ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let networks: Api<K> = Api::namespaced(state.ctx.client.clone(), &cr_ns);

    if let Some(message) = plan::misplaced_network_namespace(obj.network_namespace(), &cr_ns, operator_ns) {
        set_ready(
            obj,
            state,
            &Readiness::not_ready(plan::reason::NAD_INVALID, message),
        )
        .await?;
        return Ok(Action::await_change());
    }
    let has_finalizer = obj.finalizers().iter().any(|f| f == NAD_FINALIZER);
    if obj.meta().deletion_timestamp.is_some() {
        if has_finalizer {
            let target = plan::target_namespace(obj.network_namespace(), &cr_ns).to_string();
            delete_nad::<K>(state, &target, &name, obj).await?;
            let rest: Vec<&String> = obj.finalizers().iter().filter(|f| *f != NAD_FINALIZER).collect();
            set_finalizers(&networks, obj, &rest).await?;
        }
        return Ok(Action::await_change());
    }
    if plan::wants_finalizer(&cr_ns, operator_ns) && !has_finalizer {
        let mut all: Vec<&String> = obj.finalizers().iter().collect();
        let ours = NAD_FINALIZER.to_string();
        all.push(&ours);
        set_finalizers(&networks, obj, &all).await?;
    }

    let target = plan::target_namespace(obj.network_namespace(), &cr_ns).to_string();
    // The network moved to another target namespace: its old NAD goes (upstream's
    // last-network-namespace annotation).
    let last = obj.annotations().get(LAST_NETWORK_NAMESPACE).cloned();
    if let Some(last) = last.as_deref().filter(|l| !l.is_empty() && *l != target) {
        delete_nad::<K>(state, last, &name, obj).await?;
        annotate_last_namespace(&networks, obj, "").await?;
    }

    let found = state.nads.get(&ObjectRef::new(&name).within(&target));
    // A terminating namespace refuses new objects: treat it as gone rather than retry a create
    // the apiserver keeps refusing.
    let namespace_exists = state
        .namespaces
        .get(&ObjectRef::new(&target))
        .is_some_and(|ns| ns.metadata.deletion_timestamp.is_none());
    let step = plan::plan(obj.render_nad(&state.nad), found.as_deref(), namespace_exists);
    match step {
        Step::Report(readiness) => {
            set_ready(obj, state, &readiness).await?;
        }
        Step::Keep => {
            if last.as_deref() != Some(target.as_str()) {
                annotate_last_namespace(&networks, obj, &target).await?;
            }
            set_ready(obj, state, &Readiness::ready()).await?;
        }
        Step::Apply(nad) => {
            let api: Api<NetworkAttachmentDefinition> = Api::namespaced(state.ctx.client.clone(), &target);
            let body = plan::nad_apply_body(&nad);
            let applied = api
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await;
            if let Err(e) = applied {
                let readiness = Readiness::not_ready(plan::reason::NAD_INVALID, e.to_string());
                set_ready(obj, state, &readiness).await?;
                return Err(api_error(obj, "apply NetworkAttachmentDefinition")(e));
            }
            tracing::info!(namespace = %target, name = %name, "NetworkAttachmentDefinition written");
            if last.as_deref() != Some(target.as_str()) {
                annotate_last_namespace(&networks, obj, &target).await?;
            }
            set_ready(obj, state, &Readiness::ready()).await?;
        }
    }
    Ok(Action::await_change())
}

/// Deletes the NAD `namespace/name` unless the cache shows it owned by another network (its
/// owner-ref annotation names someone else). A NAD the cache does not have yet (just created)
/// is deleted too: the DELETE is sent anyway and a 404 is fine.
async fn delete_nad<K: NetworkKind>(
    state: &State,
    namespace: &str,
    name: &str,
    obj: &K,
) -> Result<(), NetworkError> {
    if let Some(found) = state.nads.get(&ObjectRef::new(name).within(namespace)) {
        let ours = format!(
            "{}.{}/{}/{}",
            K::kind(&()),
            sriov_api::GROUP,
            obj.namespace().unwrap_or_default(),
            name
        );
        let owner = found.annotations().get(OWNER_REF).cloned().unwrap_or_default();
        if !owner.is_empty() && owner != ours {
            return Ok(());
        }
    }
    let api: Api<NetworkAttachmentDefinition> = Api::namespaced(state.ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(%namespace, %name, "NetworkAttachmentDefinition deleted");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error(obj, "delete NetworkAttachmentDefinition")(e)),
    }
}

/// Replaces the finalizer list, guarded by the resourceVersion the decision was made on (a
/// conflict is retried from the fresh object).
async fn set_finalizers<K: NetworkKind>(
    api: &Api<K>,
    obj: &K,
    finalizers: &[&String],
) -> Result<(), NetworkError> {
    let patch = json!({"metadata": {
        "resourceVersion": obj.resource_version(),
        "finalizers": finalizers,
    }});
    match api
        .patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // Removing our finalizer was the last thing keeping the object.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error(obj, "patch finalizers")(e)),
    }
}

async fn annotate_last_namespace<K: NetworkKind>(
    api: &Api<K>,
    obj: &K,
    target: &str,
) -> Result<(), NetworkError> {
    let patch = json!({"metadata": {"annotations": {LAST_NETWORK_NAMESPACE: target}}});
    api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(api_error(obj, "annotate last-network-namespace"))
}

/// Writes the `Ready` condition when it changes (server-side apply of the status, as upstream's
/// status patcher) and records upstream's `ReadyAdded` / `ReadyChanged` event.
async fn set_ready<K: NetworkKind>(
    obj: &K,
    state: &State,
    readiness: &Readiness,
) -> Result<(), NetworkError> {
    let current = obj.conditions();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let Some(condition) = plan::ready_condition(current, readiness, obj.meta().generation, now) else {
        return Ok(());
    };
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": obj.name_any(), "namespace": obj.namespace()},
        "status": {"conditions": [condition]},
    });
    let api: Api<K> = Api::namespaced(state.ctx.client.clone(), &obj.namespace().unwrap_or_default());
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(api_error(obj, "apply status"))?;
    // Upstream's recorder call: `Normal`, reason `ReadyAdded`/`ReadyChanged`, the message as
    // note. An event is advisory: a failure to record one is logged, not returned.
    state
        .events
        .normal(
            obj,
            plan::transition_reason(current),
            "StatusChange",
            readiness.message.clone(),
        )
        .await;
    Ok(())
}
