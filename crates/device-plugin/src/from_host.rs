//! Host discovery model ([`sriov_host::HostDevices`]) → candidate [`Device`]s. Pure.
//!
//! * Every PF (any network function without `physfn`) is a candidate; one with VFs is marked
//!   [`Device::pf_with_vfs`] (never a netDevice). VM-passthrough VFs are PFs here, as upstream.
//! * Each VF gets its PF's netdev name (in switchdev mode the uplink representor, the PF netdev
//!   whose `phys_port_name` is `p<N>`), the PF address, the `virtfnN` index, and its own link
//!   type or, without a netdev, the PF's.
//! * Health follows the PF netdev for VFs (an idle VF's own netdev is down until a pod uses it),
//!   the function's own netdev otherwise. See [`crate::health`].
//!
//! Sysfs facts the host model does not carry (accelerators, SFs, uio nodes, no-IOMMU groups,
//! RDMA character devices, pkeys, vDPA) are added by [`crate::sysfs_extra`].

use sriov_host::{HostDevices, LinkType, PciDevice, PfDevice, VfDevice};

use crate::device::{Device, DeviceClass};

/// netlink `EncapType` names for the ARPHRD numbers (vishvananda/netlink's spelling).
pub fn link_type_name(t: LinkType) -> String {
    match t {
        LinkType::Ether => "ether".into(),
        LinkType::Infiniband => "infiniband".into(),
        LinkType::Other(n) => match n {
            0 => "netrom".into(),
            512 => "ppp".into(),
            768 => "ipip".into(),
            772 => "loopback".into(),
            776 => "sit".into(),
            778 => "gre".into(),
            823 => "ip6gre".into(),
            65534 => "none".into(),
            n => format!("unknown{n}"),
        },
    }
}

fn base(pci: &PciDevice) -> Device {
    Device {
        id: pci.address.to_string(),
        class: Some(DeviceClass::Net),
        pci_address: pci.address.to_string(),
        vendor: pci.vendor.clone(),
        device: pci.device.clone(),
        driver: pci.driver.clone(),
        acpi_index: pci.acpi_index.clone(),
        netdev: pci.netdev().map(|n| n.name.clone()),
        link_type: pci.netdev().map(|n| link_type_name(n.link_type)),
        rdma_devices: pci.rdma_devices.clone(),
        numa_node: pci.numa_node.map(i64::from),
        iommu_group: pci.iommu_group,
        health_netdev: pci.netdev().map(|n| n.name.clone()),
        ..Device::default()
    }
}

/// The PF netdev name VFs are matched against by `pfNames`.
fn pf_netdev(pf: &PfDevice) -> Option<&sriov_host::NetDevice> {
    let uplink = |n: &&sriov_host::NetDevice| {
        n.phys_port_name.len() > 1
            && n.phys_port_name.starts_with('p')
            && n.phys_port_name[1..].bytes().all(|b| b.is_ascii_digit())
    };
    if pf.eswitch_mode.as_deref() == Some("switchdev")
        && let Some(n) = pf.pci.netdevs.iter().find(uplink)
    {
        return Some(n);
    }
    pf.pci.netdev()
}

fn vf_device(vf: &VfDevice, pf: Option<&PfDevice>) -> Device {
    let mut d = base(&vf.pci);
    d.pf_address = vf.pf_address.as_ref().map(|a| a.to_string());
    d.index = vf.vf_index;
    if let Some(pf) = pf {
        let pn = pf_netdev(pf);
        d.pf_name = pn.map(|n| n.name.clone());
        if d.link_type.is_none() {
            d.link_type = pn.map(|n| link_type_name(n.link_type));
        }
        d.health_netdev = pn.map(|n| n.name.clone());
        if d.numa_node.is_none() {
            d.numa_node = pf.pci.numa_node.map(i64::from);
        }
    }
    d
}

/// All network candidates, sorted by PCI address.
pub fn devices(host: &HostDevices) -> Vec<Device> {
    let mut out =
        Vec::with_capacity(host.pfs.iter().map(|p| 1 + p.vfs.len()).sum::<usize>() + host.orphan_vfs.len());
    for pf in &host.pfs {
        let mut d = base(&pf.pci);
        d.pf_with_vfs = pf.num_vfs > 0 || !pf.vfs.is_empty();
        out.push(d);
        out.extend(pf.vfs.iter().map(|vf| vf_device(vf, Some(pf))));
    }
    out.extend(host.orphan_vfs.iter().map(|vf| vf_device(vf, None)));
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}
