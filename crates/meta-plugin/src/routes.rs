//! Applies a [`DefaultRouteChange`] inside the pod's network namespace: the interface's
//! main-table default routes of the chosen families are deleted, then one default route per
//! gateway is added on it (one that already exists is fine, as in Multus).
//!
//! `setns(2)` changes only the calling thread's namespace, so the work runs on a short-lived
//! thread that entered the pod netns; a netlink socket opened there stays bound to it.

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsFd;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::sched::{CloneFlags, setns};
use sriov_host::netlink::RouteSocket;

use crate::default_route::DefaultRouteChange;

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

/// A route change that failed; `op` says which request.
#[derive(Debug, thiserror::Error)]
#[error("netns {netns}, interface {ifname}: {op}: {source}")]
pub struct RouteError {
    pub netns: String,
    pub ifname: String,
    pub op: String,
    #[source]
    pub source: io::Error,
}

/// Applies `change` to `ifname` in the netns at `netns`.
pub fn apply(netns: &str, ifname: &str, change: &DefaultRouteChange) -> Result<(), RouteError> {
    let err = |op: &str, source: io::Error| RouteError {
        netns: netns.to_string(),
        ifname: ifname.to_string(),
        op: op.to_string(),
        source,
    };
    let file = File::open(netns).map_err(|e| err("opening the netns", e))?;
    let fd = file.as_fd();
    std::thread::scope(|s| {
        s.spawn(move || -> Result<(), RouteError> {
            setns(fd, CloneFlags::CLONE_NEWNET).map_err(|e| err("entering the netns", e.into()))?;
            let mut sock = RouteSocket::open().map_err(|e| err("opening a netlink socket", e))?;
            let Some(index) = link_index(&mut sock, ifname).map_err(|e| err("RTM_GETLINK", e))? else {
                if change.add.is_empty() {
                    // Nothing of ours to delete routes from.
                    return Ok(());
                }
                return Err(err(
                    "looking up the interface",
                    io::Error::from_raw_os_error(ENODEV),
                ));
            };
            for route in default_routes(&mut sock, index, change).map_err(|e| err("listing routes", e))? {
                let what = format!("deleting the default route {}", describe(&route));
                sock.request(RouteNetlinkMessage::DelRoute(route), NLM_F_ACK)
                    .map_err(|e| err(&what, e))?;
            }
            for gw in &change.add {
                match sock.request(
                    RouteNetlinkMessage::NewRoute(default_via(index, *gw)),
                    NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                ) {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(EEXIST) => {}
                    Err(e) => return Err(err(&format!("adding the default route via {gw}"), e)),
                }
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(err("netns thread", io::Error::other("panicked"))))
    })
}

fn link_index(sock: &mut RouteSocket, ifname: &str) -> io::Result<Option<u32>> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(ifname.to_string()));
    match sock.request(RouteNetlinkMessage::GetLink(m), NLM_F_ACK) {
        Ok(answer) => Ok(answer.into_iter().find_map(|a| match a {
            RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
            _ => None,
        })),
        Err(e) if e.raw_os_error() == Some(ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

fn is_main_table(r: &RouteMessage) -> bool {
    let table = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table));
    table == u32::from(RouteHeader::RT_TABLE_MAIN)
}

/// The main-table default routes out of link `index` in the families `change` deletes.
fn default_routes(
    sock: &mut RouteSocket,
    index: u32,
    change: &DefaultRouteChange,
) -> io::Result<Vec<RouteMessage>> {
    let answer = sock.request(RouteNetlinkMessage::GetRoute(RouteMessage::default()), NLM_F_DUMP)?;
    Ok(answer
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => Some(r),
            _ => None,
        })
        .filter(|r| {
            r.header.destination_prefix_length == 0
                && is_main_table(r)
                && r.attributes.contains(&RouteAttribute::Oif(index))
                && match r.header.address_family {
                    AddressFamily::Inet => change.delete_v4,
                    AddressFamily::Inet6 => change.delete_v6,
                    _ => false,
                }
        })
        .map(|mut r| {
            // What identifies the route; the dump's cache and expiry data are no request.
            r.attributes.retain(|a| {
                matches!(
                    a,
                    RouteAttribute::Gateway(_)
                        | RouteAttribute::Oif(_)
                        | RouteAttribute::Priority(_)
                        | RouteAttribute::Table(_)
                )
            });
            r
        })
        .collect())
}

fn describe(r: &RouteMessage) -> String {
    let gw = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(g.to_string()),
        RouteAttribute::Gateway(RouteAddress::Inet6(g)) => Some(g.to_string()),
        _ => None,
    });
    match gw {
        Some(g) => format!("via {g}"),
        None => "(no gateway)".into(),
    }
}

/// `default via gw dev <index>` in the main table, as `ip route add` makes it.
fn default_via(index: u32, gw: IpAddr) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = if gw.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    m.header.destination_prefix_length = 0;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::Unicast;
    m.attributes.push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    m.attributes.push(RouteAttribute::Oif(index));
    m
}
