//! Device builders for unit tests.
#![cfg(test)]

use crate::device::{Device, DeviceClass};

/// An igbvf VF `0000:01:<dev>.<fn>`-style device with the given id, PF name/address and index.
pub fn vf(id: &str, pf: &str, pf_addr: &str, index: u32) -> Device {
    Device {
        id: id.into(),
        class: Some(DeviceClass::Net),
        pci_address: id.into(),
        vendor: "8086".into(),
        device: "10ca".into(),
        driver: Some("igbvf".into()),
        pf_name: Some(pf.into()),
        pf_address: Some(pf_addr.into()),
        index: Some(index),
        netdev: Some(format!("{pf}v{index}")),
        link_type: Some("ether".into()),
        numa_node: Some(0),
        iommu_group: Some(10 + index),
        health_netdev: Some(pf.into()),
        ..Device::default()
    }
}

/// A PF (no VFs unless `with_vfs`).
pub fn pf(id: &str, netdev: &str, with_vfs: bool) -> Device {
    Device {
        id: id.into(),
        class: Some(DeviceClass::Net),
        pci_address: id.into(),
        vendor: "8086".into(),
        device: "10c9".into(),
        driver: Some("igb".into()),
        pf_with_vfs: with_vfs,
        netdev: Some(netdev.into()),
        link_type: Some("ether".into()),
        health_netdev: Some(netdev.into()),
        ..Device::default()
    }
}

pub fn with(mut d: Device, f: impl FnOnce(&mut Device)) -> Device {
    f(&mut d);
    d
}
