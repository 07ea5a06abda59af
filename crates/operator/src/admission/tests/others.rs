use serde_json::json;

use super::fixtures::{NS, cluster};
use crate::admission::objects::{Network, OperatorConfig, PoolConfig, decode};
use crate::admission::others::{check_network, check_operator_config, check_pool_config};

fn config(name: &str, ns: &str, disable_drain: bool) -> OperatorConfig {
    decode(
        "SriovOperatorConfig",
        &json!({"metadata": {"name": name, "namespace": ns}, "spec": {"disableDrain": disable_drain}}),
    )
    .expect("decodes")
}

#[test]
fn only_the_default_operator_config_in_the_namespace() {
    let c = cluster(vec![]);
    let msg = format!("only default SriovOperatorConfig in {NS} namespace is used");
    assert_eq!(
        check_operator_config(&config("other", NS, false), None, &c, NS),
        Err((msg.clone(), vec![]))
    );
    assert_eq!(
        check_operator_config(&config("default", "x", false), None, &c, NS),
        Err((msg, vec![]))
    );
    assert_eq!(
        check_operator_config(&config("default", NS, false), None, &c, NS),
        Ok(vec![])
    );
}

#[test]
fn disabling_drain_warns_and_waits_for_busy_nodes() {
    let warn = "Node draining is disabled for applying SriovNetworkNodePolicy, it may result in workload interruption.";
    let mut c = cluster(vec![]);
    let on = config("default", NS, true);
    let off = config("default", NS, false);
    assert_eq!(
        check_operator_config(&on, Some(&off), &c, NS),
        Ok(vec![warn.to_string()])
    );
    c.node_states[0].sync_status = "InProgress".to_string();
    assert_eq!(
        check_operator_config(&on, Some(&off), &c, NS),
        Err((
            "can't set Spec.DisableDrain = true while node[w1] is updating".to_string(),
            vec![warn.to_string()]
        ))
    );
    // Already disabled, or no previous config: no transition.
    assert_eq!(
        check_operator_config(&on, Some(&on), &c, NS),
        Ok(vec![warn.to_string()])
    );
    assert_eq!(
        check_operator_config(&on, None, &c, NS),
        Ok(vec![warn.to_string()])
    );
}

#[test]
fn pool_config_rules() {
    let pool = |spec: serde_json::Value| -> PoolConfig {
        decode(
            "SriovNetworkPoolConfig",
            &json!({"metadata": {"name": "p"}, "spec": spec}),
        )
        .expect("decodes")
    };
    assert_eq!(check_pool_config(&pool(json!({"maxUnavailable": 2}))), Ok(()));
    assert_eq!(check_pool_config(&pool(json!({"maxUnavailable": "50%"}))), Ok(()));
    let prefix = "SriovOperatorConfig invalid maxUnavailable: ";
    assert_eq!(
        check_pool_config(&pool(json!({"maxUnavailable": -1}))),
        Err(format!("{prefix}negative number is not allowed"))
    );
    assert_eq!(
        check_pool_config(&pool(json!({"maxUnavailable": "2"}))),
        Err(format!("{prefix}invalid type: strings needs to be a percentage"))
    );
    assert_eq!(
        check_pool_config(&pool(json!({"maxUnavailable": "0%"}))),
        Err(format!(
            "{prefix}invalid value: percentage needs to be between 1 and 100"
        ))
    );
    assert_eq!(
        check_pool_config(&pool(
            json!({"maxUnavailable": 1, "ovsHardwareOffloadConfig": {"name": "mcp"}})
        )),
        Err(
            "SriovOperatorConfig can't have both parallel configuration and OvsHardwareOffloadConfig"
                .to_string()
        )
    );
}

#[test]
fn network_namespace_only_from_the_operator_namespace() {
    let net = |ns: &str| -> Network {
        decode(
            "SriovNetwork",
            &json!({"metadata": {"name": "n", "namespace": ns}, "spec": {"networkNamespace": "apps"}}),
        )
        .expect("decodes")
    };
    assert_eq!(check_network(&net(NS), NS), Ok(()));
    assert_eq!(
        check_network(&net("apps"), NS),
        Err(format!(
            ".Spec.NetworkNamespace field can't be specified if the resource is not in the {NS} namespace"
        ))
    );
}
