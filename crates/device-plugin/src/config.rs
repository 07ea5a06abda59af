//! The device plugin config file (`/etc/pcidp/config.json`), parsed and validated.
//!
//! The format is upstream's: `{"resourceList": [ResourceConfig, ...]}`. As upstream (Go's
//! `encoding/json`), keys match case-insensitively (the operator writes `IsRdma`, `NeedVhostNet`)
//! and unknown keys are ignored (`SelectorObj`, `sriovMode` in modern entries). `selectors` is a
//! list of selector objects or a single object.
//!
//! The legacy form (`rootDevices`, `sriovMode`, `deviceType: vfio|netdevice|uio` on the resource,
//! no `selectors`), still found in Kuryr deployments, is translated into selectors (upstream
//! rejects it or crashes). See [`legacy`].
//!
//! Every error names the resource and the field ([`ConfigError`]); upstream logs most of these and
//! exits 0, or silently drops a resource. sriov-rs refuses the whole file instead.

mod legacy;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::range::PfRange;

/// The default `--resource-prefix`.
pub const DEFAULT_PREFIX: &str = "intel.com";

/// `deviceType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceType {
    NetDevice,
    Accelerator,
    AuxNetDevice,
}

impl DeviceType {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::NetDevice => "netDevice",
            DeviceType::Accelerator => "accelerator",
            DeviceType::AuxNetDevice => "auxNetDevice",
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `vdpaType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VdpaType {
    Vhost,
    Virtio,
}

impl VdpaType {
    /// The vDPA bus driver a device must be bound to.
    pub fn driver(self) -> &'static str {
        match self {
            VdpaType::Vhost => "vhost_vdpa",
            VdpaType::Virtio => "virtio_vdpa",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            VdpaType::Vhost => "vhost",
            VdpaType::Virtio => "virtio",
        }
    }
}

/// One selector object. Lists: OR within, AND across; empty = no filtering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub vendors: Vec<String>,
    pub devices: Vec<String>,
    pub drivers: Vec<String>,
    pub pci_addresses: Vec<String>,
    pub acpi_indexes: Vec<String>,
    pub pf_names: Vec<PfRange>,
    pub root_devices: Vec<PfRange>,
    pub link_types: Vec<String>,
    pub ddp_profiles: Vec<String>,
    pub pkeys: Vec<String>,
    pub is_rdma: bool,
    pub need_vhost_net: bool,
    pub vdpa_type: Option<VdpaType>,
    pub aux_types: Vec<String>,
    /// Legacy `deviceType: netdevice`: only functions on a kernel network driver (not vfio-pci/uio).
    pub kernel_driver_only: bool,
}

/// `additionalInfo`: `"*"` or a PCI address → extra key/values for `_INFO`.
pub type AdditionalInfo = BTreeMap<String, BTreeMap<String, String>>;

/// One validated `resourceList` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceConfig {
    pub resource_name: String,
    /// The effective prefix (the entry's `resourcePrefix`, else the command line's).
    pub resource_prefix: String,
    pub device_type: DeviceType,
    pub exclude_topology: bool,
    pub selectors: Vec<Selector>,
    /// `None` when the key is absent or null (then `_INFO` has no `extra` provider at all).
    pub additional_info: Option<AdditionalInfo>,
    /// True when translated from the legacy form.
    pub legacy: bool,
}

impl ResourceConfig {
    /// `<prefix>/<name>`, the name the kubelet knows.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.resource_prefix, self.resource_name)
    }
    /// `<prefix>_<name>.sock`, upstream's socket file name.
    pub fn socket_name(&self) -> String {
        format!("{}_{}.sock", self.resource_prefix, self.resource_name)
    }
}

/// A validated config file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub resources: Vec<ResourceConfig>,
    /// Things accepted but worth telling the admin (ignored keys for a device type, legacy form).
    pub warnings: Vec<String>,
}

/// Why a config is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("config is not valid JSON: {0} (the file must be JSON)")]
    Json(String),
    #[error("config: {field}: {message}")]
    Top { field: &'static str, message: String },
    /// A problem in one `resourceList` entry; `resource` is its name, or `resourceList[i]`.
    #[error("resource {resource}: {field}: {message}")]
    Field {
        resource: String,
        field: String,
        message: String,
    },
    #[error("config: resourceList is empty: nothing to advertise")]
    NoResources,
}

impl Config {
    /// Parses and validates a config file's text. `default_prefix` is `--resource-prefix`.
    pub fn parse(text: &str, default_prefix: &str) -> Result<Config, ConfigError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ConfigError::Json(e.to_string()))?;
        let mut warnings = Vec::new();
        let resources = parse::resource_list(&value, default_prefix, &mut warnings)?;
        if resources.is_empty() {
            return Err(ConfigError::NoResources);
        }
        validate_unique(&resources)?;
        Ok(Config { resources, warnings })
    }
}

fn validate_unique(resources: &[ResourceConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for r in resources {
        if !seen.insert(r.full_name()) {
            return Err(ConfigError::Field {
                resource: format!("{:?}", r.resource_name),
                field: "resourceName".into(),
                message: format!(
                    "{:?} already exists (duplicate resource name under one prefix)",
                    r.full_name()
                ),
            });
        }
    }
    Ok(())
}
