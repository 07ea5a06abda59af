//! Reading user manifests (YAML or JSON, one or many documents) into typed objects.
//!
//! Each document is checked the way a cluster would check it: `apiVersion`/`kind` must name a
//! kind we know, the body must satisfy the generated CRD schema (types, enums, ranges, required
//! fields, CRD defaults applied), and every error names the object (`Kind/name`) and the field.
//! Nothing here panics on outside input.

use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use kube::CustomResourceExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::schema_check::prune_and_check;
use crate::{
    NetworkAttachmentDefinition, OVSNetwork, SriovIBNetwork, SriovNetwork, SriovNetworkNodePolicy,
    SriovNetworkNodeState, SriovNetworkPoolConfig, SriovOperatorConfig,
};

/// Why a manifest could not be read. Every variant names where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("document {doc}: malformed YAML/JSON: {message}")]
    Syntax { doc: usize, message: String },
    #[error("document {doc}: not a Kubernetes object: {message}")]
    NotAnObject { doc: usize, message: String },
    #[error("{kind}/{name}: field apiVersion: unsupported value {found:?}, expected {expected:?}")]
    WrongApiVersion {
        kind: String,
        name: String,
        found: String,
        expected: String,
    },
    #[error("{kind}/{name}: field kind: unsupported kind {kind:?} (apiVersion {api_version:?})")]
    UnknownKind {
        kind: String,
        name: String,
        api_version: String,
    },
    #[error("{kind}/{name}: field {field}: {message}")]
    InvalidField {
        kind: String,
        name: String,
        field: String,
        message: String,
    },
    #[error("{kind}/{name}: {message}")]
    Decode {
        kind: String,
        name: String,
        message: String,
    },
}

/// One object read from a manifest.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    NodePolicy(Box<SriovNetworkNodePolicy>),
    NodeState(Box<SriovNetworkNodeState>),
    Network(Box<SriovNetwork>),
    IbNetwork(Box<SriovIBNetwork>),
    OvsNetwork(Box<OVSNetwork>),
    OperatorConfig(Box<SriovOperatorConfig>),
    PoolConfig(Box<SriovNetworkPoolConfig>),
    Nad(Box<NetworkAttachmentDefinition>),
    /// A core `Node` (name and labels matter for rendering).
    Node(Box<Node>),
    /// A core `ConfigMap` (e.g. `supported-nic-ids`).
    ConfigMap(Box<ConfigMap>),
}

impl Object {
    /// `Kind/name` of the object, as errors name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::NodePolicy(_) => "SriovNetworkNodePolicy",
            Object::NodeState(_) => "SriovNetworkNodeState",
            Object::Network(_) => "SriovNetwork",
            Object::IbNetwork(_) => "SriovIBNetwork",
            Object::OvsNetwork(_) => "OVSNetwork",
            Object::OperatorConfig(_) => "SriovOperatorConfig",
            Object::PoolConfig(_) => "SriovNetworkPoolConfig",
            Object::Nad(_) => "NetworkAttachmentDefinition",
            Object::Node(_) => "Node",
            Object::ConfigMap(_) => "ConfigMap",
        }
    }
}

/// Parse exactly one object (YAML or JSON text).
pub fn parse_object(text: &str) -> Result<Object, ApiError> {
    let mut docs = parse_documents(text)?;
    match docs.len() {
        1 => Ok(docs.remove(0)),
        n => Err(ApiError::NotAnObject {
            doc: 0,
            message: format!("expected exactly one object, found {n} documents"),
        }),
    }
}

/// Parse a multi-document YAML stream (`---` separated; a JSON document is YAML too). Empty
/// documents are skipped; a document that is a `List` (`kind: List` / `*List` with `items`)
/// contributes its items.
pub fn parse_documents(text: &str) -> Result<Vec<Object>, ApiError> {
    let values = read_values(text)?;
    let mut out = Vec::new();
    for (doc, value) in values.into_iter().enumerate() {
        match value {
            Value::Null => continue,
            Value::Object(ref map) if is_list(map) => {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for item in items {
                    out.push(object_from_value(doc, item)?);
                }
            }
            other => out.push(object_from_value(doc, other)?),
        }
    }
    Ok(out)
}

/// JSON text (one or more concatenated objects) is read as JSON, exactly; anything else as a
/// multi-document YAML stream.
fn read_values(text: &str) -> Result<Vec<Value>, ApiError> {
    if text.trim_start().starts_with('{') {
        return serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
            .map(|(doc, v)| {
                v.map_err(|e| ApiError::Syntax {
                    doc,
                    message: e.to_string(),
                })
            })
            .collect();
    }
    serde_saphyr::from_multiple(text).map_err(|e| ApiError::Syntax {
        doc: 0,
        message: e.to_string(),
    })
}

fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && map.get("items").is_some_and(Value::is_array)
}

/// Check and convert one already-parsed JSON value.
pub fn object_from_value(doc: usize, mut value: Value) -> Result<Object, ApiError> {
    let Value::Object(map) = &value else {
        return Err(ApiError::NotAnObject {
            doc,
            message: format!("expected a mapping with apiVersion and kind, got {value}"),
        });
    };
    let text_field = |key: &str| -> Result<String, ApiError> {
        match map.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(other) => Err(ApiError::NotAnObject {
                doc,
                message: format!("field {key} must be a non-empty string, got {other}"),
            }),
            None => Err(ApiError::NotAnObject {
                doc,
                message: format!("field {key} is missing"),
            }),
        }
    };
    let api_version = text_field("apiVersion")?;
    let kind = text_field("kind")?;
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_string();
    let spec = kind_spec(&kind).ok_or_else(|| ApiError::UnknownKind {
        kind: kind.clone(),
        name: name.clone(),
        api_version: api_version.clone(),
    })?;
    if api_version != spec.api_version {
        return Err(ApiError::WrongApiVersion {
            kind,
            name,
            found: api_version,
            expected: spec.api_version.to_string(),
        });
    }
    if let Some(schema) = (spec.schema)() {
        // Type meta and the metadata subtree are the API server's business, not the CRD schema's.
        let mut kept = Vec::new();
        if let Some(m) = value.as_object_mut() {
            for key in ["apiVersion", "kind", "metadata"] {
                if let Some(v) = m.remove(key) {
                    kept.push((key, v));
                }
            }
        }
        let violations = prune_and_check(schema, &mut value, "");
        if let Some(m) = value.as_object_mut() {
            for (key, v) in kept {
                m.insert(key.to_string(), v);
            }
        }
        if let Some(v) = violations.into_iter().next() {
            return Err(ApiError::InvalidField {
                kind,
                name,
                field: v.field,
                message: v.message,
            });
        }
    }
    (spec.decode)(value).map_err(|message| ApiError::Decode { kind, name, message })
}

struct KindSpec {
    api_version: &'static str,
    schema: fn() -> Option<&'static JSONSchemaProps>,
    decode: fn(Value) -> Result<Object, String>,
}

fn decode<T: DeserializeOwned>(v: Value, wrap: fn(Box<T>) -> Object) -> Result<Object, String> {
    serde_json::from_value::<T>(v)
        .map(|t| wrap(Box::new(t)))
        .map_err(|e| e.to_string())
}

fn crd_schema<K: CustomResourceExt>(
    cell: &'static OnceLock<Option<JSONSchemaProps>>,
) -> Option<&'static JSONSchemaProps> {
    cell.get_or_init(|| {
        K::crd()
            .spec
            .versions
            .into_iter()
            .next()
            .and_then(|v| v.schema)
            .and_then(|s| s.open_api_v3_schema)
    })
    .as_ref()
}

macro_rules! schema_of {
    ($t:ty) => {{
        fn get() -> Option<&'static JSONSchemaProps> {
            static CELL: OnceLock<Option<JSONSchemaProps>> = OnceLock::new();
            crd_schema::<$t>(&CELL)
        }
        get
    }};
}

fn no_schema() -> Option<&'static JSONSchemaProps> {
    None
}

fn kind_spec(kind: &str) -> Option<KindSpec> {
    let v1 = crate::API_VERSION;
    Some(match kind {
        "SriovNetworkNodePolicy" => KindSpec {
            api_version: v1,
            schema: schema_of!(SriovNetworkNodePolicy),
            decode: |v| decode(v, Object::NodePolicy),
        },
        "SriovNetworkNodeState" => KindSpec {
            api_version: v1,
            schema: schema_of!(SriovNetworkNodeState),
            decode: |v| decode(v, Object::NodeState),
        },
        "SriovNetwork" => KindSpec {
            api_version: v1,
            schema: schema_of!(SriovNetwork),
            decode: |v| decode(v, Object::Network),
        },
        "SriovIBNetwork" => KindSpec {
            api_version: v1,
            schema: schema_of!(SriovIBNetwork),
            decode: |v| decode(v, Object::IbNetwork),
        },
        "OVSNetwork" => KindSpec {
            api_version: v1,
            schema: schema_of!(OVSNetwork),
            decode: |v| decode(v, Object::OvsNetwork),
        },
        "SriovOperatorConfig" => KindSpec {
            api_version: v1,
            schema: schema_of!(SriovOperatorConfig),
            decode: |v| decode(v, Object::OperatorConfig),
        },
        "SriovNetworkPoolConfig" => KindSpec {
            api_version: v1,
            schema: schema_of!(SriovNetworkPoolConfig),
            decode: |v| decode(v, Object::PoolConfig),
        },
        "NetworkAttachmentDefinition" => KindSpec {
            api_version: crate::NAD_API_VERSION,
            schema: schema_of!(NetworkAttachmentDefinition),
            decode: |v| decode(v, Object::Nad),
        },
        "Node" => KindSpec {
            api_version: "v1",
            schema: no_schema,
            decode: |v| decode(v, Object::Node),
        },
        "ConfigMap" => KindSpec {
            api_version: "v1",
            schema: no_schema,
            decode: |v| decode(v, Object::ConfigMap),
        },
        _ => return None,
    })
}
