//! The one switch's controller: keeps the policies [`sriov_switch_policies`] wants in the
//! operator namespace, and nothing else labelled as the switch's.
//!
//! Reads four reflector caches (the `default` SriovOperatorConfig, Nodes, node states and
//! policies of the namespace); any event of any of them triggers one pass, and a burst of events
//! makes one pass (the trigger queue is drained before each). A pass writes only what
//! [`sriov_switch_plan`] says differs, so a quiet cluster costs no request.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::{FutureExt, StreamExt, stream};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use sriov_api::{SriovNetworkNodePolicy, SriovNetworkNodeState, SriovOperatorConfig};
use sriov_host::InterfaceExt;

use super::{FIELD_MANAGER, OperatorContext};
use crate::render::NodeInfo;
use crate::render::sriov_switch::{sriov_switch_plan, sriov_switch_policies};

/// The `controller` label of this controller's metrics.
pub const CONTROLLER: &str = "sriov-switch";

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("SriovNetworkNodePolicy {namespace}/{name}: {verb} failed: {source}")]
    Write {
        namespace: String,
        name: String,
        verb: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("the {kind} watch ended")]
    WatchEnded { kind: &'static str },
}

/// Run until a watch ends for good (kube-runtime retries transient errors with backoff).
pub async fn run(ctx: OperatorContext) -> Result<(), SwitchError> {
    let ns = ctx.namespace.clone();
    let (configs, configs_w) = reflector::store::<SriovOperatorConfig>();
    let (nodes, nodes_w) = reflector::store::<Node>();
    let (states, states_w) = reflector::store::<SriovNetworkNodeState>();
    let (policies, policies_w) = reflector::store::<SriovNetworkNodePolicy>();
    let client = ctx.client.clone();
    let cfg = watcher::Config::default();
    // Each stream yields () per event; errors are logged and retried by the backoff.
    fn ticks<S, K>(s: S, kind: &'static str) -> stream::BoxStream<'static, &'static str>
    where
        S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
        K: Send + 'static,
    {
        s.filter_map(move |e| async move {
            match e {
                Ok(_) => Some(kind),
                Err(err) => {
                    tracing::warn!(kind, error = %err, "sriov-switch watch error (retrying)");
                    None
                }
            }
        })
        .boxed()
    }
    let mut events = stream::select_all([
        ticks(
            reflector(
                configs_w,
                watcher(
                    Api::<SriovOperatorConfig>::namespaced(client.clone(), &ns),
                    cfg.clone(),
                ),
            )
            .default_backoff(),
            "SriovOperatorConfig",
        ),
        ticks(
            reflector(nodes_w, watcher(Api::<Node>::all(client.clone()), cfg.clone())).default_backoff(),
            "Node",
        ),
        ticks(
            reflector(
                states_w,
                watcher(
                    Api::<SriovNetworkNodeState>::namespaced(client.clone(), &ns),
                    cfg.clone(),
                ),
            )
            .default_backoff(),
            "SriovNetworkNodeState",
        ),
        ticks(
            reflector(
                policies_w,
                watcher(
                    Api::<SriovNetworkNodePolicy>::namespaced(client.clone(), &ns),
                    cfg,
                ),
            )
            .default_backoff(),
            "SriovNetworkNodePolicy",
        ),
    ]);
    loop {
        let Some(_) = events.next().await else {
            return Err(SwitchError::WatchEnded { kind: "any" });
        };
        // Coalesce a burst: take whatever else is already queued before one pass.
        while let Some(Some(_)) = events.next().now_or_never() {}
        // Until every cache holds its initial list, a pass would delete policies it cannot see
        // reasons for: wait for the rest of the initial lists.
        if !(is_ready(&configs) && is_ready(&nodes) && is_ready(&states) && is_ready(&policies)) {
            continue;
        }
        let started = Instant::now();
        let result = pass(&ctx, &configs, &nodes, &states, &policies).await;
        ctx.metrics
            .observe_reconcile(CONTROLLER, started.elapsed(), result.is_err());
        if let Err(e) = result {
            tracing::warn!(error = %e, "sriov-switch pass failed; the next event retries");
        }
    }
}

/// Whether a reflector store has received its initial list.
fn is_ready<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store.wait_until_ready().now_or_never().is_some()
}

/// One pass over the caches: plan, then write the differences.
async fn pass(
    ctx: &OperatorContext,
    configs: &Store<SriovOperatorConfig>,
    nodes: &Store<Node>,
    states: &Store<SriovNetworkNodeState>,
    policies: &Store<SriovNetworkNodePolicy>,
) -> Result<(), SwitchError> {
    let ns = &ctx.namespace;
    let config = configs
        .state()
        .into_iter()
        .find(|c| c.name_any() == sriov_api::operator_config::DEFAULT_OPERATOR_CONFIG_NAME);
    let owner: Option<OwnerReference> = config.as_ref().and_then(|c| c.controller_owner_ref(&()));
    let node_infos: Vec<NodeInfo> = nodes
        .state()
        .iter()
        .map(|n| NodeInfo {
            name: n.name_any(),
            labels: n.labels().clone(),
        })
        .collect();
    let interfaces: BTreeMap<String, Vec<InterfaceExt>> = states
        .state()
        .iter()
        .map(|s| {
            (
                s.name_any(),
                s.status
                    .as_ref()
                    .map(|st| st.interfaces.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let wanted = sriov_switch_policies(
        ns,
        config.as_ref().and_then(|c| c.spec.sriov_config.as_ref()),
        owner.as_ref(),
        &node_infos,
        &interfaces,
    );
    let existing: Vec<SriovNetworkNodePolicy> = policies.state().iter().map(|p| (**p).clone()).collect();
    let plan = sriov_switch_plan(&wanted, &existing);
    for name in &plan.conflicts {
        tracing::warn!(
            policy = %name,
            "sriovConfig wants policy {ns}/{name}, but a policy of that name without the label \
             {}={} exists; left untouched",
            sriov_api::SRIOV_SWITCH_LABEL,
            sriov_api::SRIOV_SWITCH_LABEL_VALUE
        );
    }
    let api = Api::<SriovNetworkNodePolicy>::namespaced(ctx.client.clone(), ns);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for policy in plan.apply {
        let name = policy.name_any();
        tracing::info!(policy = %name, num_vfs = policy.spec.num_vfs, "sriovConfig: applying policy");
        api.patch(&name, &params, &Patch::Apply(policy))
            .await
            .map_err(|source| SwitchError::Write {
                namespace: ns.clone(),
                name: name.clone(),
                verb: "apply",
                source,
            })?;
    }
    for name in plan.delete {
        tracing::info!(policy = %name, "sriovConfig: deleting policy");
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(source) => {
                return Err(SwitchError::Write {
                    namespace: ns.clone(),
                    name,
                    verb: "delete",
                    source,
                });
            }
        }
    }
    Ok(())
}
