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

// Link and directory reads are sriov-host's (one rule for "absent" vs. failure).
fn link_name(p: &Path) -> Option<String> {
    sriov_host::sysfs::link_name(p).ok().flatten()
}

fn names(p: &Path) -> Vec<String> {
    sriov_host::sysfs::dir_names(p).ok().flatten().unwrap_or_default()
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
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::testutil::{vf, with};

    fn put(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(p, content).expect("write");
    }

    fn link(root: &Path, rel: &str, target: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        symlink(target, p).expect("symlink");
    }

    #[test]
    fn reads_the_facts_the_config_needs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sys = tmp.path();
        let pci = "bus/pci/devices";
        // An accelerator on vfio-pci in a no-IOMMU group.
        put(sys, &format!("{pci}/0000:af:00.1/class"), "0x120000\n");
        put(sys, &format!("{pci}/0000:af:00.1/vendor"), "0x8086\n");
        put(sys, &format!("{pci}/0000:af:00.1/device"), "0x0D90\n");
        put(sys, &format!("{pci}/0000:af:00.1/numa_node"), "1\n");
        link(
            sys,
            &format!("{pci}/0000:af:00.1/driver"),
            "../../../bus/pci/drivers/vfio-pci",
        );
        link(
            sys,
            &format!("{pci}/0000:af:00.1/iommu_group"),
            "../../../kernel/iommu_groups/77",
        );
        put(sys, "kernel/iommu_groups/77/name", "vfio-noiommu\n");
        // A uio_pci_generic VF.
        fs::create_dir_all(sys.join(format!("{pci}/0000:01:10.0/uio/uio3"))).expect("mkdir");
        // An RDMA VF with a pkey, and its character devices.
        put(
            sys,
            &format!("{pci}/0000:03:00.2/infiniband/mlx5_2/ports/1/pkeys/0"),
            "0x8001\n",
        );
        for (class, dev) in [
            ("infiniband_verbs", "uverbs2"),
            ("infiniband_mad", "umad2"),
            ("infiniband_mad", "issm2"),
        ] {
            put(sys, &format!("class/{class}/{dev}/ibdev"), "mlx5_2\n");
        }
        put(sys, "class/infiniband_verbs/uverbs0/ibdev", "mlx5_0\n");
        // A vDPA device on vhost_vdpa under 0000:65:00.2.
        fs::create_dir_all(sys.join("devices/pci0000:00/0000:65:00.2/vdpa0/vhost-vdpa-0")).expect("mkdir");
        link(
            sys,
            "devices/pci0000:00/0000:65:00.2/vdpa0/driver",
            "../../../../bus/vdpa/drivers/vhost_vdpa",
        );
        link(
            sys,
            "bus/vdpa/devices/vdpa0",
            "../../../devices/pci0000:00/0000:65:00.2/vdpa0",
        );
        // An SF of a PF with a netdev.
        fs::create_dir_all(sys.join(format!("{pci}/0000:03:00.0/net/p0"))).expect("mkdir");
        put(sys, &format!("{pci}/0000:03:00.0/mlx5_core.sf.4/sfnum"), "88\n");

        let mut devices = vec![
            with(vf("0000:01:10.0", "eth0", "0000:01:00.0", 0), |d| {
                d.driver = Some("uio_pci_generic".into())
            }),
            with(vf("0000:03:00.2", "p0", "0000:03:00.0", 0), |d| {
                d.driver = Some("mlx5_core".into());
                d.rdma_devices = vec!["mlx5_2".into()];
            }),
            with(vf("0000:65:00.2", "p0", "0000:65:00.0", 0), |d| {
                d.driver = Some("mlx5_core".into())
            }),
            with(crate::testutil::pf("0000:03:00.0", "p0", false), |d| {
                d.driver = Some("mlx5_core".into())
            }),
        ];
        let needs = Needs {
            accelerators: true,
            aux: true,
            pkeys: true,
            vdpa: true,
        };
        enrich(&SysfsRoot::new(sys), &mut devices, needs);

        assert_eq!(devices[0].uio_dev.as_deref(), Some("/dev/uio3"));
        assert_eq!(devices[1].pkey.as_deref(), Some("0x8001"));
        assert_eq!(
            devices[1].rdma_char_devices,
            [
                "/dev/infiniband/issm2",
                "/dev/infiniband/umad2",
                "/dev/infiniband/uverbs2",
                "/dev/infiniband/rdma_cm"
            ]
        );
        let v = devices[2].vdpa.as_ref().expect("vdpa found");
        assert_eq!(
            (v.driver.as_str(), v.path.as_deref()),
            ("vhost_vdpa", Some("/dev/vhost-vdpa-0"))
        );
        let sf = devices
            .iter()
            .find(|d| d.id == "mlx5_core.sf.4")
            .expect("SF found");
        assert_eq!(
            (sf.class, sf.aux_type.as_deref(), sf.index),
            (Some(DeviceClass::Aux), Some("sf"), Some(88))
        );
        assert_eq!(
            (sf.pf_name.as_deref(), sf.pci_address.as_str()),
            (Some("p0"), "0000:03:00.0")
        );
        let acc = devices
            .iter()
            .find(|d| d.id == "0000:af:00.1")
            .expect("accelerator found");
        assert_eq!(
            (acc.vendor.as_str(), acc.device.as_str(), acc.driver_str()),
            ("8086", "0d90", "vfio-pci")
        );
        assert_eq!(
            (acc.numa_node, acc.iommu_group, acc.vfio_noiommu),
            (Some(1), Some(77), true)
        );

        // Nothing extra is read when the config does not need it.
        let mut plain = vec![with(vf("0000:03:00.2", "p0", "0000:03:00.0", 0), |d| {
            d.rdma_devices = vec!["mlx5_2".into()]
        })];
        enrich(&SysfsRoot::new(sys), &mut plain, Needs::default());
        assert_eq!((plain.len(), plain[0].pkey.as_deref()), (1, None));
    }

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
