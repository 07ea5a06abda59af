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
//! degraded and reported as a [`Warning`] naming the path: the `bus/pci/devices/<addr>` entry
//! for problems of the listing itself, else the file under the device's real directory
//! (`<sys>/devices/pci0000:00/.../<addr>/...`), which is what is read.
//!
//! * Vendor, device and class come from the function's `uevent` (`PCI_ID`, `PCI_CLASS`), one
//!   read instead of three; the driver from the `driver` link, IOMMU group from `iommu_group`.
//! * Netdev attributes: from one rtnetlink link dump on a real host ([`NetdevSource`]), from the
//!   `net/<if>/` files otherwise. `speed` is read for PFs only (ethtool's, not in the dump; a VF's
//!   speed is not reported by upstream either).
//!
//! Cost (see `benches/discover.rs`, which also measures the floor: the same kernel calls issued
//! bare): the PF's `virtfnN` links are read once; the VFs, siblings of their PF in sysfs, are read
//! through one descriptor of their parent directory (`<vf-addr>/uevent`, no `open` + `close` of
//! each VF directory), a netdev's files through the descriptor of its `net/` directory. Per VF:
//! 3 `readlinkat`, 2 `stat` (the usually absent `infiniband/` and `acpi_index`, cheaper than a
//! failed `open`), `uevent` and `numa_node` read, `net/` listed, and either 6 netdev files read
//! (33 syscalls) or none (15 syscalls, with the dump). With many VFs they are read on several
//! threads.

mod function;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::model::{HostDevices, PciAddress, PciDevice, PfDevice, VfDevice};
use crate::netlink::{self, LinkTable};
use crate::sysfs::{self, DirFd, SysfsRoot};
use crate::warning::{Warning, WarningKind};

/// The result of one discovery: the devices and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// How a discovery runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscoverOptions {
    /// Threads reading VFs (1: all on the calling thread). Threads only pay off with many VFs and
    /// idle CPUs; a long-running daemon on a small CPU budget is better served by one.
    pub reader_threads: usize,
    /// Where netdev attributes (MAC, MTU, flags, operstate, type, port name) come from.
    pub netdevs: NetdevSource,
}

impl Default for DiscoverOptions {
    /// `SRIOV_DISCOVER_THREADS` when set, else the CPUs available, at most 8; netdevs from
    /// [`NetdevSource::Auto`].
    fn default() -> Self {
        DiscoverOptions {
            reader_threads: reader_threads(),
            netdevs: NetdevSource::Auto,
        }
    }
}

/// Where the attributes of the netdevs found under `<pci>/net/` are read. Which netdevs a
/// function has always comes from that sysfs listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetdevSource {
    /// [`Self::Netlink`] when the sysfs root is a mounted sysfs
    /// ([`SysfsRoot::is_kernel_sysfs`]), else [`Self::Sysfs`]: a fake tree's netdevs do not
    /// exist in any network namespace.
    #[default]
    Auto,
    /// Each netdev's attribute files under `net/<if>/`.
    Sysfs,
    /// One `RTM_GETLINK` dump of the calling thread's network namespace (see
    /// [`crate::netlink`]), matched by name; a listed netdev the dump does not know (another
    /// namespace's sysfs, or a parent device that is not this function) is read from sysfs.
    /// If the dump itself fails, everything is read from sysfs.
    Netlink,
}

impl NetdevSource {
    fn wants_netlink(self, root: &SysfsRoot) -> bool {
        match self {
            NetdevSource::Auto => root.is_kernel_sysfs(),
            NetdevSource::Sysfs => false,
            NetdevSource::Netlink => true,
        }
    }
}

/// Reads every PCI network function under `root` with the default [`DiscoverOptions`]. See the
/// [module docs](self).
pub fn discover(root: &SysfsRoot) -> Result<Discovery, DiscoverError> {
    discover_with(root, &DiscoverOptions::default())
}

/// Reads every PCI network function under `root`. See the [module docs](self).
pub fn discover_with(root: &SysfsRoot, options: &DiscoverOptions) -> Result<Discovery, DiscoverError> {
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
    let links = if options.netdevs.wants_netlink(root) {
        netlink::dump_links().ok()
    } else {
        None
    };
    let mut scan = Scan {
        root,
        warnings: Vec::new(),
        threads: options.reader_threads.max(1),
        links: links.as_ref(),
    };
    let devices = scan.run(&names);
    Ok(Discovery {
        devices,
        warnings: scan.warnings,
    })
}

pub(crate) struct Scan<'a> {
    pub(crate) root: &'a SysfsRoot,
    pub(crate) warnings: Vec<Warning>,
    /// Threads reading VFs.
    threads: usize,
    /// The link dump netdev attributes come from, when [`NetdevSource::Netlink`] applies.
    pub(crate) links: Option<&'a LinkTable>,
}

/// PF or VF: a few attributes are read for PFs only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Pf,
    Vf,
}

/// Vendor, device and class of a function, from one read of its `uevent` (`PCI_ID=8086:10CA`,
/// `PCI_CLASS=20000`) instead of three of `vendor`, `device` and `class`: the kernel fills both
/// from the same `struct pci_dev` fields, and on real sysfs one `uevent` read costs 1.4 times
/// one attribute read, not three times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PciIdentity {
    pub(crate) vendor: String,
    pub(crate) device: String,
    pub(crate) class: String,
}

impl PciIdentity {
    /// Parses a PCI function's `uevent`; the error says which line is missing or garbled.
    pub(crate) fn from_uevent(raw: &str) -> Result<PciIdentity, String> {
        let value = |key: &str| {
            raw.lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        };
        let class = value("PCI_CLASS")
            .filter(|c| (1..=6).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|c| format!("{:0>6}", c.to_ascii_lowercase()))
            .ok_or_else(|| format!("no valid PCI_CLASS (hex class code) in {raw:?}"))?;
        let id = value("PCI_ID");
        let (vendor, device) = id
            .and_then(|id| id.split_once(':'))
            .and_then(|(v, d)| Some((sysfs::parse_hex_id(v, 4)?, sysfs::parse_hex_id(d, 4)?)))
            .ok_or_else(|| format!("no valid PCI_ID (vvvv:dddd) in {raw:?}"))?;
        Ok(PciIdentity {
            vendor,
            device,
            class,
        })
    }
}

/// A VF to read: found through its PF's `virtfnN` link.
struct VfJob {
    pf: usize,
    index: u32,
    addr: PciAddress,
    /// Its real directory (the `virtfnN` target resolved against the PF's real directory),
    /// reached through its parent's descriptor.
    dir: DirFd,
}

/// A function with a `physfn` link that no PF claimed.
struct Unclaimed {
    addr: PciAddress,
    dir: PathBuf,
    identity: PciIdentity,
    physfn: String,
}

/// Below this many VFs, threads cost more than they save.
const PARALLEL_MIN_VFS: usize = 128;
/// VFs per unit of work claimed by a reader thread.
const VF_BLOCK: usize = 32;

/// Threads reading VFs: `SRIOV_DISCOVER_THREADS` when set (1: all on the calling thread), else
/// the CPUs available, at most 8.
fn reader_threads() -> usize {
    std::env::var("SRIOV_DISCOVER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()).min(8))
        .max(1)
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

    /// One pass over `bus/pci/devices` in address order. A VF's address is always above its
    /// PF's (routing ID + offset), so by the time the listing reaches a VF its PF has claimed it
    /// and it costs nothing here; it is read, with all other VFs, in [`Self::read_vfs`].
    fn run(&mut self, names: &[String]) -> HostDevices {
        let listed: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut claimed: HashSet<PciAddress> = HashSet::new();
        let mut pfs: Vec<PfDevice> = Vec::new();
        // PF address -> whether it is SR-IOV capable (false: garbage `sriov_totalvfs`).
        let mut pf_sriov: HashMap<PciAddress, bool> = HashMap::new();
        let mut jobs: Vec<VfJob> = Vec::new();
        let mut unclaimed: Vec<Unclaimed> = Vec::new();
        let mut parents: HashMap<PathBuf, DirFd> = HashMap::new();

        for name in names {
            let link = self.root.pci_device(name);
            let Ok(addr) = name.parse::<PciAddress>() else {
                self.warn(
                    &link,
                    WarningKind::Invalid,
                    "not a PCI address (dddd:bb:dd.f); skipped",
                );
                continue;
            };
            if claimed.contains(&addr) {
                continue;
            }
            let Some(identity) = self.network_identity(&link) else {
                continue;
            };
            let dir = sysfs::resolve_link(&link).unwrap_or_else(|_| link.clone());
            let physfn_path = dir.join("physfn");
            let physfn = sysfs::link_name(&physfn_path).unwrap_or_else(|e| {
                self.io_warn(&physfn_path, &e, "function treated as a PF");
                None
            });
            if let Some(physfn) = physfn {
                unclaimed.push(Unclaimed {
                    addr,
                    dir,
                    identity,
                    physfn,
                });
                continue;
            }
            let Some(pci) = self.read_function(&dir, &addr, Some(identity), Role::Pf) else {
                continue;
            };
            let eswitch_mode = pci.netdev().and_then(|n| {
                sysfs::read_attr(&dir.join("net").join(&n.name).join("compat/devlink/mode"))
                    .ok()
                    .flatten()
            });
            let sriov = self.read_sriov(&dir);
            let pf_idx = pfs.len();
            for (index, target) in &sriov.virtfns {
                let vf_link = dir.join(format!("virtfn{index}"));
                let name = target
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                let Ok(vf_addr) = name.parse::<PciAddress>() else {
                    let msg = format!("link target {target:?} is not a PCI address; VF skipped");
                    self.warn(&vf_link, WarningKind::Invalid, msg);
                    continue;
                };
                claimed.insert(vf_addr.clone());
                let vf_dir = sysfs::normalize(&dir.join(target));
                // Not listed: created after the listing, or gone. Only then is a check worth it.
                if !listed.contains(vf_addr.as_str()) && std::fs::symlink_metadata(&vf_dir).is_err() {
                    let msg = format!(
                        "points to {}, which does not exist (VF removed?); VF skipped",
                        vf_dir.display()
                    );
                    self.warn(&vf_link, WarningKind::Vanished, msg);
                    continue;
                }
                // VFs are siblings of their PF (the kernel gives a VF its PF's parent): one
                // descriptor of that parent serves them all.
                let parent = vf_dir.parent().unwrap_or(Path::new("/")).to_path_buf();
                let base = match parents.get(&parent) {
                    Some(b) => b.clone(),
                    None => match DirFd::open(&parent) {
                        Ok(Some(b)) => {
                            parents.insert(parent, b.clone());
                            b
                        }
                        Ok(None) => {
                            let msg = format!(
                                "points into {}, which does not exist; VF skipped",
                                parent.display()
                            );
                            self.warn(&vf_link, WarningKind::Vanished, msg);
                            continue;
                        }
                        Err(e) => {
                            self.io_warn(&parent, &e, "VF skipped");
                            continue;
                        }
                    },
                };
                jobs.push(VfJob {
                    pf: pf_idx,
                    index: *index,
                    addr: vf_addr,
                    dir: base.sub(&name),
                });
            }
            pf_sriov.insert(addr, sriov.usable);
            pfs.push(PfDevice {
                pci,
                total_vfs: sriov.total,
                num_vfs: sriov.num,
                eswitch_mode,
                vfs: Vec::new(),
            });
        }

        for (job, vf) in jobs.iter().zip(self.read_vfs(&jobs)) {
            let Some(pci) = vf else { continue };
            let pf_address = Some(pfs[job.pf].pci.address.clone());
            pfs[job.pf].vfs.push(VfDevice {
                pci,
                vf_index: Some(job.index),
                pf_address,
            });
        }

        let mut orphan_vfs = Vec::new();
        for u in unclaimed {
            let pf_address: Option<PciAddress> = u.physfn.parse().ok();
            if pf_address.is_none() {
                let msg = format!(
                    "link target {:?} is not a PCI address; VF reported without its PF",
                    u.physfn
                );
                self.warn(u.dir.join("physfn"), WarningKind::Invalid, msg);
            }
            match pf_address.as_ref().and_then(|a| pf_sriov.get(a)) {
                // The PF was treated as not SR-IOV capable: its warning already says so.
                Some(false) => continue,
                Some(true) => {
                    let msg = format!(
                        "VF's PF {} has no virtfn link to it; VF reported without an index",
                        u.physfn
                    );
                    self.warn(&u.dir, WarningKind::Inconsistent, msg);
                }
                None => {}
            }
            let Some(pci) = self.read_function(&u.dir, &u.addr, Some(u.identity), Role::Vf) else {
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

    /// The identity of a listed function when it is a network function (class `0x02xxxx`),
    /// from its `uevent`.
    fn network_identity(&mut self, link: &Path) -> Option<PciIdentity> {
        let path = link.join("uevent");
        let raw = match sysfs::read_attr(&path) {
            Ok(Some(raw)) => raw,
            Ok(None) if link.is_dir() => {
                self.warn(&path, WarningKind::Invalid, "missing; device skipped");
                return None;
            }
            Ok(None) => {
                let msg = "no such device (removed during the scan, or a dangling link); skipped";
                self.warn(link, WarningKind::Vanished, msg);
                return None;
            }
            Err(e) => {
                self.io_warn(&path, &e, "device skipped");
                return None;
            }
        };
        match PciIdentity::from_uevent(&raw) {
            Ok(id) => id.class.starts_with("02").then_some(id),
            Err(msg) => {
                self.warn(&path, WarningKind::Invalid, format!("{msg}; device skipped"));
                None
            }
        }
    }

    /// Reads the VFs, on several threads when there are many; results in `jobs` order and
    /// warnings in the order a sequential scan would give them.
    ///
    /// The VFs are cut into small blocks that the calling thread and its helpers claim one at a
    /// time, so a helper that the scheduler leaves waiting holds up at most one block.
    fn read_vfs(&mut self, jobs: &[VfJob]) -> Vec<Option<PciDevice>> {
        let threads = self.threads;
        if threads < 2 || jobs.len() < PARALLEL_MIN_VFS {
            return jobs
                .iter()
                .map(|j| self.read_function_at(&j.dir, &j.addr, None, Role::Vf))
                .collect();
        }
        let blocks: Vec<&[VfJob]> = jobs.chunks(VF_BLOCK).collect();
        let next = AtomicUsize::new(0);
        let root = self.root;
        let links = self.links;
        let work = || {
            let mut scan = Scan {
                root,
                warnings: Vec::new(),
                threads: 1,
                links,
            };
            let mut done = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                let Some(block) = blocks.get(b) else { break };
                let before = scan.warnings.len();
                let vfs: Vec<_> = block
                    .iter()
                    .map(|j| scan.read_function_at(&j.dir, &j.addr, None, Role::Vf))
                    .collect();
                done.push((b, vfs, scan.warnings.split_off(before)));
            }
            done
        };
        let mut done = std::thread::scope(|s| {
            // A helper that cannot be spawned (resource limits) is simply not there.
            let helpers: Vec<_> = (1..threads)
                .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, work).ok())
                .collect();
            let mut done = work();
            for h in helpers {
                // A helper cannot panic (discovery does not); if it did, its blocks are missing
                // and are read again below.
                done.extend(h.join().unwrap_or_default());
            }
            done
        });
        done.sort_by_key(|(b, _, _)| *b);
        let mut out = Vec::with_capacity(jobs.len());
        let mut have = done.into_iter().peekable();
        for (b, block) in blocks.iter().enumerate() {
            match have.next_if(|(d, _, _)| *d == b) {
                Some((_, vfs, warnings)) => {
                    out.extend(vfs);
                    self.warnings.extend(warnings);
                }
                None => out.extend(
                    block
                        .iter()
                        .map(|j| self.read_function_at(&j.dir, &j.addr, None, Role::Vf)),
                ),
            }
        }
        out
    }
}

/// A PF's SR-IOV attributes.
struct Sriov {
    total: u32,
    num: u32,
    /// False when `sriov_totalvfs` is garbage: the device is then treated as not SR-IOV capable.
    usable: bool,
    /// `(N, link target)` of each `virtfnN` (`../0000:01:10.0`), sorted by N.
    virtfns: Vec<(u32, PathBuf)>,
}
