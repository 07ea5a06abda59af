//! The decisions of the network controller as plain functions: which NAD to write, which
//! `Ready` condition to report, which network a NAD event concerns. No I/O here; the caller
//! passes what its reflector caches hold.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::Resource;
use sriov_api::NetworkAttachmentDefinition;
use sriov_api::keys::OWNER_REF;

use crate::render::RenderError;

/// Upstream's finalizer (`NETATTDEFFINALIZERNAME`) on networks in the operator namespace: their
/// NAD may live in another namespace, where an ownerReference cannot reach.
pub const NAD_FINALIZER: &str = "netattdef.finalizers.sriovnetwork.openshift.io";

/// The condition type every network kind reports (upstream `ConditionReady`).
pub const READY: &str = "Ready";

/// Upstream's reasons of the `Ready` condition (`api/v1/conditions.go`).
pub mod reason {
    pub const NETWORK_READY: &str = "NetworkReady";
    pub const NAD_NOT_FOUND: &str = "NetworkAttachmentDefinitionNotFound";
    pub const NAD_INVALID: &str = "NetworkAttachmentDefinitionInvalid";
    pub const NAMESPACE_NOT_FOUND: &str = "NamespaceNotFound";
}

/// Upstream's message of `Ready=True`.
pub const READY_MESSAGE: &str = "NetworkAttachmentDefinition is provisioned and ready";

/// What the `Ready` condition should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Readiness {
    pub fn ready() -> Readiness {
        Readiness {
            ready: true,
            reason: reason::NETWORK_READY,
            message: READY_MESSAGE.to_string(),
        }
    }
    pub fn not_ready(reason: &'static str, message: impl Into<String>) -> Readiness {
        Readiness {
            ready: false,
            reason,
            message: message.into(),
        }
    }
}

/// What to do with the NAD of a live (not deleting) network.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Write this NAD (server-side apply), then report ready.
    Apply(Box<NetworkAttachmentDefinition>),
    /// The NAD is as rendered: only report ready.
    Keep,
    /// Write nothing; report this (not ready).
    Report(Readiness),
}

/// Upstream's check before rendering: `spec.networkNamespace` only on networks in the operator
/// namespace. `Some(message)` when violated.
pub fn misplaced_network_namespace(
    network_namespace: &str,
    cr_namespace: &str,
    operator_namespace: &str,
) -> Option<String> {
    (!network_namespace.is_empty() && cr_namespace != operator_namespace).then(|| {
        format!(
            "spec.networkNamespace cannot be set when the resource is not in the operator namespace ({operator_namespace})"
        )
    })
}

/// Upstream keeps its finalizer only on networks in the operator namespace (elsewhere the NAD is
/// in the network's own namespace and its ownerReference lets the garbage collector delete it).
pub fn wants_finalizer(cr_namespace: &str, operator_namespace: &str) -> bool {
    cr_namespace == operator_namespace
}

fn owner_annotation(nad: &NetworkAttachmentDefinition) -> &str {
    nad.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OWNER_REF))
        .map(String::as_str)
        .unwrap_or("")
}

/// Whether `found` lacks something `desired` sets: the config, one of our annotations (extra
/// annotations someone else added are theirs and stay: server-side apply leaves them), or our
/// ownerReference.
pub fn nad_differs(desired: &NetworkAttachmentDefinition, found: &NetworkAttachmentDefinition) -> bool {
    if desired.spec != found.spec {
        return true;
    }
    let found_annotations = found.metadata.annotations.clone().unwrap_or_default();
    let annotations_missing = desired
        .metadata
        .annotations
        .iter()
        .flatten()
        .any(|(k, v)| found_annotations.get(k) != Some(v));
    let found_refs = found.metadata.owner_references.clone().unwrap_or_default();
    let refs_missing = desired
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| !found_refs.iter().any(|f| f.uid == r.uid && f.kind == r.kind));
    annotations_missing || refs_missing
}

/// Decides the step for a network whose NAD rendered as `desired` (or failed to), given the NAD
/// found in the cache at the target and whether the target namespace exists.
pub fn plan(
    desired: Result<NetworkAttachmentDefinition, RenderError>,
    found: Option<&NetworkAttachmentDefinition>,
    namespace_exists: bool,
) -> Step {
    let desired = match desired {
        Ok(nad) => nad,
        Err(e) => return Step::Report(Readiness::not_ready(reason::NAD_INVALID, e.to_string())),
    };
    let Some(found) = found else {
        if !namespace_exists {
            let ns = desired.metadata.namespace.clone().unwrap_or_default();
            return Step::Report(Readiness::not_ready(
                reason::NAMESPACE_NOT_FOUND,
                format!("target namespace {ns:?} does not exist"),
            ));
        }
        return Step::Apply(Box::new(desired));
    };
    let (current, expected) = (owner_annotation(found), owner_annotation(&desired));
    if !current.is_empty() && current != expected {
        return Step::Report(Readiness::not_ready(
            reason::NAD_INVALID,
            format!(
                "NetworkAttachmentDefinition '{}/{}' already exists and is owned by {current}",
                desired.metadata.namespace.as_deref().unwrap_or(""),
                desired.metadata.name.as_deref().unwrap_or(""),
            ),
        ));
    }
    if nad_differs(&desired, found) {
        Step::Apply(Box::new(desired))
    } else {
        Step::Keep
    }
}

/// The `Ready` condition to write, or `None` when `current` already says the same thing (so
/// nothing is written). `lastTransitionTime` only moves when the status flips.
pub fn ready_condition(
    current: &[Condition],
    want: &Readiness,
    generation: Option<i64>,
    now: Time,
) -> Option<Condition> {
    let status = if want.ready { "True" } else { "False" };
    let old = current.iter().find(|c| c.type_ == READY);
    if let Some(old) = old
        && old.status == status
        && old.reason == want.reason
        && old.message == want.message
        && old.observed_generation == generation
    {
        return None;
    }
    let last_transition_time = match old {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => now,
    };
    Some(Condition {
        type_: READY.to_string(),
        status: status.to_string(),
        reason: want.reason.to_string(),
        message: want.message.clone(),
        observed_generation: generation,
        last_transition_time,
    })
}

/// Upstream's event reason for a condition change: `ReadyAdded` or `ReadyChanged`.
pub fn transition_reason(current: &[Condition]) -> &'static str {
    if current.iter().any(|c| c.type_ == READY) {
        "ReadyChanged"
    } else {
        "ReadyAdded"
    }
}

/// The network (`namespace`, `name`) of `kind` a NAD event concerns. A NAD whose owner-ref
/// annotation names a network names exactly that one; one without it (a hand-made NAD that we
/// would take over) may belong to the network of the same name in its namespace or in the
/// operator namespace, as upstream maps it.
pub fn networks_of_nad(
    nad: &NetworkAttachmentDefinition,
    kind: &str,
    operator_namespace: &str,
) -> Vec<(String, String)> {
    let name = nad.metadata.name.clone().unwrap_or_default();
    let owner = owner_annotation(nad);
    if !owner.is_empty() {
        // `<Kind>.sriovnetwork.openshift.io/<namespace>/<name>`
        let mut parts = owner.splitn(3, '/');
        let (Some(kind_group), Some(ns), Some(owner_name)) = (parts.next(), parts.next(), parts.next())
        else {
            return Vec::new();
        };
        if kind_group == format!("{kind}.{}", sriov_api::GROUP) {
            return vec![(ns.to_string(), owner_name.to_string())];
        }
        return Vec::new();
    }
    let ns = nad.metadata.namespace.clone().unwrap_or_default();
    let mut out = vec![(ns.clone(), name.clone())];
    if ns != operator_namespace {
        out.push((operator_namespace.to_string(), name));
    }
    out
}

/// The NAD's target namespace of a network: `spec.networkNamespace`, else its own.
pub fn target_namespace<'a>(network_namespace: &'a str, cr_namespace: &'a str) -> &'a str {
    if network_namespace.is_empty() {
        cr_namespace
    } else {
        network_namespace
    }
}

/// `apiVersion`/`kind` and the server-side-apply body of a rendered NAD.
pub fn nad_apply_body(nad: &NetworkAttachmentDefinition) -> serde_json::Value {
    let mut meta = nad.meta().clone();
    meta.managed_fields = None;
    meta.resource_version = None;
    serde_json::json!({
        "apiVersion": sriov_api::NAD_API_VERSION,
        "kind": "NetworkAttachmentDefinition",
        "metadata": meta,
        "spec": nad.spec,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use sriov_api::NadSpec;

    use super::*;

    fn nad(ns: &str, config: &str, owner: Option<&str>) -> NetworkAttachmentDefinition {
        let mut n = NetworkAttachmentDefinition::new(
            "net1",
            NadSpec {
                config: config.into(),
            },
        );
        n.metadata.namespace = Some(ns.into());
        let mut a = BTreeMap::from([(
            "k8s.v1.cni.cncf.io/resourceName".to_string(),
            "openshift.io/r".to_string(),
        )]);
        if let Some(o) = owner {
            a.insert(OWNER_REF.to_string(), o.to_string());
        }
        n.metadata.annotations = Some(a);
        n
    }

    const OWNER: &str = "SriovNetwork.sriovnetwork.openshift.io/op/net1";

    #[test]
    fn missing_nad_is_created_when_its_namespace_exists_and_waits_otherwise() {
        let want = nad("app", "{}", Some(OWNER));
        assert_eq!(
            plan(Ok(want.clone()), None, true),
            Step::Apply(Box::new(want.clone()))
        );
        let Step::Report(r) = plan(Ok(want), None, false) else {
            panic!()
        };
        assert_eq!(r.reason, reason::NAMESPACE_NOT_FOUND);
        assert_eq!(r.message, "target namespace \"app\" does not exist");
    }

    #[test]
    fn an_equal_nad_is_kept_even_with_annotations_someone_else_added() {
        let want = nad("app", "{}", Some(OWNER));
        let mut found = want.clone();
        found
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("argocd.argoproj.io/sync-wave".into(), "1".into());
        assert_eq!(plan(Ok(want), Some(&found), true), Step::Keep);
    }

    #[test]
    fn an_edited_config_a_removed_annotation_or_a_lost_owner_reference_is_rewritten() {
        let mut want = nad("app", "{\"a\": 1}", Some(OWNER));
        want.metadata.owner_references = Some(vec![OwnerReference {
            kind: "SriovNetwork".into(),
            uid: "u1".into(),
            ..Default::default()
        }]);
        let mut edited = want.clone();
        edited.spec.config = "{}".into();
        assert!(matches!(
            plan(Ok(want.clone()), Some(&edited), true),
            Step::Apply(_)
        ));
        let mut stripped = want.clone();
        stripped
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove("k8s.v1.cni.cncf.io/resourceName");
        assert!(matches!(
            plan(Ok(want.clone()), Some(&stripped), true),
            Step::Apply(_)
        ));
        let mut orphan = want.clone();
        orphan.metadata.owner_references = None;
        assert!(matches!(
            plan(Ok(want.clone()), Some(&orphan), true),
            Step::Apply(_)
        ));
        assert_eq!(plan(Ok(want.clone()), Some(&want), true), Step::Keep);
    }

    #[test]
    fn a_nad_owned_by_another_network_is_left_alone_and_reported() {
        let want = nad("app", "{}", Some(OWNER));
        let theirs = nad(
            "app",
            "{}",
            Some("SriovNetwork.sriovnetwork.openshift.io/op/other"),
        );
        let Step::Report(r) = plan(Ok(want.clone()), Some(&theirs), true) else {
            panic!()
        };
        assert_eq!(r.reason, reason::NAD_INVALID);
        assert_eq!(
            r.message,
            "NetworkAttachmentDefinition 'app/net1' already exists and is owned by SriovNetwork.sriovnetwork.openshift.io/op/other"
        );
        // A NAD without the annotation is taken over.
        let handmade = nad("app", "{}", None);
        assert!(matches!(plan(Ok(want), Some(&handmade), true), Step::Apply(_)));
    }

    #[test]
    fn a_render_error_is_reported_as_invalid() {
        let err = RenderError::InvalidNetworkField {
            kind: "SriovNetwork".into(),
            namespace: "op".into(),
            name: "net1".into(),
            field: "spec.ipam".into(),
            value: "{".into(),
            reason: "not valid JSON".into(),
        };
        let Step::Report(r) = plan(Err(err), None, true) else {
            panic!()
        };
        assert!(!r.ready);
        assert_eq!(r.reason, reason::NAD_INVALID);
        assert!(r.message.contains("spec.ipam"), "{}", r.message);
    }

    #[test]
    fn network_namespace_only_in_the_operator_namespace_and_finalizer_only_there() {
        assert_eq!(misplaced_network_namespace("", "app", "op"), None);
        assert_eq!(misplaced_network_namespace("x", "op", "op"), None);
        assert_eq!(
            misplaced_network_namespace("x", "app", "op").unwrap(),
            "spec.networkNamespace cannot be set when the resource is not in the operator namespace (op)"
        );
        assert!(wants_finalizer("op", "op"));
        assert!(!wants_finalizer("app", "op"));
        assert_eq!(target_namespace("", "app"), "app");
        assert_eq!(target_namespace("x", "op"), "x");
    }

    #[test]
    fn the_condition_is_written_only_when_it_changes_and_keeps_its_transition_time() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(2_000).unwrap());
        let first = ready_condition(&[], &Readiness::ready(), Some(1), t0.clone()).unwrap();
        assert_eq!(
            (first.status.as_str(), first.reason.as_str()),
            ("True", "NetworkReady")
        );
        assert_eq!(transition_reason(&[]), "ReadyAdded");
        let current = vec![first];
        assert_eq!(
            ready_condition(&current, &Readiness::ready(), Some(1), t1.clone()),
            None
        );
        // New generation, same status: rewritten, transition time kept.
        let bumped = ready_condition(&current, &Readiness::ready(), Some(2), t1.clone()).unwrap();
        assert_eq!(bumped.last_transition_time, t0);
        let down = Readiness::not_ready(reason::NAMESPACE_NOT_FOUND, "gone");
        let flipped = ready_condition(&current, &down, Some(1), t1.clone()).unwrap();
        assert_eq!(
            (flipped.status.as_str(), flipped.last_transition_time),
            ("False", t1)
        );
        assert_eq!(transition_reason(&current), "ReadyChanged");
    }

    #[test]
    fn a_nad_event_maps_to_the_network_its_annotation_names() {
        let owned = nad("app", "{}", Some(OWNER));
        assert_eq!(
            networks_of_nad(&owned, "SriovNetwork", "op"),
            vec![("op".to_string(), "net1".to_string())]
        );
        assert!(networks_of_nad(&owned, "OVSNetwork", "op").is_empty());
        let handmade = nad("app", "{}", None);
        assert_eq!(
            networks_of_nad(&handmade, "OVSNetwork", "op"),
            vec![
                ("app".to_string(), "net1".to_string()),
                ("op".to_string(), "net1".to_string())
            ]
        );
    }

    #[test]
    fn the_apply_body_names_the_nad_kind() {
        let body = nad_apply_body(&nad("app", "{}", Some(OWNER)));
        assert_eq!(body["apiVersion"], "k8s.cni.cncf.io/v1");
        assert_eq!(body["kind"], "NetworkAttachmentDefinition");
        assert_eq!(body["metadata"]["namespace"], "app");
        assert_eq!(body["spec"]["config"], "{}");
    }
}
