//! The legacy resource form (sriov-network-device-plugin v1, still used by Kuryr):
//!
//! ```json
//! {"resourceName": "physnet22", "rootDevices": ["0000:02:00.0"], "sriovMode": true, "deviceType": "vfio"}
//! ```
//!
//! Translation into one selector: `sriovMode: true` → the VFs of those PFs (`rootDevices`);
//! `sriovMode: false` → the listed functions themselves (`pciAddresses`). `deviceType` `vfio` →
//! `drivers: ["vfio-pci"]`; `uio` → the uio drivers; `netdevice` → kernel network drivers only.

use super::parse::{Ctx, Obj};
use super::{ConfigError, Selector};
use crate::range::PfRange;

/// The legacy driver class of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Vfio,
    Uio,
    NetDevice,
}

/// `Some` when the entry uses the legacy form: a legacy `deviceType`, or `rootDevices` /
/// `sriovMode` at the resource level.
pub(super) fn kind(device_type: &str, obj: Obj) -> Option<Kind> {
    match device_type {
        "vfio" => Some(Kind::Vfio),
        "uio" => Some(Kind::Uio),
        "netdevice" => Some(Kind::NetDevice),
        "" if obj.has("rootDevices") || obj.has("sriovMode") => Some(Kind::NetDevice),
        _ => None,
    }
}

/// Adds the legacy driver constraint to selectors that do not name drivers themselves.
pub(super) fn constrain(sels: &mut [Selector], kind: Kind) {
    for s in sels.iter_mut().filter(|s| s.drivers.is_empty()) {
        apply(s, kind);
    }
}

fn apply(s: &mut Selector, kind: Kind) {
    match kind {
        Kind::Vfio => s.drivers = vec!["vfio-pci".into()],
        Kind::Uio => s.drivers = vec!["igb_uio".into(), "uio_pci_generic".into(), "uio".into()],
        Kind::NetDevice => s.kernel_driver_only = true,
    }
}

pub(super) fn selector(ctx: &Ctx, obj: Obj, kind: Kind) -> Result<Selector, ConfigError> {
    let roots = ctx.strings(obj, "rootDevices", "rootDevices")?;
    let sriov_mode = ctx.bool(obj, "sriovMode", "sriovMode")?;
    let mut s = Selector::default();
    if sriov_mode {
        s.root_devices = roots
            .iter()
            .map(|r| PfRange::parse(r).map_err(|e| ctx.err("rootDevices", e.to_string())))
            .collect::<Result<_, _>>()?;
    } else {
        s.pci_addresses = roots;
    }
    apply(&mut s, kind);
    Ok(s)
}
