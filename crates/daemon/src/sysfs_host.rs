//! [`Host`] over a real sysfs tree (root as a parameter): `/sys` on a node, a fixture in tests.
//!
//! Writes: `sriov_numvfs`, `driver_override`, `driver/unbind`, `bus/pci/drivers_probe`,
//! `class/net/<if>/mtu`; the e-switch mode goes through `devlink` (iproute2). Each is counted.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use sriov_host::{HostDevices, PciAddress, SysfsRoot};

use crate::host::{Host, HostError, Probe};
use crate::plan::PlanContext;
use crate::usage;

/// The real host. `proc_root` is scanned for open `/dev/vfio` groups (VFs in use).
#[derive(Debug)]
pub struct SysfsHost {
    root: SysfsRoot,
    proc_root: PathBuf,
    writes: AtomicU64,
    /// Use `devlink` for e-switch modes (off in fixture tests: no real devices there).
    devlink: bool,
}

impl SysfsHost {
    /// The host under `root`, with `/proc` for usage and devlink enabled when `root` is a mounted
    /// sysfs ([`SysfsRoot::is_kernel_sysfs`]; a fixture tree has no devices devlink knows).
    pub fn new(root: SysfsRoot) -> Self {
        let devlink = root.is_kernel_sysfs();
        SysfsHost {
            root,
            proc_root: PathBuf::from("/proc"),
            writes: AtomicU64::new(0),
            devlink,
        }
    }

    /// Scans `proc` instead of `/proc` for processes holding VFIO groups.
    pub fn with_proc_root(mut self, proc_root: impl Into<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self
    }

    /// The sysfs root in use.
    pub fn root(&self) -> &SysfsRoot {
        &self.root
    }

    fn write(&self, path: PathBuf, value: &str) -> Result<(), HostError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(path = %path.display(), value, "sysfs write");
        // One write(2) of the whole value: sysfs stores take the value in a single call.
        let res = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()));
        res.map_err(|source| HostError::Write {
            path,
            value: value.trim_end().to_string(),
            source,
        })
    }

    /// One counted write of `value` to `path` (for devices outside the PCI bus, e.g. netdevsim).
    pub fn write_path(&self, path: PathBuf, value: &str) -> Result<(), HostError> {
        self.write(path, value)
    }

    /// `devlink dev eswitch set <handle> mode <mode>`, one counted write.
    pub fn devlink_eswitch(&self, handle: &str, mode: &str) -> Result<(), HostError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let command = format!("devlink dev eswitch set {handle} mode {mode}");
        let out = Command::new("devlink")
            .args(["dev", "eswitch", "set", handle, "mode", mode])
            .output()
            .map_err(|e| HostError::Command {
                command: command.clone(),
                detail: e.to_string(),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(HostError::Command {
                command,
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    fn dev(&self, addr: &PciAddress) -> PathBuf {
        self.root.pci_device(addr.as_str())
    }

    fn devlink_mode(&self, pf: &PciAddress) -> Option<String> {
        let out = Command::new("devlink")
            .args(["dev", "eswitch", "show", &format!("pci/{pf}")])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        words.find(|w| *w == "mode")?;
        words.next().map(str::to_string)
    }
}

impl Host for SysfsHost {
    fn discover(&self) -> Result<HostDevices, HostError> {
        let d = sriov_host::discover(&self.root).map_err(|e| HostError::Discover(e.to_string()))?;
        for w in &d.warnings {
            tracing::debug!(warning = %w, "discovery");
        }
        let mut devices = d.devices;
        if self.devlink {
            // sysfs shows the e-switch only for some drivers (mlx5 compat); ask devlink for the rest.
            for pf in devices
                .pfs
                .iter_mut()
                .filter(|p| p.eswitch_mode.is_none() && p.sriov_capable())
            {
                pf.eswitch_mode = self.devlink_mode(&pf.pci.address);
            }
        }
        Ok(devices)
    }

    fn context(&self, devices: &HostDevices) -> PlanContext {
        PlanContext {
            vfs_in_use: usage::vfs_in_use(devices, &self.proc_root, self.root.dev()),
            iommu_enabled: usage::iommu_enabled(self.root.sys()),
            reset_only: None,
        }
    }

    fn write_num_vfs(&self, pf: &PciAddress, n: u32) -> Result<(), HostError> {
        self.write(self.dev(pf).join("sriov_numvfs"), &n.to_string())
    }

    fn vf_count(&self, pf: &PciAddress) -> u32 {
        let Ok(rd) = fs::read_dir(self.dev(pf)) else {
            return 0;
        };
        rd.filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.strip_prefix("virtfn").is_some_and(|i| i.parse::<u32>().is_ok()))
            })
            .count() as u32
    }

    fn autoprobe(&self, pf: &PciAddress) -> bool {
        fs::read_to_string(self.dev(pf).join("sriov_drivers_autoprobe")).is_ok_and(|s| s.trim() == "1")
    }

    fn vf_address(&self, pf: &PciAddress, index: u32) -> Option<PciAddress> {
        sriov_host::sysfs::link_name(&self.dev(pf).join(format!("virtfn{index}")))
            .ok()
            .flatten()?
            .parse()
            .ok()
    }

    fn driver(&self, dev: &PciAddress) -> Option<String> {
        self.root.driver(dev.as_str())
    }

    fn set_driver_override(&self, dev: &PciAddress, driver: Option<&str>) -> Result<(), HostError> {
        self.write(
            self.dev(dev).join("driver_override"),
            &format!("{}\n", driver.unwrap_or("")),
        )
    }

    fn unbind(&self, dev: &PciAddress, driver: &str) -> Result<(), HostError> {
        self.write(
            self.root
                .sys()
                .join("bus/pci/drivers")
                .join(driver)
                .join("unbind"),
            dev.as_str(),
        )
    }

    fn probe(&self, dev: &PciAddress) -> Result<(), HostError> {
        self.write(self.root.sys().join("bus/pci/drivers_probe"), dev.as_str())
    }

    fn ensure_driver(&self, driver: &str) {
        if self.root.sys().join("bus/pci/drivers").join(driver).exists() || !self.devlink {
            return;
        }
        match Command::new("modprobe").arg(driver).status() {
            Ok(s) if s.success() => {}
            other => tracing::warn!(driver, ?other, "modprobe failed"),
        }
    }

    fn netdev(&self, dev: &PciAddress) -> Option<String> {
        self.root.first_netdev(dev.as_str())
    }

    fn set_mtu(&self, netdev: &str, mtu: u32) -> Result<(), HostError> {
        self.write(self.root.class_net(netdev).join("mtu"), &mtu.to_string())
    }

    fn set_eswitch_mode(&self, pf: &PciAddress, mode: &str) -> Result<(), HostError> {
        self.devlink_eswitch(&format!("pci/{pf}"), mode)
    }

    fn probe_values(&self, probes: &[Probe]) -> Vec<Option<String>> {
        probes
            .iter()
            .map(|p| match p {
                Probe::NumVfs(pf) => fs::read_to_string(self.dev(pf).join("sriov_numvfs"))
                    .ok()
                    .map(|s| s.trim().to_string()),
                Probe::Driver(dev) => Some(self.driver(dev).unwrap_or_default()),
                Probe::Mtu(nd) => fs::read_to_string(self.root.class_net(nd).join("mtu"))
                    .ok()
                    .map(|s| s.trim().to_string()),
            })
            .collect()
    }

    fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}
