//! One node's evictions: list its pods, evict the ones the drain takes through the `policy/v1`
//! Eviction API, wait until they are gone; a refusal (429, a PodDisruptionBudget) is reported
//! on the node state and retried with backoff.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::EventType;
use serde_json::json;
use sriov_api::SriovNetworkNodeState;

use super::drain_plan::{DrainCondition, DrainMode, describe_blocked_eviction, drain_work};
use super::drain_report::{EventSink, publish, write_conditions};

/// After a failed pod LIST, the next try.
const RETRY: Duration = Duration::from_secs(5);
/// Between two looks at pods that are terminating.
const POLL_TERMINATING: Duration = Duration::from_secs(1);
/// Backoff for refused evictions: first retry, and the longest wait between two.
const BLOCKED_FIRST: Duration = Duration::from_secs(1);
const BLOCKED_MAX: Duration = Duration::from_secs(30);

/// The eviction work for one node, run as its own task so a slow or blocked node does not
/// hold up the others.
pub(super) struct Evictor {
    pub(super) client: Client,
    pub(super) evicting: Client,
    pub(super) namespace: String,
    pub(super) node: String,
    pub(super) mode: DrainMode,
    pub(super) prefix: String,
    pub(super) recorder: EventSink,
}

impl Evictor {
    /// Evicts until the node's pods (as the mode selects them) are gone; runs until aborted
    /// otherwise.
    pub(super) async fn drain(&self) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let states: Api<SriovNetworkNodeState> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", self.node));
        let mut backoff = BLOCKED_FIRST;
        let mut reported: Option<String> = None;
        loop {
            let listed = match pods.list(&lp).await {
                Ok(l) => l.items,
                Err(e) => {
                    tracing::warn!(node = %self.node, error = %e, "cannot list the node's pods");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            let work = drain_work(&listed, self.mode, &self.prefix);
            if work.is_done() {
                tracing::info!(node = %self.node, "drained");
                return;
            }
            let mut blocked = Vec::new();
            for pod in &work.evict {
                match evict(&self.evicting, &pod.0, &pod.1).await {
                    Ok(()) => {
                        tracing::info!(node = %self.node, pod = %format!("{}/{}", pod.0, pod.1), "evicted")
                    }
                    Err(e) => blocked.push(e.describe(pod)),
                }
            }
            if blocked.is_empty() {
                if reported.take().is_some() {
                    self.report(&states, DrainCondition::Draining, None).await;
                }
                backoff = BLOCKED_FIRST;
                tokio::time::sleep(POLL_TERMINATING).await;
                continue;
            }
            let message = blocked.join("; ");
            if reported.as_ref() != Some(&message) {
                tracing::warn!(node = %self.node, %message, "eviction refused, retrying with backoff");
                self.report(
                    &states,
                    DrainCondition::DrainingWithErrors(message.clone()),
                    Some(&message),
                )
                .await;
                reported = Some(message);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BLOCKED_MAX);
        }
    }

    /// Conditions (and, for an error, a Warning Event) on the node state; failures to report
    /// are logged, the drain goes on.
    async fn report(&self, states: &Api<SriovNetworkNodeState>, state: DrainCondition, error: Option<&str>) {
        let cached = match states.get_opt(&self.node).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(node = %self.node, error = %e, "cannot read the node state");
                return;
            }
        };
        if let Err(e) = write_conditions(states, &self.node, cached.as_ref(), state).await {
            tracing::warn!(node = %self.node, error = %e, "cannot write drain conditions");
        }
        if let (Some(err), Some(obj)) = (error, cached) {
            publish(
                &self.recorder,
                &obj,
                EventType::Warning,
                "DrainNode",
                format!("failed to drain node: {err}"),
            )
            .await;
        }
    }
}

/// Why an eviction did not happen.
enum EvictError {
    /// 429: a PodDisruptionBudget does not allow it now.
    Blocked {
        message: String,
        causes: Vec<String>,
    },
    Other(kube::Error),
}

impl EvictError {
    fn describe(&self, pod: &(String, String)) -> String {
        match self {
            EvictError::Blocked { message, causes } => describe_blocked_eviction(pod, message, causes),
            EvictError::Other(e) => format!("cannot evict pod {}/{}: {e}", pod.0, pod.1),
        }
    }
}

/// POSTs a `policy/v1` Eviction for one pod. A pod already gone (404) counts as evicted.
async fn evict(client: &Client, namespace: &str, name: &str) -> Result<(), EvictError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let body = json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    });
    match api
        .create_subresource::<_, serde_json::Value>("eviction", name, &PostParams::default(), &body)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 429 => {
            let causes = status
                .details
                .as_ref()
                .map(|d| d.causes.iter().map(|c| c.message.clone()).collect())
                .unwrap_or_default();
            Err(EvictError::Blocked {
                message: status.message.clone(),
                causes,
            })
        }
        Err(e) => Err(EvictError::Other(e)),
    }
}
