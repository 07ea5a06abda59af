//! The objects admission looks at, decoded from JSON with errors that name the object and the
//! field: policies as `sriov-api`'s `SriovNetworkNodePolicy`; for the other kinds, views of the
//! few fields the rules read (unknown fields ignored, missing fields zero, as Go decodes them).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sriov_host::InterfaceExt;

use super::AdmissionError;
use super::nics::SupportedNics;

/// `metadata` fields admission uses.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `SriovNetworkNodePolicy`: the API type of `sriov-api` (CRD default `deviceType: netdevice`
/// applied on decode; `priority` and `mtu` are 0 when absent, as in upstream's Go type).
pub type Policy = sriov_api::SriovNetworkNodePolicy;
pub use sriov_api::{NicSelector, NodePolicySpec as PolicySpec};

/// `metadata.name` of a policy (empty when unset).
pub fn policy_name(p: &Policy) -> &str {
    p.metadata.name.as_deref().unwrap_or("")
}

/// `metadata.namespace` of a policy (empty when unset).
pub fn policy_namespace(p: &Policy) -> &str {
    p.metadata.namespace.as_deref().unwrap_or("")
}

/// A `Node`: its labels and `spec.providerID`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub provider_id: String,
}

/// A `SriovNetworkNodeState`: what the config daemon discovered and its sync status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeState {
    pub name: String,
    pub interfaces: Vec<InterfaceExt>,
    pub sync_status: String,
}

/// `SriovOperatorConfig` (`sriov-api`).
pub type OperatorConfig = sriov_api::SriovOperatorConfig;
/// `SriovNetworkPoolConfig` (`sriov-api`).
pub type PoolConfig = sriov_api::SriovNetworkPoolConfig;

/// `SriovNetwork`, `SriovIBNetwork` or `OVSNetwork`: only the target namespace matters here.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct Network {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: NetworkSpec,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    #[serde(default)]
    pub network_namespace: String,
}

/// Decodes `value` (a whole object of `kind`) as a `T`; the error names the kind,
/// `namespace/name` and the JSON path of the bad field.
pub fn decode<T: DeserializeOwned + Default>(kind: &str, value: &Value) -> Result<T, AdmissionError> {
    decode_part(kind, value, &[])
}

/// Decodes the part of `object` at `path` (e.g. `["status", "interfaces"]`) as a `T`; a missing
/// or `null` part decodes as `T::default()`.
pub fn decode_part<T: DeserializeOwned + Default>(
    kind: &str,
    object: &Value,
    path: &[&str],
) -> Result<T, AdmissionError> {
    let mut part = object;
    for p in path {
        match part.get(p) {
            Some(v) => part = v,
            None => return Ok(T::default()),
        }
    }
    if part.is_null() && !path.is_empty() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize::<_, T>(part).map_err(|e| {
        let inner = e.path().to_string();
        let mut field = path.join(".");
        if inner != "." {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&inner);
        }
        AdmissionError::Decode {
            kind: kind.to_string(),
            object: object_ref(object),
            field: if field.is_empty() { ".".to_string() } else { field },
            reason: e.into_inner().to_string(),
        }
    })
}

/// `namespace/name` (or `name`) of a raw object, for messages.
pub fn object_ref(value: &Value) -> String {
    let meta = value.get("metadata");
    let get = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or("");
    match (get("namespace"), get("name")) {
        ("", "") => "<unnamed>".to_string(),
        ("", name) => name.to_string(),
        (ns, name) => format!("{ns}/{name}"),
    }
}

/// What the webhook's dynamic checks read from the cluster: nodes, node states, the other
/// policies, the operator config and the supported-NIC list.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub node_states: Vec<NodeState>,
    pub policies: Vec<Policy>,
    pub operator_config: Option<OperatorConfig>,
    pub nics: SupportedNics,
}

impl Cluster {
    /// Builds the view from Kubernetes objects (any order, unrelated kinds ignored). Only node
    /// states, policies and the operator config in `namespace` are kept, as upstream only lists
    /// those; the `supported-nic-ids` ConfigMap there replaces the built-in NIC list.
    pub fn from_objects(objects: &[Value], namespace: &str) -> Result<Cluster, AdmissionError> {
        let mut cluster = Cluster {
            nics: SupportedNics::builtin(),
            ..Cluster::default()
        };
        for obj in objects {
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
            let meta: Meta = decode_part(kind, obj, &["metadata"])?;
            let in_ns = meta.namespace == namespace;
            match kind {
                "Node" => cluster.nodes.push(Node {
                    provider_id: str_at(obj, &["spec", "providerID"]),
                    name: meta.name,
                    labels: meta.labels,
                }),
                "SriovNetworkNodeState" if in_ns => {
                    let interfaces: Vec<InterfaceExt> = decode_part(kind, obj, &["status", "interfaces"])?;
                    cluster.node_states.push(NodeState {
                        name: meta.name,
                        interfaces,
                        sync_status: str_at(obj, &["status", "syncStatus"]),
                    });
                }
                "SriovNetworkNodePolicy" if in_ns => cluster.policies.push(decode(kind, obj)?),
                "SriovOperatorConfig" if in_ns && meta.name == "default" => {
                    cluster.operator_config = Some(decode(kind, obj)?)
                }
                "ConfigMap" if in_ns && meta.name == "supported-nic-ids" => {
                    cluster.nics = SupportedNics::from_config_map(obj)?;
                }
                _ => {}
            }
        }
        Ok(cluster)
    }
}

fn str_at(obj: &Value, path: &[&str]) -> String {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    cur.as_str().unwrap_or("").to_string()
}
