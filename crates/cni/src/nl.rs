//! A small synchronous rtnetlink client (netlink-packet-route messages over a blocking
//! netlink-sys socket, sriov-host's `RouteSocket`): no async runtime on the pod start-up path.
//!
//! A netlink socket stays bound to the network namespace it was created in, so a socket for a
//! pod netns is created on a short-lived thread that entered it (see `netns`), and then used
//! from anywhere. VF attributes are read from and written to the **PF** (`IFLA_VFINFO_LIST`).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    LinkAttribute, LinkExtentMask, LinkFlags, LinkMessage, LinkVfInfo, VfInfo, VfInfoLinkState, VfInfoMac,
    VfInfoRate, VfInfoSpoofCheck, VfInfoTrust, VfLinkState, VfVlan, VfVlanInfo, VlanProtocol,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use sriov_host::netlink::RouteSocket;

use crate::config::Mac;
use crate::plan::{VfChange, VfState};

/// A failed netlink request: what was asked and the kernel's errno.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct NlError {
    pub op: String,
    #[source]
    pub source: io::Error,
}

impl NlError {
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

pub type NlResult<T> = Result<T, NlError>;

/// What we read about a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<Mac>,
    pub mtu: u32,
    pub up: bool,
    pub running: bool,
    /// `IFLA_PARENT_DEV_NAME`: the PCI address for PCI netdevs (a VF in any netns).
    pub parent_dev: Option<String>,
}

impl Link {
    /// The link an `RTM_NEWLINK` answer describes. Public for the fuzz targets (`fuzz/`).
    #[doc(hidden)]
    pub fn from_msg(m: &LinkMessage) -> Link {
        let mut l = Link {
            index: m.header.index,
            name: String::new(),
            mac: None,
            mtu: 0,
            up: m.header.flags.contains(LinkFlags::Up),
            running: m.header.flags.contains(LinkFlags::Running),
            parent_dev: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => l.name = n.clone(),
                LinkAttribute::Address(b) => l.mac = Mac::from_slice(b),
                LinkAttribute::Mtu(v) => l.mtu = *v,
                LinkAttribute::ParentDevName(p) => l.parent_dev = Some(p.clone()),
                _ => {}
            }
        }
        l
    }
}

/// Changes to one link in one `RTM_SETLINK`. The kernel applies a netns move first, then
/// MAC, MTU, name and flags, so "move + rename" is one request (one namespace change).
#[derive(Clone, Debug, Default)]
pub struct LinkChange<'a> {
    pub netns: Option<BorrowedFd<'a>>,
    pub name: Option<String>,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    pub up: Option<bool>,
}

/// One rtnetlink socket, bound to the netns it was opened in (sriov-host's [`RouteSocket`]),
/// with the requests the plugin makes.
pub struct Netlink {
    sock: RouteSocket,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        Ok(Netlink {
            sock: RouteSocket::open()?,
        })
    }

    fn exchange(
        &mut self,
        op: &dyn Fn() -> String,
        msg: RouteNetlinkMessage,
        dump: bool,
    ) -> NlResult<Vec<RouteNetlinkMessage>> {
        let mut flags = if dump { NLM_F_DUMP } else { NLM_F_ACK };
        if let RouteNetlinkMessage::NewAddress(_) | RouteNetlinkMessage::NewRoute(_) = msg {
            flags |= NLM_F_CREATE | NLM_F_EXCL;
        }
        self.sock
            .request(msg, flags)
            .map_err(|source| NlError { op: op(), source })
    }

    fn get_link_msg(&mut self, index: u32, name: Option<&str>, vfs: bool) -> NlResult<Option<LinkMessage>> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(n) = name {
            m.attributes.push(LinkAttribute::IfName(n.to_string()));
        }
        if vfs {
            m.attributes
                .push(LinkAttribute::ExtMask(vec![LinkExtentMask::Vf]));
        }
        let what = name.map_or_else(|| format!("index {index}"), |n| format!("{n:?}"));
        match self.exchange(
            &|| format!("RTM_GETLINK {what}"),
            RouteNetlinkMessage::GetLink(m),
            false,
        ) {
            Ok(v) => Ok(v.into_iter().find_map(|m| {
                if let RouteNetlinkMessage::NewLink(l) = m {
                    Some(l)
                } else {
                    None
                }
            })),
            Err(e) if e.errno() == Some(libc_enodev()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The link called `name`, `None` when there is none.
    pub fn link_by_name(&mut self, name: &str) -> NlResult<Option<Link>> {
        Ok(self
            .get_link_msg(0, Some(name), false)?
            .as_ref()
            .map(Link::from_msg))
    }

    /// The link with `index`, `None` when there is none.
    pub fn link_by_index(&mut self, index: u32) -> NlResult<Option<Link>> {
        Ok(self
            .get_link_msg(index, None, false)?
            .as_ref()
            .map(Link::from_msg))
    }

    /// Every link of this netns.
    pub fn links(&mut self) -> NlResult<Vec<Link>> {
        let v = self.exchange(
            &|| "RTM_GETLINK dump".into(),
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            true,
        )?;
        Ok(v.iter()
            .filter_map(|m| {
                if let RouteNetlinkMessage::NewLink(l) = m {
                    Some(Link::from_msg(l))
                } else {
                    None
                }
            })
            .collect())
    }

    /// Applies `ch` to link `index` in one request.
    pub fn set_link(&mut self, index: u32, ch: &LinkChange<'_>) -> NlResult<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(ns) = &ch.netns {
            m.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        }
        if let Some(mac) = ch.mac {
            m.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        }
        if let Some(mtu) = ch.mtu {
            m.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(n) = &ch.name {
            m.attributes.push(LinkAttribute::IfName(n.clone()));
        }
        if let Some(up) = ch.up {
            m.header.change_mask = LinkFlags::Up;
            if up {
                m.header.flags = LinkFlags::Up;
            }
        }
        self.exchange(
            &|| format!("RTM_SETLINK index {index} {ch:?}"),
            RouteNetlinkMessage::SetLink(m),
            false,
        )
        .map(drop)
    }

    /// The PF-reported state of VF `vf` of the PF with `pf_index` (matched by VF id, not position).
    pub fn vf_state(&mut self, pf_index: u32, vf: u32) -> NlResult<Option<VfState>> {
        let Some(m) = self.get_link_msg(pf_index, None, true)? else {
            return Ok(None);
        };
        for a in &m.attributes {
            if let LinkAttribute::VfInfoList(list) = a {
                for info in list {
                    if let Some(s) = parse_vf(info, vf) {
                        return Ok(Some(s));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Sets one VF attribute through the PF.
    pub fn set_vf(&mut self, pf_index: u32, vf: u32, ch: &VfChange) -> NlResult<()> {
        let info = match *ch {
            VfChange::Vlan { vlan, qos, proto } => {
                let p = if proto == 0x88a8 {
                    VlanProtocol::Ieee8021Ad
                } else {
                    VlanProtocol::Ieee8021Q
                };
                VfInfo::VlanList(vec![VfVlan::Info(VfVlanInfo::new(
                    vf,
                    u32::from(vlan),
                    u32::from(qos),
                    p,
                ))])
            }
            VfChange::Mac(mac) => VfInfo::Mac(VfInfoMac::new(vf, &mac.0)),
            VfChange::Rate { min, max } => VfInfo::Rate(VfInfoRate::new(vf, min, max)),
            VfChange::SpoofChk(on) => VfInfo::SpoofCheck(VfInfoSpoofCheck::new(vf, on)),
            VfChange::Trust(on) => VfInfo::Trust(VfInfoTrust::new(vf, on)),
            VfChange::LinkState(s) => VfInfo::LinkState(VfInfoLinkState::new(vf, VfLinkState::from(s))),
        };
        let mut m = LinkMessage::default();
        m.header.index = pf_index;
        m.attributes
            .push(LinkAttribute::VfInfoList(vec![LinkVfInfo(vec![info])]));
        self.exchange(
            &|| format!("setting VF {vf} {ch} on PF index {pf_index}"),
            RouteNetlinkMessage::SetLink(m),
            false,
        )
        .map(drop)
    }

    /// Adds `addr/prefix` to link `index`.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> NlResult<()> {
        let mut m = AddressMessage::default();
        m.header.family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.prefix_len = prefix;
        m.header.index = index;
        if addr.is_ipv4() {
            m.attributes.push(AddressAttribute::Local(addr));
        }
        m.attributes.push(AddressAttribute::Address(addr));
        self.exchange(
            &|| format!("adding address {addr}/{prefix}"),
            RouteNetlinkMessage::NewAddress(m),
            false,
        )
        .map(drop)
    }

    /// Adds a main-table route `dst/prefix` (via `gw`) out of link `index`.
    pub fn add_route(&mut self, index: u32, dst: IpAddr, prefix: u8, gw: Option<IpAddr>) -> NlResult<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = if dst.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        m.header.destination_prefix_length = prefix;
        m.header.table = netlink_packet_route::route::RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = if gw.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        m.header.kind = RouteType::Unicast;
        if prefix > 0 {
            m.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(dst)));
        }
        if let Some(g) = gw {
            m.attributes.push(RouteAttribute::Gateway(RouteAddress::from(g)));
        }
        m.attributes.push(RouteAttribute::Oif(index));
        self.exchange(
            &|| format!("adding route {dst}/{prefix} via {gw:?}"),
            RouteNetlinkMessage::NewRoute(m),
            false,
        )
        .map(drop)
    }
}

const fn libc_enodev() -> i32 {
    19
}

/// VF `vf`'s state from one `IFLA_VF_INFO` of the PF, `None` when it is another VF's. Public for
/// the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub fn parse_vf(info: &LinkVfInfo, vf: u32) -> Option<VfState> {
    let mut s = VfState::default();
    let mut id = None;
    for a in &info.0 {
        match a {
            VfInfo::Mac(m) => {
                id = Some(m.vf_id);
                s.admin_mac = Mac::from_slice(&m.mac).unwrap_or_default();
            }
            VfInfo::Vlan(v) => {
                s.vlan = u16::try_from(v.vlan_id).unwrap_or(0);
                s.qos = u8::try_from(v.qos).unwrap_or(0);
            }
            VfInfo::VlanList(l) => {
                if let Some(VfVlan::Info(i)) = l.first() {
                    s.vlan_proto = u16::from(i.protocol);
                }
            }
            VfInfo::Rate(r) => {
                s.min_tx_rate = r.min_tx_rate;
                s.max_tx_rate = r.max_tx_rate;
            }
            VfInfo::SpoofCheck(c) => s.spoofchk = c.enabled,
            VfInfo::Trust(t) => s.trust = t.enabled,
            VfInfo::LinkState(l) => s.link_state = u32::from(l.state),
            _ => {}
        }
    }
    (id == Some(vf)).then_some(s)
}
