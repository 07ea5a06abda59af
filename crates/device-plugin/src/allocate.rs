//! The Allocate response for one container, exactly as upstream builds it (non-CDI mode).
//!
//! * `PCIDEVICE_<PREFIX>_<NAME>` = the requested IDs joined by `,` (kubelet's order).
//! * `PCIDEVICE_<PREFIX>_<NAME>_INFO` = JSON `{id: {provider: {key: value}}}`, keys sorted, Go's
//!   `json.Marshal` escaping. Providers: `generic`; `vfio` (driver vfio-pci) or `uio` (uio,
//!   igb_uio); `extra` (when `additionalInfo` is set: `"*"` first, then the device's PCI address);
//!   `vdpa` / `rdma` / `vhost` from the selector. Upstream's README names `extraInfo`,
//!   `vfio-mount`, `vfio-dev-mount`; those are emitted too, as aliases, so consumers written
//!   against either spelling work.
//! * Device specs: vfio container + group node, `/dev/uioN`, RDMA character devices,
//!   `/dev/vhost-net` + `/dev/net/tun` (both or neither), `/dev/vhost-vdpa-N`; de-duplicated by
//!   host path, all `rw`. No mounts.
//!
//! Better than upstream: the uio / vdpa mounts are right on the first Allocate too (upstream
//! fills them as a side effect of building specs, after the envs).

use sriov_host::drivers::{is_uio_driver, is_vfio_driver};
use std::collections::BTreeMap;

use crate::config::{ResourceConfig, VdpaType};
use crate::pool::{Pool, PoolDevice};

/// Provider name → key → value.
pub type Info = BTreeMap<String, BTreeMap<String, String>>;

/// A device node for the container runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub container_path: String,
    pub host_path: String,
    pub permissions: String,
}

/// What one container gets.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ContainerAllocation {
    pub envs: BTreeMap<String, String>,
    pub specs: Vec<Spec>,
}

/// Which shared device nodes exist right now on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevNodes {
    pub vhost_net: bool,
    pub tun: bool,
}

/// Why an Allocate is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    #[error("resource {resource}: device {id:?} is not in this pool")]
    UnknownDevice { resource: String, id: String },
}

/// `PCIDEVICE_<PREFIX>_<NAME>`: upper case, `.` and `/` → `_` (a `-` stays, as upstream).
pub fn env_name(res: &ResourceConfig) -> String {
    format!("PCIDEVICE_{}_{}", res.resource_prefix, res.resource_name)
        .to_uppercase()
        .replace(['.', '/'], "_")
}

const VFIO_CONTAINER: &str = "/dev/vfio/vfio";

fn kv<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `_INFO` entry of one device.
pub fn info(res: &ResourceConfig, pd: &PoolDevice) -> Info {
    let d = &pd.device;
    let mut info = Info::new();
    info.insert("generic".into(), kv([("deviceID", &d.id)]));
    match d.driver.as_deref() {
        Some(drv) if is_vfio_driver(drv) => {
            let mut v = kv([("mount", VFIO_CONTAINER), ("vfio-mount", VFIO_CONTAINER)]);
            if let Some(g) = d.iommu_group {
                let node = format!("/dev/vfio/{g}");
                v.insert("dev-mount".into(), node.clone());
                v.insert("vfio-dev-mount".into(), node);
            }
            info.insert("vfio".into(), v);
        }
        Some(drv) if is_uio_driver(drv) => {
            let v = d
                .uio_dev
                .as_deref()
                .map(|u| kv([("mount", u)]))
                .unwrap_or_default();
            info.insert("uio".into(), v);
        }
        _ => {}
    }
    if let Some(additional) = &res.additional_info {
        let mut extra = BTreeMap::new();
        for key in ["*", d.pci_address.as_str()] {
            if let Some(m) = additional.get(key) {
                extra.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        info.insert("extraInfo".into(), extra.clone());
        info.insert("extra".into(), extra);
    }
    if let Some(t) = pd.vdpa {
        let path = d
            .vdpa
            .as_ref()
            .and_then(|v| v.path.as_deref())
            .filter(|_| t == VdpaType::Vhost);
        info.insert(
            "vdpa".into(),
            path.map(|p| kv([("mount", p)])).unwrap_or_default(),
        );
    } else if pd.rdma {
        let mut r = BTreeMap::new();
        for path in &d.rdma_char_devices {
            for key in ["uverbs", "umad", "issm", "rdma_cm"] {
                if path.contains(key) {
                    r.insert(key.to_string(), path.clone());
                    break;
                }
            }
        }
        if let Some(first) = d.rdma_devices.first() {
            r.insert("rdma_dev".into(), first.clone());
        }
        info.insert("rdma".into(), r);
    }
    if pd.vhost {
        info.insert(
            "vhost".into(),
            kv([("net-mount", "/dev/vhost-net"), ("tun-mount", "/dev/net/tun")]),
        );
    }
    info
}

/// The device specs of one device.
pub fn specs(pd: &PoolDevice, nodes: DevNodes) -> Vec<Spec> {
    let d = &pd.device;
    let rw = |container: &str, host: &str| Spec {
        container_path: container.to_string(),
        host_path: host.to_string(),
        permissions: "rw".into(),
    };
    let mut out = Vec::new();
    match d.driver.as_deref() {
        Some(drv) if is_vfio_driver(drv) => {
            out.push(rw(VFIO_CONTAINER, VFIO_CONTAINER));
            if let Some(g) = d.iommu_group {
                let container = format!("/dev/vfio/{g}");
                let host = if d.vfio_noiommu {
                    format!("/dev/vfio/noiommu-{g}")
                } else {
                    container.clone()
                };
                out.push(rw(&container, &host));
            }
        }
        Some(drv) if is_uio_driver(drv) => out.extend(d.uio_dev.as_deref().map(|u| rw(u, u))),
        _ => {}
    }
    if pd.vdpa == Some(VdpaType::Vhost) {
        out.extend(d.vdpa.as_ref().and_then(|v| v.path.as_deref()).map(|p| rw(p, p)));
    } else if pd.rdma {
        out.extend(d.rdma_char_devices.iter().map(|p| rw(p, p)));
    }
    if pd.vhost && nodes.vhost_net && nodes.tun {
        out.push(rw("/dev/vhost-net", "/dev/vhost-net"));
        out.push(rw("/dev/net/tun", "/dev/net/tun"));
    }
    out
}

/// Serializes like Go's `json.Marshal`: compact, map keys sorted, and `<`, `>`, `&`, U+2028,
/// U+2029 escaped as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`.
pub fn go_json<T: serde::Serialize>(value: &T) -> String {
    let s = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    if !s.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The response for one container request.
pub fn allocate(pool: &Pool, ids: &[String], nodes: DevNodes) -> Result<ContainerAllocation, AllocError> {
    let res = &pool.resource;
    let mut infos: BTreeMap<&str, Info> = BTreeMap::new();
    let mut specs_out: Vec<Spec> = Vec::new();
    for id in ids {
        let pd = pool.get(id).ok_or_else(|| AllocError::UnknownDevice {
            resource: res.full_name(),
            id: id.clone(),
        })?;
        infos.insert(id, info(res, pd));
        for s in specs(pd, nodes) {
            if !specs_out.iter().any(|o| o.host_path == s.host_path) {
                specs_out.push(s);
            }
        }
    }
    let name = env_name(res);
    let mut envs = BTreeMap::new();
    envs.insert(format!("{name}_INFO"), go_json(&infos));
    envs.insert(name, ids.join(","));
    Ok(ContainerAllocation {
        envs,
        specs: specs_out,
    })
}
