#![allow(clippy::unwrap_used)]

use super::*;
use serde_json::json;

fn node(name: &str, labels: &[(&str, &str)], request: &str, current: &str) -> NodeFacts {
    NodeFacts {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        request: Some(request.to_string()),
        state: Some(StateFacts {
            current: Some(current.to_string()),
            desired: Some(request.to_string()),
            external_drainer: false,
        }),
    }
}

fn pool(name: &str, selector: serde_json::Value, max: serde_json::Value) -> SriovNetworkPoolConfig {
    serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkPoolConfig",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"nodeSelector": selector, "maxUnavailable": max}
    }))
    .unwrap()
}

fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

#[test]
fn max_unavailable_follows_upstream() {
    let int = |n| IntOrString::Int(n);
    let s = |v: &str| IntOrString::String(v.to_string());
    assert_eq!(max_unavailable(None, 10), Ok(None));
    assert_eq!(max_unavailable(Some(&int(2)), 10), Ok(Some(2)));
    assert_eq!(max_unavailable(Some(&int(0)), 10), Ok(Some(0)));
    assert_eq!(max_unavailable(Some(&s("50%")), 4), Ok(Some(2)));
    // Rounded down, as upstream's GetScaledValueFromIntOrPercent(…, false).
    assert_eq!(max_unavailable(Some(&s("50%")), 3), Ok(Some(1)));
    assert_eq!(max_unavailable(Some(&s("10%")), 3), Ok(Some(0)));
    assert_eq!(max_unavailable(Some(&s("100%")), 7), Ok(Some(7)));
    assert!(matches!(
        max_unavailable(Some(&int(-1)), 3),
        Err(MaxUnavailableError::Negative(-1))
    ));
    assert!(matches!(
        max_unavailable(Some(&s("0%")), 3),
        Err(MaxUnavailableError::PercentOutOfRange(_))
    ));
    assert!(matches!(
        max_unavailable(Some(&s("101%")), 3),
        Err(MaxUnavailableError::PercentOutOfRange(_))
    ));
    assert!(matches!(
        max_unavailable(Some(&s("3")), 3),
        Err(MaxUnavailableError::NotAPercentage(_))
    ));
    assert!(matches!(
        max_unavailable(Some(&s("x%")), 3),
        Err(MaxUnavailableError::NotAPercentage(_))
    ));
}

#[test]
fn two_requests_in_a_pool_of_max_one_start_only_the_first() {
    let p = pool("p", json!({"matchLabels": {"pool": "a"}}), json!(1));
    let nodes = [
        node("w2", &[("pool", "a")], "Drain_Required", "Idle"),
        node("w1", &[("pool", "a")], "Drain_Required", "Idle"),
    ];
    let actions = plan(&nodes, &[&p]);
    assert_eq!(
        actions,
        vec![
            Action::Start {
                node: "w1".into(),
                mode: DrainMode::SriovPods
            },
            Action::Wait {
                node: "w2".into(),
                pool: "p".into(),
                limit: 1,
                busy: 1
            },
        ]
    );
    // w1 draining: w2 still waits; w1 keeps draining.
    let nodes = [
        node("w1", &[("pool", "a")], "Drain_Required", "Draining"),
        node("w2", &[("pool", "a")], "Drain_Required", "Idle"),
    ];
    assert_eq!(
        plan(&nodes, &[&p]),
        vec![
            Action::Drain {
                node: "w1".into(),
                mode: DrainMode::SriovPods
            },
            Action::Wait {
                node: "w2".into(),
                pool: "p".into(),
                limit: 1,
                busy: 1
            },
        ]
    );
    // DrainComplete still holds the slot (the daemon is applying).
    let nodes = [
        node("w1", &[("pool", "a")], "Drain_Required", "DrainComplete"),
        node("w2", &[("pool", "a")], "Drain_Required", "Idle"),
    ];
    assert!(matches!(plan(&nodes, &[&p])[..], [Action::Wait { .. }]));
    // w1's daemon is Idle again: release w1; w2 still waits for this pass (w1 not Idle yet).
    let nodes = [
        node("w1", &[("pool", "a")], "Idle", "DrainComplete"),
        node("w2", &[("pool", "a")], "Drain_Required", "Idle"),
    ];
    assert_eq!(
        plan(&nodes, &[&p]),
        vec![
            Action::Release { node: "w1".into() },
            Action::Wait {
                node: "w2".into(),
                pool: "p".into(),
                limit: 1,
                busy: 1
            },
        ]
    );
    let nodes = [
        node("w1", &[("pool", "a")], "Idle", "Idle"),
        node("w2", &[("pool", "a")], "Drain_Required", "Idle"),
    ];
    assert_eq!(
        plan(&nodes, &[&p]),
        vec![Action::Start {
            node: "w2".into(),
            mode: DrainMode::SriovPods
        }]
    );
}

#[test]
fn percent_scales_with_the_pool_and_pools_are_independent() {
    let p = pool("half", json!({"matchLabels": {"pool": "a"}}), json!("50%"));
    let q = pool("one", json!({"matchLabels": {"pool": "b"}}), json!(1));
    let mut nodes: Vec<NodeFacts> = (1..=4)
        .map(|i| node(&format!("a{i}"), &[("pool", "a")], "Drain_Required", "Idle"))
        .collect();
    nodes.push(node("b1", &[("pool", "b")], "Drain_Required", "Idle"));
    nodes.push(node("b2", &[("pool", "b")], "Drain_Required", "Idle"));
    let actions = plan(&nodes, &[&p, &q]);
    let started: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Start { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(started, ["a1", "a2", "b1"]);
}

#[test]
fn nodes_in_no_pool_drain_one_at_a_time_and_a_pool_without_limit_drains_all() {
    let nodes = [
        node("x", &[], "Drain_Required", "Idle"),
        node("y", &[], "Reboot_Required", "Idle"),
    ];
    assert_eq!(
        plan(&nodes, &[]),
        vec![
            Action::Start {
                node: "x".into(),
                mode: DrainMode::SriovPods
            },
            Action::Wait {
                node: "y".into(),
                pool: "default".into(),
                limit: 1,
                busy: 1
            },
        ]
    );
    let all = pool("all", json!({}), serde_json::Value::Null);
    let actions = plan(&nodes, &[&all]);
    assert_eq!(
        actions,
        vec![
            Action::Start {
                node: "x".into(),
                mode: DrainMode::SriovPods
            },
            Action::Start {
                node: "y".into(),
                mode: DrainMode::AllPods
            },
        ]
    );
}

#[test]
fn pool_size_counts_nodes_without_node_states() {
    // 50% of 4 Nodes = 2, though only two have node states.
    let p = pool("half", json!({}), json!("50%"));
    let mut nodes = vec![
        node("a", &[], "Drain_Required", "Idle"),
        node("b", &[], "Drain_Required", "Idle"),
    ];
    for n in ["c", "d"] {
        nodes.push(NodeFacts {
            name: n.into(),
            ..NodeFacts::default()
        });
    }
    assert_eq!(plan(&nodes, &[&p]).len(), 2);
    assert!(
        plan(&nodes, &[&p])
            .iter()
            .all(|a| matches!(a, Action::Start { .. }))
    );
}

#[test]
fn single_node_reboot_skips_the_drain_but_a_drain_request_does_not() {
    let one = [node("solo", &[], "Reboot_Required", "Idle")];
    assert_eq!(
        plan(&one, &[]),
        vec![Action::Start {
            node: "solo".into(),
            mode: DrainMode::Skip
        }]
    );
    let one = [node("solo", &[], "Drain_Required", "Idle")];
    assert_eq!(
        plan(&one, &[]),
        vec![Action::Start {
            node: "solo".into(),
            mode: DrainMode::SriovPods
        }]
    );
}

#[test]
fn missing_annotations_are_initialised_before_anything_else() {
    let mut n = node("w", &[], "Drain_Required", "Idle");
    n.request = None;
    n.state.as_mut().unwrap().desired = None;
    assert_eq!(
        plan(&[n], &[]),
        vec![Action::InitAnnotations {
            node: "w".into(),
            node_request: true,
            current: false,
            desired: true
        }]
    );
}

#[test]
fn external_drainer_nodes_and_nodes_without_state_are_left_alone() {
    let mut n = node("w", &[], "Drain_Required", "Idle");
    n.state.as_mut().unwrap().external_drainer = true;
    let bare = NodeFacts {
        name: "bare".into(),
        request: Some("Drain_Required".into()),
        ..NodeFacts::default()
    };
    assert!(plan(&[n, bare], &[]).is_empty());
}

#[test]
fn a_node_in_two_pools_or_a_bad_limit_or_value_is_reported_not_drained() {
    let p = pool("p", json!({}), json!(1));
    let q = pool("q", json!({}), json!(1));
    let actions = plan(
        &[
            node("w", &[], "Drain_Required", "Idle"),
            node("v", &[], "Idle", "Idle"),
        ],
        &[&p, &q],
    );
    assert!(
        matches!(&actions[..], [Action::Invalid { node, message }] if node == "w" && message.contains("more than one pool")),
        "{actions:?}"
    );
    let bad = pool("bad", json!({}), json!("5"));
    let actions = plan(
        &[
            node("w", &[], "Drain_Required", "Idle"),
            node("v", &[], "Idle", "Idle"),
        ],
        &[&bad],
    );
    assert!(
        matches!(&actions[..], [Action::Invalid { message, .. }] if message.contains("pool bad") && message.contains("\"5\"")),
        "{actions:?}"
    );
    let actions = plan(
        &[
            node("w", &[], "Drain_Please", "Idle"),
            node("v", &[], "Idle", "Idle"),
        ],
        &[],
    );
    assert!(matches!(&actions[..], [Action::Invalid { message, .. }] if message.contains("Drain_Please")));
}

#[test]
fn a_drain_cancelled_mid_way_is_released() {
    // The daemon no longer needs the drain while it runs (policy changed): stop and uncordon.
    assert_eq!(
        plan(
            &[node("w", &[], "Idle", "Draining"), node("v", &[], "Idle", "Idle")],
            &[]
        ),
        vec![Action::Release { node: "w".into() }]
    );
}

fn sriov_pod(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "namespace": "app"}, "spec": {"nodeName": "w", "containers": [
        {"name": "c", "image": "x", "resources": {"requests": {"openshift.io/intel_sriov": "1", "cpu": "1"}}}
    ]}})
}

#[test]
fn drain_required_evicts_only_pods_requesting_the_prefix() {
    let pods = [
        pod(sriov_pod("vf-user")),
        pod(
            json!({"metadata": {"name": "plain", "namespace": "app"}, "spec": {"containers": [
            {"name": "c", "image": "x", "resources": {"requests": {"cpu": "1"}}}]}}),
        ),
        // Only init containers asking: upstream looks at containers only.
        pod(
            json!({"metadata": {"name": "init-only", "namespace": "app"}, "spec": {
            "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"openshift.io/intel_sriov": "1"}}}],
            "containers": [{"name": "c", "image": "x"}]}}),
        ),
        pod(
            json!({"metadata": {"name": "ds", "namespace": "app", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"openshift.io/intel_sriov": "1"}}}]}}),
        ),
        pod(
            json!({"metadata": {"name": "mirror", "namespace": "app", "annotations": {MIRROR_POD_ANNOTATION: "x"}},
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"openshift.io/intel_sriov": "1"}}}]}}),
        ),
    ];
    let work = drain_work(&pods, DrainMode::SriovPods, "openshift.io");
    assert_eq!(work.evict, vec![("app".to_string(), "vf-user".to_string())]);
    assert!(work.terminating.is_empty());
    // A different prefix: nothing of ours.
    assert!(drain_work(&pods, DrainMode::SriovPods, "example.com").is_done());
    // Reboot: everything but DaemonSet and mirror pods.
    let all = drain_work(&pods, DrainMode::AllPods, "openshift.io");
    let names: Vec<&str> = all.evict.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["vf-user", "plain", "init-only"]);
    assert!(drain_work(&pods, DrainMode::Skip, "openshift.io").is_done());
}

#[test]
fn a_terminating_pod_is_waited_for_not_evicted_again() {
    let mut v = sriov_pod("going");
    v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    let work = drain_work(&[pod(v)], DrainMode::SriovPods, "openshift.io");
    assert!(work.evict.is_empty());
    assert_eq!(work.terminating.len(), 1);
    assert!(!work.is_done());
}

#[test]
fn conditions_report_a_blocked_drain_and_keep_transition_times() {
    let t0: Time = serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap();
    let t1: Time = serde_json::from_value(json!("2026-01-01T00:01:00Z")).unwrap();
    let draining = drain_conditions(&DrainCondition::Draining, Some(3), &t0, &[]);
    let blocked = drain_conditions(
        &DrainCondition::DrainingWithErrors(
            "cannot evict pod app/x: The disruption budget pdb needs 1 healthy pods and has 1 currently"
                .into(),
        ),
        Some(3),
        &t1,
        &draining,
    );
    assert!(conditions_differ(&draining, &blocked));
    let degraded = blocked
        .iter()
        .find(|c| c.type_ == condition::DRAIN_DEGRADED)
        .unwrap();
    assert_eq!(degraded.status, "True");
    assert_eq!(degraded.reason, "DrainFailed");
    assert!(
        degraded
            .message
            .starts_with("Node drain encountered errors: cannot evict pod app/x")
    );
    assert_eq!(degraded.last_transition_time, t1);
    // DrainProgressing stayed True: its transition time is the first one.
    let progressing = blocked
        .iter()
        .find(|c| c.type_ == condition::DRAIN_PROGRESSING)
        .unwrap();
    assert_eq!(progressing.last_transition_time, t0);
    // The same state again is not a change.
    let again = drain_conditions(
        &DrainCondition::DrainingWithErrors(
            degraded.message["Node drain encountered errors: ".len()..].to_string(),
        ),
        Some(3),
        &t1,
        &blocked,
    );
    assert!(!conditions_differ(&blocked, &again));
    // Other conditions on the status survive a merge.
    let other = Condition {
        type_: "Ready".into(),
        status: "True".into(),
        reason: "R".into(),
        message: String::new(),
        observed_generation: None,
        last_transition_time: t0.clone(),
    };
    let merged = merge_conditions(&[other.clone(), draining[0].clone()], blocked.clone());
    assert_eq!(merged.len(), 4);
    assert!(merged.contains(&other));
}

#[test]
fn a_blocked_eviction_names_the_budget_when_the_server_does() {
    let pod = ("app".to_string(), "x".to_string());
    let msg = describe_blocked_eviction(
        &pod,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        &["The disruption budget pdb needs 1 healthy pods and has 0 currently".into()],
    );
    assert_eq!(
        msg,
        "cannot evict pod app/x: The disruption budget pdb needs 1 healthy pods and has 0 currently"
    );
    let msg = describe_blocked_eviction(
        &pod,
        "Cannot evict pod as it would violate the pod's disruption budget.",
        &[],
    );
    assert!(msg.ends_with("disruption budget."));
}
