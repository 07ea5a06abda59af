//! Admission for `sriovnetwork.openshift.io/v1` objects: the operator webhook's mutation and
//! validation (upstream `pkg/webhook/`) as plain functions over plain data.
//!
//! * [`mutate`]: defaults a `SriovNetworkNodePolicy` (JSONPatch: `priority` 99, `isRdma`).
//! * [`validate`]: static rules on one object, then dynamic rules against a [`Cluster`] snapshot
//!   (nodes, node states, other policies), with upstream's messages.
//! * [`review`]: the `AdmissionReview` wire format around both; the HTTPS webhook and
//!   `sriovctl validate` / `sriovctl mutate` call the same [`review::review`].
//!
//! Where we differ from upstream (all documented in `docs/webhook.md`): a policy whose
//! nodeSelector matches no node *yet*, or whose nodes have not reported their NICs yet, is
//! allowed with a warning instead of refused.

pub mod dynamic;
pub mod mutate;
pub mod nics;
pub mod objects;
pub mod others;
pub mod pfnames;
pub mod policy;
pub mod review;

#[cfg(test)]
mod tests;

pub use nics::SupportedNics;
pub use objects::Cluster;
pub use review::{Hook, review};

/// How the webhook runs: upstream's `NAMESPACE` and `DEV_MODE` environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The operator's namespace (`NAMESPACE`): only policies and config there are used.
    pub namespace: String,
    /// `DEV_MODE=TRUE`: admit NICs that are not in the supported list.
    pub dev_mode: bool,
}

impl Settings {
    /// Reads `NAMESPACE` and `DEV_MODE` (only the exact value `TRUE` enables it, as upstream).
    pub fn from_env() -> Settings {
        Settings {
            namespace: std::env::var("NAMESPACE").unwrap_or_default(),
            dev_mode: std::env::var("DEV_MODE").is_ok_and(|v| v == "TRUE"),
        }
    }
}

/// The outcome of admission for one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// `Some(text)` when refused; upstream puts the text in `status.reason`.
    pub denied: Option<String>,
    /// Warnings shown to the client (`kubectl` prints them), also on allowed requests.
    pub warnings: Vec<String>,
    /// JSONPatch for mutation; `None` when the hook does not patch.
    pub patch: Option<json_patch::Patch>,
}

impl Verdict {
    pub fn allow() -> Verdict {
        Verdict::default()
    }
    pub fn deny(text: impl Into<String>) -> Verdict {
        Verdict {
            denied: Some(text.into()),
            ..Verdict::default()
        }
    }
    pub fn allowed(&self) -> bool {
        self.denied.is_none()
    }
}

/// Input that admission cannot even read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AdmissionError {
    /// A field has the wrong type or shape.
    #[error("{kind} {object}: field {field}: {reason}")]
    Decode {
        kind: String,
        object: String,
        field: String,
        reason: String,
    },
    /// A `supported-nic-ids` entry is not `"<vendor> <pf device> <vf device>"`.
    #[error("ConfigMap {object}: field data.{key}: {value} is not \"<vendor> <pf device> <vf device>\"")]
    NicIds {
        object: String,
        key: String,
        value: String,
    },
    /// The request envelope is unusable (no `request`, wrong `kind`, missing object).
    #[error("AdmissionReview: field {field}: {reason}")]
    Review { field: String, reason: String },
}

/// Parses a multi-document YAML (or JSON) stream of Kubernetes objects; empty documents and
/// `kind: List` items are flattened.
pub fn parse_objects(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for doc in docs {
        match doc {
            serde_json::Value::Null => {}
            serde_json::Value::Object(ref m) if m.get("kind").and_then(|k| k.as_str()) == Some("List") => {
                if let Some(items) = m.get("items").and_then(|i| i.as_array()) {
                    out.extend(items.iter().cloned());
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}
