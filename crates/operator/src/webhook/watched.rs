//! The cluster as kube-runtime reflectors keep it: nodes, node states, policies, the `default`
//! operator config and the `supported-nic-ids` ConfigMap, watched once and read from memory by
//! every admission. Upstream lists nodes, node states and policies from the API server on every
//! request; here an admission makes no API call at all.

use std::fmt::Debug;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Node as K8sNode};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use sriov_api::{SriovNetworkNodePolicy, SriovNetworkNodeState, SriovOperatorConfig};

use super::ClusterSource;
use crate::admission::objects::{Node, NodeState};
use crate::admission::{Cluster, SupportedNics};

/// The ConfigMap (in the operator namespace) listing the supported NIC models.
pub const SUPPORTED_NICS_CONFIG_MAP: &str = "supported-nic-ids";

/// Why the watches could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("initial list of {kind} never completed: {reason}")]
    NotReady { kind: &'static str, reason: String },
}

/// Reflector stores of what the dynamic checks read. Cheap to clone.
#[derive(Clone)]
pub struct WatchedCluster {
    nodes: Store<K8sNode>,
    node_states: Store<SriovNetworkNodeState>,
    policies: Store<SriovNetworkNodePolicy>,
    configs: Store<SriovOperatorConfig>,
    nic_ids: Store<ConfigMap>,
}

/// Drives one reflector forever on the runtime, logging (not ending on) watch errors: the
/// watcher retries with backoff and the store keeps the last state meanwhile.
fn drive<K>(kind: &'static str, stream: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Send + 'static,
{
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::warn!("{kind} watch: {e}");
            }
        }
    });
}

fn reflect<K>(
    kind: &'static str,
    api: Api<K>,
    config: watcher::Config,
    trim: impl FnMut(&mut K) + Send + 'static,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = reflector::reflector(writer, watcher(api, config).modify(trim))
        .default_backoff()
        .touched_objects();
    drive(kind, stream);
    reader
}

impl WatchedCluster {
    /// Starts the five watches (nodes cluster-wide, the rest in `namespace`) and waits until
    /// each has its initial list, so the first admission already sees the whole cluster.
    pub async fn start(client: Client, namespace: &str) -> Result<WatchedCluster, WatchError> {
        let cfg = watcher::Config::default;
        let nodes = reflect("Node", Api::all(client.clone()), cfg(), |n: &mut K8sNode| {
            // Only labels and spec.providerID are read: drop the bulk (images, conditions).
            n.status = None;
            n.managed_fields_mut().clear();
        });
        let node_states = reflect(
            "SriovNetworkNodeState",
            Api::namespaced(client.clone(), namespace),
            cfg(),
            |s: &mut SriovNetworkNodeState| s.managed_fields_mut().clear(),
        );
        let policies = reflect(
            "SriovNetworkNodePolicy",
            Api::namespaced(client.clone(), namespace),
            cfg(),
            |p: &mut SriovNetworkNodePolicy| p.managed_fields_mut().clear(),
        );
        let configs = reflect(
            "SriovOperatorConfig",
            Api::namespaced(client.clone(), namespace),
            cfg(),
            |c: &mut SriovOperatorConfig| c.managed_fields_mut().clear(),
        );
        let nic_ids = reflect(
            "ConfigMap",
            Api::namespaced(client, namespace),
            cfg().fields(&format!("metadata.name={SUPPORTED_NICS_CONFIG_MAP}")),
            |c: &mut ConfigMap| c.managed_fields_mut().clear(),
        );
        let ready = |kind: &'static str| {
            move |e: reflector::store::WriterDropped| WatchError::NotReady {
                kind,
                reason: e.to_string(),
            }
        };
        nodes.wait_until_ready().await.map_err(ready("Node"))?;
        node_states
            .wait_until_ready()
            .await
            .map_err(ready("SriovNetworkNodeState"))?;
        policies
            .wait_until_ready()
            .await
            .map_err(ready("SriovNetworkNodePolicy"))?;
        configs
            .wait_until_ready()
            .await
            .map_err(ready("SriovOperatorConfig"))?;
        nic_ids.wait_until_ready().await.map_err(ready("ConfigMap"))?;
        Ok(WatchedCluster {
            nodes,
            node_states,
            policies,
            configs,
            nic_ids,
        })
    }
}

/// The admission view of a Kubernetes `Node`.
pub fn node_view(node: &K8sNode) -> Node {
    Node {
        name: node.name_any(),
        labels: node.labels().clone(),
        provider_id: node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default(),
    }
}

/// The admission view of a node state: what its daemon discovered.
pub fn node_state_view(state: &SriovNetworkNodeState) -> NodeState {
    let status = state.status.clone().unwrap_or_default();
    NodeState {
        name: state.name_any(),
        interfaces: status.interfaces,
        sync_status: status.sync_status,
    }
}

/// The supported-NIC list: the ConfigMap's when it exists (it replaces the built-in one, as
/// upstream loads it), else the built-in list.
pub fn supported_nics(config_map: Option<&ConfigMap>) -> Result<SupportedNics, String> {
    let Some(cm) = config_map else {
        return Ok(SupportedNics::builtin());
    };
    let value =
        serde_json::to_value(cm).map_err(|e| format!("ConfigMap {SUPPORTED_NICS_CONFIG_MAP}: {e}"))?;
    SupportedNics::from_config_map(&value).map_err(|e| e.to_string())
}

impl ClusterSource for WatchedCluster {
    fn snapshot(&self) -> Result<Cluster, String> {
        let nic_ids = self.nic_ids.state();
        Ok(Cluster {
            nodes: self.nodes.state().iter().map(|n| node_view(n)).collect(),
            node_states: self
                .node_states
                .state()
                .iter()
                .map(|s| node_state_view(s))
                .collect(),
            policies: self.policies.state().iter().map(|p| (**p).clone()).collect(),
            operator_config: self
                .configs
                .state()
                .iter()
                .find(|c| c.name_any() == sriov_api::operator_config::DEFAULT_OPERATOR_CONFIG_NAME)
                .map(|c| (**c).clone()),
            nics: supported_nics(nic_ids.first().map(|c| c.as_ref()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_node_is_seen_through_its_labels_and_provider_id() {
        let node: K8sNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "w1", "labels": {"sriov": "yes"}},
            "spec": {"providerID": "openstack:///abc"},
        }))
        .unwrap();
        let v = node_view(&node);
        assert_eq!(
            (v.name.as_str(), v.provider_id.as_str()),
            ("w1", "openstack:///abc")
        );
        assert_eq!(v.labels.get("sriov").map(String::as_str), Some("yes"));
    }

    #[test]
    fn the_config_map_replaces_the_builtin_nic_list() {
        let builtin = supported_nics(None).unwrap();
        assert!(builtin.is_supported_model("8086", "1572"));
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": SUPPORTED_NICS_CONFIG_MAP, "namespace": "op"},
            "data": {"Only": "15b3 1017 1018"},
        }))
        .unwrap();
        let only = supported_nics(Some(&cm)).unwrap();
        assert!(only.is_supported_model("15b3", "1017"));
        assert!(!only.is_supported_model("8086", "1572"));
        let bad: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": SUPPORTED_NICS_CONFIG_MAP, "namespace": "op"},
            "data": {"Broken": "8086"},
        }))
        .unwrap();
        let err = supported_nics(Some(&bad)).unwrap_err();
        assert!(err.contains("Broken"), "{err}");
    }
}
