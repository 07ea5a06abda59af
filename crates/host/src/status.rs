//! Upstream's `SriovNetworkNodeState.status.interfaces` shape (`InterfaceExt` / `VirtualFunction`),
//! field for field and with upstream's JSON names, quirks included (`totalvfs`, `Vfs`, `Vlan`,
//! `vfID` without omitempty). The config daemon publishes these unchanged.

use serde::{Deserialize, Serialize};

fn is_zero(v: &i32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// One PF as the node state reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InterfaceExt {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub pci_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    #[serde(default, rename = "deviceID", skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub net_filter: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub num_vfs: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_speed: String,
    /// `ETH` or `IB`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_type: String,
    /// `up` or `down`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link_admin_state: String,
    #[serde(default, rename = "eSwitchMode", skip_serializing_if = "String::is_empty")]
    pub e_switch_mode: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub externally_managed: bool,
    #[serde(default, rename = "totalvfs", skip_serializing_if = "is_zero")]
    pub total_vfs: i32,
    #[serde(default, rename = "Vfs", skip_serializing_if = "Vec::is_empty")]
    pub vfs: Vec<VirtualFunction>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alt_names: Vec<String>,
}

/// One VF as the node state reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct VirtualFunction {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub assigned: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub pci_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    #[serde(default, rename = "deviceID", skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    #[serde(default, rename = "Vlan", skip_serializing_if = "is_zero")]
    pub vlan: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: i32,
    #[serde(rename = "vfID")]
    pub vf_id: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vdpa_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub representor_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub guid: String,
}

/// The daemon's view of a host, in upstream's shape (`status.interfaces`), sorted by PCI address.
///
/// As upstream's daemon on bare metal (`DiscoverSriovDevices`): every network PF (SR-IOV capable
/// or not) that has a driver and a netdev, with `numVfs`/`totalvfs`/`eSwitchMode` when SR-IOV
/// capable and its VFs under `Vfs` (`vfID` = the `virtfnN` index, sorted). `linkSpeed` is
/// upstream's `"<speed> Mb/s"` (empty when the speed is unknown or the link down), `linkType`
/// `ETH`/`IB`, `linkAdminState` `up`/`down`. A netdev-less PF (e.g. bound to vfio-pci) is left
/// out, as upstream does.
///
/// Orphan VFs (a `physfn` whose PF is not visible) are reported the way upstream's virtual
/// platforms report VFs: one interface per VF, `numVfs` = `totalvfs` = 1, and itself as VF 0.
pub fn to_status(devices: &crate::HostDevices) -> Vec<InterfaceExt> {
    let mut out: Vec<InterfaceExt> = devices.pfs.iter().filter_map(pf_status).collect();
    out.extend(devices.orphan_vfs.iter().filter_map(|vf| virtual_status(&vf.pci)));
    out.sort_by(|a, b| a.pci_address.cmp(&b.pci_address));
    out
}

/// Upstream's virtual-platform view (OpenStack/QEMU-KVM, AWS): every network function with a
/// driver (PF or orphan VF) as an interface with `numVfs` = `totalvfs` = 1 and itself as VF 0
/// (`pciAddress, driver, vendor, deviceID, mtu, mac`, `vfID` 0, no name). For the daemon when
/// the node's platform is virtual; `netFilter` (from the cloud's metadata) is the caller's.
pub fn to_status_virtual(devices: &crate::HostDevices) -> Vec<InterfaceExt> {
    let functions = devices
        .pfs
        .iter()
        .map(|p| &p.pci)
        .chain(devices.orphan_vfs.iter().map(|v| &v.pci));
    let mut out: Vec<InterfaceExt> = functions.filter_map(virtual_status).collect();
    out.sort_by(|a, b| a.pci_address.cmp(&b.pci_address));
    out
}

/// The PF's netdev as upstream picks it: with several (switchdev: PF plus representors), the
/// one whose `phys_port_name` is `p<N>`, else the first.
fn primary_netdev(pci: &crate::PciDevice) -> Option<&crate::NetDevice> {
    let is_port = |n: &&crate::NetDevice| {
        n.phys_port_name
            .strip_prefix('p')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
    };
    pci.netdevs.iter().find(is_port).or_else(|| pci.netdevs.first())
}

fn link_type(t: crate::LinkType) -> String {
    match t {
        crate::LinkType::Ether => "ETH".to_string(),
        crate::LinkType::Infiniband => "IB".to_string(),
        crate::LinkType::Other(_) => String::new(),
    }
}

fn clamp(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn base_status(pci: &crate::PciDevice, driver: &str, n: Option<&crate::NetDevice>) -> InterfaceExt {
    InterfaceExt {
        name: n.map(|n| n.name.clone()).unwrap_or_default(),
        mac: n.map(|n| n.mac.clone()).unwrap_or_default(),
        driver: driver.to_string(),
        pci_address: pci.address.to_string(),
        vendor: pci.vendor.clone(),
        device_id: pci.device.clone(),
        mtu: n.map_or(0, |n| clamp(n.mtu)),
        link_speed: n
            .and_then(|n| n.speed_mbps)
            .map(|s| format!("{s} Mb/s"))
            .unwrap_or_default(),
        link_type: n.map(|n| link_type(n.link_type)).unwrap_or_default(),
        link_admin_state: n
            .map(|n| if n.admin_up { "up" } else { "down" }.to_string())
            .unwrap_or_default(),
        ..InterfaceExt::default()
    }
}

fn vf_status(pci: &crate::PciDevice, vf_id: u32) -> VirtualFunction {
    let n = pci.netdev();
    VirtualFunction {
        name: n.map(|n| n.name.clone()).unwrap_or_default(),
        mac: n.map(|n| n.mac.clone()).unwrap_or_default(),
        driver: pci.driver.clone().unwrap_or_default(),
        pci_address: pci.address.to_string(),
        vendor: pci.vendor.clone(),
        device_id: pci.device.clone(),
        mtu: n.map_or(0, |n| clamp(n.mtu)),
        vf_id: clamp(vf_id),
        ..VirtualFunction::default()
    }
}

fn pf_status(pf: &crate::PfDevice) -> Option<InterfaceExt> {
    let driver = pf.pci.driver.as_deref()?;
    let n = primary_netdev(&pf.pci)?;
    let mut iface = base_status(&pf.pci, driver, Some(n));
    if pf.sriov_capable() {
        iface.total_vfs = clamp(pf.total_vfs);
        iface.num_vfs = clamp(pf.num_vfs);
        iface.e_switch_mode = pf.eswitch_mode.clone().unwrap_or_default();
        iface.vfs = pf
            .vfs
            .iter()
            .filter_map(|vf| Some(vf_status(&vf.pci, vf.vf_index?)))
            .collect();
        iface.vfs.sort_by_key(|v| v.vf_id);
    }
    Some(iface)
}

fn virtual_status(pci: &crate::PciDevice) -> Option<InterfaceExt> {
    let driver = pci.driver.as_deref()?;
    let mut iface = base_status(pci, driver, primary_netdev(pci));
    iface.num_vfs = 1;
    iface.total_vfs = 1;
    // As upstream's virtual platforms build it (`buildInterface`): the VF carries no name.
    iface.vfs = vec![VirtualFunction {
        name: String::new(),
        ..vf_status(pci, 0)
    }];
    Some(iface)
}
