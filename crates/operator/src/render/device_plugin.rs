//! Policies → one node's device-plugin config (upstream `renderDevicePluginConfigData`,
//! `createDevicePluginResource`, `updateDevicePluginResource`) and the node label that gates
//! the device-plugin DaemonSet.
//!
//! The JSON is what the upstream device plugin (types pinned at `a5a7395`) parses, serialized
//! the way Go's `encoding/json` writes those structs: untagged `IsRdma` / `NeedVhostNet` always
//! present and capitalised, an untagged `"SelectorObj":null` on every resource, fields in struct
//! order, `"resourceList":null` for a node without resources, compact, HTML-escaped strings.
//!
//! Every policy the node selects contributes a resource, whether or not it matches a PF there;
//! policies with the same `resourceName` are merged into one resource (selectors unioned; the
//! first policy in application order fixes `IsRdma`, `NeedVhostNet`, `vdpaType`; the last
//! fixes `excludeTopology`).

use serde::Serialize;
use sriov_api::keys::{DEVICE_PLUGIN_DISABLED, DEVICE_PLUGIN_ENABLED};
use sriov_api::policy::DEVICE_TYPE_VFIO_PCI;
use sriov_host::InterfaceExt;

use super::RenderNote;
use super::pf_selector::net_filter_match;
use super::policy_index::CompiledPolicy;
use crate::admission::nics::SupportedNics;

/// Upstream device-plugin `ResourceConfList`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResourceConfList {
    /// `None` serializes as `null`, as Go's nil slice does.
    #[serde(rename = "resourceList")]
    pub resource_list: Option<Vec<ResourceConfig>>,
}

/// Upstream device-plugin `ResourceConfig` (field order = Go struct order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResourceConfig {
    #[serde(rename = "resourcePrefix", skip_serializing_if = "String::is_empty")]
    pub resource_prefix: String,
    #[serde(rename = "resourceName")]
    pub resource_name: String,
    #[serde(rename = "deviceType", skip_serializing_if = "String::is_empty")]
    pub device_type: String,
    #[serde(rename = "excludeTopology", skip_serializing_if = "std::ops::Not::not")]
    pub exclude_topology: bool,
    #[serde(rename = "selectors", skip_serializing_if = "Option::is_none")]
    pub selectors: Option<NetDeviceSelectors>,
    /// Untagged `interface{}` upstream: always `null`.
    #[serde(rename = "SelectorObj")]
    pub selector_obj: (),
}

/// Upstream device-plugin `NetDeviceSelectors` (embedded `DeviceSelectors` first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetDeviceSelectors {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vendors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<String>,
    #[serde(rename = "pciAddresses", skip_serializing_if = "Vec::is_empty")]
    pub pci_addresses: Vec<String>,
    #[serde(rename = "pfNames", skip_serializing_if = "Vec::is_empty")]
    pub pf_names: Vec<String>,
    #[serde(rename = "rootDevices", skip_serializing_if = "Vec::is_empty")]
    pub root_devices: Vec<String>,
    #[serde(rename = "linkTypes", skip_serializing_if = "Vec::is_empty")]
    pub link_types: Vec<String>,
    #[serde(rename = "ddpProfiles", skip_serializing_if = "Vec::is_empty")]
    pub ddp_profiles: Vec<String>,
    #[serde(rename = "IsRdma")]
    pub is_rdma: bool,
    #[serde(rename = "NeedVhostNet")]
    pub need_vhost_net: bool,
    #[serde(rename = "vdpaType", skip_serializing_if = "String::is_empty")]
    pub vdpa_type: String,
}

impl ResourceConfList {
    /// The node label value gating the device plugin: `Enabled` iff there is a resource.
    pub fn device_plugin_label(&self) -> &'static str {
        device_plugin_label(self)
    }

    /// The exact JSON upstream writes into the `device-plugin-config` ConfigMap.
    pub fn to_upstream_json(&self) -> String {
        // Serializing plain strings/bools/lists cannot fail; fall back to upstream's empty form.
        let json = serde_json::to_string(self).unwrap_or_else(|_| r#"{"resourceList":null}"#.to_string());
        go_html_escape(&json)
    }
}

/// `sriovnetwork.openshift.io/device-plugin` label value for a node's config.
pub fn device_plugin_label(config: &ResourceConfList) -> &'static str {
    match &config.resource_list {
        Some(list) if !list.is_empty() => DEVICE_PLUGIN_ENABLED,
        _ => DEVICE_PLUGIN_DISABLED,
    }
}

/// Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings. Outside
/// strings these characters cannot occur in JSON, so a plain replacement is exact.
pub fn go_html_escape(json: &str) -> String {
    if !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn unique_push(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}

/// Render one node's device-plugin config from the policies it selects (in application order)
/// and the PFs it reported (to resolve alternative names and netFilter matches).
pub fn render_device_plugin_config(
    node: &str,
    selected: &[&CompiledPolicy],
    interfaces: &[InterfaceExt],
    nics: &SupportedNics,
    notes: &mut Vec<RenderNote>,
) -> ResourceConfList {
    let mut list: Vec<ResourceConfig> = Vec::new();
    for policy in selected {
        let spec = &policy.spec;
        let sel = &spec.nic_selector;
        if !sel.net_filter.is_empty() && interfaces.is_empty() {
            // Upstream fails the whole sync here; we leave this resource out for this node.
            notes.push(RenderNote {
                node: node.to_string(),
                policy: policy.name.clone(),
                pf: String::new(),
                message: "netFilter policy but the node reported no interfaces yet; device-plugin resource left out".into(),
            });
            continue;
        }
        let existing = list.iter().position(|r| r.resource_name == spec.resource_name);
        let resource = match existing {
            Some(i) => &mut list[i],
            None => {
                list.push(ResourceConfig {
                    resource_name: spec.resource_name.clone(),
                    selectors: Some(NetDeviceSelectors {
                        is_rdma: spec.is_rdma,
                        need_vhost_net: spec.need_vhost_net,
                        vdpa_type: spec.vdpa_type.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                let last = list.len() - 1;
                &mut list[last]
            }
        };
        let s = resource.selectors.get_or_insert_with(NetDeviceSelectors::default);
        if !sel.vendor.is_empty() {
            unique_push(&mut s.vendors, &sel.vendor);
        }
        if !sel.device_id.is_empty() {
            let device = if spec.num_vfs == 0 {
                Some(sel.device_id.clone())
            } else {
                vf_device_id(nics, &sel.device_id)
            };
            if let Some(d) = device.filter(|d| !d.is_empty()) {
                unique_push(&mut s.devices, &d);
            }
        }
        for pf in &sel.pf_names {
            unique_push(&mut s.pf_names, &resolve_pf_name(pf, interfaces));
        }
        if spec.device_type != DEVICE_TYPE_VFIO_PCI && !spec.link_type.is_empty() {
            let link = if spec.link_type.eq_ignore_ascii_case("ib") {
                "infiniband"
            } else {
                "ether"
            };
            unique_push(&mut s.link_types, link);
        }
        if existing.is_none() {
            // Upstream appends rootDevices without de-duplication on the first policy only.
            s.root_devices.extend(sel.root_devices.iter().cloned());
        } else {
            for d in &sel.root_devices {
                unique_push(&mut s.root_devices, d);
            }
        }
        if !sel.net_filter.is_empty() {
            for iface in interfaces
                .iter()
                .filter(|i| net_filter_match(&sel.net_filter, &i.net_filter))
            {
                unique_push(&mut s.pci_addresses, &iface.pci_address);
            }
        }
        resource.exclude_topology = spec.exclude_topology;
    }
    ResourceConfList {
        resource_list: if list.is_empty() { None } else { Some(list) },
    }
}

/// Upstream `GetVfDeviceID`: the VF device id of the first supported model with this PF id.
pub fn vf_device_id(nics: &SupportedNics, pf_device: &str) -> Option<String> {
    nics.0
        .values()
        .find(|n| n.pf_device == pf_device)
        .map(|n| n.vf_device.clone())
}

/// Upstream `resolvePfNames` for one entry: an alternative name becomes the PF's real name,
/// the `#range` suffix is kept.
fn resolve_pf_name(entry: &str, interfaces: &[InterfaceExt]) -> String {
    let (name, suffix) = sriov_host::pf_range::split_entry(entry);
    let mut resolved = name;
    for iface in interfaces {
        if iface.name == name {
            break;
        }
        if iface.alt_names.iter().any(|a| a == name) {
            resolved = &iface.name;
            break;
        }
    }
    match suffix {
        Some(r) => format!("{resolved}#{r}"),
        None => resolved.to_string(),
    }
}
