//! Network CRs → `NetworkAttachmentDefinition` (upstream `RenderNetAttDef` for SriovNetwork,
//! SriovIBNetwork and OVSNetwork, the `bindata/manifests/cni-config` templates, and the
//! generic network controller's `formatJSON` and ownership rules).
//!
//! `spec.config` is built in the template's key order and then re-indented with Go's
//! `json.Indent` rules ([`super::go_json::go_indent`]), so it is byte-for-byte upstream's.
//! `capabilities`, `ipam` and `metaPlugins` are user JSON inserted verbatim (ipam with all
//! whitespace removed, as upstream does); if one is not valid JSON the error names the object
//! and that field instead of producing a config that Multus would reject.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::Resource;
use sriov_api::keys::{OWNER_REF, RESOURCE_NAME};
use sriov_api::{NadSpec, NetworkAttachmentDefinition, OVSNetwork, SriovIBNetwork, SriovNetwork};

use super::RenderError;
use super::go_json::go_indent;

/// What the operator knows when rendering NADs: its namespace (`NAMESPACE`) and the device
/// plugin's resource prefix (`RESOURCE_PREFIX`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NadContext {
    pub operator_namespace: String,
    pub resource_prefix: String,
}

/// Which network kind a NAD is rendered from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NetKind {
    Sriov,
    Ib,
    Ovs,
}

impl NetKind {
    fn kind(self) -> &'static str {
        match self {
            NetKind::Sriov => "SriovNetwork",
            NetKind::Ib => "SriovIBNetwork",
            NetKind::Ovs => "OVSNetwork",
        }
    }
}

/// The fields every network kind shares, plus the kind-specific body of the plugin object.
struct NetCommon<'a> {
    kind: NetKind,
    meta: &'a ObjectMeta,
    network_namespace: &'a str,
    resource_name: &'a str,
    capabilities: &'a str,
    ipam: &'a str,
    meta_plugins: &'a str,
}

/// Render the NAD of a `SriovNetwork` (CNI type `sriov`).
pub fn render_sriov_network_nad(
    net: &SriovNetwork,
    ctx: &NadContext,
) -> Result<NetworkAttachmentDefinition, RenderError> {
    let s = &net.spec;
    let common = NetCommon {
        kind: NetKind::Sriov,
        meta: &net.metadata,
        network_namespace: &s.network_namespace,
        resource_name: &s.resource_name,
        capabilities: &s.capabilities,
        ipam: &s.ipam,
        meta_plugins: &s.meta_plugins,
    };
    let mut body = format!("\"type\":\"sriov\",\"vlan\":{},", s.vlan);
    if matches!(s.spoof_chk.as_str(), "on" | "off") {
        body += &format!("\"spoofchk\":\"{}\",", s.spoof_chk);
    }
    if matches!(s.trust.as_str(), "on" | "off") {
        body += &format!("\"trust\":\"{}\",", s.trust);
    }
    if (0..=7).contains(&s.vlan_qos) {
        body += &format!("\"vlanQoS\":{},", s.vlan_qos);
    }
    if !s.vlan_proto.is_empty() {
        body += &format!("\"vlanProto\":{},", json_str(&s.vlan_proto));
    }
    if let Some(rate) = s.min_tx_rate.filter(|r| *r >= 0) {
        body += &format!("\"min_tx_rate\":{rate},");
    }
    if let Some(rate) = s.max_tx_rate.filter(|r| *r >= 0) {
        body += &format!("\"max_tx_rate\":{rate},");
    }
    body += &capabilities_and_link_state(&common, &s.link_state)?;
    if !s.log_level.is_empty() {
        body += &format!("\"logLevel\":{},", json_str(&s.log_level));
    }
    if !s.log_file.is_empty() {
        body += &format!("\"logFile\":{},", json_str(&s.log_file));
    }
    render(&common, &body, ctx)
}

/// Render the NAD of a `SriovIBNetwork` (CNI type `ib-sriov`; no VLAN or log fields).
pub fn render_ib_network_nad(
    net: &SriovIBNetwork,
    ctx: &NadContext,
) -> Result<NetworkAttachmentDefinition, RenderError> {
    let s = &net.spec;
    let common = NetCommon {
        kind: NetKind::Ib,
        meta: &net.metadata,
        network_namespace: &s.network_namespace,
        resource_name: &s.resource_name,
        capabilities: &s.capabilities,
        ipam: &s.ipam,
        meta_plugins: &s.meta_plugins,
    };
    let body = format!(
        "\"type\":\"ib-sriov\",{}",
        capabilities_and_link_state(&common, &s.link_state)?
    );
    render(&common, &body, ctx)
}

/// Render the NAD of an `OVSNetwork` (CNI type `ovs`).
pub fn render_ovs_network_nad(
    net: &OVSNetwork,
    ctx: &NadContext,
) -> Result<NetworkAttachmentDefinition, RenderError> {
    let s = &net.spec;
    let common = NetCommon {
        kind: NetKind::Ovs,
        meta: &net.metadata,
        network_namespace: &s.network_namespace,
        resource_name: &s.resource_name,
        capabilities: &s.capabilities,
        ipam: &s.ipam,
        meta_plugins: &s.meta_plugins,
    };
    let mut body = format!("\"type\":\"ovs\",{}", capabilities_and_link_state(&common, "")?);
    if !s.bridge.is_empty() {
        body += &format!("\"bridge\":{},", json_str(&s.bridge));
    }
    if s.vlan != 0 {
        body += &format!("\"vlan\":{},", s.vlan);
    }
    if s.mtu != 0 {
        body += &format!("\"mtu\":{},", s.mtu);
    }
    if !s.trunk.is_empty() {
        let trunk = serde_json::to_string(&s.trunk)
            .map_err(|e| invalid(&common, "spec.trunk", "", &e.to_string()))?;
        body += &format!("\"trunk\":{trunk},");
    }
    if !s.interface_type.is_empty() {
        body += &format!("\"interface_type\":{},", json_str(&s.interface_type));
    }
    render(&common, &body, ctx)
}

/// A JSON string literal (upstream inserts the raw text between quotes; identical for every
/// value the CRD enums and Kubernetes names allow).
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn invalid(c: &NetCommon<'_>, field: &str, value: &str, reason: &str) -> RenderError {
    RenderError::InvalidNetworkField {
        kind: c.kind.kind().to_string(),
        namespace: c.meta.namespace.clone().unwrap_or_default(),
        name: c.meta.name.clone().unwrap_or_default(),
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// `"capabilities":RAW,` (if set) then `"link_state":"…",` (if a known state).
fn capabilities_and_link_state(c: &NetCommon<'_>, link_state: &str) -> Result<String, RenderError> {
    let mut out = String::new();
    if !c.capabilities.is_empty() {
        check_json(c, "spec.capabilities", c.capabilities)?;
        out += &format!("\"capabilities\":{},", c.capabilities);
    }
    if matches!(link_state, "enable" | "disable" | "auto") {
        out += &format!("\"link_state\":\"{link_state}\",");
    }
    Ok(out)
}

fn check_json(c: &NetCommon<'_>, field: &str, text: &str) -> Result<(), RenderError> {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|_| ())
        .map_err(|e| invalid(c, field, text, &format!("not valid JSON: {e}")))
}

/// Assemble the template (`cniVersion`, `name`, optional `plugins` chain), re-indent it and wrap
/// it in the NAD object.
fn render(
    c: &NetCommon<'_>,
    body: &str,
    ctx: &NadContext,
) -> Result<NetworkAttachmentDefinition, RenderError> {
    let name = c.meta.name.clone().unwrap_or_default();
    let cr_namespace = c
        .meta
        .namespace
        .clone()
        .unwrap_or_else(|| ctx.operator_namespace.clone());
    if name.is_empty() {
        return Err(invalid(
            c,
            "metadata.name",
            "",
            "a network needs a name: it is the NAD's name",
        ));
    }
    if !c.network_namespace.is_empty() && cr_namespace != ctx.operator_namespace {
        return Err(invalid(
            c,
            "spec.networkNamespace",
            c.network_namespace,
            &format!(
                "can only be set on networks in the operator namespace {:?}",
                ctx.operator_namespace
            ),
        ));
    }
    let ipam = if c.ipam.is_empty() {
        "{}".to_string()
    } else {
        let stripped: String = c.ipam.split_whitespace().collect();
        check_json(c, "spec.ipam", &stripped)?;
        stripped
    };
    let mut config = format!("{{\"cniVersion\":\"1.0.0\",\"name\":{},", json_str(&name));
    if !c.meta_plugins.is_empty() {
        check_json(c, "spec.metaPlugins", &format!("[{}]", c.meta_plugins))?;
        config += "\"plugins\":[{";
    }
    config += body;
    config += &format!("\"ipam\":{ipam}}}");
    if !c.meta_plugins.is_empty() {
        config += &format!(",{}]}}", c.meta_plugins);
    }
    let config = go_indent(&config).map_err(|e| {
        invalid(
            c,
            "spec",
            "",
            &format!("rendered CNI config is not valid JSON: {e}"),
        )
    })?;

    let target_namespace = if c.network_namespace.is_empty() {
        cr_namespace.clone()
    } else {
        c.network_namespace.to_string()
    };
    let owner = format!("{}.{}/{}/{}", c.kind.kind(), sriov_api::GROUP, cr_namespace, name);
    let annotations = BTreeMap::from([
        (
            RESOURCE_NAME.to_string(),
            format!("{}/{}", ctx.resource_prefix, c.resource_name),
        ),
        (OWNER_REF.to_string(), owner),
    ]);
    // Garbage collection by ownerReference only works inside one namespace (and needs the uid).
    let owner_references = match (&c.meta.uid, target_namespace == cr_namespace) {
        (Some(uid), true) => Some(vec![OwnerReference {
            api_version: sriov_api::API_VERSION.to_string(),
            kind: c.kind.kind().to_string(),
            name: name.clone(),
            uid: uid.clone(),
            ..Default::default()
        }]),
        _ => None,
    };
    let mut nad = NetworkAttachmentDefinition::new(&name, NadSpec { config });
    let meta = nad.meta_mut();
    meta.namespace = Some(target_namespace);
    meta.annotations = Some(annotations);
    meta.owner_references = owner_references;
    Ok(nad)
}

/// What to do with a rendered NAD given the one that exists, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NadAction {
    Create,
    Update,
    Unchanged,
}

/// Upstream's ownership rule: a NAD whose owner annotation is set and names another network is
/// left alone (an error naming both); a NAD without the annotation is taken over. Otherwise
/// update only when spec or annotations differ.
pub fn nad_action(
    desired: &NetworkAttachmentDefinition,
    existing: Option<&NetworkAttachmentDefinition>,
) -> Result<NadAction, RenderError> {
    let Some(found) = existing else {
        return Ok(NadAction::Create);
    };
    let annotation = |n: &NetworkAttachmentDefinition| {
        n.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OWNER_REF))
            .cloned()
            .unwrap_or_default()
    };
    let (found_owner, expected) = (annotation(found), annotation(desired));
    if !found_owner.is_empty() && found_owner != expected {
        return Err(RenderError::NadOwnedByOther {
            namespace: desired.metadata.namespace.clone().unwrap_or_default(),
            name: desired.metadata.name.clone().unwrap_or_default(),
            owner: found_owner,
            expected,
        });
    }
    let same = found.spec == desired.spec
        && found.metadata.annotations.clone().unwrap_or_default()
            == desired.metadata.annotations.clone().unwrap_or_default();
    Ok(if same {
        NadAction::Unchanged
    } else {
        NadAction::Update
    })
}
