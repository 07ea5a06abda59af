//! What to write after a render, decided without I/O: the rendered node states, device-plugin
//! ConfigMap and Node labels diffed against what the caches hold.
//!
//! Upstream rewrites the ConfigMap and re-labels every node on every reconcile; here only what
//! differs is written, so a quiet cluster sees no requests and one policy change writes only
//! the nodes whose spec changed. Upstream's rules kept:
//! * a node state is created for every config-daemon node, but its spec is only filled once
//!   the daemon has reported `status.interfaces` (an existing undiscovered state keeps its spec);
//! * a node state without a config-daemon node gets the keep-until annotation (`now + delay`)
//!   and is deleted once that time has passed (at once when the delay is zero); its node, if it
//!   still exists, loses the device-plugin label; the annotation is removed if the node returns;
//! * node states and the ConfigMap carry a controller ownerReference to the `default`
//!   SriovOperatorConfig.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use sriov_api::NodeStateSpec;

use crate::render::ClusterRender;

/// Annotation on a node state whose node is gone: the earliest time it may be deleted (RFC 3339).
pub const KEEP_UNTIL_ANNOTATION: &str = "sriovnetwork.openshift.io/keep-state-until";

/// A node state as the plan needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedNodeState {
    pub spec: NodeStateSpec,
    /// `status.interfaces` is not empty: the daemon has reported the node's hardware.
    pub discovered: bool,
    /// The keep-until annotation, verbatim.
    pub keep_until: Option<String>,
    /// It carries the controller ownerReference to the current `default` SriovOperatorConfig.
    pub owned: bool,
}

/// The `device-plugin-config` ConfigMap as the plan needs it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedConfigMap {
    pub data: BTreeMap<String, String>,
    pub owned: bool,
}

/// What the caches hold (with this controller's own not-yet-observed writes folded in).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Node states in the operator namespace, by name.
    pub node_states: BTreeMap<String, ObservedNodeState>,
    pub config_map: Option<ObservedConfigMap>,
    /// Every Node, with its device-plugin label value (`None`: unlabelled).
    pub node_labels: BTreeMap<String, Option<String>>,
}

impl Observed {
    /// What the cluster holds once `render` has been written (every object ours and
    /// discovered): the state a pass after convergence plans against.
    pub fn converged(render: &ClusterRender) -> Observed {
        Observed {
            node_states: render
                .node_states
                .iter()
                .map(|(n, s)| {
                    let state = ObservedNodeState {
                        spec: s.clone(),
                        discovered: true,
                        keep_until: None,
                        owned: true,
                    };
                    (n.clone(), state)
                })
                .collect(),
            config_map: Some(ObservedConfigMap {
                data: render.device_plugin_config.clone(),
                owned: true,
            }),
            node_labels: render
                .device_plugin_labels
                .iter()
                .map(|(n, l)| (n.clone(), Some(l.to_string())))
                .collect(),
        }
    }
}

/// One node-state write.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeStateWrite {
    /// Create or update (server-side apply of the whole object this controller owns).
    Apply {
        name: String,
        spec: NodeStateSpec,
        /// The keep-until annotation to carry (`None` removes it).
        keep_until: Option<String>,
    },
    Delete {
        name: String,
    },
}

impl NodeStateWrite {
    pub fn name(&self) -> &str {
        match self {
            NodeStateWrite::Apply { name, .. } | NodeStateWrite::Delete { name } => name,
        }
    }
}

/// Everything one pass writes. Empty when the cluster already matches the render.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub node_states: Vec<NodeStateWrite>,
    /// The whole ConfigMap data, when it differs (or the ConfigMap is missing or not owned).
    pub config_map: Option<BTreeMap<String, String>>,
    /// Node → device-plugin label value to set (`None`: remove the label).
    pub node_labels: Vec<(String, Option<String>)>,
    /// The earliest keep-until time still in the future: the controller looks again then.
    pub next_deadline: Option<Timestamp>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.node_states.is_empty() && self.config_map.is_none() && self.node_labels.is_empty()
    }
}

/// Diff `render` (the desired state for every config-daemon node) against `observed` at time
/// `now`; `stale_delay` is how long a node state outlives its node (upstream's
/// `STALE_NODE_STATE_CLEANUP_DELAY_MINUTES`).
pub fn plan_writes(
    render: &ClusterRender,
    observed: &Observed,
    now: Timestamp,
    stale_delay: Duration,
) -> Plan {
    let mut plan = Plan::default();
    for (name, rendered) in &render.node_states {
        match observed.node_states.get(name) {
            None => plan.node_states.push(NodeStateWrite::Apply {
                name: name.clone(),
                spec: rendered.clone(),
                keep_until: None,
            }),
            Some(current) => {
                let spec = if current.discovered {
                    rendered
                } else {
                    &current.spec
                };
                if *spec != current.spec || current.keep_until.is_some() || !current.owned {
                    plan.node_states.push(NodeStateWrite::Apply {
                        name: name.clone(),
                        spec: spec.clone(),
                        keep_until: None,
                    });
                }
            }
        }
    }
    for (name, label) in &render.device_plugin_labels {
        if let Some(current) = observed.node_labels.get(name)
            && current.as_deref() != Some(*label)
        {
            plan.node_labels.push((name.clone(), Some((*label).to_string())));
        }
    }
    for (name, current) in &observed.node_states {
        if render.node_states.contains_key(name) {
            continue;
        }
        if let Some(Some(_)) = observed.node_labels.get(name) {
            plan.node_labels.push((name.clone(), None));
        }
        if stale_delay.is_zero() {
            plan.node_states
                .push(NodeStateWrite::Delete { name: name.clone() });
            continue;
        }
        let keep_until = current
            .keep_until
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok());
        match keep_until {
            Some(t) if now >= t => plan
                .node_states
                .push(NodeStateWrite::Delete { name: name.clone() }),
            Some(t) => plan.next_deadline = earliest(plan.next_deadline, t),
            None => {
                let t = keep_until_time(now, stale_delay);
                plan.node_states.push(NodeStateWrite::Apply {
                    name: name.clone(),
                    spec: current.spec.clone(),
                    keep_until: Some(t.to_string()),
                });
                plan.next_deadline = earliest(plan.next_deadline, t);
            }
        }
    }
    let config_map_current = observed
        .config_map
        .as_ref()
        .is_some_and(|cm| cm.owned && cm.data == render.device_plugin_config);
    if !config_map_current {
        plan.config_map = Some(render.device_plugin_config.clone());
    }
    plan
}

/// `now + delay`, whole seconds (upstream writes RFC 3339 without fractions).
fn keep_until_time(now: Timestamp, delay: Duration) -> Timestamp {
    let secs = now
        .as_second()
        .saturating_add(i64::try_from(delay.as_secs()).unwrap_or(i64::MAX));
    Timestamp::from_second(secs).unwrap_or(Timestamp::MAX)
}

fn earliest(a: Option<Timestamp>, b: Timestamp) -> Option<Timestamp> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// VFs each device-plugin resource gets, summed over the rendered nodes (the
/// `sriov_operator_resource_vfs` gauge): the size of every VF group's range.
pub fn vfs_per_resource(render: &ClusterRender) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for group in render
        .node_states
        .values()
        .flat_map(|s| &s.interfaces)
        .flat_map(|i| &i.vf_groups)
    {
        let size = group
            .vf_range
            .split_once('-')
            .and_then(|(a, b)| Some(b.trim().parse::<i64>().ok()? - a.trim().parse::<i64>().ok()? + 1))
            .filter(|n| *n > 0)
            .unwrap_or(0);
        *out.entry(group.resource_name.clone()).or_insert(0) += size;
    }
    out
}

/// Node states per `status.syncStatus` (empty counts as `Unknown`), for the
/// `sriov_operator_nodes` gauge.
pub fn nodes_by_sync_status<'a>(statuses: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for s in statuses {
        let key = if s.is_empty() { "Unknown" } else { s };
        *out.entry(key.to_string()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sriov_api::{NodeStateInterface, VfGroup};

    const DELAY: Duration = Duration::from_secs(30 * 60);

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn spec(num_vfs: i32) -> NodeStateSpec {
        NodeStateSpec {
            interfaces: vec![NodeStateInterface {
                pci_address: "0000:3b:00.0".into(),
                num_vfs,
                vf_groups: vec![VfGroup {
                    resource_name: "res".into(),
                    vf_range: format!("0-{}", num_vfs - 1),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn render(nodes: &[(&str, i32)]) -> ClusterRender {
        let mut r = ClusterRender::default();
        for (n, vfs) in nodes {
            r.node_states.insert(n.to_string(), spec(*vfs));
            r.device_plugin_config.insert(n.to_string(), format!("cfg-{vfs}"));
            r.device_plugin_labels.insert(n.to_string(), "Enabled");
        }
        r
    }

    #[test]
    fn a_converged_cluster_needs_no_write() {
        let r = render(&[("a", 4), ("b", 8)]);
        let plan = plan_writes(&r, &Observed::converged(&r), now(), DELAY);
        assert!(plan.is_empty(), "{plan:?}");
        assert_eq!(plan.next_deadline, None);
    }

    #[test]
    fn an_empty_cluster_gets_every_node_state_the_config_map_and_labels() {
        let r = render(&[("a", 4), ("b", 8)]);
        let observed = Observed {
            node_labels: BTreeMap::from([("a".into(), None), ("b".into(), Some("Disabled".into()))]),
            ..Default::default()
        };
        let plan = plan_writes(&r, &observed, now(), DELAY);
        let names: Vec<&str> = plan.node_states.iter().map(NodeStateWrite::name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(plan.config_map.as_ref(), Some(&r.device_plugin_config));
        assert_eq!(
            plan.node_labels,
            [
                ("a".into(), Some("Enabled".into())),
                ("b".into(), Some("Enabled".into()))
            ]
        );
    }

    #[test]
    fn only_the_node_whose_spec_changed_is_written() {
        let before = render(&[("a", 4), ("b", 4), ("c", 4)]);
        let after = render(&[("a", 4), ("b", 8), ("c", 4)]);
        let mut observed = Observed::converged(&before);
        // The ConfigMap is compared as a whole: make it already current to isolate node states.
        observed.config_map = Some(ObservedConfigMap {
            data: after.device_plugin_config.clone(),
            owned: true,
        });
        let plan = plan_writes(&after, &observed, now(), DELAY);
        assert_eq!(
            plan.node_states,
            [NodeStateWrite::Apply {
                name: "b".into(),
                spec: spec(8),
                keep_until: None
            }]
        );
        assert!(plan.node_labels.is_empty());
        assert_eq!(plan.config_map, None);
    }

    #[test]
    fn a_changed_device_plugin_config_rewrites_the_config_map_only() {
        let r = render(&[("a", 4)]);
        let mut observed = Observed::converged(&r);
        observed
            .config_map
            .as_mut()
            .unwrap()
            .data
            .insert("a".into(), "old".into());
        let plan = plan_writes(&r, &observed, now(), DELAY);
        assert_eq!(plan.config_map.as_ref(), Some(&r.device_plugin_config));
        assert!(plan.node_states.is_empty());
    }

    #[test]
    fn an_object_without_the_owner_reference_is_adopted() {
        let r = render(&[("a", 4)]);
        let mut observed = Observed::converged(&r);
        observed.node_states.get_mut("a").unwrap().owned = false;
        observed.config_map.as_mut().unwrap().owned = false;
        let plan = plan_writes(&r, &observed, now(), DELAY);
        assert_eq!(plan.node_states.len(), 1);
        assert!(plan.config_map.is_some());
    }

    #[test]
    fn an_undiscovered_node_keeps_its_spec() {
        let r = render(&[("a", 4)]);
        let mut observed = Observed::converged(&r);
        let state = observed.node_states.get_mut("a").unwrap();
        state.discovered = false;
        state.spec = spec(2);
        let plan = plan_writes(&r, &observed, now(), DELAY);
        assert!(plan.node_states.is_empty(), "{plan:?}");
    }

    #[test]
    fn the_label_follows_the_render() {
        let mut r = render(&[("a", 4)]);
        r.device_plugin_labels.insert("a".into(), "Disabled");
        let plan = plan_writes(&r, &Observed::converged(&render(&[("a", 4)])), now(), DELAY);
        assert_eq!(plan.node_labels, [("a".into(), Some("Disabled".into()))]);
    }

    #[test]
    fn a_node_state_without_its_node_is_marked_then_deleted_after_the_delay() {
        let r = render(&[("a", 4)]);
        let mut observed = Observed::converged(&render(&[("a", 4), ("gone", 4)]));
        observed.node_labels.remove("gone");
        let plan = plan_writes(&r, &observed, now(), DELAY);
        let until = "2026-01-01T00:30:00Z";
        assert_eq!(
            plan.node_states,
            [NodeStateWrite::Apply {
                name: "gone".into(),
                spec: spec(4),
                keep_until: Some(until.into())
            }]
        );
        assert_eq!(plan.next_deadline, Some(until.parse().unwrap()));
        assert!(
            plan.node_labels.is_empty(),
            "the Node is gone: nothing to unlabel"
        );
        // The config map loses the node's key (the render has no "gone").
        assert_eq!(plan.config_map.as_ref().map(|d| d.len()), Some(1));

        observed.node_states.get_mut("gone").unwrap().keep_until = Some(until.into());
        observed.config_map.as_mut().unwrap().data.remove("gone");
        let early = plan_writes(&r, &observed, "2026-01-01T00:29:59Z".parse().unwrap(), DELAY);
        assert!(early.is_empty(), "{early:?}");
        assert_eq!(early.next_deadline, Some(until.parse().unwrap()));
        let late = plan_writes(&r, &observed, until.parse().unwrap(), DELAY);
        assert_eq!(late.node_states, [NodeStateWrite::Delete { name: "gone".into() }]);
    }

    #[test]
    fn a_zero_delay_deletes_at_once_and_an_unselected_node_loses_its_label() {
        let r = render(&[("a", 4)]);
        // "b" still exists but no longer runs the config daemon.
        let observed = Observed::converged(&render(&[("a", 4), ("b", 4)]));
        let plan = plan_writes(&r, &observed, now(), Duration::ZERO);
        assert_eq!(plan.node_states, [NodeStateWrite::Delete { name: "b".into() }]);
        assert_eq!(plan.node_labels, [("b".into(), None)]);
    }

    #[test]
    fn a_returning_node_loses_the_keep_until_annotation() {
        let r = render(&[("a", 4)]);
        let mut observed = Observed::converged(&r);
        observed.node_states.get_mut("a").unwrap().keep_until = Some("2026-01-01T00:30:00Z".into());
        let plan = plan_writes(&r, &observed, now(), DELAY);
        assert_eq!(
            plan.node_states,
            [NodeStateWrite::Apply {
                name: "a".into(),
                spec: spec(4),
                keep_until: None
            }]
        );
    }

    #[test]
    fn an_unparseable_keep_until_is_replaced_as_upstream_does() {
        let r = render(&[]);
        let mut observed = Observed::converged(&render(&[("x", 4)]));
        observed.node_labels.clear();
        observed.node_states.get_mut("x").unwrap().keep_until = Some("soon".into());
        let plan = plan_writes(&r, &observed, now(), DELAY);
        assert!(matches!(
            &plan.node_states[..],
            [NodeStateWrite::Apply { keep_until: Some(t), .. }] if t == "2026-01-01T00:30:00Z"
        ));
    }

    #[test]
    fn vfs_are_summed_per_resource_and_sync_statuses_counted() {
        let r = render(&[("a", 4), ("b", 8)]);
        assert_eq!(vfs_per_resource(&r), BTreeMap::from([("res".to_string(), 12)]));
        let counts = nodes_by_sync_status(["Succeeded", "", "Succeeded", "InProgress"]);
        assert_eq!(
            counts,
            BTreeMap::from([
                ("InProgress".to_string(), 1),
                ("Succeeded".to_string(), 2),
                ("Unknown".to_string(), 1)
            ])
        );
    }
}
