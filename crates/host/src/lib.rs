//! The SR-IOV hardware of one node, as the kernel exposes it in sysfs.
//!
//! Everything here takes the sysfs root as a parameter ([`SysfsRoot`]), so tests lay out fake
//! trees (see [`fixture`]) and the lab reads the real `/sys` through the same code.

pub mod model;
pub mod status;

pub use model::{HostDevices, LinkType, NetDevice, PciAddress, PciDevice, PfDevice, VfDevice};
pub use status::{InterfaceExt, VirtualFunction};
