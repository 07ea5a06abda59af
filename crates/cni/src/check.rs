//! CHECK (live state against the cache), GC (drop attachments the runtime no longer knows)
//! and STATUS; GC and STATUS are forwarded to the IPAM plugin as the spec asks.

use serde_json::Value;

use crate::Ctx;
use crate::config::{NetConf, cni_version, lookup, parse_object, parse_request};
use crate::del::restore;
use crate::env::CniEnv;
use crate::error::{CniError, Result, code};
use crate::ipam;
use crate::netns::NetNs;
use crate::nl::Netlink;
use crate::plan::{VfState, apply_plan};

fn version_at_least(v: &str, min: (u32, u32, u32)) -> bool {
    let p: Vec<u32> = v.split('.').map(|x| x.parse().unwrap_or(0)).collect();
    (
        p.first().copied().unwrap_or(0),
        p.get(1).copied().unwrap_or(0),
        p.get(2).copied().unwrap_or(0),
    ) >= min
}

fn need_version(v: &str, min: (u32, u32, u32), what: &str) -> Result<()> {
    if version_at_least(v, min) {
        Ok(())
    } else {
        Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!("config version {v} does not allow {what}"),
        ))
    }
}

pub fn check(ctx: &Ctx, env: &CniEnv, stdin: &[u8]) -> Result<()> {
    let conf = NetConf::parse(stdin, false)?;
    need_version(&conf.cni_version, (0, 4, 0), "CHECK")?;
    let key = env.cache_key();
    let cache = ctx.state.read_cache(&key).ok_or_else(|| {
        CniError::new(
            code::UNKNOWN_CONTAINER,
            format!("no saved state for {key}: ADD did not run or DEL already ran"),
        )
    })?;
    let mut host = Netlink::open().map_err(|e| CniError::internal(format!("netlink socket: {e}")))?;
    let live = ctx.with_pf(&mut host, |pf| pf.vf_state(&cache.master, cache.vf_id))?;
    let mac = cache.mac.parse().ok();
    let mut want = live.clone();
    apply_plan(&parse_request(&cache.conf)?, mac)
        .iter()
        .for_each(|c| c.apply_to(&mut want));
    let norm = |s: &VfState| VfState {
        vlan_proto: if s.vlan_proto == 0 { 0x8100 } else { s.vlan_proto },
        ..s.clone()
    };
    if norm(&want) != norm(&live) {
        return Err(CniError::internal(format!(
            "VF {} of {}: PF reports {live:?}, config wants {want:?}",
            cache.vf_id, cache.master
        )));
    }
    if cache.dpdk != Some(true) {
        let ns = NetNs::open_for_cni(&env.netns)?;
        let mut pod = ns.netlink()?;
        let l = pod
            .link_by_name(&env.ifname)
            .map_err(|e| CniError::internal(e.to_string()))?
            .ok_or_else(|| CniError::internal(format!("{:?} not found in {:?}", env.ifname, env.netns)))?;
        if let Some(p) = &l.parent_dev
            && *p != cache.device_id
        {
            return Err(CniError::internal(format!(
                "{:?} is PCI device {p}, not {}",
                env.ifname, cache.device_id
            )));
        }
        if let Some(m) = mac
            && l.mac != Some(m)
        {
            return Err(CniError::internal(format!(
                "{:?} has MAC {:?}, config wants {m}",
                env.ifname, l.mac
            )));
        }
        if !l.up {
            return Err(CniError::internal(format!("{:?} is down", env.ifname)));
        }
    }
    if !conf.ipam_type.is_empty() {
        ipam::exec(&env.path, &conf.ipam_type, "CHECK", stdin)?;
    }
    Ok(())
}

/// GC: every cache entry of this network whose attachment is not in `cni.dev/valid-attachments`
/// is released as DEL would (VF restored), then IPAM gets the GC.
pub fn gc(ctx: &Ctx, env: &CniEnv, stdin: &[u8]) -> Result<()> {
    let raw = parse_object(stdin)?;
    let v = cni_version(&raw)?;
    need_version(&v, (1, 1, 0), "GC")?;
    let name = lookup(&raw, "name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let valid: Vec<String> = raw
        .get("cni.dev/valid-attachments")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    let g = |k| x.get(k).and_then(Value::as_str).unwrap_or_default();
                    format!("{}-{}", g("containerID"), g("ifname"))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut errs = Vec::new();
    let mut host = None;
    for key in ctx.state.cache_keys() {
        if valid.contains(&key) {
            continue;
        }
        let Some(cache) = ctx.state.read_cache(&key) else {
            continue;
        };
        if lookup(&cache.conf, "name").and_then(Value::as_str) != Some(name.as_str()) {
            continue;
        }
        let Ok(id) = cache.device_id.parse() else { continue };
        let Ok(_lock) = ctx.state.lock(&id, ctx.lock_timeout) else {
            continue;
        };
        let owner = ctx.state.allocation(&id);
        if owner.as_deref().is_none_or(|o| o == cache.netns) {
            if host.is_none() {
                host = Some(Netlink::open().map_err(|e| CniError::internal(format!("netlink socket: {e}")))?);
            }
            let Some(h) = host.as_mut() else { continue };
            let ns = NetNs::open(&cache.netns).ok();
            let ifname = key
                .rsplit_once('-')
                .map(|(_, i)| i.to_string())
                .unwrap_or_default();
            let e = restore(ctx, &cache, &ifname, ns.as_ref(), h);
            if !e.is_empty() {
                errs.extend(e);
                continue;
            }
            let _ = ctx.state.release(&id);
        }
        let _ = ctx.state.remove_cache(&key);
    }
    let ipam_type = lookup(&raw, "ipam")
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ipam_type.is_empty() {
        forward_optional(env, ipam_type, "GC", stdin)?;
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CniError::internal(format!("GC: {}", errs.join("; "))))
    }
}

pub fn status(env: &CniEnv, stdin: &[u8]) -> Result<()> {
    let raw = parse_object(stdin)?;
    let v = cni_version(&raw)?;
    need_version(&v, (1, 1, 0), "STATUS")?;
    let ipam_type = lookup(&raw, "ipam")
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ipam_type.is_empty() {
        forward_optional(env, ipam_type, "STATUS", stdin)?;
    }
    Ok(())
}

/// Forwards GC/STATUS to IPAM when the IPAM plugin supports the config's version (its VERSION
/// answer lists it); older plugins (e.g. Debian's 1.1.1 host-local) have no GC/STATUS.
fn forward_optional(env: &CniEnv, plugin: &str, command: &str, stdin: &[u8]) -> Result<()> {
    // Checked before the VERSION probe, whose failure is otherwise only "not supported".
    let plugin = ipam::plugin_name("ipam.type", plugin)?;
    let version = parse_object(stdin)
        .ok()
        .and_then(|o| cni_version(&o).ok())
        .unwrap_or_default();
    let supported = ipam::exec(&env.path, plugin, "VERSION", br#"{"cniVersion":"0.4.0"}"#)
        .ok()
        .and_then(|out| serde_json::from_slice::<Value>(&out).ok())
        .is_some_and(|v| {
            v.get("supportedVersions")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == version.as_str()))
        });
    if !supported {
        eprintln!(
            "sriov: IPAM plugin {plugin} does not support cniVersion {version}: {command} not forwarded"
        );
        return Ok(());
    }
    ipam::exec(&env.path, plugin, command, stdin).map(drop)
}
