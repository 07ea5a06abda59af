//! The `default-route` request of a network selection element, decided as Multus decides it
//! (its `CheckGatewayConfig` and the route handling after each delegate's ADD), so a pod gets the
//! same routing table under this plugin as under Multus:
//!
//! - Nothing changes unless some attachment carries `default-route` (an empty list counts).
//! - Then at most one gateway per IP family across all of the pod's attachments (Multus does no
//!   ECMP); more is an error before anything is attached.
//! - After each attachment's ADD (the default network's too) whose result names an interface or
//!   an address: its interface loses its default routes, and the gateways of its own
//!   `default-route` become its default routes. Multus marks the families per attachment
//!   ("filter" flags), but every path through its logic ends up deleting both families, so an
//!   IPv4-only `default-route` also removes the other attachments' IPv6 default routes; kept, as
//!   a drop-in must route like the original.
//! - The attachment's cached CNI result (what CHECK and DEL get as `prevResult`) is rewritten to
//!   match; the result returned to the runtime and the network-status annotation are left as the
//!   plugins reported them (`default: true` stays on the default network), as in Multus.
//!
//! Plain functions over plain data; the netns side is [`crate::routes`].

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::delegate::Delegate;

/// A `default-route` request that cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum DefaultRouteError {
    #[error(
        "pod {pod}: field `default-route` asks for {count} IPv{family} default gateways ({requests}); a pod gets one default route per IP family (Multus supports no ECMP)",
        count = requests_of(.requests).len(),
        requests = requests_of(.requests).join(", ")
    )]
    Ecmp {
        pod: String,
        family: u8,
        /// (network, gateway) of every request in that family.
        requests: Vec<(String, IpAddr)>,
    },
    #[error("pod {pod}: network {network}: field `default-route`: {value:?} is not an IP address")]
    BadGateway {
        pod: String,
        network: String,
        value: String,
    },
}

fn requests_of(r: &[(String, IpAddr)]) -> Vec<String> {
    r.iter().map(|(n, gw)| format!("network {n}: {gw}")).collect()
}

/// What happens to one attachment's default routes right after its ADD.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefaultRouteChange {
    /// Delete the interface's IPv4 default routes (and drop them from the cached result).
    pub delete_v4: bool,
    /// Delete the interface's IPv6 default routes (and drop them from the cached result).
    pub delete_v6: bool,
    /// Then add a default route via each of these on the interface.
    pub add: Vec<IpAddr>,
}

impl DefaultRouteChange {
    pub fn is_noop(&self) -> bool {
        !self.delete_v4 && !self.delete_v6 && self.add.is_empty()
    }
}

/// An IPv4-mapped IPv6 address counts as IPv4, as Go's `To4` does.
fn is_v4(ip: &IpAddr) -> bool {
    ip.to_canonical().is_ipv4()
}

/// The change for every delegate, in order (all no-ops when none carries `default-route`).
pub fn plan(delegates: &[Delegate], pod: &str) -> Result<Vec<DefaultRouteChange>, DefaultRouteError> {
    let mut gateways: Vec<Option<Vec<IpAddr>>> = Vec::with_capacity(delegates.len());
    for d in delegates {
        gateways.push(match &d.default_route {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|s| {
                        s.parse::<IpAddr>().map_err(|_| DefaultRouteError::BadGateway {
                            pod: pod.to_string(),
                            network: d.name.clone(),
                            value: s.clone(),
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        });
    }
    if gateways.iter().all(Option::is_none) {
        return Ok(vec![DefaultRouteChange::default(); delegates.len()]);
    }
    for (family, v4) in [(4u8, true), (6, false)] {
        let requests: Vec<(String, IpAddr)> = delegates
            .iter()
            .zip(&gateways)
            .flat_map(|(d, gws)| {
                gws.iter()
                    .flatten()
                    .filter(|gw| is_v4(gw) == v4)
                    .map(|gw| (d.name.clone(), gw.to_canonical()))
            })
            .collect();
        if requests.len() > 1 {
            return Err(DefaultRouteError::Ecmp {
                pod: pod.to_string(),
                family,
                requests,
            });
        }
    }
    Ok(gateways
        .into_iter()
        .map(|gws| {
            let gws: Vec<IpAddr> = gws.unwrap_or_default().iter().map(IpAddr::to_canonical).collect();
            // Multus: a family is "filtered" (its default routes deleted) unless this
            // attachment has a gateway in it; a non-empty list deletes before it adds.
            let filter_v4 = !gws.iter().any(is_v4);
            let filter_v6 = !gws.iter().any(|g| !is_v4(g));
            DefaultRouteChange {
                delete_v4: filter_v4 || !gws.is_empty(),
                delete_v6: filter_v6 || !gws.is_empty(),
                add: gws,
            }
        })
        .collect())
}

/// Multus touches routes only for a result that names an interface or an address (plugins
/// that create nothing return neither).
pub fn applies(result: &Value) -> bool {
    ["interfaces", "ips"]
        .iter()
        .any(|k| result.get(*k).is_some_and(|v| !v.is_null()))
}

/// The family (4 or 6) of a default route's `dst`, `None` for any other route.
fn default_dst_family(dst: &str) -> Option<u8> {
    let (ip, len) = dst.split_once('/')?;
    if len.trim() != "0" {
        return None;
    }
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some(4),
        IpAddr::V6(_) => Some(6),
    }
}

/// The cached result after the change: default routes of the deleted families removed from
/// `routes` (the key dropped when none is left), then one route per added gateway.
pub fn rewrite_result(result: &Value, change: &DefaultRouteChange) -> Value {
    let mut r = result.clone();
    let Some(o) = r.as_object_mut() else { return r };
    let mut routes: Vec<Value> = o
        .get("routes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    routes.retain(|route| match route["dst"].as_str().and_then(default_dst_family) {
        Some(4) => !change.delete_v4,
        Some(_) => !change.delete_v6,
        None => true,
    });
    for gw in &change.add {
        let dst = if is_v4(gw) { "0.0.0.0/0" } else { "::/0" };
        routes.push(json!({"dst": dst, "gw": gw.to_string()}));
    }
    if routes.is_empty() {
        o.remove("routes");
    } else {
        o.insert("routes".into(), Value::Array(routes));
    }
    r
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn net(name: &str, gws: Option<&[&str]>) -> Delegate {
        Delegate {
            name: name.into(),
            default_route: gws.map(|g| g.iter().map(ToString::to_string).collect()),
            ..Delegate::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn no_request_changes_nothing() {
        let p = plan(&[net("cbr0", None), net("ns/a", None)], "ns/p").unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(DefaultRouteChange::is_noop));
    }

    #[test]
    fn a_v4_gateway_moves_every_default_route() {
        let p = plan(
            &[
                net("cbr0", None),
                net("ns/a", Some(&["10.1.0.1"])),
                net("ns/b", None),
            ],
            "ns/p",
        )
        .unwrap();
        let both = DefaultRouteChange {
            delete_v4: true,
            delete_v6: true,
            add: vec![],
        };
        assert_eq!(p[0], both, "the default network loses v4 and v6 default routes");
        assert_eq!(
            p[1],
            DefaultRouteChange {
                delete_v4: true,
                delete_v6: true,
                add: vec![ip("10.1.0.1")]
            }
        );
        assert_eq!(p[2], both);
    }

    #[test]
    fn one_gateway_per_family_on_different_networks() {
        let p = plan(
            &[
                net("cbr0", None),
                net("ns/a", Some(&["10.1.0.1"])),
                net("ns/b", Some(&["fd00::1"])),
            ],
            "ns/p",
        )
        .unwrap();
        assert_eq!(p[1].add, [ip("10.1.0.1")]);
        assert_eq!(p[2].add, [ip("fd00::1")]);
        assert!(p.iter().all(|c| c.delete_v4 && c.delete_v6));
        let dual = plan(&[net("ns/a", Some(&["10.1.0.1", "fd00::1"]))], "ns/p").unwrap();
        assert_eq!(dual[0].add, [ip("10.1.0.1"), ip("fd00::1")]);
    }

    #[test]
    fn an_empty_list_still_filters_every_attachment() {
        let p = plan(&[net("cbr0", None), net("ns/a", Some(&[]))], "ns/p").unwrap();
        for c in &p {
            assert!(c.delete_v4 && c.delete_v6 && c.add.is_empty(), "{c:?}");
        }
    }

    #[test]
    fn two_gateways_of_a_family_name_both_networks() {
        let e = plan(
            &[
                net("cbr0", None),
                net("ns/a", Some(&["10.1.0.1"])),
                net("ns/b", Some(&["10.2.0.1"])),
            ],
            "ns/p (uid u)",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "pod ns/p (uid u): field `default-route` asks for 2 IPv4 default gateways (network ns/a: 10.1.0.1, network ns/b: 10.2.0.1); a pod gets one default route per IP family (Multus supports no ECMP)"
        );
        let e = plan(&[net("ns/a", Some(&["fd00::1", "fd00::2"]))], "ns/p").unwrap_err();
        assert!(e.to_string().contains("2 IPv6 default gateways"), "{e}");
        // Go's To4 counts a v4-mapped v6 address as v4.
        let e = plan(
            &[
                net("ns/a", Some(&["10.1.0.1"])),
                net("ns/b", Some(&["::ffff:10.2.0.1"])),
            ],
            "ns/p",
        )
        .unwrap_err();
        assert!(e.to_string().contains("network ns/b: 10.2.0.1"), "{e}");
    }

    #[test]
    fn a_bad_cached_gateway_names_network_and_field() {
        let e = plan(&[net("ns/a", Some(&["gw"]))], "ns/p").unwrap_err();
        assert_eq!(
            e.to_string(),
            "pod ns/p: network ns/a: field `default-route`: \"gw\" is not an IP address"
        );
    }

    #[test]
    fn only_results_with_interfaces_or_ips_are_touched() {
        assert!(applies(&json!({"cniVersion":"1.0.0","interfaces":[]})));
        assert!(applies(&json!({"ips":[{"address":"10.0.0.2/24"}]})));
        assert!(!applies(&json!({"cniVersion":"1.0.0","dns":{}})));
        assert!(!applies(&json!({"interfaces":null})));
    }

    #[test]
    fn cached_result_is_rewritten() {
        let r = json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}],
            "routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"},{"dst":"::0/0","gw":"fd00::1"},
                      {"dst":"10.9.0.0/16","gw":"10.0.0.1"}]});
        let v4_only = DefaultRouteChange {
            delete_v4: true,
            delete_v6: false,
            add: vec![],
        };
        assert_eq!(
            rewrite_result(&r, &v4_only)["routes"],
            json!([{"dst":"::0/0","gw":"fd00::1"},{"dst":"10.9.0.0/16","gw":"10.0.0.1"}])
        );
        let moved = DefaultRouteChange {
            delete_v4: true,
            delete_v6: true,
            add: vec![ip("10.0.0.254"), ip("fd00::fe")],
        };
        assert_eq!(
            rewrite_result(&r, &moved)["routes"],
            json!([{"dst":"10.9.0.0/16","gw":"10.0.0.1"},
                   {"dst":"0.0.0.0/0","gw":"10.0.0.254"},{"dst":"::/0","gw":"fd00::fe"}])
        );
        let only_defaults = json!({"cniVersion":"1.0.0","routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"}]});
        let cleared = rewrite_result(
            &only_defaults,
            &DefaultRouteChange {
                delete_v4: true,
                delete_v6: true,
                add: vec![],
            },
        );
        assert!(cleared.get("routes").is_none(), "{cleared}");
        assert_eq!(
            rewrite_result(&json!({"cniVersion":"1.0.0"}), &moved)["routes"][0],
            json!({"dst":"0.0.0.0/0","gw":"10.0.0.254"})
        );
    }
}
