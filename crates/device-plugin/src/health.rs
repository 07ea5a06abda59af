//! Device health from netdev link state.
//!
//! Policy (upstream reports every device Healthy forever):
//!
//! * **VFs and SFs** follow their **PF's** netdev: Unhealthy when the PF link is not up (admin
//!   down, no carrier). An idle VF's own netdev is administratively down until a pod's CNI
//!   brings it up, and a vfio-bound VF has none, so the VF's own state says nothing; the PF's
//!   link is what every VF's traffic needs.
//! * **Other functions** (PFs without VFs, VFs passed into a VM) follow their own netdev:
//!   Unhealthy when it is administratively up but has no carrier; a netdev nobody brought up is
//!   simply unused, so it stays Healthy.
//! * No netdev to look at (vfio-bound PF, netdev moved into a pod) → Healthy.
//!
//! Link state comes from a [`LinkSource`]. [`SysfsLinks`] reads `class/net/<if>/operstate` and
//! `flags` (the running kernel's view through sysfs; the fixture's in tests). sriovdp re-reads it
//! on every kernel link event (an rtnetlink `RTMGRP_LINK` socket, [`watch_link_events`]) and, as
//! a safety net, every `--health-interval-ms` (default 1 s).

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::device::Device;

/// One netdev's link state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// `IFF_UP`.
    pub admin_up: bool,
    /// Operational state `up` (or `unknown`, which drivers without carrier reporting give).
    pub oper_up: bool,
}

/// Where link states come from.
pub trait LinkSource: Send + Sync + 'static {
    /// `None` when the netdev does not exist (in this network namespace).
    fn link(&self, ifname: &str) -> Option<LinkState>;

    /// Starts telling `wake` whenever some link may have changed (between polls). Default: no
    /// events, polling only.
    fn subscribe(&self, wake: Arc<Notify>) {
        let _ = wake;
    }
}

/// Reads `<sys>/class/net/<if>/{flags,operstate}`; with `netlink_events`, a kernel link event
/// (rtnetlink `RTMGRP_LINK` multicast) triggers an immediate re-read.
#[derive(Clone, Debug)]
pub struct SysfsLinks {
    pub sys: PathBuf,
    pub netlink_events: bool,
}

impl SysfsLinks {
    /// Sysfs only, no events (fixtures).
    pub fn polled(sys: impl Into<PathBuf>) -> Self {
        SysfsLinks {
            sys: sys.into(),
            netlink_events: false,
        }
    }
}

/// A thread blocked on an `RTMGRP_LINK` netlink socket: every message (RTM_NEWLINK /
/// RTM_DELLINK: up/down, carrier, rename, move to another namespace) wakes the health check. The
/// message content is not needed: the check re-reads the state it cares about.
pub fn watch_link_events(wake: Arc<Notify>) -> std::io::Result<()> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
    const RTMGRP_LINK: u32 = 1;
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
    std::thread::Builder::new()
        .name("link-events".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                buf.clear();
                match socket.recv(&mut buf, 0) {
                    Ok(_) => wake.notify_one(),
                    // ENOBUFS: events were dropped; a re-read covers them.
                    Err(e) if e.raw_os_error() == Some(105) => wake.notify_one(),
                    Err(e) => {
                        tracing::warn!("netlink link events stopped ({e}); health falls back to polling");
                        return;
                    }
                }
            }
        })?;
    Ok(())
}

impl LinkSource for SysfsLinks {
    fn link(&self, ifname: &str) -> Option<LinkState> {
        if ifname.contains('/') || ifname.is_empty() {
            return None;
        }
        let dir = self.sys.join("class/net").join(ifname);
        let oper = fs::read_to_string(dir.join("operstate")).ok()?;
        let flags = fs::read_to_string(dir.join("flags")).ok();
        let flags = flags
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        let oper = oper.trim();
        Some(LinkState {
            admin_up: flags & 1 == 1,
            oper_up: oper == "up" || oper == "unknown",
        })
    }

    fn subscribe(&self, wake: Arc<Notify>) {
        if self.netlink_events
            && let Err(e) = watch_link_events(wake)
        {
            tracing::warn!("cannot watch netlink link events ({e}); health is polled only");
        }
    }
}

/// The health of one device under the policy above.
pub fn healthy(dev: &Device, link: Option<LinkState>) -> bool {
    let Some(l) = link else { return true };
    if dev.pf_address.is_some() {
        l.admin_up && l.oper_up
    } else {
        !l.admin_up || l.oper_up
    }
}

/// Health of each device, reading each netdev once.
pub fn evaluate<'a>(devices: impl IntoIterator<Item = &'a Device>, links: &dyn LinkSource) -> Vec<bool> {
    let mut cache: HashMap<&str, Option<LinkState>> = HashMap::new();
    devices
        .into_iter()
        .map(|d| {
            let link = d
                .health_netdev
                .as_deref()
                .and_then(|n| *cache.entry(n).or_insert_with(|| links.link(n)));
            healthy(d, link)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pf, vf};

    #[test]
    fn policy_table() {
        let up = Some(LinkState {
            admin_up: true,
            oper_up: true,
        });
        let no_carrier = Some(LinkState {
            admin_up: true,
            oper_up: false,
        });
        let admin_down = Some(LinkState {
            admin_up: false,
            oper_up: false,
        });
        let v = vf("0000:01:10.0", "eth0", "0000:01:00.0", 0);
        let p = pf("0000:02:00.0", "eth9", false);
        let table = [
            (&v, up, true),
            (&v, no_carrier, false),
            (&v, admin_down, false),
            (&v, None, true),
            (&p, up, true),
            (&p, no_carrier, false),
            (&p, admin_down, true),
            (&p, None, true),
        ];
        for (d, link, want) in table {
            assert_eq!(healthy(d, link), want, "{} {link:?}", d.id);
        }
    }

    #[test]
    fn sysfs_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = dir.path().join("class/net/eth0");
        fs::create_dir_all(&net).expect("mkdir");
        fs::write(net.join("operstate"), "up\n").expect("write");
        fs::write(net.join("flags"), "0x1003\n").expect("write");
        let links = SysfsLinks::polled(dir.path());
        assert_eq!(
            links.link("eth0"),
            Some(LinkState {
                admin_up: true,
                oper_up: true
            })
        );
        fs::write(net.join("operstate"), "lowerlayerdown\n").expect("write");
        assert_eq!(
            links.link("eth0"),
            Some(LinkState {
                admin_up: true,
                oper_up: false
            })
        );
        assert_eq!(links.link("eth1"), None);
        assert_eq!(links.link("../x"), None);
    }
}
