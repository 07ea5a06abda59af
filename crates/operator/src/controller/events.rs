//! Kubernetes Events (`events.k8s.io/v1`) from the operator's controllers, through kube-runtime's
//! [`Recorder`] (it folds repeats of one event into a series instead of creating a new object
//! each time). The reporting controller is upstream's identifier, `sriov-network-operator`.
//!
//! Upstream's RBAC (its Helm chart's Role) grants only the core `events` resource, not
//! `events.k8s.io`; when the API server refuses the latter with 403, the event is written as a
//! core/v1 `Event` instead, and every later one too, so the operator works under upstream's
//! manifests unchanged.
//!
//! ```ignore
//! let events = Events::new(ctx.client.clone());
//! events.normal(&node_state, "DrainNode", "Drain", "draining node worker-1").await;
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// `reportingController` of every event (upstream's `SriovNetworkOperatorIdentifier`).
pub const REPORTING_CONTROLLER: &str = "sriov-network-operator";

/// Publishes events about the operator's objects. Cheap to clone (one shared series cache).
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
    client: kube::Client,
    instance: Option<String>,
    /// Set once `events.k8s.io` was refused: write core/v1 Events from then on.
    core_only: Arc<AtomicBool>,
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
            instance: instance.clone(),
        };
        Events {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            instance,
            core_only: Arc::new(AtomicBool::new(false)),
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
        self.publish_with(&self.recorder, &event, &object.object_ref(&()))
            .await
    }

    /// Publishes `event` about `reference` without folding it into an earlier series: kube's
    /// recorder folds events with the same reason and action into one series that keeps the
    /// *first* note, so a second "spec changed" would show the first change's text. Used for
    /// events whose note says what happened this time. A failure is logged, never returned.
    pub async fn record(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        let recorder = Recorder::new(self.client.clone(), self.reporter());
        if let Err(e) = self.publish_with(&recorder, &event, reference).await {
            tracing::warn!(
                kind = reference.kind.as_deref().unwrap_or_default(),
                name = reference.name.as_deref().unwrap_or_default(),
                reason,
                error = %e,
                "cannot publish event"
            );
        }
    }

    fn reporter(&self) -> Reporter {
        Reporter {
            controller: REPORTING_CONTROLLER.into(),
            instance: self.instance.clone(),
        }
    }

    async fn publish_with(
        &self,
        recorder: &Recorder,
        event: &Event,
        reference: &ObjectReference,
    ) -> Result<(), kube::Error> {
        if !self.core_only.load(Ordering::Relaxed) {
            match recorder.publish(event, reference).await {
                Err(kube::Error::Api(e)) if e.code == 403 => {
                    tracing::info!(
                        "events.k8s.io is forbidden to this account; writing core/v1 Events instead"
                    );
                    self.core_only.store(true, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        let core = core_event(event, reference, self.instance.as_deref(), Timestamp::now());
        let namespace = reference.namespace.as_deref().unwrap_or("default");
        Api::<CoreEvent>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &core)
            .await
            .map(|_| ())
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

    /// Whether events go to the core/v1 API (after a 403 on `events.k8s.io`).
    pub fn writes_core_events(&self) -> bool {
        self.core_only.load(Ordering::Relaxed)
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

/// The core/v1 form of `event` (what client-go's legacy recorder writes): a unique name,
/// `involvedObject`, `source.component`, first/last timestamps and a count of 1.
pub fn core_event(
    event: &Event,
    regarding: &ObjectReference,
    instance: Option<&str>,
    now: Timestamp,
) -> CoreEvent {
    let base = regarding.name.as_deref().unwrap_or(REPORTING_CONTROLLER);
    CoreEvent {
        metadata: ObjectMeta {
            name: Some(format!("{base}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        involved_object: regarding.clone(),
        reason: Some(event.reason.clone()),
        message: event.note.clone(),
        type_: Some(
            match event.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        action: Some(event.action.clone()),
        source: Some(EventSource {
            component: Some(REPORTING_CONTROLLER.into()),
            host: None,
        }),
        reporting_component: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: instance.map(String::from),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..CoreEvent::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_core_form_names_the_object_reason_and_reporter() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let event = Event {
            type_: EventType::Warning,
            reason: "DrainBlocked".into(),
            note: Some("a PodDisruptionBudget blocks eviction".into()),
            action: "Drain".into(),
            secondary: None,
        };
        let regarding = ObjectReference {
            kind: Some("SriovNetworkNodeState".into()),
            name: Some("worker-1".into()),
            namespace: Some("sriov".into()),
            ..ObjectReference::default()
        };
        let core = core_event(&event, &regarding, Some("op-0"), now);
        assert_eq!(core.metadata.namespace.as_deref(), Some("sriov"));
        assert!(core.metadata.name.unwrap().starts_with("worker-1."));
        assert_eq!(core.involved_object, regarding);
        assert_eq!(core.type_.as_deref(), Some("Warning"));
        assert_eq!(core.reason.as_deref(), Some("DrainBlocked"));
        assert_eq!(
            core.message.as_deref(),
            Some("a PodDisruptionBudget blocks eviction")
        );
        assert_eq!(
            core.source.unwrap().component.as_deref(),
            Some(REPORTING_CONTROLLER)
        );
        assert_eq!(core.reporting_instance.as_deref(), Some("op-0"));
        assert_eq!(core.count, Some(1));
    }
}
