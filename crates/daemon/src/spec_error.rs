//! Checking a node spec against the host before anything is planned: every error names the PF,
//! the field and the offending value.

use std::fmt;
use std::ops::RangeInclusive;

use serde::Serialize;
use sriov_api::{NodeStateInterface, NodeStateSpec};
use sriov_host::{HostDevices, PfDevice};

/// The driver a VF group asks for (`vfGroups[].deviceType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VfDriver {
    /// `netdevice` (or empty): the VF's default kernel driver, with a netdev.
    Netdevice,
    /// `vfio-pci`: bound through driver_override, for DPDK and VMs.
    VfioPci,
}

impl fmt::Display for VfDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VfDriver::Netdevice => "default driver (netdevice)",
            VfDriver::VfioPci => "vfio-pci",
        })
    }
}

/// A spec that cannot be applied. `pf` is the spec's `pciAddress` as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum SpecError {
    #[error("interface {pf}: pciAddress {pf:?}: no such PF on this node")]
    UnknownPf { pf: String },
    #[error("interface {pf}: pciAddress {pf:?} appears more than once in the spec")]
    DuplicatePf { pf: String },
    #[error("interface {pf}: numVfs {value}: the PF is not SR-IOV capable (sriov_totalvfs 0)")]
    NotSriov { pf: String, value: i32 },
    #[error("interface {pf}: numVfs {value}: must be between 0 and sriov_totalvfs {total}")]
    NumVfsOutOfRange { pf: String, value: i32, total: u32 },
    #[error(
        "interface {pf}: numVfs {value} is higher than the {current} VFs created outside the operator (externallyManaged)"
    )]
    ExternalVfsMissing { pf: String, value: i32, current: u32 },
    #[error("interface {pf}: mtu {value}: must be between 68 and 65535")]
    BadMtu { pf: String, field: String, value: i32 },
    #[error("interface {pf}: eSwitchMode {value:?}: expected legacy or switchdev")]
    BadEswitchMode { pf: String, value: String },
    #[error("interface {pf}: eSwitchMode {value:?}: this PF exposes no e-switch (no devlink eswitch)")]
    NoEswitch { pf: String, value: String },
    #[error("interface {pf}: linkType {value:?}: expected eth or ib")]
    BadLinkType { pf: String, value: String },
    #[error("interface {pf}: {field} {value:?}: unknown driver, expected netdevice or vfio-pci")]
    UnknownDriver {
        pf: String,
        field: String,
        value: String,
    },
    #[error("interface {pf}: {field} {value:?}: {reason}")]
    BadVfRange {
        pf: String,
        field: String,
        value: String,
        reason: String,
    },
}

/// A group with its range and driver parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub range: RangeInclusive<u32>,
    pub driver: VfDriver,
    pub mtu: i32,
}

/// The groups of an interface that parse (validated ones all do).
pub fn groups(iface: &NodeStateInterface) -> Vec<Group> {
    iface
        .vf_groups
        .iter()
        .filter_map(|g| {
            Some(Group {
                range: parse_range(&g.vf_range).ok()?,
                driver: parse_driver(&g.device_type)?,
                mtu: g.mtu,
            })
        })
        .collect()
}

fn parse_driver(s: &str) -> Option<VfDriver> {
    match s {
        "" | "netdevice" => Some(VfDriver::Netdevice),
        "vfio-pci" => Some(VfDriver::VfioPci),
        _ => None,
    }
}

/// `"a-b"` (inclusive) or `"a"`: the grammar is `sriov_host::pf_range`'s.
pub fn parse_range(s: &str) -> Result<RangeInclusive<u32>, String> {
    let r = sriov_host::pf_range::VfRange::parse_item(s).map_err(|e| e.to_string())?;
    Ok(r.first..=r.last)
}

/// Checks `spec` against `host`; on success pairs each interface with its PF.
pub fn validate<'a>(
    spec: &'a NodeStateSpec,
    host: &'a HostDevices,
) -> Result<Vec<(&'a NodeStateInterface, &'a PfDevice)>, Vec<SpecError>> {
    let mut errs = Vec::new();
    let mut out = Vec::new();
    for (i, iface) in spec.interfaces.iter().enumerate() {
        let pf_name = iface.pci_address.clone();
        if spec.interfaces[..i]
            .iter()
            .any(|o| o.pci_address.eq_ignore_ascii_case(&iface.pci_address))
        {
            errs.push(SpecError::DuplicatePf { pf: pf_name });
            continue;
        }
        let pf = host.pfs.iter().find(|p| {
            p.pci
                .address
                .as_str()
                .eq_ignore_ascii_case(iface.pci_address.trim())
        });
        let Some(pf) = pf else {
            errs.push(SpecError::UnknownPf { pf: pf_name });
            continue;
        };
        let before = errs.len();
        check_iface(iface, pf, &mut errs);
        if errs.len() == before {
            out.push((iface, pf));
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

fn check_iface(iface: &NodeStateInterface, pf: &PfDevice, errs: &mut Vec<SpecError>) {
    let pf_name = || iface.pci_address.clone();
    let n = iface.num_vfs;
    if n > 0 && pf.total_vfs == 0 {
        errs.push(SpecError::NotSriov {
            pf: pf_name(),
            value: n,
        });
    } else if n < 0 || n as i64 > pf.total_vfs as i64 {
        errs.push(SpecError::NumVfsOutOfRange {
            pf: pf_name(),
            value: n,
            total: pf.total_vfs,
        });
    } else if iface.externally_managed && n as u32 > pf.num_vfs {
        errs.push(SpecError::ExternalVfsMissing {
            pf: pf_name(),
            value: n,
            current: pf.num_vfs,
        });
    }
    if iface.mtu != 0 && !(68..=65535).contains(&iface.mtu) {
        errs.push(SpecError::BadMtu {
            pf: pf_name(),
            field: "mtu".into(),
            value: iface.mtu,
        });
    }
    match iface.e_switch_mode.as_str() {
        "" => {}
        // Without an e-switch a PF is implicitly legacy.
        "switchdev" if pf.eswitch_mode.is_none() => errs.push(SpecError::NoEswitch {
            pf: pf_name(),
            value: iface.e_switch_mode.clone(),
        }),
        "legacy" | "switchdev" => {}
        other => errs.push(SpecError::BadEswitchMode {
            pf: pf_name(),
            value: other.to_string(),
        }),
    }
    if !["", "eth", "ib"].contains(&iface.link_type.to_ascii_lowercase().as_str()) {
        errs.push(SpecError::BadLinkType {
            pf: pf_name(),
            value: iface.link_type.clone(),
        });
    }
    let mut seen: Vec<(RangeInclusive<u32>, usize)> = Vec::new();
    for (gi, g) in iface.vf_groups.iter().enumerate() {
        let field = |f: &str| format!("vfGroups[{gi}].{f}");
        if parse_driver(&g.device_type).is_none() {
            errs.push(SpecError::UnknownDriver {
                pf: pf_name(),
                field: field("deviceType"),
                value: g.device_type.clone(),
            });
        }
        if g.mtu != 0 && !(68..=65535).contains(&g.mtu) {
            errs.push(SpecError::BadMtu {
                pf: pf_name(),
                field: field("mtu"),
                value: g.mtu,
            });
        }
        let bad = |reason: String| SpecError::BadVfRange {
            pf: pf_name(),
            field: field("vfRange"),
            value: g.vf_range.clone(),
            reason,
        };
        match parse_range(&g.vf_range) {
            Err(reason) => errs.push(bad(reason)),
            Ok(r) if n >= 0 && *r.end() >= n as u32 => {
                errs.push(bad(format!("VF {} does not exist with numVfs {n}", r.end())))
            }
            Ok(r) => {
                if let Some((_, other)) = seen
                    .iter()
                    .find(|(o, _)| o.start() <= r.end() && r.start() <= o.end())
                {
                    errs.push(bad(format!("overlaps vfGroups[{other}]")));
                }
                seen.push((r, gi));
            }
        }
    }
}
