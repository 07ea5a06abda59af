//! The fast "nothing changed" check: instead of a full discovery, re-read only the values the
//! plan of this spec depends on (numVfs of every SR-IOV PF, the driver of every VF in a group,
//! the MTUs the spec sets) and compare them with the last full discovery. Equal → the cached
//! discovery is still what the plan would see.

use sriov_api::NodeStateSpec;
use sriov_host::HostDevices;

use crate::host::{Host, Probe};
use crate::spec_error::groups;

/// The probes for `spec` on a host last seen as `devices`.
pub fn probes(spec: &NodeStateSpec, devices: &HostDevices) -> Vec<Probe> {
    let mut out: Vec<Probe> = devices
        .pfs
        .iter()
        .filter(|p| p.sriov_capable())
        .map(|p| Probe::NumVfs(p.pci.address.clone()))
        .collect();
    for iface in &spec.interfaces {
        let Some(pf) = devices.pfs.iter().find(|p| {
            p.pci
                .address
                .as_str()
                .eq_ignore_ascii_case(iface.pci_address.trim())
        }) else {
            continue;
        };
        if iface.mtu > 0
            && let Some(nd) = pf.pci.netdev()
        {
            out.push(Probe::Mtu(nd.name.clone()));
        }
        for g in groups(iface) {
            for vf in pf
                .vfs
                .iter()
                .filter(|v| v.vf_index.is_some_and(|i| g.range.contains(&i)))
            {
                out.push(Probe::Driver(vf.pci.address.clone()));
                if g.mtu > 0
                    && let Some(nd) = vf.pci.netdev()
                {
                    out.push(Probe::Mtu(nd.name.clone()));
                }
            }
        }
    }
    out
}

/// The value `probe` had when `devices` was discovered.
pub fn expected(devices: &HostDevices, probe: &Probe) -> Option<String> {
    let all = || {
        devices
            .pfs
            .iter()
            .flat_map(|p| std::iter::once(&p.pci).chain(p.vfs.iter().map(|v| &v.pci)))
    };
    match probe {
        Probe::NumVfs(a) => devices
            .pfs
            .iter()
            .find(|p| &p.pci.address == a)
            .map(|p| p.num_vfs.to_string()),
        Probe::Driver(a) => all()
            .find(|p| &p.address == a)
            .map(|p| p.driver.clone().unwrap_or_default()),
        Probe::Mtu(n) => all()
            .flat_map(|p| p.netdevs.iter())
            .find(|d| &d.name == n)
            .map(|d| d.mtu.to_string()),
    }
}

/// True when every value the plan of `spec` reads is as in `devices`.
pub fn unchanged(host: &dyn Host, spec: &NodeStateSpec, devices: &HostDevices) -> bool {
    let probes = probes(spec, devices);
    let now = host.probe_values(&probes);
    probes
        .iter()
        .zip(now)
        .all(|(p, v)| v.is_some() && v == expected(devices, p))
}
