//! netdevsim (the kernel's simulated NIC, used by the lab for e-switch/switchdev) as PFs.
//!
//! netdevsim devices live on their own bus (`<sys>/bus/netdevsim/devices/netdevsimN`), not PCI.
//! So the spec can name them, device N is given the PCI-shaped address `fffe:BB:DD.0` with
//! `BB*32 + DD = N` (domain `fffe` is not used by real PCI hosts); e.g. netdevsim10 is
//! `fffe:00:0a.0`. numVfs goes to the device's `sriov_numvfs` (its VFs have no PCI functions, so
//! no VF groups), the e-switch mode through devlink `netdevsim/netdevsimN`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use sriov_host::{HostDevices, NetDevice, PciAddress, PciDevice, PfDevice};

use crate::host::{Host, HostError, Probe};
use crate::plan::PlanContext;
use crate::sysfs_host::SysfsHost;

/// The synthetic address of netdevsim device `id`.
pub fn address(id: u32) -> Option<PciAddress> {
    format!("fffe:{:02x}:{:02x}.0", (id / 32) & 0xff, id % 32)
        .parse()
        .ok()
}

/// The netdevsim id of a synthetic address.
pub fn id_of(addr: &PciAddress) -> Option<u32> {
    let s = addr.as_str();
    if !s.starts_with("fffe:") || !s.ends_with(".0") {
        return None;
    }
    let bus = u32::from_str_radix(&s[5..7], 16).ok()?;
    let dev = u32::from_str_radix(&s[8..10], 16).ok()?;
    Some(bus * 32 + dev)
}

/// [`SysfsHost`] plus the netdevsim devices under the same sysfs root.
#[derive(Debug)]
pub struct WithNetdevsim {
    pub inner: SysfsHost,
}

impl WithNetdevsim {
    fn dir(&self, id: u32) -> PathBuf {
        self.inner
            .root()
            .sys()
            .join(format!("bus/netdevsim/devices/netdevsim{id}"))
    }

    fn read(&self, id: u32, name: &str) -> Option<String> {
        fs::read_to_string(self.dir(id).join(name))
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn devices(&self) -> Vec<PfDevice> {
        let Ok(rd) = fs::read_dir(self.inner.root().sys().join("bus/netdevsim/devices")) else {
            return vec![];
        };
        let mut out = Vec::new();
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_prefix("netdevsim").and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Some(address) = address(id) else { continue };
            let mut netdevs: Vec<NetDevice> = fs::read_dir(self.dir(id).join("net"))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|n| {
                            let name = n.file_name().to_string_lossy().into_owned();
                            let rd = |f: &str| {
                                fs::read_to_string(n.path().join(f))
                                    .unwrap_or_default()
                                    .trim()
                                    .to_string()
                            };
                            NetDevice {
                                mtu: rd("mtu").parse().unwrap_or(0),
                                mac: rd("address"),
                                phys_port_name: rd("phys_port_name"),
                                name,
                                ..NetDevice::default()
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            // The port netdevs (p0, p1...) first, representors after.
            netdevs.sort_by(|a, b| {
                (!a.phys_port_name.starts_with('p'), &a.name)
                    .cmp(&(!b.phys_port_name.starts_with('p'), &b.name))
            });
            let num_vfs = self
                .read(id, "sriov_numvfs")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let debugfs = PathBuf::from(format!("/sys/kernel/debug/netdevsim/netdevsim{id}/max_vfs"));
            let total_vfs = fs::read_to_string(debugfs)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(4)
                .max(num_vfs);
            out.push(PfDevice {
                pci: PciDevice {
                    address,
                    vendor: "0000".into(),
                    device: "0000".into(),
                    class: "020000".into(),
                    driver: Some("netdevsim".into()),
                    numa_node: None,
                    iommu_group: None,
                    vfio_dev: None,
                    netdevs,
                    rdma_devices: vec![],
                    acpi_index: None,
                },
                total_vfs,
                num_vfs,
                eswitch_mode: eswitch_mode(id),
                vfs: vec![],
            });
        }
        out.sort_by(|a, b| a.pci.address.cmp(&b.pci.address));
        out
    }
}

fn eswitch_mode(id: u32) -> Option<String> {
    let out = Command::new("devlink")
        .args(["dev", "eswitch", "show", &format!("netdevsim/netdevsim{id}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    words.find(|w| *w == "mode")?;
    words.next().map(str::to_string)
}

impl Host for WithNetdevsim {
    fn discover(&self) -> Result<HostDevices, HostError> {
        let mut d = self.inner.discover()?;
        d.pfs.extend(self.devices());
        Ok(d)
    }
    fn context(&self, devices: &HostDevices) -> PlanContext {
        self.inner.context(devices)
    }
    fn write_num_vfs(&self, pf: &PciAddress, n: u32) -> Result<(), HostError> {
        match id_of(pf) {
            Some(id) => self
                .inner
                .write_path(self.dir(id).join("sriov_numvfs"), &n.to_string()),
            None => self.inner.write_num_vfs(pf, n),
        }
    }
    fn vf_count(&self, pf: &PciAddress) -> u32 {
        match id_of(pf) {
            Some(id) => self
                .read(id, "sriov_numvfs")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            None => self.inner.vf_count(pf),
        }
    }
    fn autoprobe(&self, pf: &PciAddress) -> bool {
        id_of(pf).is_none() && self.inner.autoprobe(pf)
    }
    fn vf_address(&self, pf: &PciAddress, index: u32) -> Option<PciAddress> {
        self.inner.vf_address(pf, index)
    }
    fn driver(&self, dev: &PciAddress) -> Option<String> {
        self.inner.driver(dev)
    }
    fn set_driver_override(&self, dev: &PciAddress, driver: Option<&str>) -> Result<(), HostError> {
        self.inner.set_driver_override(dev, driver)
    }
    fn unbind(&self, dev: &PciAddress, driver: &str) -> Result<(), HostError> {
        self.inner.unbind(dev, driver)
    }
    fn probe(&self, dev: &PciAddress) -> Result<(), HostError> {
        self.inner.probe(dev)
    }
    fn ensure_driver(&self, driver: &str) {
        self.inner.ensure_driver(driver)
    }
    fn netdev(&self, dev: &PciAddress) -> Option<String> {
        match id_of(dev) {
            Some(_) => self
                .devices()
                .into_iter()
                .find(|p| &p.pci.address == dev)?
                .pci
                .netdev()
                .map(|n| n.name.clone()),
            None => self.inner.netdev(dev),
        }
    }
    fn set_mtu(&self, netdev: &str, mtu: u32) -> Result<(), HostError> {
        self.inner.set_mtu(netdev, mtu)
    }
    fn set_eswitch_mode(&self, pf: &PciAddress, mode: &str) -> Result<(), HostError> {
        match id_of(pf) {
            Some(id) => self
                .inner
                .devlink_eswitch(&format!("netdevsim/netdevsim{id}"), mode),
            None => self.inner.set_eswitch_mode(pf, mode),
        }
    }
    fn probe_values(&self, probes: &[Probe]) -> Vec<Option<String>> {
        probes
            .iter()
            .map(|p| match p {
                Probe::NumVfs(a) if id_of(a).is_some() => Some(self.vf_count(a).to_string()),
                _ => self.inner.probe_values(std::slice::from_ref(p)).pop().flatten(),
            })
            .collect()
    }
    fn writes(&self) -> u64 {
        self.inner.writes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_addresses_round_trip() {
        for id in [0, 10, 31, 32, 100, 8191] {
            let a = address(id).expect("address");
            assert!(a.as_str().starts_with("fffe:"), "{a}");
            assert_eq!(id_of(&a), Some(id), "{a}");
        }
        assert_eq!(address(10).expect("a").as_str(), "fffe:00:0a.0");
        assert_eq!(id_of(&"0000:01:00.0".parse().expect("a")), None);
    }

    #[test]
    fn netdevsim_devices_are_discovered_from_the_bus() {
        let tmp = tempfile::tempdir().expect("tmp");
        let sys = tmp.path().join("sys");
        fs::create_dir_all(sys.join("bus/pci/devices")).expect("pci");
        let d = sys.join("bus/netdevsim/devices/netdevsim10");
        fs::create_dir_all(d.join("net/eth5")).expect("dirs");
        fs::write(d.join("sriov_numvfs"), "2\n").expect("numvfs");
        fs::write(d.join("net/eth5/mtu"), "1500\n").expect("mtu");
        fs::write(d.join("net/eth5/phys_port_name"), "p0\n").expect("ppn");
        let h = WithNetdevsim {
            inner: SysfsHost::new(sriov_host::SysfsRoot::new(&sys)),
        };
        let found = h.discover().expect("discover");
        assert_eq!(found.pfs.len(), 1);
        let pf = &found.pfs[0];
        assert_eq!(pf.pci.address.as_str(), "fffe:00:0a.0");
        assert_eq!((pf.num_vfs, pf.pci.netdevs[0].name.as_str()), (2, "eth5"));
        h.write_num_vfs(&pf.pci.address, 0).expect("write");
        assert_eq!(h.vf_count(&pf.pci.address), 0);
        assert_eq!(h.writes(), 1);
    }
}
