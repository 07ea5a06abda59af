//! Plain data describing what discovery found. No I/O here: every decision elsewhere in
//! sriov-rs (pool selection, node-state rendering, plans) is a function over these values.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A PCI address in the kernel's canonical form `dddd:bb:dd.f` (lower-case hex).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PciAddress(String);

/// A string that is not a PCI address `dddd:bb:dd.f`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid PCI address {0:?}: expected dddd:bb:dd.f (hex domain:bus:device.function)")]
pub struct InvalidPciAddress(pub String);

impl PciAddress {
    /// The address as the kernel spells it, e.g. `0000:01:10.2`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PciAddress {
    type Err = InvalidPciAddress;

    /// Accepts exactly `dddd:bb:dd.f` (device ≤ 0x1f, function ≤ 7), any hex case; stores lower case.
    /// Rejects anything path-like, so a parsed address is always safe to join onto a sysfs path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidPciAddress(s.to_string());
        let b = s.as_bytes();
        if b.len() != 12 || b[4] != b':' || b[7] != b':' || b[10] != b'.' {
            return Err(err());
        }
        let hex = |r: std::ops::Range<usize>| {
            let part = &s[r];
            if part.bytes().all(|c| c.is_ascii_hexdigit()) {
                u32::from_str_radix(part, 16).ok()
            } else {
                None
            }
        };
        let (Some(_), Some(_), Some(dev), Some(func)) = (hex(0..4), hex(5..7), hex(8..10), hex(11..12))
        else {
            return Err(err());
        };
        if dev > 0x1f || func > 7 {
            return Err(err());
        }
        Ok(PciAddress(s.to_ascii_lowercase()))
    }
}

impl TryFrom<String> for PciAddress {
    type Error = InvalidPciAddress;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PciAddress> for String {
    fn from(a: PciAddress) -> String {
        a.0
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Link layer of a netdev, from `/sys/class/net/<if>/type` (1 = ether, 32 = infiniband).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    #[default]
    Ether,
    Infiniband,
    /// Any other ARPHRD type number.
    Other(u16),
}

/// One kernel network interface bound to a PCI function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NetDevice {
    /// Interface name, e.g. `eth1` (the entry under `<pci>/net/`).
    pub name: String,
    /// `address`, lower-case `aa:bb:..`; for InfiniBand the 20-byte hardware address.
    pub mac: String,
    /// `mtu`.
    pub mtu: u32,
    /// `speed` in Mb/s; `None` when the kernel reports -1 or refuses to read (link down, VFs).
    pub speed_mbps: Option<u32>,
    /// From `type`.
    pub link_type: LinkType,
    /// `IFF_UP` from `flags`: the administrator brought the link up.
    pub admin_up: bool,
    /// `operstate` (`up`, `down`, `unknown`, ...).
    pub oper_state: String,
    /// `phys_port_name` when the driver exposes it (switchdev representors, netdevsim); else empty.
    pub phys_port_name: String,
}

/// What sysfs says about one PCI function, PF or VF alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciDevice {
    pub address: PciAddress,
    /// 4 lower-case hex digits without `0x`, e.g. `8086` (as upstream's device plugin compares them).
    pub vendor: String,
    /// 4 lower-case hex digits without `0x`, e.g. `10ca`.
    pub device: String,
    /// 6 lower-case hex digits without `0x`, e.g. `020000`.
    pub class: String,
    /// Name of the bound driver (target of the `driver` link), `None` when unbound.
    pub driver: Option<String>,
    /// `numa_node`; `None` when the kernel reports -1 or the file is absent.
    pub numa_node: Option<i32>,
    /// Number of the IOMMU group (target of the `iommu_group` link).
    pub iommu_group: Option<u32>,
    /// `<dev root>/vfio/<group>` (`/dev/vfio/<group>` on a real host) when the function is bound
    /// to vfio-pci and that node exists.
    pub vfio_dev: Option<PathBuf>,
    /// Netdevs under `<pci>/net/` (usually one; none when bound to vfio-pci).
    pub netdevs: Vec<NetDevice>,
    /// RDMA devices under `<pci>/infiniband/` (e.g. `mlx5_0`).
    pub rdma_devices: Vec<String>,
    /// `acpi_index` when present (firmware slot index, a device plugin selector).
    pub acpi_index: Option<String>,
}

impl PciDevice {
    /// First netdev, if any.
    pub fn netdev(&self) -> Option<&NetDevice> {
        self.netdevs.first()
    }
}

/// A virtual function. Its index comes from the PF's `virtfnN` link, never from its address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfDevice {
    pub pci: PciDevice,
    /// N of the PF's `virtfnN` link pointing at this VF; `None` for a VF whose `physfn` PF is not
    /// visible (see [`HostDevices::orphan_vfs`]).
    pub vf_index: Option<u32>,
    /// The PF (target of `physfn`), when visible.
    pub pf_address: Option<PciAddress>,
}

/// A physical network function: any PCI network device (class 0x02xx) without a `physfn` link,
/// SR-IOV capable or not. Inside a VM, a VF passed through has no `physfn` (the guest sees a
/// plain NIC), so it is a `PfDevice` with `total_vfs` 0 there, as upstream sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PfDevice {
    pub pci: PciDevice,
    /// `sriov_totalvfs`; 0 when the device is not SR-IOV capable.
    pub total_vfs: u32,
    /// `sriov_numvfs`; 0 when not SR-IOV capable.
    pub num_vfs: u32,
    /// `legacy` / `switchdev` where the kernel exposes it, else `None`.
    pub eswitch_mode: Option<String>,
    /// VFs in `virtfnN` order.
    pub vfs: Vec<VfDevice>,
}

impl PfDevice {
    /// True when the PF can have VFs.
    pub fn sriov_capable(&self) -> bool {
        self.total_vfs > 0
    }
}

/// Everything discovery found on one host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDevices {
    /// Physical network functions (PCI class 0x02), sorted by PCI address.
    pub pfs: Vec<PfDevice>,
    /// VFs (functions with a `physfn` link) whose PF is not visible, sorted by PCI address. VFs
    /// passed into a VM have no `physfn` there and are in `pfs` instead.
    pub orphan_vfs: Vec<VfDevice>,
}
