//! The [`Host`](crate::Host) the binaries (the daemon, `sriovctl plan`) read and configure: the
//! sysfs tree, plus netdevsim devices when built with the lab's `netdevsim` feature. One place
//! decides, so the binaries cannot disagree about which devices a node has.

use sriov_host::SysfsRoot;

use crate::sysfs_host::SysfsHost;

/// What [`node_host`] returns in this build.
#[cfg(feature = "netdevsim")]
pub type NodeHost = crate::netdevsim::WithNetdevsim;
/// What [`node_host`] returns in this build.
#[cfg(not(feature = "netdevsim"))]
pub type NodeHost = SysfsHost;

/// The node's host under `root`.
pub fn node_host(root: SysfsRoot) -> NodeHost {
    #[cfg(feature = "netdevsim")]
    {
        crate::netdevsim::WithNetdevsim {
            inner: SysfsHost::new(root),
        }
    }
    #[cfg(not(feature = "netdevsim"))]
    {
        SysfsHost::new(root)
    }
}
