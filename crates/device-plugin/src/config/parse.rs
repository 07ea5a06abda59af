//! JSON → [`ResourceConfig`]: Go-compatible key matching, typed field extraction, validation.

use serde_json::{Map, Value};

use super::{AdditionalInfo, ConfigError, DeviceType, ResourceConfig, Selector, VdpaType, legacy};
use crate::range::PfRange;

/// A JSON object with Go `encoding/json` key matching: an exact key wins, else the first key equal
/// ignoring ASCII case.
#[derive(Clone, Copy)]
pub(super) struct Obj<'a>(pub &'a Map<String, Value>);

impl<'a> Obj<'a> {
    /// The value under `key`; JSON `null` counts as absent (as in Go).
    pub fn get(self, key: &str) -> Option<&'a Value> {
        let v = self.0.get(key).or_else(|| {
            self.0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        });
        v.filter(|v| !v.is_null())
    }
    pub fn has(self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// Error context for one resource entry.
pub(super) struct Ctx {
    pub resource: String,
}

impl Ctx {
    pub fn err(&self, field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Field {
            resource: self.resource.clone(),
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn string(&self, obj: Obj, key: &str) -> Result<Option<String>, ConfigError> {
        match obj.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(key, format!("expected a string, got {v}"))),
        }
    }
    pub fn bool(&self, obj: Obj, key: &str, field: &str) -> Result<bool, ConfigError> {
        match obj.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(field, format!("expected true or false, got {v}"))),
        }
    }
    pub fn strings(&self, obj: Obj, key: &str, field: &str) -> Result<Vec<String>, ConfigError> {
        match obj.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    v => Err(self.err(field, format!("expected a list of strings, found {v}"))),
                })
                .collect(),
            Some(v) => Err(self.err(field, format!("expected a list of strings, got {v}"))),
        }
    }
}

pub(super) fn resource_list(
    root: &Value,
    default_prefix: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<ResourceConfig>, ConfigError> {
    let Value::Object(top) = root else {
        return Err(ConfigError::Top {
            field: "(top level)",
            message: format!("expected an object, got {root}"),
        });
    };
    let list = match Obj(top).get("resourceList") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(v) => {
            return Err(ConfigError::Top {
                field: "resourceList",
                message: format!("expected a list, got {v}"),
            });
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, entry)| resource(i, entry, default_prefix, warnings))
        .collect()
}

fn resource(
    i: usize,
    entry: &Value,
    default_prefix: &str,
    warnings: &mut Vec<String>,
) -> Result<ResourceConfig, ConfigError> {
    let mut ctx = Ctx {
        resource: format!("resourceList[{i}]"),
    };
    let Value::Object(map) = entry else {
        return Err(ctx.err("(entry)", format!("expected an object, got {entry}")));
    };
    let obj = Obj(map);
    let name = ctx.string(obj, "resourceName")?.unwrap_or_default();
    if name.is_empty() {
        return Err(ctx.err("resourceName", "missing or empty"));
    }
    ctx.resource = format!("{name:?}");
    // Upstream's rule is ^[a-zA-Z0-9_-]+$ ('-' is accepted although its docs say otherwise).
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(ctx.err(
            "resourceName",
            format!("{name:?} contains invalid character {bad:?} (allowed: letters, digits, '_', '-')"),
        ));
    }
    let prefix = match ctx.string(obj, "resourcePrefix")? {
        Some(p) if !p.is_empty() => p,
        _ => default_prefix.to_string(),
    };
    validate_prefix(&ctx, &prefix)?;
    let raw_type = ctx.string(obj, "deviceType")?.unwrap_or_default();
    let legacy_kind = legacy::kind(&raw_type, obj);
    let device_type = match raw_type.as_str() {
        "" | "netDevice" => DeviceType::NetDevice,
        "accelerator" => DeviceType::Accelerator,
        "auxNetDevice" => DeviceType::AuxNetDevice,
        _ if legacy_kind.is_some() => DeviceType::NetDevice,
        other => {
            return Err(ctx.err(
                "deviceType",
                format!("unsupported deviceType {other:?} (netDevice, accelerator or auxNetDevice)"),
            ));
        }
    };
    let exclude_topology = ctx.bool(obj, "excludeTopology", "excludeTopology")?;
    let additional_info = additional_info(&ctx, obj)?;

    let (selectors, is_legacy) = match (obj.get("selectors"), legacy_kind) {
        (Some(v), kind) => {
            let mut sels = selectors(&ctx, v, device_type)?;
            if let Some(kind) = kind {
                legacy::constrain(&mut sels, kind);
                warnings.push(format!(
                    "resource {name:?}: legacy deviceType {raw_type:?} read as netDevice"
                ));
            }
            (sels, kind.is_some())
        }
        (None, Some(kind)) => {
            let sel = legacy::selector(&ctx, obj, kind)?;
            warnings.push(format!(
                "resource {name:?}: legacy form (rootDevices/sriovMode/deviceType) translated to selectors"
            ));
            (vec![sel], true)
        }
        (None, None) => {
            return Err(ctx.err(
                "selectors",
                "missing (give a selector object or a list of them; {} selects every device)",
            ));
        }
    };
    ignored_fields(&name, device_type, &selectors, warnings);
    let resource = ResourceConfig {
        resource_name: name,
        resource_prefix: prefix,
        device_type,
        exclude_topology,
        selectors,
        additional_info,
        legacy: is_legacy,
    };
    // The socket is `<plugin dir>/<socket name>`: the workspace's one rule for names joined to a
    // directory (the name and prefix rules above already imply it; this keeps it so if they change).
    let socket = resource.socket_name();
    if !sriov_host::paths::is_plain_file_name(&socket) {
        return Err(ctx.err(
            "resourceName",
            format!("socket file name {socket:?} would leave the device-plugin directory"),
        ));
    }
    Ok(resource)
}

/// The prefix must be a DNS subdomain, or the kubelet refuses the registration later.
fn validate_prefix(ctx: &Ctx, prefix: &str) -> Result<(), ConfigError> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if prefix.len() > 253 || !prefix.split('.').all(label_ok) {
        return Err(ctx.err(
            "resourcePrefix",
            format!("{prefix:?} is not a DNS subdomain (lower-case letters, digits, '-', '.'): the kubelet would refuse it"),
        ));
    }
    Ok(())
}

fn additional_info(ctx: &Ctx, obj: Obj) -> Result<Option<AdditionalInfo>, ConfigError> {
    let Some(v) = obj.get("additionalInfo") else {
        return Ok(None);
    };
    let Value::Object(outer) = v else {
        return Err(ctx.err(
            "additionalInfo",
            format!("expected an object of objects, got {v}"),
        ));
    };
    let mut info = AdditionalInfo::new();
    for (key, inner) in outer {
        let field = format!("additionalInfo[{key:?}]");
        let map = match inner {
            Value::Null => continue,
            Value::Object(m) => m,
            other => return Err(ctx.err(field, format!("expected an object of strings, got {other}"))),
        };
        let mut kv = std::collections::BTreeMap::new();
        for (k, v) in map {
            match v {
                Value::String(s) => {
                    kv.insert(k.clone(), s.clone());
                }
                other => {
                    return Err(ctx.err(
                        format!("{field}[{k:?}]"),
                        format!("expected a string, got {other}"),
                    ));
                }
            }
        }
        info.insert(key.clone(), kv);
    }
    Ok(Some(info))
}

fn selectors(ctx: &Ctx, v: &Value, device_type: DeviceType) -> Result<Vec<Selector>, ConfigError> {
    match v {
        Value::Object(m) => Ok(vec![selector(ctx, Obj(m), "selectors", device_type)?]),
        Value::Array(items) if items.is_empty() => Err(ctx.err(
            "selectors",
            "empty list: need at least one selector ({} selects every device)",
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let field = format!("selectors[{i}]");
                match item {
                    Value::Object(m) => selector(ctx, Obj(m), &field, device_type),
                    other => Err(ctx.err(field, format!("expected a selector object, got {other}"))),
                }
            })
            .collect(),
        other => Err(ctx.err(
            "selectors",
            format!("expected a selector object or a list of them, got {other}"),
        )),
    }
}

fn selector(ctx: &Ctx, o: Obj, at: &str, device_type: DeviceType) -> Result<Selector, ConfigError> {
    let f = |k: &str| format!("{at}.{k}");
    let list = |k: &str| ctx.strings(o, k, &f(k));
    let ranges = |k: &str| -> Result<Vec<PfRange>, ConfigError> {
        list(k)?
            .iter()
            .map(|s| PfRange::parse(s).map_err(|e| ctx.err(f(k), e.to_string())))
            .collect()
    };
    let vdpa_type = match ctx
        .string(o, "vdpaType")
        .map_err(|_| ctx.err(f("vdpaType"), "expected a string"))?
    {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) if s == "vhost" => Some(VdpaType::Vhost),
        Some(s) if s == "virtio" => Some(VdpaType::Virtio),
        Some(s) => return Err(ctx.err(f("vdpaType"), format!("{s:?} is not \"vhost\" or \"virtio\""))),
    };
    let sel = Selector {
        vendors: list("vendors")?,
        devices: list("devices")?,
        drivers: list("drivers")?,
        pci_addresses: list("pciAddresses")?,
        acpi_indexes: list("acpiIndexes")?,
        pf_names: ranges("pfNames")?,
        root_devices: ranges("rootDevices")?,
        link_types: list("linkTypes")?,
        ddp_profiles: list("ddpProfiles")?,
        pkeys: list("pKeys")?,
        is_rdma: ctx.bool(o, "isRdma", &f("isRdma"))?,
        need_vhost_net: ctx.bool(o, "needVhostNet", &f("needVhostNet"))?,
        vdpa_type,
        aux_types: list("auxTypes")?,
        kernel_driver_only: false,
    };
    if device_type == DeviceType::NetDevice && sel.is_rdma && sel.vdpa_type.is_some() {
        return Err(ctx.err(
            format!("{at}.isRdma/vdpaType"),
            "isRdma and vdpaType are mutually exclusive",
        ));
    }
    if device_type == DeviceType::AuxNetDevice {
        if sel.aux_types.is_empty() {
            return Err(ctx.err(f("auxTypes"), "missing: auxNetDevice needs auxTypes (\"sf\")"));
        }
        if let Some(bad) = sel.aux_types.iter().find(|t| t.as_str() != "sf") {
            return Err(ctx.err(f("auxTypes"), format!("{bad:?}: only \"sf\" is supported")));
        }
    }
    Ok(sel)
}

/// Fields a device type does not use (upstream ignores them silently).
fn ignored_fields(name: &str, t: DeviceType, sels: &[Selector], warnings: &mut Vec<String>) {
    for (i, s) in sels.iter().enumerate() {
        let mut ignored = Vec::new();
        let mut note = |cond: bool, field: &str| {
            if cond {
                ignored.push(field.to_string());
            }
        };
        match t {
            DeviceType::NetDevice => note(!s.aux_types.is_empty(), "auxTypes"),
            DeviceType::Accelerator => {
                note(!s.acpi_indexes.is_empty(), "acpiIndexes");
                note(!s.pf_names.is_empty(), "pfNames");
                note(!s.root_devices.is_empty(), "rootDevices");
                note(!s.link_types.is_empty(), "linkTypes");
                note(!s.ddp_profiles.is_empty(), "ddpProfiles");
                note(!s.pkeys.is_empty(), "pKeys");
                note(s.is_rdma, "isRdma");
                note(s.need_vhost_net, "needVhostNet");
                note(s.vdpa_type.is_some(), "vdpaType");
                note(!s.aux_types.is_empty(), "auxTypes");
            }
            DeviceType::AuxNetDevice => {
                note(!s.pci_addresses.is_empty(), "pciAddresses");
                note(!s.acpi_indexes.is_empty(), "acpiIndexes");
                note(!s.ddp_profiles.is_empty(), "ddpProfiles");
                note(!s.pkeys.is_empty(), "pKeys");
                note(s.vdpa_type.is_some(), "vdpaType");
            }
        }
        if !ignored.is_empty() {
            warnings.push(format!(
                "resource {name:?}: selectors[{i}]: {} ignored for deviceType {t} (as upstream)",
                ignored.join(", ")
            ));
        }
    }
}
