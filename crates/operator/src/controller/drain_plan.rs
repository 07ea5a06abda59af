//! The drain controller's decisions as plain functions (upstream §1.10): which nodes may start
//! draining under their pool's `maxUnavailable`, which pods a drain evicts, and the node
//! state's drain conditions. No I/O: `controller/drain.rs` reads the caches into [`NodeFacts`],
//! calls [`plan`], and carries out the [`Action`]s.
//!
//! The handshake: the config daemon asks with the Node annotation `sriovnetwork.openshift.io/state`
//! (`Drain_Required` / `Reboot_Required` / `Idle`); the controller answers in the node state's
//! `current-state` (`Idle` → `Draining` → `DrainComplete` → back to `Idle` once the daemon says
//! `Idle` again).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sriov_api::SriovNetworkPoolConfig;
use sriov_api::drain::{DRAIN_COMPLETE, DRAIN_REQUIRED, DRAINING, IDLE, REBOOT_REQUIRED};

use crate::render::pools::pool_for_node;

/// Annotation the kubelet puts on a mirror (static) pod: the API cannot evict those.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// A pool's `maxUnavailable` that upstream refuses (the message is upstream's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaxUnavailableError {
    #[error("invalid value {0:?}: strings need to be a percentage")]
    NotAPercentage(String),
    #[error("invalid value {0:?}: percentage needs to be between 1 and 100")]
    PercentOutOfRange(String),
    #[error("invalid value {0}: negative number is not allowed")]
    Negative(i32),
}

/// How many of `nodes` nodes may drain at once: `None` when unlimited (no `maxUnavailable`).
/// Upstream semantics (`SriovNetworkPoolConfig.MaxUnavailable`): an integer as is, `"N%"` with
/// N in 1..=100 scaled by the pool size and rounded **down** (so 10% of 3 nodes is 0: nothing
/// drains, as upstream).
pub fn max_unavailable(
    value: Option<&IntOrString>,
    nodes: usize,
) -> Result<Option<usize>, MaxUnavailableError> {
    match value {
        None => Ok(None),
        Some(IntOrString::Int(n)) if *n < 0 => Err(MaxUnavailableError::Negative(*n)),
        Some(IntOrString::Int(n)) => Ok(Some(*n as usize)),
        Some(IntOrString::String(s)) => {
            let Some(digits) = s.strip_suffix('%') else {
                return Err(MaxUnavailableError::NotAPercentage(s.clone()));
            };
            let pct: usize = digits
                .parse()
                .map_err(|_| MaxUnavailableError::NotAPercentage(s.clone()))?;
            if !(1..=100).contains(&pct) {
                return Err(MaxUnavailableError::PercentOutOfRange(s.clone()));
            }
            Ok(Some(pct * nodes / 100))
        }
    }
}

/// The `maxUnavailable` of nodes in no pool (upstream `defaultPoolConfig`): one at a time.
pub const DEFAULT_POOL_MAX_UNAVAILABLE: IntOrString = IntOrString::Int(1);

/// Which pods a drain evicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainMode {
    /// `Drain_Required`: pods whose containers request a resource named with the resource prefix.
    SriovPods,
    /// `Reboot_Required`: every pod.
    AllPods,
    /// `Reboot_Required` on a single-node cluster: nowhere to move pods to, so upstream skips
    /// the drain (and the cordon) and answers `DrainComplete` at once.
    Skip,
}

/// What one node looks like to the drain controller (read from the Node and its node state).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Node annotation `sriovnetwork.openshift.io/state` (`None`: absent).
    pub request: Option<String>,
    /// `None` when the node has no node state (the controller leaves it alone).
    pub state: Option<StateFacts>,
}

/// The node state's side of the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateFacts {
    /// `current-state` (`None`: absent).
    pub current: Option<String>,
    /// `desired-state` (`None`: absent).
    pub desired: Option<String>,
    /// `use-external-drainer: "true"`: another drainer owns this node.
    pub external_drainer: bool,
}

/// One thing the I/O shell must do for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the handshake annotations that are missing, as `Idle` (upstream does, so daemons
    /// and tools always find a value). Nothing else happens to the node in this pass.
    InitAnnotations {
        node: String,
        node_request: bool,
        current: bool,
        desired: bool,
    },
    /// `Idle` → `Draining` (or straight to `DrainComplete` for [`DrainMode::Skip`]): a slot in
    /// the pool is free.
    Start { node: String, mode: DrainMode },
    /// `Draining`: keep evicting until the node's pods are gone, then `DrainComplete`.
    Drain { node: String, mode: DrainMode },
    /// Wants to drain, but its pool has `busy` of `limit` nodes draining already.
    Wait {
        node: String,
        pool: String,
        limit: usize,
        busy: usize,
    },
    /// The daemon is back to `Idle`: uncordon, `current-state: Idle`.
    Release { node: String },
    /// Cannot decide for this node (several pools, bad `maxUnavailable`, unknown request).
    Invalid { node: String, message: String },
}

/// The pool a node drains in: its name (`None` for the implicit default pool) and its limit.
type PoolSlot = (Option<String>, Option<usize>);

/// Decides, for every node with a node state, what the drain controller does now. `pools` are
/// the operator namespace's `SriovNetworkPoolConfig`s; every Node counts for pool sizes (as
/// upstream lists Nodes by selector), only node states count as draining. Candidates are taken
/// in name order, so which of two simultaneous requests goes first is deterministic.
pub fn plan(nodes: &[NodeFacts], pools: &[&SriovNetworkPoolConfig]) -> Vec<Action> {
    // Pool of every node, then pool sizes.
    let membership: BTreeMap<&str, Result<Option<String>, String>> = nodes
        .iter()
        .map(|n| {
            let pool = pool_for_node(pools, &n.labels)
                .map(|p| p.map(|p| p.metadata.name.clone().unwrap_or_default()));
            (n.name.as_str(), pool)
        })
        .collect();
    let mut sizes: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for pool in membership.values().flatten() {
        *sizes.entry(pool.clone()).or_default() += 1;
    }
    let limit_of = |pool: &Option<String>| -> Result<Option<usize>, String> {
        let size = sizes.get(pool).copied().unwrap_or(0);
        let value = match pool {
            None => Some(&DEFAULT_POOL_MAX_UNAVAILABLE),
            Some(name) => pools
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(name))
                .and_then(|p| p.spec.max_unavailable.as_ref()),
        };
        max_unavailable(value, size).map_err(|e| {
            format!(
                "pool {}: maxUnavailable {e}",
                pool.as_deref().unwrap_or("default")
            )
        })
    };
    let slot_of = |node: &str| -> Result<PoolSlot, String> {
        let pool = membership.get(node).cloned().unwrap_or(Ok(None))?;
        let limit = limit_of(&pool)?;
        Ok((pool, limit))
    };

    let mut busy: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for n in nodes {
        let Some(state) = &n.state else { continue };
        let current = state.current.as_deref().unwrap_or(IDLE);
        if (current == DRAINING || current == DRAIN_COMPLETE)
            && let Some(Ok(pool)) = membership.get(n.name.as_str())
        {
            *busy.entry(pool.clone()).or_default() += 1;
        }
    }
    let single_node = nodes.len() == 1;

    let mut sorted: Vec<&NodeFacts> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut actions = Vec::new();
    for n in sorted {
        let Some(state) = &n.state else { continue };
        if state.external_drainer {
            continue;
        }
        let node = n.name.clone();
        if n.request.is_none() || state.current.is_none() || state.desired.is_none() {
            actions.push(Action::InitAnnotations {
                node,
                node_request: n.request.is_none(),
                current: state.current.is_none(),
                desired: state.desired.is_none(),
            });
            continue;
        }
        let request = n.request.as_deref().unwrap_or(IDLE);
        let current = state.current.as_deref().unwrap_or(IDLE);
        let mode = match request {
            IDLE => None,
            DRAIN_REQUIRED => Some(DrainMode::SriovPods),
            REBOOT_REQUIRED if single_node => Some(DrainMode::Skip),
            REBOOT_REQUIRED => Some(DrainMode::AllPods),
            other => {
                actions.push(Action::Invalid {
                    node,
                    message: format!("unexpected node drain annotation {other:?}"),
                });
                continue;
            }
        };
        match (mode, current) {
            (None, IDLE) => {}
            (None, _) => actions.push(Action::Release { node }),
            (Some(_), DRAIN_COMPLETE) => {}
            (Some(mode), DRAINING) => actions.push(Action::Drain { node, mode }),
            (Some(mode), _) => match slot_of(&n.name) {
                Err(message) => actions.push(Action::Invalid { node, message }),
                Ok((pool, limit)) => {
                    let taken = busy.entry(pool.clone()).or_default();
                    match limit {
                        Some(limit) if *taken >= limit => actions.push(Action::Wait {
                            node,
                            pool: pool.unwrap_or_else(|| "default".to_string()),
                            limit,
                            busy: *taken,
                        }),
                        _ => {
                            *taken += 1;
                            actions.push(Action::Start { node, mode });
                        }
                    }
                }
            },
        }
    }
    actions
}

/// What a drain does with one pod on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodDisposition {
    /// Evict it through the Eviction API.
    Evict,
    /// Already being deleted: wait until it is gone.
    Terminating,
    /// Leave it (the reason, for logs).
    Keep(&'static str),
}

/// Upstream's filter (kubectl's drain helper with `IgnoreAllDaemonSets`, `Force`, plus the
/// resource filter for `Drain_Required`): mirror pods and DaemonSet pods stay; for
/// [`DrainMode::SriovPods`] only pods with a container (not an init container) requesting a
/// resource whose name starts with `resource_prefix` go.
pub fn pod_disposition(pod: &Pod, mode: DrainMode, resource_prefix: &str) -> PodDisposition {
    if mode == DrainMode::Skip {
        return PodDisposition::Keep("drain skipped");
    }
    let meta = &pod.metadata;
    if meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
    {
        return PodDisposition::Keep("mirror pod");
    }
    let daemon_set = meta
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.kind == "DaemonSet");
    if daemon_set {
        return PodDisposition::Keep("DaemonSet pod");
    }
    if mode == DrainMode::SriovPods && !requests_prefixed_resource(pod, resource_prefix) {
        return PodDisposition::Keep("no SR-IOV resource");
    }
    if meta.deletion_timestamp.is_some() {
        return PodDisposition::Terminating;
    }
    PodDisposition::Evict
}

/// Whether a container of `pod` requests a resource named `<prefix>…` (a plain string prefix,
/// as upstream: `openshift.io` matches `openshift.io/intel_sriov`).
fn requests_prefixed_resource(pod: &Pod, prefix: &str) -> bool {
    pod.spec.iter().flat_map(|s| &s.containers).any(|c| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|req| req.keys().any(|k| k.starts_with(prefix)))
    })
}

/// The pods of one node a drain still has to deal with: `(namespace, name)` to evict, and how
/// many are already terminating. The drain is complete when both are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainWork {
    pub evict: Vec<(String, String)>,
    pub terminating: Vec<(String, String)>,
}

impl DrainWork {
    pub fn is_done(&self) -> bool {
        self.evict.is_empty() && self.terminating.is_empty()
    }
}

/// Sorts `pods` (those bound to the node) by [`pod_disposition`].
pub fn drain_work(pods: &[Pod], mode: DrainMode, resource_prefix: &str) -> DrainWork {
    let mut work = DrainWork::default();
    for pod in pods {
        let key = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        match pod_disposition(pod, mode, resource_prefix) {
            PodDisposition::Evict => work.evict.push(key),
            PodDisposition::Terminating => work.terminating.push(key),
            PodDisposition::Keep(_) => {}
        }
    }
    work
}

/// Condition types on the node state's `status.conditions` (upstream's newer API names).
pub mod condition {
    pub const DRAIN_PROGRESSING: &str = "DrainProgressing";
    pub const DRAIN_DEGRADED: &str = "DrainDegraded";
    pub const DRAIN_COMPLETE: &str = "DrainComplete";
}

/// Where a node's drain stands, as the conditions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainCondition {
    Idle,
    /// Waiting for a slot in the pool (the message says which pool and its limit).
    Pending(String),
    Draining,
    /// Draining, but an eviction failed: a PodDisruptionBudget, usually (the message says which).
    DrainingWithErrors(String),
    Complete,
}

/// The three drain conditions for `state`, carrying the `lastTransitionTime` of `previous`
/// conditions whose status did not change (so a re-write is recognisably the same).
pub fn drain_conditions(
    state: &DrainCondition,
    generation: Option<i64>,
    now: &Time,
    previous: &[Condition],
) -> Vec<Condition> {
    let (progressing, degraded, complete) = match state {
        DrainCondition::Idle => (
            (false, "NotProgressing", String::new()),
            (false, "NotDegraded", String::new()),
            (false, "DrainNotNeeded", String::new()),
        ),
        DrainCondition::Pending(why) => (
            (false, "DrainPending", why.clone()),
            (false, "NotDegraded", String::new()),
            (false, "DrainPending", why.clone()),
        ),
        DrainCondition::Draining => (
            (true, "DrainingNode", "Node is being drained".to_string()),
            (false, "NotDegraded", String::new()),
            (false, "DrainPending", String::new()),
        ),
        DrainCondition::DrainingWithErrors(err) => (
            (true, "DrainingNode", "Node is being drained".to_string()),
            (
                true,
                "DrainFailed",
                format!("Node drain encountered errors: {err}"),
            ),
            (false, "DrainPending", String::new()),
        ),
        DrainCondition::Complete => (
            (false, "NotProgressing", String::new()),
            (false, "NotDegraded", String::new()),
            (true, "DrainCompleted", "Node drain completed".to_string()),
        ),
    };
    [
        (condition::DRAIN_PROGRESSING, progressing),
        (condition::DRAIN_DEGRADED, degraded),
        (condition::DRAIN_COMPLETE, complete),
    ]
    .into_iter()
    .map(|(type_, (status, reason, message))| {
        let status = if status { "True" } else { "False" }.to_string();
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message,
            observed_generation: generation,
            last_transition_time,
        }
    })
    .collect()
}

/// Whether `ours` (the drain conditions) differ from what `current` holds, ignoring
/// `lastTransitionTime`: only then is a status write needed.
pub fn conditions_differ(current: &[Condition], ours: &[Condition]) -> bool {
    ours.iter().any(|c| {
        !current.iter().any(|o| {
            o.type_ == c.type_
                && o.status == c.status
                && o.reason == c.reason
                && o.message == c.message
                && o.observed_generation == c.observed_generation
        })
    })
}

/// `current` with the drain conditions replaced by `ours`, other conditions kept.
pub fn merge_conditions(current: &[Condition], ours: Vec<Condition>) -> Vec<Condition> {
    let mut out: Vec<Condition> = current
        .iter()
        .filter(|c| !ours.iter().any(|o| o.type_ == c.type_))
        .cloned()
        .collect();
    out.extend(ours);
    out
}

/// An eviction the API refused with 429: a PodDisruptionBudget does not allow it now. The
/// apiserver names the budget in the status details (`causes[].message`), which is what the
/// user needs; the generic top-level message is the fallback.
pub fn describe_blocked_eviction(pod: &(String, String), message: &str, causes: &[String]) -> String {
    let why = if causes.is_empty() {
        message.to_string()
    } else {
        causes.join("; ")
    };
    format!("cannot evict pod {}/{}: {why}", pod.0, pod.1)
}

#[cfg(test)]
mod tests;
