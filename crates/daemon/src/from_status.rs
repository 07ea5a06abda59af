//! A host model from a NodeState's `status.interfaces` (what a daemon last reported), so a plan
//! can be computed away from the node (`sriovctl plan --from-status`). Usage is unknown there:
//! no VF counts as in use.

use sriov_host::{HostDevices, InterfaceExt, LinkType, NetDevice, PciAddress, PciDevice, PfDevice, VfDevice};

fn pci(
    address: PciAddress,
    vendor: &str,
    device: &str,
    driver: &str,
    netdev: Option<NetDevice>,
) -> PciDevice {
    PciDevice {
        address,
        vendor: vendor.to_string(),
        device: device.to_string(),
        class: "020000".into(),
        driver: (!driver.is_empty()).then(|| driver.to_string()),
        numa_node: None,
        iommu_group: None,
        vfio_dev: None,
        netdevs: netdev.into_iter().collect(),
        rdma_devices: vec![],
        acpi_index: None,
    }
}

fn netdev(name: &str, mac: &str, mtu: i32, link_type: &str) -> Option<NetDevice> {
    (!name.is_empty()).then(|| NetDevice {
        name: name.to_string(),
        mac: mac.to_string(),
        mtu: mtu.max(0) as u32,
        link_type: if link_type.eq_ignore_ascii_case("ib") {
            LinkType::Infiniband
        } else {
            LinkType::Ether
        },
        ..NetDevice::default()
    })
}

/// PFs (and their VFs) as the status lists them; entries with a bad PCI address are skipped.
pub fn host_from_status(interfaces: &[InterfaceExt]) -> HostDevices {
    let mut pfs: Vec<PfDevice> = interfaces
        .iter()
        .filter_map(|i| {
            let addr: PciAddress = i.pci_address.parse().ok()?;
            let vfs = i
                .vfs
                .iter()
                .filter_map(|v| {
                    let va: PciAddress = v.pci_address.parse().ok()?;
                    let nd = netdev(&v.name, &v.mac, v.mtu, "");
                    Some(VfDevice {
                        pci: pci(va, &v.vendor, &v.device_id, &v.driver, nd),
                        vf_index: u32::try_from(v.vf_id).ok(),
                        pf_address: Some(addr.clone()),
                    })
                })
                .collect::<Vec<_>>();
            Some(PfDevice {
                pci: pci(
                    addr,
                    &i.vendor,
                    &i.device_id,
                    &i.driver,
                    netdev(&i.name, &i.mac, i.mtu, &i.link_type),
                ),
                total_vfs: i.total_vfs.max(0) as u32,
                num_vfs: i.num_vfs.max(0) as u32,
                eswitch_mode: (!i.e_switch_mode.is_empty()).then(|| i.e_switch_mode.clone()),
                vfs,
            })
        })
        .collect();
    pfs.sort_by(|a, b| a.pci.address.cmp(&b.pci.address));
    HostDevices {
        pfs,
        orphan_vfs: vec![],
    }
}
