//! rtnetlink answers as the kernel sends them: one received datagram decoded by sriov-host's
//! `decode_datagram` (the receive loop of `RouteSocket`, used by discovery and the CNI plugin),
//! then each `RTM_NEWLINK` read by discovery (`link_attrs`) and by the CNI plugin (`Link`, and the
//! PF's `IFLA_VFINFO_LIST` for its VF state).
//!
//! First byte: the VF the CNI plugin looks for; bytes 1..5: the request's sequence number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::LinkAttribute;
use sriov_cni::nl::{Link, parse_vf};
use sriov_host::netlink::{decode_datagram, link_attrs};

fuzz_target!(|data: &[u8]| {
    let [vf, s0, s1, s2, s3, datagram @ ..] = data else {
        return;
    };
    let seq = u32::from_le_bytes([*s0, *s1, *s2, *s3]);
    let mut out = Vec::new();
    if decode_datagram(datagram, seq, &mut out).is_err() {
        return;
    }
    for m in &out {
        let RouteNetlinkMessage::NewLink(l) = m else {
            continue;
        };
        if let Some(a) = link_attrs(l) {
            assert!(!a.netdev.name.is_empty(), "a link without a name was kept");
        }
        let _ = Link::from_msg(l);
        for a in &l.attributes {
            if let LinkAttribute::VfInfoList(list) = a {
                for info in list {
                    let _ = parse_vf(info, u32::from(*vf));
                }
            }
        }
    }
});
