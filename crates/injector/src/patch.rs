//! The JSONPatch the injector answers with, as typed values serialized straight to bytes.
//!
//! Why not `serde_json::json!` trees: every admission built a few dozen `Value` maps (an
//! allocation and a hash per key) only to serialize them once; under load that was about a
//! sixth of the injector's CPU, and allocation another quarter (issue #13, docs/injector.md).
//! Field order is upstream's (Go encodes struct fields in declaration order: `op`, `path`,
//! `value`; a VolumeMount's `name`, `readOnly`, `mountPath`; ...), map keys sorted as Go's
//! encoder sorts them. `tests` pins the bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

/// One `add` operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Op {
    op: &'static str,
    /// Constant paths (`/spec/volumes`) are not copied.
    pub path: Cow<'static, str>,
    pub value: Value,
}

impl Op {
    pub fn add(path: impl Into<Cow<'static, str>>, value: Value) -> Op {
        Op {
            op: "add",
            path: path.into(),
            value,
        }
    }
}

/// A count as Go's `resource.Quantity` marshals an integer: a JSON string of its digits,
/// written straight into the output (no `String` per count).
fn quantity<S: Serializer>(n: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}

/// What an operation adds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A quantity (`"2"`), as Go's `resource.Quantity` marshals.
    Quantity(#[serde(serialize_with = "quantity")] i64),
    /// Annotations, a node selector, or `{}` (an empty requests/limits list).
    Map(BTreeMap<String, String>),
    Env(EnvVar),
    EnvList([EnvVar; 1]),
    Mount(Mount),
    MountList([Mount; 1]),
    Volume(Volume),
    VolumeList([Volume; 1]),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvVar {
    pub name: &'static str,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub name: &'static str,
    pub read_only: bool,
    pub mount_path: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Volume {
    pub name: &'static str,
    #[serde(rename = "downwardAPI")]
    pub downward_api: DownwardApi,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DownwardApi {
    pub items: Vec<DownwardItem>,
}

/// One file of the Downward API volume: a pod field or a container resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownwardItem {
    pub path: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_field_ref: Option<ResourceFieldRef>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    pub field_path: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFieldRef {
    pub container_name: String,
    pub resource: String,
    pub divisor: &'static str,
}

impl DownwardItem {
    pub fn field(path: &'static str, field_path: &'static str) -> DownwardItem {
        DownwardItem {
            path: Cow::Borrowed(path),
            field_ref: Some(FieldRef { field_path }),
            resource_field_ref: None,
        }
    }

    pub fn resource(path: String, container_name: String, resource: String) -> DownwardItem {
        DownwardItem {
            path: Cow::Owned(path),
            field_ref: None,
            resource_field_ref: Some(ResourceFieldRef {
                container_name,
                resource,
                divisor: "1Mi",
            }),
        }
    }
}
