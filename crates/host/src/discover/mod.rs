//! Host discovery: every PCI network function and its SR-IOV relations, read from sysfs.
//!
//! What is read, and from where (all under the [`SysfsRoot`]):
//!
//! * `bus/pci/devices/*`: every PCI function. Those of class `0x02xxxx` (network; InfiniBand
//!   controllers are `0x0207xx`) are kept.
//! * A function with a `physfn` link is a VF; any other network function is a PF (SR-IOV capable
//!   when `sriov_totalvfs` > 0).
//! * A PF's VFs are its `virtfnN` links; `N` is the VF index (sorted numerically). The PF's
//!   directory is listed once and each link read once: no per-VF walk of the PF's links.
//! * A VF whose `physfn` PF is not visible lands in [`HostDevices::orphan_vfs`] with no index.
//! * **VMs**: a VF passed through into a VM has neither `physfn` nor `sriov_*` files there (the
//!   guest sees a plain PCI NIC), so it is reported as a PF with `total_vfs` 0, the way upstream's
//!   daemon and device plugin see it. Only a function whose `physfn` link exists is a VF.
//! * e-switch mode: only what sysfs exposes (`net/<pf-netdev>/compat/devlink/mode`, mlx5);
//!   devlink (netlink) is someone else's job, else `None`.
//!
//! Discovery never panics and fails only when the PCI bus itself cannot be listed. One bad
//! device (vanished mid-scan, unreadable or garbage attribute, dangling link) is skipped or
//! degraded and reported as a [`Warning`] naming the path.

mod function;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use crate::model::{HostDevices, PciAddress, PfDevice, VfDevice};
use crate::sysfs::{self, SysfsRoot};
use crate::warning::{Warning, WarningKind};

/// The result of one discovery: the devices and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    pub devices: HostDevices,
    pub warnings: Vec<Warning>,
}

/// Discovery could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// `<sys>/bus/pci/devices` cannot be listed: not a sysfs root, or no PCI bus.
    #[error("cannot list PCI devices in {}: {source} (is this a sysfs root?)", path.display())]
    NoPciBus { path: PathBuf, source: io::Error },
}

/// Reads every PCI network function under `root`. See the [module docs](self).
pub fn discover(root: &SysfsRoot) -> Result<Discovery, DiscoverError> {
    let list_path = root.pci_devices();
    let names = match sysfs::dir_names(&list_path) {
        Ok(Some(names)) => names,
        Ok(None) => {
            let source = io::Error::new(io::ErrorKind::NotFound, "no such directory");
            return Err(DiscoverError::NoPciBus {
                path: list_path,
                source,
            });
        }
        Err(source) => {
            return Err(DiscoverError::NoPciBus {
                path: list_path,
                source,
            });
        }
    };
    let mut scan = Scan {
        root,
        warnings: Vec::new(),
        skipped: HashSet::new(),
    };
    let devices = scan.run(&names);
    Ok(Discovery {
        devices,
        warnings: scan.warnings,
    })
}

/// A listed network function, classified.
struct Listed {
    addr: PciAddress,
    class: String,
    /// Target name of `physfn` (VFs only), as read.
    physfn: Option<String>,
}

pub(crate) struct Scan<'a> {
    pub(crate) root: &'a SysfsRoot,
    pub(crate) warnings: Vec<Warning>,
    /// Listed functions already skipped with a warning (not read again through a `virtfn` link).
    skipped: HashSet<String>,
}

impl Scan<'_> {
    pub(crate) fn warn(&mut self, path: impl Into<PathBuf>, kind: WarningKind, message: impl Into<String>) {
        self.warnings.push(Warning::new(path, kind, message));
    }

    /// A warning for an I/O error on `path`; `then` says what discovery did about it.
    pub(crate) fn io_warn(&mut self, path: &Path, err: &io::Error, then: &str) {
        if sysfs::is_absent(err) {
            self.warn(
                path,
                WarningKind::Vanished,
                format!("vanished during the scan ({err}); {then}"),
            );
        } else {
            self.warn(
                path,
                WarningKind::Unreadable,
                format!("cannot read: {err}; {then}"),
            );
        }
    }

    fn run(&mut self, names: &[String]) -> HostDevices {
        let listed = self.list_network_functions(names);
        let listed_addrs: HashSet<&PciAddress> = listed.iter().map(|l| &l.addr).collect();

        let mut pfs = Vec::new();
        // PF address -> whether its VFs are taken from it (false: treated as not SR-IOV capable).
        let mut pf_sriov: HashMap<PciAddress, bool> = HashMap::new();
        let mut taken: HashSet<PciAddress> = HashSet::new();
        for l in listed.iter().filter(|l| l.physfn.is_none()) {
            let dir = self.root.pci_device(l.addr.as_str());
            // A VF's address is always above its PF's, so its PF has been read by now.
            if taken.contains(&l.addr) {
                let msg = "no physfn link, but a PF's virtfn link points here; reported as that PF's VF";
                self.warn(&dir, WarningKind::Inconsistent, msg);
                continue;
            }
            let Some(pf) = self.read_pf(&dir, &l.addr, &l.class, &listed_addrs, &mut taken) else {
                continue;
            };
            pf_sriov.insert(l.addr.clone(), pf.1);
            pfs.push(pf.0);
        }

        let mut orphan_vfs = Vec::new();
        for l in listed.iter() {
            let Some(pf_name) = &l.physfn else { continue };
            if taken.contains(&l.addr) {
                continue;
            }
            let dir = self.root.pci_device(l.addr.as_str());
            let pf_address: Option<PciAddress> = pf_name.parse().ok();
            if pf_address.is_none() {
                self.warn(
                    dir.join("physfn"),
                    WarningKind::Invalid,
                    format!("link target {pf_name:?} is not a PCI address; VF reported without its PF"),
                );
            }
            match pf_address.as_ref().and_then(|a| pf_sriov.get(a)) {
                // The PF was treated as not SR-IOV capable: its warning already says so.
                Some(false) => continue,
                Some(true) => self.warn(
                    &dir,
                    WarningKind::Inconsistent,
                    format!("VF's PF {pf_name} has no virtfn link to it; VF reported without an index"),
                ),
                None => {}
            }
            let Some(pci) = self.read_function(&dir, &l.addr, Some(&l.class)) else {
                continue;
            };
            orphan_vfs.push(VfDevice {
                pci,
                vf_index: None,
                pf_address,
            });
        }
        HostDevices { pfs, orphan_vfs }
    }

    /// Lists `bus/pci/devices`, keeping network functions (class `0x02xxxx`) in address order.
    fn list_network_functions(&mut self, names: &[String]) -> Vec<Listed> {
        let mut out = Vec::new();
        for name in names {
            let dir = self.root.pci_device(name);
            let Ok(addr) = name.parse::<PciAddress>() else {
                self.warn(
                    &dir,
                    WarningKind::Invalid,
                    "not a PCI address (dddd:bb:dd.f); skipped",
                );
                continue;
            };
            let class_path = dir.join("class");
            let raw = match sysfs::read_attr(&class_path) {
                Ok(Some(raw)) => raw,
                Ok(None) => {
                    let msg = "no such device (removed during the scan, or a dangling link); skipped";
                    self.warn(&dir, WarningKind::Vanished, msg);
                    self.skipped.insert(name.clone());
                    continue;
                }
                Err(e) => {
                    self.io_warn(&class_path, &e, "device skipped");
                    self.skipped.insert(name.clone());
                    continue;
                }
            };
            let Some(class) = sysfs::parse_hex_id(&raw, 6) else {
                self.warn(
                    &class_path,
                    WarningKind::Invalid,
                    format!("invalid PCI class {raw:?}; device skipped"),
                );
                self.skipped.insert(name.clone());
                continue;
            };
            if !class.starts_with("02") {
                continue;
            }
            let physfn_path = dir.join("physfn");
            let physfn = match sysfs::link_name(&physfn_path) {
                Ok(p) => p,
                Err(e) => {
                    self.io_warn(&physfn_path, &e, "function treated as a PF");
                    None
                }
            };
            out.push(Listed { addr, class, physfn });
        }
        out
    }

    /// Reads one PF, its SR-IOV state and its VFs. Returns the PF and whether its VFs were taken.
    fn read_pf(
        &mut self,
        dir: &Path,
        addr: &PciAddress,
        class: &str,
        listed: &HashSet<&PciAddress>,
        taken: &mut HashSet<PciAddress>,
    ) -> Option<(PfDevice, bool)> {
        let pci = self.read_function(dir, addr, Some(class))?;
        let eswitch_mode = pci.netdev().and_then(|n| {
            sysfs::read_attr(&dir.join("net").join(&n.name).join("compat/devlink/mode"))
                .ok()
                .flatten()
        });
        let sriov = self.read_sriov(dir);
        let mut pf = PfDevice {
            pci,
            total_vfs: sriov.total,
            num_vfs: sriov.num,
            eswitch_mode,
            vfs: Vec::new(),
        };
        if !sriov.usable {
            return Some((pf, false));
        }
        for (index, target) in sriov.virtfns {
            let link = dir.join(format!("virtfn{index}"));
            let Ok(vf_addr) = target.parse::<PciAddress>() else {
                self.warn(
                    &link,
                    WarningKind::Invalid,
                    format!("link target {target:?} is not a PCI address; VF skipped"),
                );
                continue;
            };
            taken.insert(vf_addr.clone());
            if self.skipped.contains(vf_addr.as_str()) {
                continue;
            }
            // Through bus/pci/devices when listed; else through the PF's link (a VF created after
            // the listing, or one that is gone: then the read reports it vanished).
            let vf_dir = if listed.contains(&vf_addr) {
                self.root.pci_device(vf_addr.as_str())
            } else {
                link
            };
            let Some(vf) = self.read_function(&vf_dir, &vf_addr, None) else {
                continue;
            };
            pf.vfs.push(VfDevice {
                pci: vf,
                vf_index: Some(index),
                pf_address: Some(addr.clone()),
            });
        }
        Some((pf, true))
    }
}

/// A PF's SR-IOV attributes.
struct Sriov {
    total: u32,
    num: u32,
    /// False when `sriov_totalvfs` is garbage: the device is then treated as not SR-IOV capable.
    usable: bool,
    /// `(N, target name)` of each `virtfnN`, sorted by N.
    virtfns: Vec<(u32, String)>,
}
