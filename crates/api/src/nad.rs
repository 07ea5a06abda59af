//! `NetworkAttachmentDefinition` (`k8s.cni.cncf.io/v1`, Multus' CRD): what the operator renders
//! from each network kind. `spec.config` is a CNI config JSON string that Multus hands to the
//! CNI plugin unchanged, which is why the renderer formats it byte-for-byte as upstream.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `NetworkAttachmentDefinition.spec`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "k8s.cni.cncf.io",
    version = "v1",
    kind = "NetworkAttachmentDefinition",
    doc = "A Multus network attachment: spec.config is the CNI configuration JSON.",
    plural = "network-attachment-definitions",
    singular = "network-attachment-definition",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    shortname = "net-attach-def"
)]
#[serde(rename_all = "camelCase")]
pub struct NadSpec {
    /// The CNI config JSON.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
}
