//! Selector evaluation with upstream's semantics and order. Each check either passes or names the
//! field and the reason it rejected the device, which `sriovctl explain` prints as is
//! ("drivers: igbvf not in [vfio-pci]").
//!
//! Order — netDevice: vendors, devices, drivers, pciAddresses, acpiIndexes, pfNames,
//! rootDevices, linkTypes, ddpProfiles, pKeys, isRdma, vdpaType. accelerator: vendors, devices,
//! drivers, pciAddresses. auxNetDevice: vendors, devices, drivers, auxTypes, pfNames,
//! rootDevices, linkTypes, isRdma.

use std::fmt;

use sriov_host::drivers::is_userspace_driver;

use crate::config::{DeviceType, Selector};
use crate::device::Device;
use crate::range::{PfRange, first_match};

/// Why a selector did not take a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

type Check = fn(&Selector, &Device) -> Result<(), Rejection>;

const NET: &[Check] = &[
    vendors,
    devices,
    drivers,
    pci_addresses,
    acpi_indexes,
    pf_names,
    root_devices,
    link_types,
    ddp_profiles,
    pkeys,
    is_rdma,
    vdpa_type,
    kernel_driver_only,
];
const ACCEL: &[Check] = &[vendors, devices, drivers, pci_addresses];
const AUX: &[Check] = &[
    vendors,
    devices,
    drivers,
    aux_types,
    pf_names,
    root_devices,
    link_types,
    is_rdma,
];

/// Evaluates `sel` for a device of the given resource type: `Ok` when it selects the device, else
/// the first check (in upstream's order) that rejected it.
pub fn evaluate(device_type: DeviceType, sel: &Selector, dev: &Device) -> Result<(), Rejection> {
    let checks = match device_type {
        DeviceType::NetDevice => NET,
        DeviceType::Accelerator => ACCEL,
        DeviceType::AuxNetDevice => AUX,
    };
    checks.iter().try_for_each(|check| check(sel, dev))
}

fn reject(field: &'static str, reason: String) -> Result<(), Rejection> {
    Err(Rejection { field, reason })
}

fn list(values: &[String]) -> String {
    format!("[{}]", values.join(", "))
}

fn one_of(field: &'static str, wanted: &[String], have: Option<&str>) -> Result<(), Rejection> {
    if wanted.is_empty() {
        return Ok(());
    }
    match have {
        Some(h) if wanted.iter().any(|w| w == h) => Ok(()),
        Some(h) => reject(field, format!("{h} not in {}", list(wanted))),
        None => reject(field, format!("device has none, want one of {}", list(wanted))),
    }
}

fn vendors(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of("vendors", &s.vendors, Some(&d.vendor))
}
fn devices(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of("devices", &s.devices, Some(&d.device))
}
fn drivers(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of("drivers", &s.drivers, d.driver.as_deref())
}
fn pci_addresses(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of("pciAddresses", &s.pci_addresses, Some(&d.pci_address))
}
fn acpi_indexes(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of(
        "acpiIndexes",
        &s.acpi_indexes,
        d.acpi_index.as_deref().map(str::trim),
    )
}
fn link_types(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of("linkTypes", &s.link_types, d.link_type.as_deref())
}
fn ddp_profiles(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of("ddpProfiles", &s.ddp_profiles, d.ddp_profile.as_deref())
}
fn pkeys(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of("pKeys", &s.pkeys, d.pkey.as_deref())
}
fn aux_types(s: &Selector, d: &Device) -> Result<(), Rejection> {
    one_of("auxTypes", &s.aux_types, d.aux_type.as_deref())
}

fn pf_list(
    field: &'static str,
    wanted: &[PfRange],
    pf: Option<&str>,
    index: Option<u32>,
) -> Result<(), Rejection> {
    if wanted.is_empty() {
        return Ok(());
    }
    let names = || wanted.iter().map(|r| r.raw.clone()).collect::<Vec<_>>();
    let Some(pf) = pf else {
        return reject(
            field,
            format!("device is not a VF/SF of a visible PF, want {}", list(&names())),
        );
    };
    match first_match(wanted, pf, index) {
        Some((_, true)) => Ok(()),
        Some((entry, false)) => {
            let idx = index.map_or("none".to_string(), |i| i.to_string());
            reject(
                field,
                format!(
                    "{pf} function {idx} not in {:?} (only the first entry naming a PF is used)",
                    entry.raw
                ),
            )
        }
        None => reject(field, format!("{pf} not in {}", list(&names()))),
    }
}

fn pf_names(s: &Selector, d: &Device) -> Result<(), Rejection> {
    pf_list("pfNames", &s.pf_names, d.pf_name.as_deref(), d.index)
}
fn root_devices(s: &Selector, d: &Device) -> Result<(), Rejection> {
    pf_list("rootDevices", &s.root_devices, d.pf_address.as_deref(), d.index)
}

fn is_rdma(s: &Selector, d: &Device) -> Result<(), Rejection> {
    if s.is_rdma && d.rdma_devices.is_empty() {
        return reject("isRdma", "device has no RDMA resources".into());
    }
    Ok(())
}

fn vdpa_type(s: &Selector, d: &Device) -> Result<(), Rejection> {
    let Some(t) = s.vdpa_type else { return Ok(()) };
    match &d.vdpa {
        Some(v) if v.driver == t.driver() => Ok(()),
        Some(v) => reject(
            "vdpaType",
            format!("vDPA device bound to {}, want {}", v.driver, t.driver()),
        ),
        None => reject(
            "vdpaType",
            format!("device has no vDPA device, want {}", t.as_str()),
        ),
    }
}

/// Legacy `deviceType: netdevice`: kernel network drivers only.
fn kernel_driver_only(s: &Selector, d: &Device) -> Result<(), Rejection> {
    if s.kernel_driver_only && (d.driver.is_none() || is_userspace_driver(d.driver_str())) {
        return reject(
            "deviceType",
            format!(
                "legacy netdevice wants a kernel network driver, device is on {}",
                d.driver_str()
            ),
        );
    }
    Ok(())
}
