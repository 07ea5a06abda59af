//! An in-memory kernel for tests and benchmarks of apply: behaves like igb (EBUSY on N → M,
//! ERANGE above totalvfs, VFs autoprobe to their default driver with a netdev), counts writes, and
//! can fail the Nth write to simulate a crash mid-apply.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use sriov_host::{HostDevices, NetDevice, PciAddress, PciDevice, PfDevice, VfDevice};

use crate::host::{Host, HostError, Probe};
use crate::plan::PlanContext;

#[derive(Debug, Default)]
struct Inner {
    devices: HostDevices,
    overrides: BTreeMap<PciAddress, String>,
    writes: u64,
    /// The write with this number (0-based) and every later one fail.
    fail_from: Option<u64>,
    in_use: BTreeSet<PciAddress>,
    iommu: bool,
    autoprobe: bool,
}

/// The in-memory host. `vf_driver` is what VFs autoprobe to (e.g. `igbvf`).
#[derive(Debug)]
pub struct FakeHost {
    inner: Mutex<Inner>,
    vf_driver: String,
}

impl FakeHost {
    /// A host with these devices, IOMMU on, autoprobe on.
    pub fn new(devices: HostDevices, vf_driver: &str) -> Self {
        let inner = Inner {
            devices,
            iommu: true,
            autoprobe: true,
            ..Inner::default()
        };
        FakeHost {
            inner: Mutex::new(inner),
            vf_driver: vf_driver.to_string(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The devices now.
    pub fn devices(&self) -> HostDevices {
        self.lock().devices.clone()
    }
    /// Makes the write number `n` (counting from the writes done so far) and all later ones fail.
    pub fn fail_from(&self, n: Option<u64>) {
        self.lock().fail_from = n;
    }
    pub fn set_in_use(&self, vfs: BTreeSet<PciAddress>) {
        self.lock().in_use = vfs;
    }
    pub fn set_iommu(&self, on: bool) {
        self.lock().iommu = on;
    }
    pub fn set_autoprobe(&self, on: bool) {
        self.lock().autoprobe = on;
    }

    fn write(
        &self,
        what: &str,
        value: &str,
        f: impl FnOnce(&mut Inner) -> io::Result<()>,
    ) -> Result<(), HostError> {
        let mut g = self.lock();
        let n = g.writes;
        g.writes += 1;
        let res = if g.fail_from.is_some_and(|k| n >= k) {
            Err(io::Error::other("injected failure (simulated crash)"))
        } else {
            f(&mut g)
        };
        res.map_err(|source| HostError::Write {
            path: PathBuf::from(what),
            value: value.to_string(),
            source,
        })
    }
}

fn pf_mut<'a>(g: &'a mut Inner, pf: &PciAddress) -> io::Result<&'a mut PfDevice> {
    g.devices
        .pfs
        .iter_mut()
        .find(|p| &p.pci.address == pf)
        .ok_or_else(|| io::Error::from_raw_os_error(19))
}

fn vf_mut<'a>(g: &'a mut Inner, dev: &PciAddress) -> io::Result<&'a mut VfDevice> {
    g.devices
        .pfs
        .iter_mut()
        .flat_map(|p| p.vfs.iter_mut())
        .find(|v| &v.pci.address == dev)
        .ok_or_else(|| io::Error::from_raw_os_error(19))
}

/// The VF address igb would give: PF bus, device 0x10 + index / 4, function (index % 4) * 2.
fn vf_address(pf: &PciAddress, index: u32) -> PciAddress {
    let s = pf.as_str();
    let pf_dev = u32::from_str_radix(&s[8..10], 16).unwrap_or(0);
    let dev = 0x10 + pf_dev + index / 4;
    let func = (index % 4) * 2;
    format!("{}:{:02x}.{}", &s[..7], dev.min(0x1f), func)
        .parse()
        .unwrap_or_else(|_| pf.clone())
}

fn vf_netdev(pf: &PfDevice, index: u32) -> NetDevice {
    let base = pf
        .pci
        .netdev()
        .map(|n| n.name.clone())
        .unwrap_or_else(|| "pf".into());
    NetDevice {
        name: format!("{base}v{index}"),
        mtu: 1500,
        ..NetDevice::default()
    }
}

impl Host for FakeHost {
    fn discover(&self) -> Result<HostDevices, HostError> {
        Ok(self.devices())
    }

    fn context(&self, _devices: &HostDevices) -> PlanContext {
        let g = self.lock();
        PlanContext {
            vfs_in_use: g.in_use.clone(),
            iommu_enabled: g.iommu,
            reset_only: None,
        }
    }

    fn write_num_vfs(&self, pf: &PciAddress, n: u32) -> Result<(), HostError> {
        let drv = self.vf_driver.clone();
        self.write(&format!("{pf}/sriov_numvfs"), &n.to_string(), |g| {
            let autoprobe = g.autoprobe;
            let p = pf_mut(g, pf)?;
            if n > p.total_vfs {
                return Err(io::Error::from_raw_os_error(34));
            }
            if p.num_vfs > 0 && n > 0 {
                return Err(io::Error::from_raw_os_error(16));
            }
            p.num_vfs = n;
            p.vfs = (0..n)
                .map(|i| {
                    let address = vf_address(&p.pci.address, i);
                    let netdevs = if autoprobe {
                        vec![vf_netdev(p, i)]
                    } else {
                        Vec::new()
                    };
                    let pci = PciDevice {
                        address,
                        driver: autoprobe.then(|| drv.clone()),
                        netdevs,
                        iommu_group: Some(100 + i),
                        vfio_dev: None,
                        rdma_devices: Vec::new(),
                        acpi_index: None,
                        ..p.pci.clone()
                    };
                    VfDevice {
                        pci,
                        vf_index: Some(i),
                        pf_address: Some(p.pci.address.clone()),
                    }
                })
                .collect();
            Ok(())
        })
    }

    fn vf_count(&self, pf: &PciAddress) -> u32 {
        let g = self.lock();
        g.devices
            .pfs
            .iter()
            .find(|p| &p.pci.address == pf)
            .map_or(0, |p| p.vfs.len() as u32)
    }

    fn autoprobe(&self, _pf: &PciAddress) -> bool {
        self.lock().autoprobe
    }

    fn vf_address(&self, pf: &PciAddress, index: u32) -> Option<PciAddress> {
        let g = self.lock();
        let p = g.devices.pfs.iter().find(|p| &p.pci.address == pf)?;
        p.vfs
            .iter()
            .find(|v| v.vf_index == Some(index))
            .map(|v| v.pci.address.clone())
    }

    fn driver(&self, dev: &PciAddress) -> Option<String> {
        let g = self.lock();
        g.devices
            .pfs
            .iter()
            .flat_map(|p| p.vfs.iter())
            .find(|v| &v.pci.address == dev)?
            .pci
            .driver
            .clone()
    }

    fn set_driver_override(&self, dev: &PciAddress, driver: Option<&str>) -> Result<(), HostError> {
        self.write(&format!("{dev}/driver_override"), driver.unwrap_or(""), |g| {
            match driver {
                Some(d) => g.overrides.insert(dev.clone(), d.to_string()),
                None => g.overrides.remove(dev),
            };
            Ok(())
        })
    }

    fn unbind(&self, dev: &PciAddress, driver: &str) -> Result<(), HostError> {
        self.write(&format!("drivers/{driver}/unbind"), dev.as_str(), |g| {
            let v = vf_mut(g, dev)?;
            v.pci.driver = None;
            v.pci.netdevs.clear();
            v.pci.vfio_dev = None;
            Ok(())
        })
    }

    fn probe(&self, dev: &PciAddress) -> Result<(), HostError> {
        let default = self.vf_driver.clone();
        self.write("drivers_probe", dev.as_str(), |g| {
            let over = g.overrides.get(dev).cloned();
            let (pf_idx, vf_idx) = g
                .devices
                .pfs
                .iter()
                .enumerate()
                .find_map(|(i, p)| p.vfs.iter().position(|v| &v.pci.address == dev).map(|j| (i, j)))
                .ok_or_else(|| io::Error::from_raw_os_error(19))?;
            let pf = g.devices.pfs[pf_idx].clone();
            let v = &mut g.devices.pfs[pf_idx].vfs[vf_idx];
            if v.pci.driver.is_some() {
                return Ok(());
            }
            let drv = over.unwrap_or(default);
            if drv == "vfio-pci" {
                v.pci.vfio_dev = v.pci.iommu_group.map(|n| PathBuf::from(format!("/dev/vfio/{n}")));
            } else {
                v.pci.netdevs = vec![vf_netdev(&pf, v.vf_index.unwrap_or(0))];
            }
            v.pci.driver = Some(drv);
            Ok(())
        })
    }

    fn ensure_driver(&self, _driver: &str) {}

    fn netdev(&self, dev: &PciAddress) -> Option<String> {
        let g = self.lock();
        let pci = g
            .devices
            .pfs
            .iter()
            .flat_map(|p| std::iter::once(&p.pci).chain(p.vfs.iter().map(|v| &v.pci)));
        pci.clone()
            .find(|p| &p.address == dev)?
            .netdev()
            .map(|n| n.name.clone())
    }

    fn set_mtu(&self, netdev: &str, mtu: u32) -> Result<(), HostError> {
        self.write(&format!("class/net/{netdev}/mtu"), &mtu.to_string(), |g| {
            let nd = g
                .devices
                .pfs
                .iter_mut()
                .flat_map(|p| std::iter::once(&mut p.pci).chain(p.vfs.iter_mut().map(|v| &mut v.pci)))
                .flat_map(|p| p.netdevs.iter_mut())
                .find(|n| n.name == netdev)
                .ok_or_else(|| io::Error::from_raw_os_error(19))?;
            nd.mtu = mtu;
            Ok(())
        })
    }

    fn set_eswitch_mode(&self, pf: &PciAddress, mode: &str) -> Result<(), HostError> {
        self.write(&format!("devlink {pf} eswitch"), mode, |g| {
            pf_mut(g, pf)?.eswitch_mode = Some(mode.to_string());
            Ok(())
        })
    }

    fn probe_values(&self, probes: &[Probe]) -> Vec<Option<String>> {
        let d = self.devices();
        probes.iter().map(|p| crate::quick::expected(&d, p)).collect()
    }

    fn writes(&self) -> u64 {
        self.lock().writes
    }
}
