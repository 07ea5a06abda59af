//! Which `SriovNetworkPoolConfig` a node belongs to (its `rdmaMode` goes into the node
//! state's `spec.system`). A pool's `nodeSelector` is a standard `LabelSelector`; an empty or
//! absent selector selects every node; pools naming an `ovsHardwareOffloadConfig` are skipped,
//! as upstream skips them. A node in more than one pool is an error upstream
//! ("node is part of more then one pool"): here it is reported and no pool applies.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use sriov_api::SriovNetworkPoolConfig;

/// Kubernetes `LabelSelector` semantics (`matchLabels` and `matchExpressions` with `In`,
/// `NotIn`, `Exists`, `DoesNotExist`); an unknown operator matches nothing.
pub fn label_selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// The single pool selecting a node, `Ok(None)` if none, `Err(message)` if several.
pub fn pool_for_node<'a>(
    pools: &[&'a SriovNetworkPoolConfig],
    labels: &BTreeMap<String, String>,
) -> Result<Option<&'a SriovNetworkPoolConfig>, String> {
    let matching: Vec<&SriovNetworkPoolConfig> = pools
        .iter()
        .copied()
        // Pools for OVS hardware offload (OpenShift MachineConfigPools) are not node pools here.
        .filter(|p| p.spec.ovs_hardware_offload_config.name.is_empty())
        .filter(|p| {
            p.spec
                .node_selector
                .as_ref()
                .is_none_or(|s| label_selector_matches(s, labels))
        })
        .collect();
    match matching.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect();
            Err(format!(
                "node is part of more than one pool: {}",
                names.join(", ")
            ))
        }
    }
}
