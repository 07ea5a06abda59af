//! Reading one PCI function (PF or VF alike), its netdevs and a PF's SR-IOV attributes.

use std::path::Path;

use super::{PciIdentity, Role, Scan, Sriov};
use crate::model::{LinkType, NetDevice, PciAddress, PciDevice};
use crate::sysfs::{self, DirFd};
use crate::warning::WarningKind;

/// `IFF_UP` in a netdev's `flags`.
const IFF_UP: u32 = 0x1;
/// ARPHRD numbers in a netdev's `type`.
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_INFINIBAND: u16 = 32;

impl Scan<'_> {
    /// Reads one PCI function at `dir`. `None` (with a warning) when it vanished or its identity
    /// (vendor, device, class) cannot be read.
    pub(super) fn read_function(
        &mut self,
        dir: &Path,
        addr: &PciAddress,
        identity: Option<PciIdentity>,
        role: Role,
    ) -> Option<PciDevice> {
        match DirFd::open(dir) {
            Ok(Some(d)) => self.read_function_at(&d, addr, identity, role),
            Ok(None) => {
                let msg = "no such device (removed during the scan, or a dangling link); skipped";
                self.warn(dir, WarningKind::Vanished, msg);
                None
            }
            // What reading its first attribute would have met (a parent not searchable, a loop).
            Err(e) => {
                self.io_warn(&dir.join("uevent"), &e, "device skipped");
                None
            }
        }
    }

    /// [`Self::read_function`] of a directory already open (or reached through its parent's
    /// descriptor): every entry is read relative to it. `identity` when the caller already read
    /// the `uevent`.
    pub(super) fn read_function_at(
        &mut self,
        dir: &DirFd,
        addr: &PciAddress,
        identity: Option<PciIdentity>,
        role: Role,
    ) -> Option<PciDevice> {
        let PciIdentity {
            vendor,
            device,
            class,
        } = match identity {
            Some(i) => i,
            None => self.identity(dir)?,
        };
        let driver = self.optional_link(dir, "driver");
        let numa_node = self
            .optional_attr(dir, "numa_node")
            .and_then(|raw| match raw.parse::<i32>() {
                Ok(n) if n >= 0 => Some(n),
                Ok(_) => None,
                Err(_) => {
                    self.warn(
                        dir.join("numa_node"),
                        WarningKind::Invalid,
                        format!("invalid value {raw:?}; ignored"),
                    );
                    None
                }
            });
        let iommu_group = self
            .optional_link(dir, "iommu_group")
            .and_then(|g| match g.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    let msg = format!("link target {g:?} is not an IOMMU group number; ignored");
                    self.warn(dir.join("iommu_group"), WarningKind::Invalid, msg);
                    None
                }
            });
        let vfio_dev = if driver.as_deref() == Some("vfio-pci") {
            self.vfio_dev(dir.path(), iommu_group)
        } else {
            None
        };
        let netdevs = self.read_netdevs(dir, driver.as_deref(), addr, role);
        // Most functions (all VFs) have neither `infiniband/` nor `acpi_index`: a failed `stat`
        // is cheaper than a failed `open`.
        let rdma_devices = dir
            .list_rare("infiniband")
            .unwrap_or_else(|e| {
                self.io_warn(&dir.join("infiniband"), &e, "ignored");
                None
            })
            .map(|(_, names)| names)
            .unwrap_or_default();
        let acpi_index = dir.read_rare_attr("acpi_index").unwrap_or_else(|e| {
            self.io_warn(&dir.join("acpi_index"), &e, "ignored");
            None
        });
        Some(PciDevice {
            address: addr.clone(),
            vendor,
            device,
            class,
            driver,
            numa_node,
            iommu_group,
            vfio_dev,
            netdevs,
            rdma_devices,
            acpi_index,
        })
    }

    /// A PF's `sriov_totalvfs`, `sriov_numvfs` and `virtfnN` links, from one listing of its directory.
    pub(super) fn read_sriov(&mut self, dir: &Path) -> Sriov {
        let mut sriov = Sriov {
            total: 0,
            num: 0,
            usable: true,
            virtfns: Vec::new(),
        };
        let listed = DirFd::open(dir).and_then(|d| match d {
            Some(d) => d.list("."),
            None => Ok(None),
        });
        let (d, entries) = match listed {
            Ok(Some(listed)) => listed,
            Ok(None) => {
                sriov.usable = false;
                return sriov;
            }
            Err(e) => {
                self.io_warn(dir, &e, "ignored");
                sriov.usable = false;
                return sriov;
            }
        };
        for name in &entries {
            let Some(index) = sysfs::numeric_suffix(name, "virtfn") else {
                continue;
            };
            match d.link_target(name) {
                Ok(target) => sriov.virtfns.push((index, target)),
                Err(e) => self.io_warn(&d.join(name), &e, "VF skipped"),
            }
        }
        sriov.virtfns.sort_by_key(|(index, _)| *index);
        let has = |n: &str| entries.iter().any(|e| e == n);
        if has("sriov_totalvfs") {
            let path = dir.join("sriov_totalvfs");
            let ignored = match sriov.virtfns.len() {
                0 => String::new(),
                n => format!(", its {n} VFs ignored"),
            };
            match d.read_attr("sriov_totalvfs") {
                Ok(Some(raw)) => match raw.parse::<u32>() {
                    Ok(total) => sriov.total = total,
                    Err(_) => {
                        let msg =
                            format!("invalid value {raw:?}: device treated as not SR-IOV capable{ignored}");
                        self.warn(&path, WarningKind::Invalid, msg);
                        sriov.usable = false;
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    self.io_warn(
                        &path,
                        &e,
                        &format!("device treated as not SR-IOV capable{ignored}"),
                    );
                    sriov.usable = false;
                }
            }
        }
        if !sriov.usable {
            sriov.virtfns.clear();
            return sriov;
        }
        if has("sriov_numvfs") {
            let path = dir.join("sriov_numvfs");
            let count = sriov.virtfns.len() as u32;
            match d.read_attr("sriov_numvfs") {
                Ok(Some(raw)) => match raw.parse::<u32>() {
                    Ok(num) => sriov.num = num,
                    Err(_) => {
                        let msg = format!("invalid value {raw:?}; using the {count} virtfn links instead");
                        self.warn(&path, WarningKind::Invalid, msg);
                        sriov.num = count;
                    }
                },
                Ok(None) => sriov.num = count,
                Err(e) => {
                    self.io_warn(&path, &e, &format!("using the {count} virtfn links instead"));
                    sriov.num = count;
                }
            }
        }
        sriov
    }

    /// `/dev/vfio/<group>` for a function bound to vfio-pci, when the node exists.
    fn vfio_dev(&mut self, dir: &Path, group: Option<u32>) -> Option<std::path::PathBuf> {
        let Some(group) = group else {
            self.warn(
                dir,
                WarningKind::Inconsistent,
                "bound to vfio-pci but has no iommu_group link",
            );
            return None;
        };
        let node = self.root.vfio_node(group);
        match std::fs::symlink_metadata(&node) {
            Ok(_) => Some(node),
            Err(e) => {
                let msg = format!(
                    "function {} is bound to vfio-pci but its VFIO node is missing ({e})",
                    dir.display()
                );
                self.warn(&node, WarningKind::Inconsistent, msg);
                None
            }
        }
    }

    /// Netdevs under `net/` (or `virtio*/net/` for virtio-pci), in name order. Their attributes
    /// come from the link dump when discovery has one and it knows the name (and, where the
    /// kernel names a link's parent device, that parent is this function), else from sysfs.
    fn read_netdevs(
        &mut self,
        dir: &DirFd,
        driver: Option<&str>,
        addr: &PciAddress,
        role: Role,
    ) -> Vec<NetDevice> {
        let mut listed = self.optional_list(dir, "net");
        if listed.is_none() && driver == Some("virtio-pci") {
            // virtio-net's netdev hangs off the virtio device: <pci>/virtioN/net/<if>.
            let virtio = self
                .optional_list(dir, ".")
                .map(|(_, names)| names)
                .unwrap_or_default()
                .into_iter()
                .find(|n| n.starts_with("virtio"));
            if let Some(v) = virtio {
                listed = self.optional_list(dir, &format!("{v}/net"));
            }
        }
        let Some((net_dir, names)) = listed else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for name in names {
            let nd = net_dir.sub(&name);
            let dumped = self
                .links
                .and_then(|t| t.get(&name))
                .filter(|l| l.parent_dev.as_deref().is_none_or(|p| p == addr.as_str()));
            let netdev = match dumped {
                Some(l) => {
                    let mut n = l.netdev.clone();
                    if role == Role::Pf {
                        n.speed_mbps = read_speed(&nd);
                    }
                    Some(n)
                }
                None => self.read_netdev(&nd, name, role),
            };
            out.extend(netdev);
        }
        out
    }

    fn netdev_vanished(&mut self, dir: &Path) {
        self.warn(
            dir,
            WarningKind::Vanished,
            "netdev vanished during the scan (moved to another network namespace?); skipped",
        );
    }

    /// One netdev directory. `None` (with a warning) when it vanished, e.g. moved to another
    /// network namespace during the scan.
    fn read_netdev(&mut self, dir: &DirFd, name: String, role: Role) -> Option<NetDevice> {
        let mac = match dir.read_attr("address") {
            Ok(Some(mac)) => mac.to_ascii_lowercase(),
            Ok(None) => {
                self.netdev_vanished(dir.path());
                return None;
            }
            Err(e) => {
                self.io_warn(&dir.join("address"), &e, "netdev skipped");
                return None;
            }
        };
        let mtu = self.parsed(dir, "mtu", |s| s.parse::<u32>().ok()).unwrap_or(0);
        let speed_mbps = match role {
            Role::Pf => read_speed(dir),
            Role::Vf => None,
        };
        let link_type = match self.parsed(dir, "type", |s| s.parse::<u16>().ok()) {
            Some(ARPHRD_ETHER) | None => LinkType::Ether,
            Some(ARPHRD_INFINIBAND) => LinkType::Infiniband,
            Some(other) => LinkType::Other(other),
        };
        let admin_up = self
            .parsed(dir, "flags", sysfs::parse_flags)
            .is_some_and(|f| f & IFF_UP != 0);
        let oper_state = self.optional_attr(dir, "operstate").unwrap_or_default();
        // EOPNOTSUPP when the driver has no port name (igb): empty, not a problem.
        let phys_port_name = dir.read_attr("phys_port_name").ok().flatten().unwrap_or_default();
        Some(NetDevice {
            name,
            mac,
            mtu,
            speed_mbps,
            link_type,
            admin_up,
            oper_state,
            phys_port_name,
        })
    }

    /// Reads `dir/name` and parses it; warns when it is unreadable or does not parse.
    fn parsed<T>(&mut self, dir: &DirFd, name: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let raw = self.optional_attr(dir, name)?;
        let v = parse(&raw);
        if v.is_none() {
            self.warn(
                dir.join(name),
                WarningKind::Invalid,
                format!("invalid value {raw:?}; ignored"),
            );
        }
        v
    }

    /// Vendor, device and class from the function's `uevent`. `None` with a warning naming
    /// `uevent` when it is missing, unreadable or garbled, or the device vanished.
    fn identity(&mut self, dir: &DirFd) -> Option<PciIdentity> {
        let path = dir.join("uevent");
        match dir.read_attr("uevent") {
            Ok(Some(raw)) => match PciIdentity::from_uevent(&raw) {
                Ok(id) => Some(id),
                Err(msg) => {
                    self.warn(path, WarningKind::Invalid, format!("{msg}; device skipped"));
                    None
                }
            },
            // The directory may have been removed since it was listed: ask its path.
            Ok(None) if dir.path().is_dir() => {
                self.warn(path, WarningKind::Invalid, "missing; device skipped");
                None
            }
            Ok(None) => {
                let msg = "no such device (removed during the scan, or a dangling link); skipped";
                self.warn(dir.path(), WarningKind::Vanished, msg);
                None
            }
            Err(e) => {
                self.io_warn(&path, &e, "device skipped");
                None
            }
        }
    }

    /// An attribute that may be absent; warns only when it exists but cannot be read.
    fn optional_attr(&mut self, dir: &DirFd, name: &str) -> Option<String> {
        dir.read_attr(name).unwrap_or_else(|e| {
            self.io_warn(&dir.join(name), &e, "ignored");
            None
        })
    }

    /// The target name of a link that may be absent; warns when it cannot be read.
    fn optional_link(&mut self, dir: &DirFd, name: &str) -> Option<String> {
        dir.link_name(name).unwrap_or_else(|e| {
            self.io_warn(&dir.join(name), &e, "ignored");
            None
        })
    }

    /// A subdirectory that may be absent, opened and listed; warns when it cannot be listed.
    fn optional_list(&mut self, dir: &DirFd, name: &str) -> Option<(DirFd, Vec<String>)> {
        dir.list(name).unwrap_or_else(|e| {
            let path = if name == "." {
                dir.path().to_path_buf()
            } else {
                dir.join(name)
            };
            self.io_warn(&path, &e, "ignored");
            None
        })
    }
}

/// `speed` in Mb/s: it fails (EINVAL) while the link is down and reads -1 when unknown, both
/// `None`. Read for PFs only: a VF's `speed` is whatever its PF negotiated (or nothing), and
/// neither upstream's status nor any selector uses it.
fn read_speed(dir: &DirFd) -> Option<u32> {
    match dir.read_attr("speed") {
        Ok(Some(raw)) => raw.parse::<i64>().ok().and_then(|s| u32::try_from(s).ok()),
        _ => None,
    }
}
