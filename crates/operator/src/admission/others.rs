//! Validation of the other kinds upstream's webhook checks: `SriovOperatorConfig`,
//! `SriovNetworkPoolConfig`, and the network kinds (`SriovNetwork`, `SriovIBNetwork`,
//! `OVSNetwork`).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::objects::{Cluster, Network, OperatorConfig, PoolConfig};

/// Upstream `validateSriovOperatorConfig` (not called for DELETE). `previous` is the stored
/// `default` config (upstream reads it from the cluster); `Ok(warnings)` when allowed.
pub fn check_operator_config(
    config: &OperatorConfig,
    previous: Option<&OperatorConfig>,
    cluster: &Cluster,
    namespace: &str,
) -> Result<Vec<String>, (String, Vec<String>)> {
    let mut warnings = Vec::new();
    let meta = &config.metadata;
    if meta.name.as_deref() != Some("default") || meta.namespace.as_deref().unwrap_or("") != namespace {
        return Err((
            format!("only default SriovOperatorConfig in {namespace} namespace is used"),
            warnings,
        ));
    }
    if config.spec.disable_drain {
        warnings.push(
            "Node draining is disabled for applying SriovNetworkNodePolicy, it may result in workload interruption."
                .to_string(),
        );
        // Turning drain off while a node is mid-update would leave it cordoned.
        let was_disabled = previous.is_none_or(|p| p.spec.disable_drain);
        if !was_disabled
            && let Some(busy) = cluster.node_states.iter().find(|s| s.sync_status == "InProgress")
        {
            return Err((
                format!(
                    "can't set Spec.DisableDrain = true while node[{}] is updating",
                    busy.name
                ),
                warnings,
            ));
        }
    }
    Ok(warnings)
}

/// Upstream `validateSriovNetworkPoolConfig`.
pub fn check_pool_config(pool: &PoolConfig) -> Result<(), String> {
    let s = &pool.spec;
    let parallel = s.max_unavailable.is_some() || s.node_selector.is_some();
    if parallel && !s.ovs_hardware_offload_config.name.is_empty() {
        return Err(
            "SriovOperatorConfig can't have both parallel configuration and OvsHardwareOffloadConfig"
                .to_string(),
        );
    }
    if let Some(max) = &s.max_unavailable
        && let Err(e) = check_max_unavailable(max)
    {
        return Err(format!("SriovOperatorConfig invalid maxUnavailable: {e}"));
    }
    Ok(())
}

/// Upstream `MaxUnavailable`: an integer ≥ 0 or a string `"N%"` with N in 1..=100.
fn check_max_unavailable(value: &IntOrString) -> Result<(), String> {
    match value {
        IntOrString::Int(i) if *i < 0 => Err("negative number is not allowed".to_string()),
        IntOrString::Int(_) => Ok(()),
        IntOrString::String(s) => {
            let Some(digits) = s.strip_suffix('%') else {
                return Err("invalid type: strings needs to be a percentage".to_string());
            };
            match digits.parse::<i64>() {
                Err(e) => Err(format!("invalid value {s:?}: {e}")),
                Ok(v) if !(1..=100).contains(&v) => {
                    Err("invalid value: percentage needs to be between 1 and 100".to_string())
                }
                Ok(_) => Ok(()),
            }
        }
    }
}

/// Upstream `validateNetworkNamespace`: only networks in the operator namespace may target
/// another namespace.
pub fn check_network(network: &Network, namespace: &str) -> Result<(), String> {
    if network.metadata.namespace != namespace && !network.spec.network_namespace.is_empty() {
        return Err(format!(
            ".Spec.NetworkNamespace field can't be specified if the resource is not in the {namespace} namespace"
        ));
    }
    Ok(())
}
