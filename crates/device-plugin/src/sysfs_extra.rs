//! Sysfs facts beyond the host model, read only when the config needs them:
//!
//! * accelerators: PCI functions of class `0x12xxxx` (only with an `accelerator` resource);
//! * Scalable Functions: `<pci>/<driver>.<type>.<id>` auxiliary devices, `sfnum` as their index
//!   (only with an `auxNetDevice` resource);
//! * `/dev/uioN` of uio-bound functions (`<pci>/uio/uioN`);
//! * vfio no-IOMMU groups (`kernel/iommu_groups/<g>/name` = `vfio-noiommu`);
//! * RDMA character devices (`class/infiniband_verbs|infiniband_mad/*/ibdev`) and pkeys
//!   (`<pci>/infiniband/<dev>/ports/1/pkeys/0`);
//! * vDPA devices (`bus/vdpa/devices/*`, their `driver` and `vhost-vdpa-N` node).
//!
//! Unreadable entries are skipped: a missing fact only makes a selector not match.

use std::fs;
use std::path::Path;

use sriov_host::SysfsRoot;

use crate::config::{Config, DeviceType};
use crate::device::{Device, DeviceClass, Vdpa};

/// What the config needs read beyond the host model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub accelerators: bool,
    pub aux: bool,
    pub pkeys: bool,
    pub vdpa: bool,
}

impl Needs {
    pub fn of(config: &Config) -> Needs {
        let any = |f: &dyn Fn(&crate::config::Selector) -> bool| {
            config.resources.iter().flat_map(|r| &r.selectors).any(f)
        };
        Needs {
            accelerators: config
                .resources
                .iter()
                .any(|r| r.device_type == DeviceType::Accelerator),
            aux: config
                .resources
                .iter()
                .any(|r| r.device_type == DeviceType::AuxNetDevice),
            pkeys: any(&|s| !s.pkeys.is_empty()),
            vdpa: any(&|s| s.vdpa_type.is_some()),
        }
    }
}

fn read(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

fn link_name(p: &Path) -> Option<String> {
    fs::read_link(p)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Adds the extra facts to `devices` (and accelerator / SF devices when needed).
pub fn enrich(root: &SysfsRoot, devices: &mut Vec<Device>, needs: Needs) {
    let sys = root.sys();
    let vdpa = if needs.vdpa { vdpa_devices(sys) } else { Vec::new() };
    for d in devices.iter_mut() {
        add_facts(sys, d, needs, &vdpa);
    }
    if needs.aux {
        let sfs: Vec<Device> = devices
            .iter()
            .filter(|d| d.class == Some(DeviceClass::Net))
            .flat_map(|d| aux_of(sys, d))
            .collect();
        devices.extend(sfs);
    }
    if needs.accelerators {
        let mut accels = accelerators(sys);
        for d in accels.iter_mut() {
            add_facts(sys, d, needs, &vdpa);
        }
        devices.extend(accels);
    }
}

fn add_facts(sys: &Path, d: &mut Device, needs: Needs, vdpa: &[(String, Vdpa)]) {
    let dir = sys.join("bus/pci/devices").join(&d.pci_address);
    match d.driver.as_deref() {
        Some("vfio-pci") => {
            if let Some(g) = d.iommu_group {
                d.vfio_noiommu = read(&sys.join(format!("kernel/iommu_groups/{g}/name"))).as_deref()
                    == Some("vfio-noiommu");
            }
        }
        Some("uio" | "igb_uio" | "uio_pci_generic") => {
            d.uio_dev = names(&dir.join("uio"))
                .into_iter()
                .next()
                .map(|n| format!("/dev/{n}"));
        }
        _ => {}
    }
    if let Some(first) = d.rdma_devices.first().cloned() {
        d.rdma_char_devices = rdma_char_devices(sys, &first);
        if needs.pkeys {
            d.pkey = read(&dir.join(format!("infiniband/{first}/ports/1/pkeys/0")));
        }
    }
    if let Some((_, v)) = vdpa.iter().find(|(parent, _)| *parent == d.pci_address) {
        d.vdpa = Some(v.clone());
    }
}

/// `/dev/infiniband/*` nodes of one RDMA device, plus `rdma_cm`.
fn rdma_char_devices(sys: &Path, ibdev: &str) -> Vec<String> {
    let mut out = Vec::new();
    for class in ["infiniband_cm", "infiniband_mad", "infiniband_verbs"] {
        let cdir = sys.join("class").join(class);
        for n in names(&cdir) {
            if read(&cdir.join(&n).join("ibdev")).as_deref() == Some(ibdev) {
                out.push(format!("/dev/infiniband/{n}"));
            }
        }
    }
    out.push("/dev/infiniband/rdma_cm".into());
    out
}

/// `(parent PCI address, vDPA device)` for every vDPA device.
fn vdpa_devices(sys: &Path) -> Vec<(String, Vdpa)> {
    let bus = sys.join("bus/vdpa/devices");
    let mut out = Vec::new();
    for name in names(&bus) {
        let dev = bus.join(&name);
        let Ok(real) = fs::canonicalize(&dev) else {
            continue;
        };
        let Some(parent) = real
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
        else {
            continue;
        };
        let driver = link_name(&dev.join("driver")).unwrap_or_default();
        let path = names(&dev)
            .into_iter()
            .find(|n| n.starts_with("vhost-vdpa-"))
            .map(|n| format!("/dev/{n}"));
        out.push((parent, Vdpa { driver, name, path }));
    }
    out
}

/// `<driver>.<type>.<id>` (upstream's `^(\S+\.){2}\d+$`).
fn aux_type(name: &str) -> Option<&str> {
    let mut parts = name.rsplitn(3, '.');
    let id = parts.next()?;
    let ty = parts.next()?;
    let drv = parts.next()?;
    let ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !ty.is_empty() && !drv.is_empty();
    (ok && !name.contains(char::is_whitespace)).then_some(ty)
}

fn aux_of(sys: &Path, parent: &Device) -> Vec<Device> {
    let dir = sys.join("bus/pci/devices").join(&parent.pci_address);
    if !dir.join("net").exists() {
        return Vec::new();
    }
    names(&dir)
        .into_iter()
        .filter_map(|n| {
            let ty = aux_type(&n)?.to_string();
            let index = read(&dir.join(&n).join("sfnum")).and_then(|s| s.parse().ok());
            Some(Device {
                id: n,
                class: Some(DeviceClass::Aux),
                aux_type: Some(ty),
                index,
                pf_name: parent.netdev.clone(),
                pf_address: Some(parent.pci_address.clone()),
                netdev: None,
                pf_with_vfs: false,
                health_netdev: parent.netdev.clone(),
                ..parent.clone()
            })
        })
        .collect()
}

fn accelerators(sys: &Path) -> Vec<Device> {
    let bus = sys.join("bus/pci/devices");
    names(&bus)
        .into_iter()
        .filter_map(|addr| {
            let dir = bus.join(&addr);
            let class = read(&dir.join("class"))?;
            if !class.trim_start_matches("0x").starts_with("12") {
                return None;
            }
            let hex = |f: &str| read(&dir.join(f)).map(|s| s.trim_start_matches("0x").to_ascii_lowercase());
            Some(Device {
                id: addr.clone(),
                class: Some(DeviceClass::Accelerator),
                pci_address: addr,
                vendor: hex("vendor").unwrap_or_default(),
                device: hex("device").unwrap_or_default(),
                driver: link_name(&dir.join("driver")),
                numa_node: read(&dir.join("numa_node"))
                    .and_then(|s| s.parse().ok())
                    .filter(|n: &i64| *n >= 0),
                iommu_group: link_name(&dir.join("iommu_group")).and_then(|g| g.parse().ok()),
                ..Device::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::aux_type;

    #[test]
    fn aux_names() {
        assert_eq!(aux_type("mlx5_core.sf.4"), Some("sf"));
        assert_eq!(aux_type("mlx5_core.eth.0"), Some("eth"));
        for bad in [
            "net",
            "mlx5_core.sf",
            "a.b.c",
            "mlx5_core.sf.",
            "x y.sf.1",
            ".sf.1",
        ] {
            assert_eq!(aux_type(bad), None, "{bad}");
        }
    }
}
