//! Shared helpers for the host crate's integration tests.
#![allow(dead_code)]

use sriov_host::fixture::{Fixture, FixtureHost};
use sriov_host::{Discovery, PfDevice, discover};

/// Builds a fixture in a fresh temporary directory.
pub fn build(shape: impl FnOnce(FixtureHost) -> FixtureHost) -> (tempfile::TempDir, Fixture) {
    let dir = tempfile::tempdir_in(sriov_host::fixture::scratch_base()).expect("tempdir");
    let fx = shape(FixtureHost::new(dir.path()))
        .build()
        .expect("fixture builds");
    (dir, fx)
}

/// Discovers a fixture; discovery itself must not fail.
pub fn scan(fx: &Fixture) -> Discovery {
    discover(fx.root()).expect("discovery runs")
}

/// Discovers a fixture that must give no warnings.
pub fn scan_clean(fx: &Fixture) -> Discovery {
    let d = scan(fx);
    assert!(d.warnings.is_empty(), "unexpected warnings: {:#?}", d.warnings);
    d
}

pub fn pf<'a>(d: &'a Discovery, addr: &str) -> &'a PfDevice {
    d.devices
        .pfs
        .iter()
        .find(|p| p.pci.address.as_str() == addr)
        .unwrap_or_else(|| panic!("no PF {addr}"))
}

pub fn pf_addrs(d: &Discovery) -> Vec<&str> {
    d.devices.pfs.iter().map(|p| p.pci.address.as_str()).collect()
}

pub fn vf_summary(p: &PfDevice) -> Vec<(u32, String, Option<String>, Option<String>)> {
    p.vfs
        .iter()
        .map(|v| {
            (
                v.vf_index.expect("VF of a PF has an index"),
                v.pci.address.to_string(),
                v.pci.driver.clone(),
                v.pci.netdev().map(|n| n.name.clone()),
            )
        })
        .collect()
}
