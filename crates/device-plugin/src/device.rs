//! The device plugin's view of one candidate function: everything a selector, an Allocate
//! response or the health check needs, flattened. Built from the host discovery model at the
//! edge ([`crate::from_host`]); the pure core (selectors, pools, Allocate) works on these values.

use serde::Serialize;

/// Which `deviceType` can take a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DeviceClass {
    /// A PCI network function (class 0x02): VFs, PFs without VFs, VM-passthrough VFs.
    Net,
    /// A PCI processing accelerator (class 0x12).
    Accelerator,
    /// An auxiliary network device (a Scalable Function `mlx5_core.sf.N`).
    Aux,
}

/// A vDPA device bound to a function.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
pub struct Vdpa {
    /// vDPA bus driver: `vhost_vdpa` or `virtio_vdpa`.
    pub driver: String,
    /// vDPA device name, e.g. `vdpa:0000:65:00.2`.
    pub name: String,
    /// `/dev/vhost-vdpa-N` (vhost only).
    pub path: Option<String>,
}

/// One candidate device.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The ID the kubelet sees: the PCI address (`0000:3b:02.6`), or the aux device name.
    pub id: String,
    pub class: Option<DeviceClass>,
    /// PCI address (the parent's for aux devices).
    pub pci_address: String,
    /// 4 lower-case hex digits, no `0x`.
    pub vendor: String,
    pub device: String,
    /// Bound driver (the parent's for aux devices); `None` = unbound.
    pub driver: Option<String>,
    pub acpi_index: Option<String>,
    /// The PF's netdev name (VFs and SFs only).
    pub pf_name: Option<String>,
    /// The PF's PCI address (VFs and SFs only).
    pub pf_address: Option<String>,
    /// VF index (N of `virtfnN`), or the SF's `sfnum`.
    pub index: Option<u32>,
    /// True for a PF that currently has VFs (upstream never offers those as netDevices).
    pub pf_with_vfs: bool,
    /// The function's own netdev, if any.
    pub netdev: Option<String>,
    /// `ether`, `infiniband`, ... of the netdev (or the PF's when the function has none).
    pub link_type: Option<String>,
    pub ddp_profile: Option<String>,
    pub pkey: Option<String>,
    /// RDMA device names (e.g. `mlx5_2`).
    pub rdma_devices: Vec<String>,
    /// RDMA character devices for the first RDMA device (`/dev/infiniband/uverbs2`, ...).
    pub rdma_char_devices: Vec<String>,
    pub vdpa: Option<Vdpa>,
    /// Aux type: the middle of `<driver>.<type>.<id>` (`sf`).
    pub aux_type: Option<String>,
    pub numa_node: Option<i64>,
    pub iommu_group: Option<u32>,
    /// True when the IOMMU group is a vfio no-IOMMU group (host node `/dev/vfio/noiommu-N`).
    pub vfio_noiommu: bool,
    /// `/dev/uioN` for uio-bound functions.
    pub uio_dev: Option<String>,
    /// The netdev whose link decides health (the PF's for VFs, else the function's own).
    pub health_netdev: Option<String>,
}

impl Device {
    /// The driver for messages: the name, or `(none)`.
    pub fn driver_str(&self) -> &str {
        self.driver.as_deref().unwrap_or("(none)")
    }
}
