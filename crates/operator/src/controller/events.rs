//! Kubernetes Events (`events.k8s.io/v1`) from the operator's controllers, through kube-runtime's
//! [`Recorder`] (it folds repeats of one event into a series instead of creating a new object
//! each time). The reporting controller is upstream's identifier, `sriov-network-operator`.
//!
//! ```ignore
//! let events = Events::new(ctx.client.clone());
//! events.normal(&node_state, "DrainNode", "Drain", "draining node worker-1").await;
//! ```

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// `reportingController` of every event (upstream's `SriovNetworkOperatorIdentifier`).
pub const REPORTING_CONTROLLER: &str = "sriov-network-operator";

/// Publishes events about the operator's objects. Cheap to clone (one shared series cache).
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// `reportingInstance` is this host's name (the pod name in a pod).
    pub fn new(client: kube::Client) -> Events {
        let instance = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        Events::with_instance(client, instance)
    }

    pub fn with_instance(client: kube::Client, instance: Option<String>) -> Events {
        let reporter = Reporter {
            controller: REPORTING_CONTROLLER.into(),
            instance,
        };
        Events {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publishes one event about `object`, in the object's namespace (`default` for
    /// cluster-scoped objects such as Nodes, as kube-runtime does).
    pub async fn publish<K>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) -> Result<(), kube::Error>
    where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: action.into(),
            secondary: None,
        };
        self.recorder.publish(&event, &object.object_ref(&())).await
    }

    /// A `Normal` event; a failure to publish is logged, never returned (events are advisory,
    /// as controller-runtime's recorder treats them).
    pub async fn normal<K>(&self, object: &K, reason: &str, action: &str, note: impl Into<String>)
    where
        K: Resource<DynamicType = ()>,
    {
        self.best_effort(object, EventType::Normal, reason, action, note.into())
            .await
    }

    /// A `Warning` event; see [`Events::normal`].
    pub async fn warning<K>(&self, object: &K, reason: &str, action: &str, note: impl Into<String>)
    where
        K: Resource<DynamicType = ()>,
    {
        self.best_effort(object, EventType::Warning, reason, action, note.into())
            .await
    }

    async fn best_effort<K>(&self, object: &K, type_: EventType, reason: &str, action: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        if let Err(e) = self.publish(object, type_, reason, action, note).await {
            tracing::warn!(
                kind = %K::kind(&()),
                name = object.meta().name.as_deref().unwrap_or_default(),
                reason,
                error = %e,
                "cannot publish event"
            );
        }
    }
}
