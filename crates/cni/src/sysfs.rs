//! Where a VF sits, read from sysfs under an injectable root (`/sys` in production, a fake tree
//! in tests): its PF netdev (first entry of `physfn/net/`), its index N (the PF's `virtfnN` link
//! that points at it, never derived from the address), its netdev and its driver.

use std::fs;
use std::path::{Path, PathBuf};

use crate::pci::PciAddress;

use crate::error::{CniError, Result};

// "Userspace (DPDK) mode" (no netdev, only PF-side settings): sriov_host::drivers owns the list.
use sriov_host::SysfsRoot;
use sriov_host::drivers::is_userspace_driver;

/// The sysfs root.
#[derive(Clone, Debug)]
pub struct Sysfs {
    pub root: PathBuf,
}

/// A resolved VF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VfLocation {
    pub pf_name: String,
    pub vf_index: u32,
    /// The VF's netdev in this netns; `None` in DPDK mode.
    pub netdev: Option<String>,
    pub driver: Option<String>,
}

impl VfLocation {
    pub fn dpdk(&self) -> bool {
        self.netdev.is_none()
    }
}

// The sysfs primitives (a link's last component, a directory's first entry, a device's driver
// and netdev) are sriov-host's, shared with discovery and the daemon.
fn first_entry(dir: &Path) -> Option<String> {
    sriov_host::sysfs::dir_names(dir)
        .ok()
        .flatten()
        .and_then(|n| n.into_iter().next())
}

fn link_basename(p: &Path) -> Option<String> {
    sriov_host::sysfs::link_name(p).ok().flatten()
}

impl Sysfs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Sysfs { root: root.into() }
    }

    fn host_root(&self) -> SysfsRoot {
        SysfsRoot::new(&self.root)
    }

    fn dev(&self, id: &PciAddress) -> PathBuf {
        self.host_root().pci_device(id.as_str())
    }

    /// The VF's netdev name, if it has one in this netns.
    pub fn netdev(&self, id: &PciAddress) -> Option<String> {
        self.host_root().first_netdev(id.as_str())
    }

    /// The bound driver's name.
    pub fn driver(&self, id: &PciAddress) -> Option<String> {
        self.host_root().driver(id.as_str())
    }

    /// Resolves PF and VF index; errors name the deviceID.
    pub fn locate(&self, id: &PciAddress) -> Result<VfLocation> {
        let dev = self.dev(id);
        if !dev.exists() {
            return Err(CniError::config(format!(
                "field \"deviceID\": no PCI device {id} in {}",
                self.root.display()
            )));
        }
        let physfn = dev.join("physfn");
        if !physfn.exists() {
            return Err(CniError::config(format!(
                "field \"deviceID\": {id} is not a VF (it has no physfn)"
            )));
        }
        let pf_name = first_entry(&physfn.join("net")).ok_or_else(|| {
            CniError::internal(format!("the PF of VF {id} has no netdev (physfn/net is empty)"))
        })?;
        let mut vf_index = None;
        for e in fs::read_dir(&physfn)
            .map_err(|e| CniError::internal(format!("reading {}: {e}", physfn.display())))?
        {
            let Ok(e) = e else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(n) = name.strip_prefix("virtfn").and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if link_basename(&e.path()).as_deref() == Some(id.as_str()) {
                vf_index = Some(n);
                break;
            }
        }
        let vf_index = vf_index.ok_or_else(|| {
            CniError::internal(format!("no virtfnN link of PF {pf_name} points at VF {id}"))
        })?;
        let netdev = self.netdev(id);
        let driver = self.driver(id);
        if netdev.is_none() {
            match driver.as_deref() {
                Some(d) if is_userspace_driver(d) => {}
                Some(d) => {
                    return Err(CniError::internal(format!(
                        "VF {id} has no netdev and its driver {d:?} is not a userspace (DPDK) driver"
                    )));
                }
                None => {
                    return Err(CniError::internal(format!(
                        "VF {id} has no netdev and no driver bound"
                    )));
                }
            }
        }
        Ok(VfLocation {
            pf_name,
            vf_index,
            netdev,
            driver,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// PF 0000:00:1f.0 (netdev `pf0`) with VFs 1f.2 (index 0, netdev `vf0`) and 1f.4 (index 1, vfio-pci).
    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("bus/pci/devices");
        fs::create_dir_all(d.join("0000:00:1f.0/net/pf0")).unwrap();
        fs::create_dir_all(d.join("0000:00:1f.2/net/vf0")).unwrap();
        fs::create_dir_all(d.join("0000:00:1f.4")).unwrap();
        fs::create_dir_all(d.join("0000:00:1f.6")).unwrap();
        fs::create_dir_all(t.path().join("bus/pci/drivers/vfio-pci")).unwrap();
        symlink("../0000:00:1f.2", d.join("0000:00:1f.0/virtfn0")).unwrap();
        symlink("../0000:00:1f.4", d.join("0000:00:1f.0/virtfn1")).unwrap();
        symlink("../0000:00:1f.6", d.join("0000:00:1f.0/virtfn2")).unwrap();
        for vf in ["1f.2", "1f.4", "1f.6"] {
            symlink("../0000:00:1f.0", d.join(format!("0000:00:{vf}/physfn"))).unwrap();
        }
        symlink("../../drivers/vfio-pci", d.join("0000:00:1f.4/driver")).unwrap();
        t
    }

    fn pci(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    #[test]
    fn kernel_and_dpdk_vfs() {
        let t = tree();
        let s = Sysfs::new(t.path());
        let v = s.locate(&pci("0000:00:1f.2")).unwrap();
        assert_eq!(
            (v.pf_name.as_str(), v.vf_index, v.netdev.as_deref()),
            ("pf0", 0, Some("vf0"))
        );
        let v = s.locate(&pci("0000:00:1f.4")).unwrap();
        assert_eq!(
            (v.vf_index, v.dpdk(), v.driver.as_deref()),
            (1, true, Some("vfio-pci"))
        );
    }

    #[test]
    fn not_a_vf_or_missing_or_unbound() {
        let t = tree();
        let s = Sysfs::new(t.path());
        let e = s.locate(&pci("0000:00:1f.0")).unwrap_err();
        assert!(e.msg.contains("deviceID") && e.msg.contains("not a VF"), "{e}");
        let e = s.locate(&pci("0000:00:1e.0")).unwrap_err();
        assert!(e.msg.contains("no PCI device 0000:00:1e.0"), "{e}");
        let e = s.locate(&pci("0000:00:1f.6")).unwrap_err();
        assert!(e.msg.contains("no driver"), "{e}");
    }
}
