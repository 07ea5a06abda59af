//! DEL and the shared restore: PF attributes back to the saved originals, the netdev back into
//! the host netns under its original name with its original MAC/MTU — wherever it is (pod netns,
//! or returned to the host by the kernel when the pod netns died). Best-effort and idempotent.

use std::os::fd::AsFd;

use crate::pci::PciAddress;
use serde_json::Value;

use crate::Ctx;
use crate::config::{cni_version, lookup, parse_object};
use crate::env::CniEnv;
use crate::error::{CniError, Result};
use crate::ipam;
use crate::netns::{NetNs, NsOpenError};
use crate::nl::{Link, LinkChange, Netlink};
use crate::plan::restore_plan;
use crate::state::Cache;
use sriov_host::drivers::is_userspace_driver;

/// Finds the VF netdev among `links`: by PCI parent, else by the saved ifindex under one of
/// its two names, else (old upstream caches) by the pod-side name.
fn find_vf<'a>(links: &'a [Link], cache: &Cache, ifname: &str) -> Option<&'a Link> {
    let names = [ifname, cache.orig.host_ifname.as_str()];
    links
        .iter()
        .find(|l| l.parent_dev.as_deref() == Some(cache.device_id.as_str()))
        .or_else(|| {
            links.iter().find(|l| {
                l.parent_dev.is_none()
                    && cache.host_ifindex != 0
                    && l.index == cache.host_ifindex
                    && names.contains(&l.name.as_str())
            })
        })
        .or_else(|| {
            (cache.host_ifindex == 0)
                .then(|| links.iter().find(|l| l.name == ifname))
                .flatten()
        })
}

/// Restores everything `cache` describes; returns what could not be restored (empty = all done).
pub fn restore(
    ctx: &Ctx,
    cache: &Cache,
    ifname: &str,
    ns: Option<&NetNs>,
    host: &mut Netlink,
) -> Vec<String> {
    let mut errs = Vec::new();
    let orig = cache.orig.vf_state();
    let current = ctx
        .with_pf(host, |pf| pf.vf_state(&cache.master, cache.vf_id))
        .ok();
    let plan = restore_plan(
        &cache.applied_fields(),
        &orig,
        cache.effective_mac(),
        current.as_ref(),
    );
    // A cleared admin MAC also clears the PF's filter for the VF's own MAC: the VF must
    // register it again (igbvf does so when its netdev MAC is written).
    let reregister = plan.contains(&crate::plan::VfChange::Mac(crate::config::Mac::ZERO));
    ctx.fault.trace("del:pf-read");
    for ch in plan {
        if let Err(e) = ctx.with_pf(host, |pf| pf.set_vf(&cache.master, cache.vf_id, &ch)) {
            errs.push(format!("restoring {ch}: {}", e.msg));
        }
    }
    ctx.fault.trace("del:pf-restored");
    let dpdk = cache.dpdk.unwrap_or_else(|| {
        cache
            .device_id
            .parse::<PciAddress>()
            .ok()
            .and_then(|id| ctx.sysfs.driver(&id))
            .is_some_and(|d| is_userspace_driver(&d))
    });
    if !dpdk {
        restore_netdev(cache, ifname, ns, host, reregister, &mut errs);
        ctx.fault.trace("del:netdev-restored");
    }
    errs
}

fn restore_netdev(
    cache: &Cache,
    ifname: &str,
    ns: Option<&NetNs>,
    host: &mut Netlink,
    mut reregister: bool,
    errs: &mut Vec<String>,
) {
    let orig_name = cache.orig.host_ifname.clone();
    let orig_mac = cache.effective_mac();
    // 1. In the pod netns: down, original MAC/MTU, then back home under the original name.
    if let Some(ns) = ns {
        match ns.netlink() {
            Err(e) => errs.push(e.msg),
            Ok(mut pod) => {
                let links = pod.links().unwrap_or_default();
                if let Some(l) = find_vf(&links, cache, ifname) {
                    match NetNs::current() {
                        Err(e) => errs.push(format!("opening the host netns: {e}")),
                        Ok(home) => {
                            // One request: the kernel moves first (closing the link), then sets
                            // MAC, MTU and name in the host netns.
                            let mv = LinkChange {
                                netns: Some(home.file.as_fd()),
                                name: (!orig_name.is_empty()).then(|| orig_name.clone()),
                                mac: orig_mac.filter(|m| Some(*m) != l.mac),
                                mtu: Some(cache.orig.mtu).filter(|m| *m != 0 && *m != l.mtu),
                                up: None,
                            };
                            if mv.mac.is_some() {
                                reregister = false;
                            }
                            if let Err(e) = pod.set_link(l.index, &mv) {
                                // Still in the pod (e.g. both names taken on the host): come home
                                // under a free name; the host pass below fixes what it can.
                                if pod.link_by_index(l.index).ok().flatten().is_some() {
                                    let retry = LinkChange {
                                        netns: Some(home.file.as_fd()),
                                        name: Some("sriov%d".into()),
                                        ..Default::default()
                                    };
                                    if let Err(e2) = pod.set_link(l.index, &retry) {
                                        errs.push(format!(
                                            "moving {:?} back to the host netns: {e}; {e2}",
                                            l.name
                                        ));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // 2. In the host netns (moved back above, never moved, or returned by the kernel).
    let links = match host.links() {
        Ok(l) => l,
        Err(e) => return errs.push(format!("listing host links: {e}")),
    };
    if let Some(l) = find_vf(&links, cache, ifname) {
        let ch = LinkChange {
            name: Some(orig_name.clone()).filter(|n| !n.is_empty() && *n != l.name),
            mac: orig_mac.filter(|m| Some(*m) != l.mac),
            mtu: Some(cache.orig.mtu).filter(|m| *m != 0 && *m != l.mtu),
            up: None,
            netns: None,
        };
        if ch.name.is_some() || ch.mac.is_some() || ch.mtu.is_some() {
            let ch = LinkChange {
                up: ch.name.as_ref().map(|_| false),
                ..ch
            };
            match host.set_link(l.index, &ch) {
                // The original name belongs to another link now: keep this one's name.
                Err(e) if e.errno() == Some(17) => {
                    eprintln!("sriov: {:?} cannot get its original name back: {e}", l.name);
                    let ch = LinkChange {
                        name: None,
                        up: None,
                        ..ch
                    };
                    if (ch.mac.is_some() || ch.mtu.is_some())
                        && let Err(e) = host.set_link(l.index, &ch)
                    {
                        errs.push(format!("restoring {:?} in the host netns: {e}", l.name));
                    }
                }
                Err(e) => errs.push(format!("restoring {:?} in the host netns: {e}", l.name)),
                Ok(()) => {}
            }
        }
        if ch.mac.is_some() {
            reregister = false;
        }
        if reregister && let Some(mac) = orig_mac {
            // Writing the same MAC does nothing: go through a neighbour address and back.
            let mut tmp = mac;
            tmp.0[5] ^= 1;
            for m in [tmp, mac] {
                if let Err(e) = host.set_link(
                    l.index,
                    &LinkChange {
                        mac: Some(m),
                        ..Default::default()
                    },
                ) {
                    errs.push(format!("re-registering the MAC of {:?} with its PF: {e}", l.name));
                    break;
                }
            }
        }
    }
}

/// DEL: never fails for "nothing to do" (no cache, netns gone, second DEL).
pub fn del(ctx: &Ctx, env: &CniEnv, stdin: &[u8]) -> Result<()> {
    let raw = parse_object(stdin)?;
    cni_version(&raw)?;
    let key = env.cache_key();
    let conf_ipam = lookup(&raw, "ipam")
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(cache) = ctx.state.read_cache(&key) else {
        if !conf_ipam.is_empty() {
            ipam::exec(&env.path, &conf_ipam, "DEL", stdin)?;
        }
        return ctx.state.remove_cache(&key);
    };
    let Ok(id) = cache.device_id.parse::<PciAddress>() else {
        return ctx.state.remove_cache(&key);
    };
    let _lock = ctx.state.lock(&id, ctx.lock_timeout)?;
    let owner = ctx.state.allocation(&id);
    // Another pod got this VF since (a stale DEL): leave the VF alone, only drop our records.
    let ours = owner
        .as_deref()
        .is_none_or(|o| o == cache.netns || (!env.netns.is_empty() && o == env.netns));
    if ours {
        let ns_path = if env.netns.is_empty() {
            cache.netns.clone()
        } else {
            env.netns.clone()
        };
        let mut errs = Vec::new();
        let ns = if ns_path.is_empty() {
            None
        } else {
            match NetNs::open(&ns_path) {
                Ok(n) => Some(n),
                Err(NsOpenError::Gone | NsOpenError::NotNetns(_)) => None,
                Err(NsOpenError::Other(m)) => {
                    errs.push(m);
                    None
                }
            }
        };
        let mut host = Netlink::open().map_err(|e| CniError::internal(format!("netlink socket: {e}")))?;
        errs.extend(restore(ctx, &cache, &env.ifname, ns.as_ref(), &mut host));
        if !errs.is_empty() {
            return Err(CniError::internal(format!(
                "DEL could not restore VF {id}: {}",
                errs.join("; ")
            )));
        }
        ctx.state.release(&id)?;
    }
    let ipam_type = if cache.ipam_type().is_empty() {
        conf_ipam
    } else {
        cache.ipam_type()
    };
    if !ipam_type.is_empty() {
        ipam::exec(&env.path, &ipam_type, "DEL", stdin)?;
    }
    ctx.state.remove_cache(&key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, parent: Option<&str>) -> Link {
        Link {
            index,
            name: name.into(),
            mac: None,
            mtu: 1500,
            up: false,
            running: false,
            parent_dev: parent.map(Into::into),
        }
    }

    fn cache(ifindex: u32) -> Cache {
        let mut c =
            Cache::from_json(br#"{"deviceID":"0000:01:10.0","OrigVfState":{"HostIFName":"eth1"}}"#).unwrap();
        c.host_ifindex = ifindex;
        c
    }

    #[test]
    fn finds_by_pci_parent_first_then_ifindex_never_a_stranger() {
        let links = [
            link(1, "lo", None),
            link(7, "net1", Some("0000:01:10.0")),
            link(9, "net1x", None),
        ];
        assert_eq!(find_vf(&links, &cache(9), "net1").unwrap().index, 7);
        let links = [link(1, "lo", None), link(9, "net1", None), link(3, "eth1", None)];
        assert_eq!(find_vf(&links, &cache(9), "net1").unwrap().index, 9);
        // Same name, other ifindex: not ours.
        assert!(find_vf(&[link(4, "net1", None)], &cache(9), "net1").is_none());
        // A PCI netdev of another VF under our name: not ours.
        assert!(find_vf(&[link(9, "net1", Some("0000:01:10.2"))], &cache(9), "net1").is_none());
        // Old upstream cache (no ifindex): by name.
        assert_eq!(
            find_vf(&[link(4, "net1", None)], &cache(0), "net1")
                .unwrap()
                .index,
            4
        );
    }
}
