//! Netdev attributes of every link of this network namespace from one rtnetlink dump
//! (`RTM_GETLINK` with `NLM_F_DUMP`), the way `ip link` reads them.
//!
//! Why: sysfs gives one attribute per file, and each file costs an `open` + `read` + `close`
//! (≈ 3.7 µs on real sysfs on the build VM). A node with thousands of VF netdevs would pay six
//! of those per netdev; one dump answers for all of them in a few dozen `recv`s. Which netdevs
//! belong to which PCI function is still read from sysfs (`<pci>/net/`): the dump only supplies
//! their attributes, by name. `speed` has no rtnetlink attribute (it is ethtool's) and stays a
//! sysfs read, for PFs only.
//!
//! The messages are built and parsed with netlink-packet-route over a blocking netlink-sys
//! socket (no async runtime for one request), as the CNI plugin does.

use std::collections::HashMap;
use std::io;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkFlags, LinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

use crate::model::{LinkType, NetDevice};

/// What the dump says about one link: the [`NetDevice`] fields it can answer, and the link's
/// parent device when the kernel names it (`IFLA_PARENT_DEV_NAME`, Linux ≥ 5.17: the PCI
/// address for a PCI netdev; absent for virtual links).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkAttrs {
    pub netdev: NetDevice,
    pub parent_dev: Option<String>,
}

/// The links of the calling thread's network namespace, by name.
pub type LinkTable = HashMap<String, LinkAttrs>;

/// `operstate` as sysfs spells it (`operstates[]` in net/core/net-sysfs.c), from `IF_OPER_*`.
pub fn oper_state_name(state: u8) -> &'static str {
    match state {
        1 => "notpresent",
        2 => "down",
        3 => "lowerlayerdown",
        4 => "testing",
        5 => "dormant",
        6 => "up",
        _ => "unknown",
    }
}

/// A hardware address as sysfs prints it: lower-case hex bytes joined by `:`.
pub fn format_hw_addr(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The [`LinkAttrs`] of one `RTM_NEWLINK` message; `None` without a name.
pub fn link_attrs(m: &LinkMessage) -> Option<LinkAttrs> {
    let link_type = match u16::from(m.header.link_layer_type) {
        1 => LinkType::Ether,
        32 => LinkType::Infiniband,
        other => LinkType::Other(other),
    };
    let mut netdev = NetDevice {
        link_type,
        admin_up: m.header.flags.contains(LinkFlags::Up),
        oper_state: "unknown".to_string(),
        ..NetDevice::default()
    };
    let mut parent_dev = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => netdev.name = n.clone(),
            LinkAttribute::Address(b) => netdev.mac = format_hw_addr(b),
            LinkAttribute::Mtu(v) => netdev.mtu = *v,
            LinkAttribute::OperState(s) => netdev.oper_state = oper_state_name(u8::from(*s)).to_string(),
            LinkAttribute::PhysPortName(p) => netdev.phys_port_name = p.clone(),
            LinkAttribute::ParentDevName(p) => parent_dev = Some(p.clone()),
            _ => {}
        }
    }
    (!netdev.name.is_empty()).then_some(LinkAttrs { netdev, parent_dev })
}

/// A blocking rtnetlink socket: one request at a time, its answers collected. Shared by discovery
/// (the link dump) and the CNI plugin (link, address and route requests), so the request and
/// receive loop exists once.
pub struct RouteSocket {
    sock: Socket,
    seq: u32,
}

impl RouteSocket {
    /// Opens a socket in the calling thread's network namespace (it stays bound to it).
    pub fn open() -> io::Result<RouteSocket> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(RouteSocket { sock, seq: 0 })
    }

    /// Sends `msg` with `NLM_F_REQUEST | flags` and returns the messages answered, up to the
    /// end of a dump (`NLMSG_DONE`) or the acknowledgement; a kernel error is its errno.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
        req.finalize();
        let mut buf = vec![0u8; req.buffer_len()];
        req.serialize(&mut buf);
        self.sock.send(&buf, 0)?;

        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            if data.is_empty() {
                return Err(invalid("netlink socket closed before the answer ended".into()));
            }
            if let Some(end) = decode_datagram(&data, self.seq, &mut out)? {
                return end.map(|()| out);
            }
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Decodes one received datagram (one or more netlink messages) of the answer to request `seq`:
/// the inner messages are appended to `out`; messages of other sequence numbers are skipped.
/// `Ok(None)`: the answer goes on in the next datagram; `Ok(Some(Ok(())))`: it ended (`NLMSG_DONE`
/// or the acknowledgement); `Ok(Some(Err(errno)))`: the kernel refused the request; `Err`: bytes
/// that are not netlink. Pure, so the decoder is fuzzed on its own (`fuzz/`).
pub fn decode_datagram(
    data: &[u8],
    seq: u32,
    out: &mut Vec<RouteNetlinkMessage>,
) -> io::Result<Option<io::Result<()>>> {
    let mut off = 0;
    while off < data.len() {
        let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
            .map_err(|e| invalid(format!("undecodable rtnetlink message: {e}")))?;
        let len = m.header.length as usize;
        if len == 0 {
            return Err(invalid("zero-length netlink message".into()));
        }
        off += (len + 3) & !3;
        if m.header.sequence_number != seq {
            continue;
        }
        match m.payload {
            NetlinkPayload::Done(_) => return Ok(Some(Ok(()))),
            NetlinkPayload::Error(e) => {
                return match e.code {
                    // The kernel sends `-errno`; anything else (a positive code, or `i32::MIN`,
                    // whose negation overflows) is not an answer from the kernel.
                    Some(c) => match c.get().checked_neg().filter(|errno| *errno > 0) {
                        Some(errno) => Ok(Some(Err(io::Error::from_raw_os_error(errno)))),
                        None => Err(invalid(format!(
                            "netlink error message: code {c} is not a negative errno"
                        ))),
                    },
                    None => Ok(Some(Ok(()))),
                };
            }
            NetlinkPayload::InnerMessage(i) => out.push(i),
            _ => {}
        }
    }
    Ok(None)
}

/// Dumps every link of the calling thread's network namespace. Statistics are left out
/// (`RTEXT_FILTER_SKIP_STATS`) and so are VF lists (no `RTEXT_FILTER_VF`): a PF with 256 VFs
/// would otherwise add kilobytes per PF that discovery does not use.
pub fn dump_links() -> io::Result<LinkTable> {
    let mut req = LinkMessage::default();
    req.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    let answers = RouteSocket::open()?.request(RouteNetlinkMessage::GetLink(req), NLM_F_DUMP)?;
    Ok(answers
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => link_attrs(l),
            _ => None,
        })
        .map(|a| (a.netdev.name.clone(), a))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_like_sysfs() {
        assert_eq!(
            format_hw_addr(&[0xb4, 0x96, 0x91, 0, 0x0a, 0xff]),
            "b4:96:91:00:0a:ff"
        );
        assert_eq!(format_hw_addr(&[]), "");
        let names: Vec<_> = (0..=7).map(oper_state_name).collect();
        assert_eq!(
            names,
            [
                "unknown",
                "notpresent",
                "down",
                "lowerlayerdown",
                "testing",
                "dormant",
                "up",
                "unknown"
            ]
        );
    }

    fn wire(seq: u32, payload: NetlinkPayload<RouteNetlinkMessage>) -> Vec<u8> {
        let mut hdr = NetlinkHeader::default();
        hdr.sequence_number = seq;
        let mut m = NetlinkMessage::new(hdr, payload);
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    fn link(name: &str) -> RouteNetlinkMessage {
        let mut l = LinkMessage::default();
        l.attributes.push(LinkAttribute::IfName(name.into()));
        RouteNetlinkMessage::NewLink(l)
    }

    #[test]
    fn a_datagram_is_decoded_up_to_the_end_of_the_answer() {
        let mut data = wire(7, NetlinkPayload::InnerMessage(link("eth0")));
        data.extend(wire(8, NetlinkPayload::InnerMessage(link("other-request"))));
        let mut out = Vec::new();
        assert!(
            matches!(decode_datagram(&data, 7, &mut out), Ok(None)),
            "the answer goes on"
        );
        assert_eq!(out, vec![link("eth0")], "another request's message is skipped");

        let mut err = netlink_packet_core::ErrorMessage::default();
        err.code = std::num::NonZeroI32::new(-19);
        let data = wire(7, NetlinkPayload::Error(err));
        let end = decode_datagram(&data, 7, &mut out).expect("netlink bytes");
        let errno = end.and_then(|r| r.err()).and_then(|e| e.raw_os_error());
        assert_eq!(errno, Some(19), "the kernel's ENODEV");

        // Found by fuzz/ (netlink_decode): `-code` overflowed on i32::MIN.
        for code in [i32::MIN, 5] {
            let mut err = netlink_packet_core::ErrorMessage::default();
            err.code = std::num::NonZeroI32::new(code);
            let bad =
                decode_datagram(&wire(7, NetlinkPayload::Error(err)), 7, &mut out).expect_err("not an errno");
            assert!(
                bad.to_string()
                    .contains(&format!("code {code} is not a negative errno")),
                "{bad}"
            );
        }

        let garbage = decode_datagram(&data[..10], 7, &mut out).expect_err("a cut header");
        assert!(
            garbage.to_string().contains("undecodable rtnetlink message"),
            "{garbage}"
        );
    }

    #[test]
    fn the_loopback_of_this_namespace() {
        // Every network namespace has `lo`: 00:00:00:00:00:00, type 772 (ARPHRD_LOOPBACK).
        let links = dump_links().expect("link dump");
        let lo = &links.get("lo").expect("lo in the dump").netdev;
        assert_eq!(lo.mac, "00:00:00:00:00:00");
        assert_eq!(lo.link_type, LinkType::Other(772));
        assert!(lo.mtu > 0);
        assert_eq!(links.get("lo").map(|l| l.parent_dev.clone()), Some(None));
    }
}
