//! Which Kubernetes Events a pass publishes on the node states, decided without I/O.
//!
//! Upstream's policy controller publishes none (only its config daemon reports
//! `SyncStatusChanged` on the node state, and its drain controller `DrainController`); a user
//! who applies a policy sees nothing until the daemon acts. Here the node state gets:
//! * a `Normal` [`SPEC_CHANGED`] event when a pass changes its spec, naming the policies and PFs
//!   the new spec holds and what changed per PF (a write that only adopts the object or moves
//!   its keep-until annotation changes no spec and publishes nothing);
//! * a `Warning` when the render could not apply a policy to the node as written
//!   ([`POLICY_NOT_RENDERED`]: numVfs above the PF's totalvfs, a VF range past its last VF, a
//!   netFilter policy on a node that reported no interfaces, bridge settings that cannot be
//!   managed) or the node is in two pool configs ([`POOL_CONFLICT`]). Each problem is
//!   published once, when it first appears, not on every pass: a quiet cluster still sees no
//!   request, and a problem that goes away and comes back is published again.

use std::collections::{BTreeMap, BTreeSet};

use sriov_api::NodeStateSpec;

use super::plan::{NodeStateWrite, Observed, Plan};
use crate::render::RenderNote;

/// Reason of the event published when a pass changes a node state's spec.
pub const SPEC_CHANGED: &str = "SpecChanged";
/// Reason of the warning for a policy the render could not apply (fully) to a node.
pub const POLICY_NOT_RENDERED: &str = "PolicyNotRendered";
/// Reason of the warning for a node that more than one `SriovNetworkPoolConfig` selects.
pub const POOL_CONFLICT: &str = "PoolConflict";
/// `action` of every event this controller publishes.
pub const ACTION: &str = "Render";
/// `note` is limited to 1 kB by the `events.k8s.io` API.
pub const NOTE_LIMIT: usize = 1024;

/// One event to publish about a node state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStateEvent {
    pub node_state: String,
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// A `Normal` [`SPEC_CHANGED`] event for every apply in `plan` whose spec differs from what
/// `observed` holds (a new node state counts as changed from an empty spec).
pub fn spec_changes(plan: &Plan, observed: &Observed) -> Vec<NodeStateEvent> {
    let empty = NodeStateSpec::default();
    plan.node_states
        .iter()
        .filter_map(|w| match w {
            NodeStateWrite::Apply { name, spec, .. } => {
                let old = observed.node_states.get(name).map_or(&empty, |s| &s.spec);
                (old != spec).then(|| NodeStateEvent {
                    node_state: name.clone(),
                    warning: false,
                    reason: SPEC_CHANGED,
                    note: truncate(spec_change_note(old, spec)),
                })
            }
            NodeStateWrite::Delete { .. } => None,
        })
        .collect()
}

/// What the new spec holds and what changed, e.g.
/// `policies policy-000, policy-020; ens0 0000:3b:00.0 numVfs 8 -> 16; ens2 0000:3b:00.2 released`.
pub fn spec_change_note(old: &NodeStateSpec, new: &NodeStateSpec) -> String {
    let policies: BTreeSet<&str> = new
        .interfaces
        .iter()
        .flat_map(|i| &i.vf_groups)
        .map(|g| g.policy_name.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    let mut parts = Vec::new();
    if policies.is_empty() {
        parts.push("no policy".to_string());
    } else {
        parts.push(format!(
            "policies {}",
            policies.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let before: BTreeMap<&str, _> = old
        .interfaces
        .iter()
        .map(|i| (i.pci_address.as_str(), i))
        .collect();
    let after: BTreeMap<&str, _> = new
        .interfaces
        .iter()
        .map(|i| (i.pci_address.as_str(), i))
        .collect();
    for (pci, i) in &after {
        let pf = format!("{} {pci}", i.name).trim().to_string();
        match before.get(pci) {
            None => parts.push(format!("{pf} numVfs {}", i.num_vfs)),
            Some(o) if o.num_vfs != i.num_vfs => {
                parts.push(format!("{pf} numVfs {} -> {}", o.num_vfs, i.num_vfs));
            }
            Some(o) if o != i => parts.push(format!("{pf} VF groups or settings changed")),
            Some(_) => {}
        }
    }
    for (pci, o) in &before {
        if !after.contains_key(pci) {
            parts.push(format!("{} {pci} released", o.name).trim().to_string());
        }
    }
    if old.bridges != new.bridges {
        parts.push("bridges changed".into());
    }
    if old.system != new.system {
        parts.push("system settings changed".into());
    }
    parts.join("; ")
}

/// The render's notes not yet published (`published` holds those of earlier passes); updates
/// `published` to exactly the current notes. Notes about nodes without a node state (`has_state`
/// false) are left for a later pass.
pub fn new_render_warnings(
    notes: &[RenderNote],
    published: &mut BTreeSet<RenderNote>,
    has_state: impl Fn(&str) -> bool,
) -> Vec<NodeStateEvent> {
    let mut events = Vec::new();
    let mut current = BTreeSet::new();
    for note in notes {
        if !has_state(&note.node) {
            continue;
        }
        if !published.contains(note) {
            events.push(render_warning(note));
        }
        current.insert(note.clone());
    }
    *published = current;
    events
}

fn render_warning(note: &RenderNote) -> NodeStateEvent {
    let (reason, text) = if note.policy.is_empty() {
        (POOL_CONFLICT, note.message.clone())
    } else if note.pf.is_empty() {
        (
            POLICY_NOT_RENDERED,
            format!("policy {}: {}", note.policy, note.message),
        )
    } else {
        (
            POLICY_NOT_RENDERED,
            format!("policy {}, PF {}: {}", note.policy, note.pf, note.message),
        )
    };
    NodeStateEvent {
        node_state: note.node.clone(),
        warning: true,
        reason,
        note: truncate(text),
    }
}

/// `text` cut to [`NOTE_LIMIT`] bytes at a character boundary, marked with `...` when cut.
fn truncate(mut text: String) -> String {
    if text.len() <= NOTE_LIMIT {
        return text;
    }
    let mut end = NOTE_LIMIT - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("...");
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controller::node_states::plan::ObservedNodeState;
    use sriov_api::{NodeStateInterface, VfGroup};

    fn pf(name: &str, pci: &str, num_vfs: i32, policy: &str) -> NodeStateInterface {
        NodeStateInterface {
            pci_address: pci.into(),
            name: name.into(),
            num_vfs,
            vf_groups: vec![VfGroup {
                resource_name: "res".into(),
                vf_range: format!("0-{}", num_vfs - 1),
                policy_name: policy.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn spec(pfs: Vec<NodeStateInterface>) -> NodeStateSpec {
        NodeStateSpec {
            interfaces: pfs,
            ..Default::default()
        }
    }

    #[test]
    fn the_note_names_policies_and_what_changed_per_pf() {
        let old = spec(vec![
            pf("ens0", "0000:3b:00.0", 8, "p0"),
            pf("ens2", "0000:3b:00.2", 4, "p2"),
        ]);
        let new = spec(vec![
            pf("ens0", "0000:3b:00.0", 16, "p0"),
            pf("ens1", "0000:3b:00.1", 8, "p1"),
        ]);
        assert_eq!(
            spec_change_note(&old, &new),
            "policies p0, p1; ens0 0000:3b:00.0 numVfs 8 -> 16; ens1 0000:3b:00.1 numVfs 8; ens2 0000:3b:00.2 released"
        );
        assert_eq!(
            spec_change_note(&old, &NodeStateSpec::default()),
            "no policy; ens0 0000:3b:00.0 released; ens2 0000:3b:00.2 released"
        );
    }

    #[test]
    fn only_applies_that_change_the_spec_get_an_event() {
        let s = spec(vec![pf("ens0", "0000:3b:00.0", 8, "p0")]);
        let observed = Observed {
            node_states: BTreeMap::from([
                (
                    "same".to_string(),
                    ObservedNodeState {
                        spec: s.clone(),
                        ..Default::default()
                    },
                ),
                ("changed".to_string(), ObservedNodeState::default()),
            ]),
            ..Default::default()
        };
        let apply = |name: &str| NodeStateWrite::Apply {
            name: name.into(),
            spec: s.clone(),
            keep_until: None,
        };
        let plan = Plan {
            // "same": adopted (owner reference) only; "new": created; "gone": deleted.
            node_states: vec![
                apply("same"),
                apply("changed"),
                apply("new"),
                NodeStateWrite::Delete { name: "gone".into() },
            ],
            ..Default::default()
        };
        let events = spec_changes(&plan, &observed);
        let names: Vec<&str> = events.iter().map(|e| e.node_state.as_str()).collect();
        assert_eq!(names, ["changed", "new"]);
        assert!(events.iter().all(|e| !e.warning && e.reason == SPEC_CHANGED));
        assert_eq!(events[0].note, "policies p0; ens0 0000:3b:00.0 numVfs 8");
    }

    fn note(node: &str, policy: &str, pf: &str, message: &str) -> RenderNote {
        RenderNote {
            node: node.into(),
            policy: policy.into(),
            pf: pf.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_render_problem_is_published_once_and_again_after_it_cleared() {
        let too_many = note(
            "a",
            "p1",
            "0000:3b:00.0",
            "numVfs 100 exceeds the PF's totalvfs 64",
        );
        let pools = note("b", "", "", "node b is selected by pools x and y");
        let notes = vec![too_many.clone(), pools.clone(), note("no-state", "p1", "", "x")];
        let mut published = BTreeSet::new();
        let has_state = |n: &str| n != "no-state";
        let first = new_render_warnings(&notes, &mut published, has_state);
        assert_eq!(first.len(), 2);
        assert_eq!(
            (first[0].reason, first[0].note.as_str(), first[0].warning),
            (
                POLICY_NOT_RENDERED,
                "policy p1, PF 0000:3b:00.0: numVfs 100 exceeds the PF's totalvfs 64",
                true
            )
        );
        assert_eq!(
            (first[1].reason, first[1].node_state.as_str()),
            (POOL_CONFLICT, "b")
        );
        assert!(new_render_warnings(&notes, &mut published, has_state).is_empty());
        // Cleared, then back: published again.
        assert!(new_render_warnings(std::slice::from_ref(&pools), &mut published, has_state).is_empty());
        let again = new_render_warnings(&notes, &mut published, has_state);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].node_state, "a");
    }

    #[test]
    fn a_long_note_is_cut_to_the_api_limit_at_a_char_boundary() {
        let cut = truncate("é".repeat(1000));
        assert!(cut.len() <= NOTE_LIMIT && cut.ends_with("..."), "{}", cut.len());
        assert_eq!(truncate("short".into()), "short");
    }
}
