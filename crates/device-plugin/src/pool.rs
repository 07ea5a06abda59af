//! Resource pools: which discovered device goes to which resource.
//!
//! Upstream's rule: resources in file order, selector objects in list order; a device goes to the
//! **first** resource / selector that matches it and is skipped by every later one. A PF that has
//! VFs is never a netDevice candidate, and a function without a bound driver is never offered.

use crate::config::{Config, DeviceType, ResourceConfig, VdpaType};
use crate::device::{Device, DeviceClass};
use crate::selector::{Rejection, evaluate};

/// Facts about the host that decide which info providers a device gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// `/dev/vhost-net` exists (checked at discovery, as upstream).
    pub vhost_net: bool,
}

/// A device in a pool, with the providers its selector gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolDevice {
    pub device: Device,
    /// Index of the selector object that took it.
    pub selector: usize,
    /// `rdma` provider (selector `isRdma`, device has RDMA resources).
    pub rdma: bool,
    /// `vhost` provider (selector `needVhostNet` and `/dev/vhost-net` exists).
    pub vhost: bool,
    /// `vdpa` provider.
    pub vdpa: Option<VdpaType>,
}

/// One resource and its devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub resource: ResourceConfig,
    pub devices: Vec<PoolDevice>,
}

impl Pool {
    /// The device with this ID (devices are kept sorted by ID).
    pub fn get(&self, id: &str) -> Option<&PoolDevice> {
        self.devices
            .binary_search_by(|d| d.device.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.devices[i])
    }
}

/// Whether a device is a candidate of a device type at all (before any selector).
pub fn candidate(device_type: DeviceType, dev: &Device) -> Result<(), Rejection> {
    let want = match device_type {
        DeviceType::NetDevice => DeviceClass::Net,
        DeviceType::Accelerator => DeviceClass::Accelerator,
        DeviceType::AuxNetDevice => DeviceClass::Aux,
    };
    if dev.class != Some(want) {
        let what = match dev.class {
            Some(DeviceClass::Net) => "a network function",
            Some(DeviceClass::Accelerator) => "an accelerator",
            Some(DeviceClass::Aux) => "an auxiliary device",
            None => "not a supported device class",
        };
        return Err(Rejection {
            field: "deviceType",
            reason: format!("device is {what}, not a {device_type} candidate"),
        });
    }
    if device_type == DeviceType::NetDevice && dev.pf_with_vfs {
        return Err(Rejection {
            field: "deviceType",
            reason: "a PF that has VFs is not a netDevice candidate".into(),
        });
    }
    if dev.driver.is_none() {
        return Err(Rejection {
            field: "driver",
            reason: "no driver bound (unbound functions are never offered)".into(),
        });
    }
    Ok(())
}

/// For each device (same order as `devices`), the `(resource, selector)` indexes that took it.
pub fn assign(config: &Config, devices: &[Device]) -> Vec<Option<(usize, usize)>> {
    let mut taken = vec![None; devices.len()];
    for (ri, res) in config.resources.iter().enumerate() {
        for (si, sel) in res.selectors.iter().enumerate() {
            for (di, dev) in devices.iter().enumerate() {
                if taken[di].is_none()
                    && candidate(res.device_type, dev).is_ok()
                    && evaluate(res.device_type, sel, dev).is_ok()
                {
                    taken[di] = Some((ri, si));
                }
            }
        }
    }
    taken
}

/// Builds one pool per resource (empty pools included, in file order), devices sorted by ID.
pub fn build_pools(config: &Config, devices: &[Device], facts: HostFacts) -> Vec<Pool> {
    build_pools_owned(config, devices.to_vec(), facts)
}

/// [`build_pools`] taking the devices by value (no copy: sriovdp's memory stays flat).
pub fn build_pools_owned(config: &Config, devices: Vec<Device>, facts: HostFacts) -> Vec<Pool> {
    let slots = assign(config, &devices);
    let mut pools: Vec<Pool> = config
        .resources
        .iter()
        .map(|r| Pool {
            resource: r.clone(),
            devices: Vec::new(),
        })
        .collect();
    for (dev, slot) in devices.into_iter().zip(slots) {
        let Some((ri, si)) = slot else { continue };
        let pool = &mut pools[ri];
        let sel = &pool.resource.selectors[si];
        let netlike = pool.resource.device_type != DeviceType::Accelerator;
        let vdpa = if pool.resource.device_type == DeviceType::NetDevice {
            sel.vdpa_type
        } else {
            None
        };
        pool.devices.push(PoolDevice {
            selector: si,
            rdma: netlike && vdpa.is_none() && sel.is_rdma && !dev.rdma_devices.is_empty(),
            vhost: netlike && sel.need_vhost_net && facts.vhost_net,
            vdpa: vdpa.filter(|_| dev.vdpa.is_some()),
            device: dev,
        });
    }
    for p in &mut pools {
        p.devices.sort_by(|a, b| a.device.id.cmp(&b.device.id));
        p.devices.shrink_to_fit();
    }
    pools
}
