//! The host as the apply shell sees it: discovery plus the few writes that change SR-IOV state.
//!
//! [`Host`] is a trait so apply can run against the real sysfs ([`crate::sysfs_host::SysfsHost`],
//! root as a parameter: fixture trees in tests, `/sys` in the lab) or an in-memory kernel
//! (`crate::fake::FakeHost`, feature `test-hooks`) that injects faults. Every method that changes the host is one
//! counted write.

use std::io;
use std::path::PathBuf;

use sriov_host::{HostDevices, PciAddress};

use crate::plan::PlanContext;

/// A host operation that failed; names the file or device and the value.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("writing {value:?} to {}: {source}{}", path.display(), hint(source))]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("discovery failed: {0}")]
    Discover(String),
    #[error("{command}: {detail}")]
    Command { command: String, detail: String },
}

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(16) => " (EBUSY: VFs must go to 0 first, or a VF is still in use)",
        Some(34) => " (ERANGE: more VFs than sriov_totalvfs)",
        Some(12) => " (ENOMEM: the PF's BAR space is too small, kernel argument pci=realloc may help)",
        _ => "",
    }
}

/// One cheap read of a value the plan depends on (the fast "nothing changed" check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `sriov_numvfs` of a PF.
    NumVfs(PciAddress),
    /// The driver bound to a function (name), empty when none.
    Driver(PciAddress),
    /// The MTU of a netdev.
    Mtu(String),
}

/// Discovery and the writes apply needs. Implementations are shared between PF threads.
pub trait Host: Sync {
    /// Reads every PF and VF.
    fn discover(&self) -> Result<HostDevices, HostError>;
    /// What discovery cannot say: which VFs are in use, whether the IOMMU is on.
    fn context(&self, devices: &HostDevices) -> PlanContext;
    /// Writes `sriov_numvfs` once.
    fn write_num_vfs(&self, pf: &PciAddress, n: u32) -> Result<(), HostError>;
    /// Number of `virtfnN` links of `pf` now.
    fn vf_count(&self, pf: &PciAddress) -> u32;
    /// `sriov_drivers_autoprobe`: new VFs get their default driver by themselves.
    fn autoprobe(&self, pf: &PciAddress) -> bool;
    /// Address of VF `index` of `pf` (the `virtfnN` link).
    fn vf_address(&self, pf: &PciAddress, index: u32) -> Option<PciAddress>;
    /// The driver bound to a function now.
    fn driver(&self, dev: &PciAddress) -> Option<String>;
    /// Writes `driver_override` (`None` clears it).
    fn set_driver_override(&self, dev: &PciAddress, driver: Option<&str>) -> Result<(), HostError>;
    /// Unbinds `dev` from its driver.
    fn unbind(&self, dev: &PciAddress, driver: &str) -> Result<(), HostError>;
    /// Writes `dev` to `drivers_probe`.
    fn probe(&self, dev: &PciAddress) -> Result<(), HostError>;
    /// Loads a driver module when it is not there (vfio-pci). Not counted: no device changes.
    fn ensure_driver(&self, driver: &str);
    /// The first netdev of a function now.
    fn netdev(&self, dev: &PciAddress) -> Option<String>;
    /// Sets a netdev's MTU.
    fn set_mtu(&self, netdev: &str, mtu: u32) -> Result<(), HostError>;
    /// Sets the e-switch mode of a PF (devlink).
    fn set_eswitch_mode(&self, pf: &PciAddress, mode: &str) -> Result<(), HostError>;
    /// Reads each probe's value now (`None` when it cannot be read).
    fn probe_values(&self, probes: &[Probe]) -> Vec<Option<String>>;
    /// Host writes so far (every method above that changes the host).
    fn writes(&self) -> u64;
}
