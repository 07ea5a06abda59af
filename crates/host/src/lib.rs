//! The SR-IOV hardware of one node, as the kernel exposes it in sysfs.
//!
//! Everything here takes the sysfs root as a parameter ([`SysfsRoot`]), so tests lay out fake
//! trees (see [`fixture`]) and the lab reads the real `/sys` through the same code.
//!
//! * [`discover`] reads the tree into [`HostDevices`] plus [`Warning`]s.
//! * [`to_status`] turns that into upstream's `SriovNetworkNodeState.status.interfaces`.
//! * [`fixture`] lays out fake sysfs trees the way the kernel does, for tests everywhere.

pub mod discover;
pub mod drivers;
pub mod fixture;
pub mod model;
pub mod netlink;
pub mod paths;
pub mod pf_range;
pub mod status;
pub mod sysfs;
pub mod warning;

pub use discover::{DiscoverError, DiscoverOptions, Discovery, NetdevSource, discover, discover_with};
pub use model::{HostDevices, LinkType, NetDevice, PciAddress, PciDevice, PfDevice, VfDevice};
pub use status::{InterfaceExt, VirtualFunction, to_status, to_status_virtual};
pub use sysfs::{SYSFS_ROOT_ENV, SysfsRoot};
pub use warning::{Warning, WarningKind};
