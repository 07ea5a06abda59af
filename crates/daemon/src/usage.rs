//! Which VFs a workload holds, and whether the IOMMU is on: the facts the drain verdict needs
//! that discovery does not give.
//!
//! * A VF on a network driver whose netdev is not in the host's namespace (sysfs lists only the
//!   reader's namespace under `<vf>/net/`) was moved into a pod: in use.
//! * A VF on vfio-pci whose `/dev/vfio/<group>` some process has open: in use.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use sriov_host::drivers::{is_vfio_driver, leaves_no_netdev};
use sriov_host::{HostDevices, PciAddress};

/// VFs in use on `devices` (see the module docs). `proc_root` is normally `/proc`, `dev_root` `/dev`.
pub fn vfs_in_use(devices: &HostDevices, proc_root: &Path, dev_root: &Path) -> BTreeSet<PciAddress> {
    let mut used = BTreeSet::new();
    let mut vfio_groups: Vec<(PathBuf, &PciAddress)> = Vec::new();
    for vf in devices.pfs.iter().flat_map(|pf| pf.vfs.iter()) {
        match vf.pci.driver.as_deref() {
            Some(drv) if is_vfio_driver(drv) => {
                if let Some(g) = vf.pci.iommu_group {
                    vfio_groups.push((dev_root.join("vfio").join(g.to_string()), &vf.pci.address));
                }
            }
            Some(drv) if !leaves_no_netdev(drv) && vf.pci.netdevs.is_empty() => {
                used.insert(vf.pci.address.clone());
            }
            _ => {}
        }
    }
    if !vfio_groups.is_empty() {
        let open = open_files(proc_root);
        for (node, addr) in vfio_groups {
            if open.contains(&node) {
                used.insert(addr.clone());
            }
        }
    }
    used
}

/// Every `/dev/vfio/*` target of `<proc>/*/fd/*`.
fn open_files(proc_root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(procs) = fs::read_dir(proc_root) else {
        return out;
    };
    for p in procs.filter_map(Result::ok) {
        if !p
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if let Ok(t) = fs::read_link(fd.path())
                && t.to_str().is_some_and(|s| s.contains("/vfio/"))
            {
                out.insert(t);
            }
        }
    }
    out
}

/// True when the kernel has IOMMU groups (`<sys>/kernel/iommu_groups` is not empty).
pub fn iommu_enabled(sys: &Path) -> bool {
    fs::read_dir(sys.join("kernel/iommu_groups"))
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}
