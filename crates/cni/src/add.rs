//! ADD: validate everything, save the original VF state, then change the VF; on any failure
//! undo every change already made (PF attributes, netns move, IPAM), so nothing is left behind.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use serde_json::{Map, Value};

use crate::Ctx;
use crate::config::{Mac, NetConf, parse_cni_args};
use crate::del::restore;
use crate::env::CniEnv;
use crate::error::{CniError, Result, code};
use crate::ipam;
use crate::netns::NetNs;
use crate::nl::{LinkChange, Netlink};
use crate::plan::apply_plan;
use crate::result::{Iface, IpamResult, parse_ipam, render};
use crate::state::{Cache, OrigVfState};
use crate::sysfs::VfLocation;

fn nl_err(what: &str) -> impl Fn(crate::nl::NlError) -> CniError + '_ {
    move |e| CniError::internal(format!("{what}: {e}"))
}

/// Refuses the plugin's own netns (skel checks this only after the fact; we check first).
fn check_not_own_ns(ns: &NetNs) -> Result<()> {
    let ovr = std::env::var("CNI_NETNS_OVERRIDE").unwrap_or_default();
    if ovr == "1" || ovr.eq_ignore_ascii_case("true") {
        return Ok(());
    }
    let (Ok(a), Ok(b)) = (ns.file.metadata(), std::fs::metadata("/proc/self/ns/net")) else {
        return Ok(());
    };
    if a.dev() == b.dev() && a.ino() == b.ino() {
        return Err(CniError::env(format!(
            "CNI_NETNS: {:?} is the plugin's own network namespace",
            ns.path
        )));
    }
    Ok(())
}

/// Restores the VF from the caches of a pod whose netns is gone, then forgets them.
fn reclaim_stale(ctx: &Ctx, id: &crate::pci::PciAddress, owner: &str, host: &mut Netlink) -> Result<()> {
    for key in ctx.state.cache_keys() {
        let Some(c) = ctx.state.read_cache(&key) else {
            continue;
        };
        if c.device_id != id.as_str() || !(c.netns.is_empty() || c.netns == owner) {
            continue;
        }
        let ifname = c.ifname.clone().unwrap_or_else(|| {
            key.rsplit_once('-')
                .map(|(_, i)| i.to_string())
                .unwrap_or_default()
        });
        let errs = restore(ctx, &c, &ifname, None, host);
        if !errs.is_empty() {
            return Err(CniError::internal(format!(
                "VF {id} was left by a pod whose netns {owner} is gone; restoring it from {key}: {}",
                errs.join("; ")
            )));
        }
        eprintln!("sriov: VF {id} restored from the stale attachment {key} (netns {owner} is gone)");
        ctx.state.remove_cache(&key)?;
    }
    ctx.state.release(id)
}

/// The config as cached: every key as given, `ipam` reduced to its type (as upstream).
fn cached_conf(conf: &NetConf) -> Map<String, Value> {
    let mut m = conf.raw.clone();
    if !conf.ipam_type.is_empty() {
        let ipam_key = m
            .keys()
            .find(|k| k.eq_ignore_ascii_case("ipam"))
            .cloned()
            .unwrap_or_else(|| "ipam".into());
        m.insert(ipam_key, serde_json::json!({ "type": conf.ipam_type }));
    }
    m.remove("prevResult");
    m
}

pub fn add(ctx: &Ctx, env: &CniEnv, stdin: &[u8]) -> Result<Value> {
    let conf = NetConf::parse(stdin, true)?;
    let args_mac = parse_cni_args(&env.args)?;
    let mac = conf.effective_mac(args_mac);
    let id = conf
        .device_id
        .clone()
        .ok_or_else(|| CniError::config("field \"deviceID\": VF PCI address is required"))?;
    let ns = NetNs::open_for_cni(&env.netns)?;
    check_not_own_ns(&ns)?;
    // Entering the netns proves it is a network namespace, before anything changes.
    let mut pod = ns.netlink()?;
    ctx.fault.trace("netns-entered");
    let _lock = ctx.state.lock(&id, ctx.lock_timeout)?;
    let mut host = Netlink::open().map_err(|e| CniError::internal(format!("netlink socket: {e}")))?;
    if let Some(owner) = ctx.state.allocation(&id)
        && owner != env.netns
    {
        if NetNs::open(&owner).is_ok() {
            return Err(CniError::new(
                code::TRY_AGAIN_LATER,
                format!("pci address {id} is already allocated to {owner}"),
            ));
        }
        // Its pod netns died without a DEL: put the VF back from that pod's cache first, so
        // what this ADD saves as "original" really is (upstream would save the leftovers).
        reclaim_stale(ctx, &id, &owner, &mut host)?;
    }
    let key = env.cache_key();
    // A retried ADD without DEL: undo the earlier attempt first, so the original state stays original.
    if let Some(prior) = ctx.state.read_cache(&key) {
        let errs = restore(ctx, &prior, &env.ifname, Some(&ns), &mut host);
        if !errs.is_empty() {
            return Err(CniError::internal(format!(
                "undoing the earlier ADD of {key}: {}",
                errs.join("; ")
            )));
        }
        if !prior.ipam_type().is_empty() {
            ipam::exec(&env.path, &prior.ipam_type(), "DEL", stdin)?;
        }
        ctx.state.remove_cache(&key)?;
    }
    let loc = ctx.sysfs.locate(&id)?;
    ctx.fault.trace("located");
    let vf = ctx.with_pf(&mut host, |pf| pf.vf_state(&loc.pf_name, loc.vf_index))?;
    ctx.fault.trace("pf-read");
    let mut orig = OrigVfState::from_pf(&vf);
    let mut host_ifindex = 0;
    let mut mtu = 0;
    if let Some(n) = &loc.netdev {
        let l = host
            .link_by_name(n)
            .map_err(nl_err("reading the VF netdev"))?
            .ok_or_else(|| {
                CniError::internal(format!("VF netdev {n:?} of {id} not found in the host netns"))
            })?;
        orig.host_ifname = l.name.clone();
        orig.effective_mac = l.mac.map(|m| m.to_string()).unwrap_or_default();
        orig.mtu = l.mtu;
        host_ifindex = l.index;
        mtu = l.mtu;
    } else if let Ok(Some(pf)) = host.link_by_name(&loc.pf_name) {
        mtu = pf.mtu;
    }
    let cache = Cache {
        conf: cached_conf(&conf),
        device_id: id.to_string(),
        mac: mac.map(|m| m.to_string()).unwrap_or_default(),
        mtu,
        master: loc.pf_name.clone(),
        vf_id: loc.vf_index,
        orig,
        dpdk: Some(loc.dpdk()),
        netns: env.netns.clone(),
        host_ifindex,
        ifname: Some(env.ifname.clone()),
    };
    ctx.state.write_cache(&key, &cache)?;
    ctx.state.allocate(&id, &env.netns)?;
    let mut ipam_done = false;
    let res = ctx.fault.at("cached").and_then(|()| {
        configure(
            ctx,
            env,
            stdin,
            &conf,
            &loc,
            &cache,
            mac,
            (&ns, &mut pod),
            &mut host,
            &mut ipam_done,
        )
    });
    match res {
        Ok(v) => Ok(v),
        Err(e) => {
            let mut left = Vec::new();
            if ipam_done && let Err(e2) = ipam::exec(&env.path, &conf.ipam_type, "DEL", stdin) {
                left.push(e2.msg);
            }
            left.extend(restore(ctx, &cache, &env.ifname, Some(&ns), &mut host));
            if left.is_empty() {
                let _ = ctx.state.release(&id);
                let _ = ctx.state.remove_cache(&key);
                Err(e.with_details("every change was rolled back"))
            } else {
                Err(e.with_details(format!(
                    "rollback incomplete (DEL will retry): {}",
                    left.join("; ")
                )))
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn configure(
    ctx: &Ctx,
    env: &CniEnv,
    stdin: &[u8],
    conf: &NetConf,
    loc: &VfLocation,
    cache: &Cache,
    mac: Option<Mac>,
    (ns, p): (&NetNs, &mut Netlink),
    host: &mut Netlink,
    ipam_done: &mut bool,
) -> Result<Value> {
    for ch in apply_plan(&conf.request, mac) {
        ctx.with_pf(host, |pf| pf.set_vf(&loc.pf_name, loc.vf_index, &ch))
            .map_err(|e| CniError::internal(format!("field {:?}: {}", ch.field(), e.msg)))?;
        ctx.fault.at(&format!("pf:{}", ch.field()))?;
    }
    let mut pod = None;
    if !loc.dpdk() {
        if p.link_by_name(&env.ifname)
            .map_err(nl_err("reading the pod netns"))?
            .is_some()
        {
            return Err(CniError::env(format!(
                "CNI_IFNAME: {:?} already exists in {:?}",
                env.ifname, env.netns
            )));
        }
        let ch = LinkChange {
            netns: Some(ns.file.as_fd()),
            name: Some(env.ifname.clone()),
            ..Default::default()
        };
        host.set_link(cache.host_ifindex, &ch).map_err(nl_err(&format!(
            "moving {:?} into {:?} as {:?}",
            cache.orig.host_ifname, env.netns, env.ifname
        )))?;
        ctx.fault.at("moved")?;
        let link = p
            .link_by_name(&env.ifname)
            .map_err(nl_err("reading the moved VF"))?
            .ok_or_else(|| {
                CniError::internal(format!(
                    "{:?} not found in {:?} after the move",
                    env.ifname, env.netns
                ))
            })?;
        if let Some(m) = mac {
            p.set_link(
                link.index,
                &LinkChange {
                    mac: Some(m),
                    ..Default::default()
                },
            )
            .map_err(nl_err(&format!("setting MAC {m} on {:?}", env.ifname)))?;
            ctx.fault.at("mac")?;
        }
        ns.set_notify_sysctls(&env.ifname);
        p.set_link(
            link.index,
            &LinkChange {
                up: Some(true),
                ..Default::default()
            },
        )
        .map_err(nl_err(&format!("bringing {:?} up", env.ifname)))?;
        ctx.fault.at("up")?;
        pod = Some((p, link.index));
    }
    let mut ipam_res = IpamResult::default();
    if !conf.ipam_type.is_empty() {
        let out = ipam::exec(&env.path, &conf.ipam_type, "ADD", stdin)?;
        *ipam_done = true;
        ctx.fault.at("ipam")?;
        ipam_res = parse_ipam(&out)?;
        if ipam_res.ips.is_empty() {
            return Err(CniError::internal(format!(
                "IPAM plugin {} returned missing IP config",
                conf.ipam_type
            )));
        }
        if let Some((p, idx)) = pod.as_mut() {
            configure_ips(p, *idx, &ipam_res)?;
            ctx.fault.at("addresses")?;
        }
    }
    let iface_mac = match mac {
        Some(m) => Some(m.to_string()),
        None if !loc.dpdk() => Some(cache.orig.effective_mac.clone()).filter(|m| !m.is_empty()),
        None => Some(cache.orig.admin_mac.clone()).filter(|m| !m.is_empty() && m != "00:00:00:00:00:00"),
    };
    let iface = Iface {
        name: env.ifname.clone(),
        mac: iface_mac,
        mtu: Some(cache.mtu).filter(|m| *m != 0),
        sandbox: env.netns.clone(),
    };
    let out = render(&conf.cni_version, &iface, &ipam_res);
    ctx.fault.at("result")?;
    Ok(out)
}

/// Adds the IPAM addresses and routes (default gateway per family, as libcni's ConfigureIface).
fn configure_ips(p: &mut Netlink, idx: u32, r: &IpamResult) -> Result<()> {
    for ip in &r.ips {
        p.add_address(idx, ip.address.addr, ip.address.prefix)
            .map_err(nl_err("configuring IPAM addresses"))?;
    }
    for rt in &r.routes {
        let gw = rt.gw.or_else(|| {
            r.ips
                .iter()
                .filter(|i| i.address.addr.is_ipv4() == rt.dst.addr.is_ipv4())
                .find_map(|i| i.gateway)
        });
        match p.add_route(idx, rt.dst.addr, rt.dst.prefix, gw) {
            Err(e) if e.errno() == Some(17) => {}
            r => r.map_err(nl_err("configuring IPAM routes"))?,
        }
    }
    Ok(())
}
