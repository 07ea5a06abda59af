//! Pure planning of PF-side VF changes: what ADD sets, and what DEL (or a failed ADD) writes back.
//!
//! Restore rules, better than upstream: every attribute the config asks for is restored from the
//! saved original state, whatever step an interrupted ADD reached; an original admin MAC that is
//! only the VF's own (random) MAC is restored as "no admin MAC" (all zeros), never pinned.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{Mac, VfRequest};

/// What the PF reports for one VF (`IFLA_VF_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VfState {
    pub admin_mac: Mac,
    pub vlan: u16,
    pub qos: u8,
    /// Ethertype; 0 when the kernel sent no VLAN list.
    pub vlan_proto: u16,
    pub spoofchk: bool,
    pub trust: bool,
    pub link_state: u32,
    pub min_tx_rate: u32,
    pub max_tx_rate: u32,
}

/// One PF-side write (one `RTM_SETLINK` on the PF).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VfChange {
    Vlan { vlan: u16, qos: u8, proto: u16 },
    Mac(#[serde(with = "mac_serde")] Mac),
    Rate { min: u32, max: u32 },
    SpoofChk(bool),
    Trust(bool),
    LinkState(u32),
}

mod mac_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::config::Mac;

    pub fn serialize<S: Serializer>(m: &Mac, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&m.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("invalid MAC {s:?}")))
    }
}

impl VfChange {
    /// Short name of the attribute (for errors and fault injection).
    pub fn field(&self) -> &'static str {
        match self {
            VfChange::Vlan { .. } => "vlan",
            VfChange::Mac(_) => "mac",
            VfChange::Rate { .. } => "rate",
            VfChange::SpoofChk(_) => "spoofchk",
            VfChange::Trust(_) => "trust",
            VfChange::LinkState(_) => "link_state",
        }
    }

    /// Applies the change to a state (the fake PF and tests use this).
    pub fn apply_to(&self, s: &mut VfState) {
        match *self {
            VfChange::Vlan { vlan, qos, proto } => {
                s.vlan = vlan;
                s.qos = qos;
                s.vlan_proto = proto;
            }
            VfChange::Mac(m) => s.admin_mac = m,
            VfChange::Rate { min, max } => {
                s.min_tx_rate = min;
                s.max_tx_rate = max;
            }
            VfChange::SpoofChk(b) => s.spoofchk = b,
            VfChange::Trust(b) => s.trust = b,
            VfChange::LinkState(l) => s.link_state = l,
        }
    }
}

impl fmt::Display for VfChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VfChange::Vlan { vlan, qos, proto } => write!(f, "vlan {vlan} qos {qos} proto {proto:#06x}"),
            VfChange::Mac(m) => write!(f, "mac {m}"),
            VfChange::Rate { min, max } => write!(f, "min_tx_rate {min} max_tx_rate {max}"),
            VfChange::SpoofChk(b) => write!(f, "spoofchk {}", if *b { "on" } else { "off" }),
            VfChange::Trust(b) => write!(f, "trust {}", if *b { "on" } else { "off" }),
            VfChange::LinkState(l) => write!(f, "link_state {l}"),
        }
    }
}

/// ADD's PF-side writes, in upstream's order: VLAN, admin MAC, rate, spoofchk, trust, link state.
pub fn apply_plan(req: &VfRequest, mac: Option<Mac>) -> Vec<VfChange> {
    let mut v = Vec::new();
    if let Some((vlan, qos, p)) = req.vlan {
        v.push(VfChange::Vlan {
            vlan,
            qos,
            proto: p.ethertype(),
        });
    }
    if let Some(m) = mac {
        v.push(VfChange::Mac(m));
    }
    if let Some((min, max)) = req.rate {
        v.push(VfChange::Rate { min, max });
    }
    if let Some(b) = req.spoofchk {
        v.push(VfChange::SpoofChk(b));
    }
    if let Some(b) = req.trust {
        v.push(VfChange::Trust(b));
    }
    if let Some(l) = req.link_state {
        v.push(VfChange::LinkState(l as u32));
    }
    v
}

/// The admin MAC to write back: the original one only when it was really set by an
/// administrator, i.e. non-zero and different from the VF's own netdev MAC; else zero (cleared).
pub fn restore_admin_mac(orig_admin: Mac, orig_netdev_mac: Option<Mac>) -> Mac {
    if orig_admin.is_zero() || Some(orig_admin) == orig_netdev_mac {
        Mac::ZERO
    } else {
        orig_admin
    }
}

/// The writes that bring back `orig` for every attribute ADD may have changed (`applied`),
/// in upstream's DEL order: VLAN, spoofchk, admin MAC, trust, rate, link state. Attributes
/// already at their original value in `current` (when known) are skipped.
pub fn restore_plan(
    applied: &[&str],
    orig: &VfState,
    orig_netdev_mac: Option<Mac>,
    current: Option<&VfState>,
) -> Vec<VfChange> {
    let has = |f: &str| applied.contains(&f);
    let mut v = Vec::new();
    if has("vlan") {
        let proto = if orig.vlan_proto == 0 {
            0x8100
        } else {
            orig.vlan_proto
        };
        v.push(VfChange::Vlan {
            vlan: orig.vlan,
            qos: orig.qos,
            proto,
        });
    }
    if has("spoofchk") {
        v.push(VfChange::SpoofChk(orig.spoofchk));
    }
    if has("mac") {
        v.push(VfChange::Mac(restore_admin_mac(orig.admin_mac, orig_netdev_mac)));
    }
    if has("trust") {
        v.push(VfChange::Trust(orig.trust));
    }
    if has("rate") {
        v.push(VfChange::Rate {
            min: orig.min_tx_rate,
            max: orig.max_tx_rate,
        });
    }
    if has("link_state") {
        v.push(VfChange::LinkState(orig.link_state));
    }
    if let Some(cur) = current {
        v.retain(|c| {
            let mut after = cur.clone();
            c.apply_to(&mut after);
            // A VLAN proto of 0 (not reported) equals 802.1Q.
            let norm = |s: &VfState| VfState {
                vlan_proto: if s.vlan_proto == 0 { 0x8100 } else { s.vlan_proto },
                ..s.clone()
            };
            norm(&after) != norm(cur)
        });
    }
    v
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{LinkState, VlanProto};

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    #[test]
    fn apply_order_and_content() {
        let req = VfRequest {
            vlan: Some((100, 3, VlanProto::Dot1Q)),
            spoofchk: Some(false),
            trust: Some(true),
            link_state: Some(LinkState::Enable),
            rate: Some((0, 100)),
            ..Default::default()
        };
        let p = apply_plan(&req, Some(mac("02:00:00:00:00:01")));
        let fields: Vec<_> = p.iter().map(VfChange::field).collect();
        assert_eq!(fields, ["vlan", "mac", "rate", "spoofchk", "trust", "link_state"]);
        assert_eq!(
            p[0],
            VfChange::Vlan {
                vlan: 100,
                qos: 3,
                proto: 0x8100
            }
        );
        assert!(apply_plan(&VfRequest::default(), None).is_empty());
    }

    #[test]
    fn restore_brings_back_original_and_clears_random_mac() {
        let orig = VfState {
            admin_mac: mac("12:e3:36:4d:00:b8"),
            spoofchk: true,
            ..Default::default()
        };
        let applied: Vec<&str> = apply_plan(
            &VfRequest {
                vlan: Some((7, 0, VlanProto::Dot1Q)),
                spoofchk: Some(false),
                ..Default::default()
            },
            Some(mac("02:00:00:00:00:01")),
        )
        .iter()
        .map(VfChange::field)
        .collect();
        let r = restore_plan(&applied, &orig, Some(mac("12:e3:36:4d:00:b8")), None);
        assert_eq!(
            r,
            vec![
                VfChange::Vlan {
                    vlan: 0,
                    qos: 0,
                    proto: 0x8100
                },
                VfChange::SpoofChk(true),
                VfChange::Mac(Mac::ZERO)
            ]
        );
        // A real admin MAC (different from the netdev's) is kept.
        let orig2 = VfState {
            admin_mac: mac("02:aa:00:00:00:01"),
            ..orig.clone()
        };
        let r = restore_plan(&applied, &orig2, Some(mac("12:e3:36:4d:00:b8")), None);
        assert!(r.contains(&VfChange::Mac(mac("02:aa:00:00:00:01"))));
    }

    #[test]
    fn restore_skips_attributes_already_original() {
        let orig = VfState {
            spoofchk: true,
            ..Default::default()
        };
        let applied = ["spoofchk", "trust"];
        let mut cur = orig.clone();
        cur.trust = true; // spoofchk never got applied
        let r = restore_plan(&applied, &orig, None, Some(&cur));
        assert_eq!(r, vec![VfChange::Trust(false)]);
        // Applying the full restore plan to any partial state gives the original back.
        let full = restore_plan(&applied, &orig, None, None);
        let mut s = cur.clone();
        full.iter().for_each(|c| c.apply_to(&mut s));
        assert_eq!(s, orig);
    }

    mod props {
        use proptest::prelude::*;

        use super::*;

        fn state() -> impl Strategy<Value = VfState> {
            (
                any::<[u8; 6]>(),
                0u16..4095,
                0u8..8,
                prop_oneof![Just(0u16), Just(0x8100), Just(0x88a8)],
                any::<bool>(),
                any::<bool>(),
                0u32..3,
                0u32..1000,
                0u32..1000,
            )
                .prop_map(
                    |(m, vlan, qos, vlan_proto, spoofchk, trust, link_state, min_tx_rate, max_tx_rate)| {
                        VfState {
                            admin_mac: Mac(m),
                            vlan,
                            qos,
                            vlan_proto,
                            spoofchk,
                            trust,
                            link_state,
                            min_tx_rate,
                            max_tx_rate,
                        }
                    },
                )
        }

        fn request() -> impl Strategy<Value = VfRequest> {
            (
                proptest::option::of((
                    0u16..4095,
                    0u8..8,
                    prop_oneof![Just(VlanProto::Dot1Q), Just(VlanProto::Dot1Ad)],
                )),
                proptest::option::of(any::<[u8; 6]>().prop_map(Mac)),
                proptest::option::of(any::<bool>()),
                proptest::option::of(any::<bool>()),
                proptest::option::of(prop_oneof![
                    Just(LinkState::Auto),
                    Just(LinkState::Enable),
                    Just(LinkState::Disable)
                ]),
                proptest::option::of((0u32..100, 0u32..1000)),
            )
                .prop_map(|(vlan, mac, spoofchk, trust, link_state, rate)| VfRequest {
                    vlan,
                    mac,
                    spoofchk,
                    trust,
                    link_state,
                    rate,
                })
        }

        proptest! {
            /// Whatever prefix of ADD's writes happened, the restore plan brings back the original
            /// (with an admin MAC that was the VF's own restored as cleared).
            #[test]
            fn any_partial_add_is_undone(orig in state(), req in request(), done in 0usize..7, own_mac in any::<bool>()) {
                let netdev_mac = if own_mac { Some(orig.admin_mac) } else { None };
                let plan = apply_plan(&req, req.mac);
                let mut s = orig.clone();
                plan.iter().take(done).for_each(|c| c.apply_to(&mut s));
                let fields: Vec<&str> = plan.iter().map(VfChange::field).collect();
                let restore = restore_plan(&fields, &orig, netdev_mac, Some(&s));
                restore.iter().for_each(|c| c.apply_to(&mut s));
                let mut want = orig.clone();
                if req.mac.is_some() {
                    want.admin_mac = restore_admin_mac(orig.admin_mac, netdev_mac);
                }
                let norm = |x: &VfState| VfState { vlan_proto: if x.vlan_proto == 0 { 0x8100 } else { x.vlan_proto }, ..x.clone() };
                prop_assert_eq!(norm(&s), norm(&want));
            }
        }
    }
}
