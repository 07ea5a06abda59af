//! The `default` `SriovOperatorConfig`, created when absent (upstream's `main.go`
//! `createDefaultOperatorConfig` until 2024-02; since then Helm's `sriovOperatorConfig.deploy`
//! writes the same object). Nothing is rendered for policies until it exists, so an operator
//! started on a bare cluster works at once. An existing one is never touched.

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, PostParams};
use sriov_api::operator_config::DEFAULT_OPERATOR_CONFIG_NAME;
use sriov_api::{OperatorConfigSpec, SriovOperatorConfig};

use super::FIELD_MANAGER;
use super::settings::{ClusterType, OperatorSettings};

/// The object upstream creates: the injector and operator webhook as
/// `ADMISSION_CONTROLLERS_ENABLED` says, the daemon's default node selector (empty map), log
/// level 2, drain disabled on a single-node cluster (nothing to move pods to), daemon mode.
pub fn default_operator_config(
    namespace: &str,
    admission_controllers_enabled: bool,
    single_node: bool,
) -> SriovOperatorConfig {
    SriovOperatorConfig {
        metadata: ObjectMeta {
            name: Some(DEFAULT_OPERATOR_CONFIG_NAME.into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        spec: OperatorConfigSpec {
            enable_injector: admission_controllers_enabled,
            enable_operator_webhook: admission_controllers_enabled,
            log_level: 2,
            disable_drain: single_node,
            configuration_mode: "daemon".into(),
            ..OperatorConfigSpec::default()
        },
        status: None,
    }
}

/// Upstream's `IsSingleNodeCluster`: on Kubernetes exactly one Node; on OpenShift the
/// `Infrastructure` `cluster`'s `status.controlPlaneTopology` is `SingleReplica`.
pub fn is_single_node(
    cluster_type: ClusterType,
    node_count: usize,
    openshift_topology: Option<&str>,
) -> bool {
    match cluster_type {
        ClusterType::Kubernetes => node_count == 1,
        ClusterType::Openshift => openshift_topology == Some("SingleReplica"),
    }
}

/// What [`ensure_default_operator_config`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum DefaultConfig {
    Created { disable_drain: bool },
    AlreadyThere,
}

/// Why the default config could not be ensured.
#[derive(Debug, thiserror::Error)]
pub enum DefaultConfigError {
    #[error("reading SriovOperatorConfig {namespace}/default: {source}")]
    Read { namespace: String, source: kube::Error },
    #[error("counting Nodes for the single-node check: {0}")]
    Nodes(kube::Error),
    #[error("reading the OpenShift Infrastructure 'cluster' for the single-node check: {0}")]
    Infrastructure(kube::Error),
    #[error("creating SriovOperatorConfig {namespace}/default: {source}")]
    Create { namespace: String, source: kube::Error },
}

/// Creates `default` in the operator namespace unless it exists. One GET when it exists.
pub async fn ensure_default_operator_config(
    client: &kube::Client,
    settings: &OperatorSettings,
) -> Result<DefaultConfig, DefaultConfigError> {
    let namespace = settings.namespace.clone();
    let api: Api<SriovOperatorConfig> = Api::namespaced(client.clone(), &namespace);
    let existing = api
        .get_opt(DEFAULT_OPERATOR_CONFIG_NAME)
        .await
        .map_err(|source| DefaultConfigError::Read {
            namespace: namespace.clone(),
            source,
        })?;
    if existing.is_some() {
        return Ok(DefaultConfig::AlreadyThere);
    }
    let single_node = match settings.cluster_type {
        ClusterType::Kubernetes => {
            // Two are enough to tell "exactly one".
            let nodes: Api<Node> = Api::all(client.clone());
            let page = nodes
                .list_metadata(&ListParams::default().limit(2))
                .await
                .map_err(DefaultConfigError::Nodes)?;
            let more = page.metadata.continue_.as_deref().is_some_and(|c| !c.is_empty());
            let count = page.items.len() + usize::from(more);
            is_single_node(ClusterType::Kubernetes, count, None)
        }
        ClusterType::Openshift => {
            let topology = openshift_topology(client).await?;
            is_single_node(ClusterType::Openshift, 0, topology.as_deref())
        }
    };
    let config = default_operator_config(&namespace, settings.admission_controllers_enabled, single_node);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&pp, &config).await {
        Ok(_) => {
            tracing::info!(%namespace, disable_drain = single_node, "created the default SriovOperatorConfig");
            Ok(DefaultConfig::Created {
                disable_drain: single_node,
            })
        }
        // Created by someone else between our GET and POST (Helm, another replica).
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(DefaultConfig::AlreadyThere),
        Err(source) => Err(DefaultConfigError::Create { namespace, source }),
    }
}

async fn openshift_topology(client: &kube::Client) -> Result<Option<String>, DefaultConfigError> {
    let gvk = GroupVersionKind::gvk("config.openshift.io", "v1", "Infrastructure");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "infrastructures");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let infra = api
        .get("cluster")
        .await
        .map_err(DefaultConfigError::Infrastructure)?;
    Ok(infra
        .data
        .pointer("/status/controlPlaneTopology")
        .and_then(|v| v.as_str())
        .map(String::from))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn upstreams_default_spec() {
        let c = default_operator_config("sriov", true, false);
        assert_eq!(c.metadata.name.as_deref(), Some("default"));
        assert_eq!(c.metadata.namespace.as_deref(), Some("sriov"));
        let spec = serde_json::to_value(&c.spec).unwrap();
        assert_eq!(
            spec,
            serde_json::json!({
                "enableInjector": true,
                "enableOperatorWebhook": true,
                "logLevel": 2,
                "configurationMode": "daemon",
            })
        );
        let single = default_operator_config("sriov", false, true);
        assert!(single.spec.disable_drain);
        assert!(!single.spec.enable_injector && !single.spec.enable_operator_webhook);
    }

    #[test]
    fn single_node_as_upstream_decides_it() {
        assert!(is_single_node(ClusterType::Kubernetes, 1, None));
        assert!(!is_single_node(ClusterType::Kubernetes, 0, None));
        assert!(!is_single_node(ClusterType::Kubernetes, 2, None));
        assert!(is_single_node(ClusterType::Openshift, 3, Some("SingleReplica")));
        assert!(!is_single_node(
            ClusterType::Openshift,
            1,
            Some("HighlyAvailable")
        ));
        assert!(!is_single_node(ClusterType::Openshift, 1, None));
    }
}
