//! How the drain controller writes what it did: merge patches under the operator's field
//! manager, the node state's drain conditions, and Events on the node state.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use sriov_api::SriovNetworkNodeState;

use super::FIELD_MANAGER;
use super::drain_plan::{DrainCondition, conditions_differ, drain_conditions, merge_conditions};

/// Upstream's event reason; the action says which step (`DrainNode`, `CompleteDrain`).
const EVENT_REASON: &str = "DrainController";

pub(super) fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// Writes the drain conditions to the node state's status when they differ from `cached`.
pub(super) async fn write_conditions(
    api: &Api<SriovNetworkNodeState>,
    node: &str,
    cached: Option<&SriovNetworkNodeState>,
    state: DrainCondition,
) -> Result<(), kube::Error> {
    let current = cached
        .and_then(|s| s.status.as_ref())
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let generation = cached.and_then(|s| s.metadata.generation);
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let ours = drain_conditions(&state, generation, &now, &current);
    if !conditions_differ(&current, &ours) {
        return Ok(());
    }
    let conditions = merge_conditions(&current, ours);
    api.patch_status(
        node,
        &patch_params(),
        &Patch::Merge(json!({"status": {"conditions": conditions}})),
    )
    .await?;
    Ok(())
}

/// Where Events go. A fresh [`Recorder`] per Event: kube's recorder folds events with the same
/// reason and action into one series that keeps the *first* note, so "drain started" would
/// hide "drain completed" (both upstream's `DrainController`/`DrainNode`).
#[derive(Clone)]
pub(super) struct EventSink {
    pub(super) client: Client,
    pub(super) reporter: Reporter,
}

pub(super) async fn publish(
    sink: &EventSink,
    state: &SriovNetworkNodeState,
    type_: EventType,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: EVENT_REASON.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    let recorder = Recorder::new(sink.client.clone(), sink.reporter.clone());
    if let Err(e) = recorder.publish(&event, &state.object_ref(&())).await {
        tracing::warn!(node = %state.name_any(), error = %e, "cannot record event");
    }
}
