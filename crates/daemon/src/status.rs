//! `status.interfaces` from discovery.

use sriov_host::{HostDevices, InterfaceExt};

/// SR-IOV capable PFs in upstream's status shape.
pub fn interfaces(devices: &HostDevices) -> Vec<InterfaceExt> {
    sriov_host::to_status(devices)
}
