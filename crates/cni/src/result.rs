//! The ADD result: the IPAM plugin's answer (any spec version) normalised, then rendered for the
//! config's `cniVersion` (1.x: interfaces with `mtu`; 0.3.x/0.4.0: `version` per IP; 0.1/0.2: `ip4`/`ip6`).

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use crate::error::{CniError, Result};

/// An address with prefix length, e.g. `10.1.0.5/24`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: IpAddr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One IP from IPAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpConfig {
    pub address: Cidr,
    pub gateway: Option<IpAddr>,
}

/// One route from IPAM; `extra` keeps the 1.1 fields (mtu, advmss, priority, table, scope).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub dst: Cidr,
    pub gw: Option<IpAddr>,
    pub extra: Map<String, Value>,
}

/// What the IPAM plugin returned, normalised.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpamResult {
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Map<String, Value>,
}

/// The interface this plugin reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub sandbox: String,
}

fn bad(what: String) -> CniError {
    CniError::internal(format!("IPAM result: {what}"))
}

fn ip_of(v: Option<&Value>, field: &str) -> Result<Option<IpAddr>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{field}: invalid IP {s:?}"))),
        Some(o) => Err(bad(format!("{field}: expected a string, got {o}"))),
    }
}

fn cidr_of(v: Option<&Value>, field: &str) -> Result<Cidr> {
    let s = v
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{field}: missing")))?;
    Cidr::parse(s).ok_or_else(|| bad(format!("{field}: invalid CIDR {s:?}")))
}

fn routes_of(v: Option<&Value>) -> Result<Vec<Route>> {
    let Some(Value::Array(a)) = v else {
        return Ok(Vec::new());
    };
    a.iter()
        .map(|r| {
            let mut extra = r.as_object().cloned().unwrap_or_default();
            let dst = cidr_of(extra.get("dst"), "routes[].dst")?;
            let gw = ip_of(extra.get("gw"), "routes[].gw")?;
            extra.remove("dst");
            extra.remove("gw");
            Ok(Route { dst, gw, extra })
        })
        .collect()
}

/// Parses an IPAM result of any spec version.
pub fn parse_ipam(out: &[u8]) -> Result<IpamResult> {
    let v: Value = serde_json::from_slice(out).map_err(|e| bad(format!("not JSON: {e}")))?;
    let o = v.as_object().ok_or_else(|| bad("not an object".into()))?;
    let mut r = IpamResult {
        dns: o
            .get("dns")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(Value::Array(ips)) = o.get("ips") {
        for ip in ips {
            r.ips.push(IpConfig {
                address: cidr_of(ip.get("address"), "ips[].address")?,
                gateway: ip_of(ip.get("gateway"), "ips[].gateway")?,
            });
        }
        r.routes = routes_of(o.get("routes"))?;
    } else {
        for fam in ["ip4", "ip6"] {
            if let Some(c) = o.get(fam) {
                r.ips.push(IpConfig {
                    address: cidr_of(c.get("ip"), fam)?,
                    gateway: ip_of(c.get("gateway"), fam)?,
                });
                r.routes.extend(routes_of(c.get("routes"))?);
            }
        }
    }
    Ok(r)
}

fn route_json(r: &Route) -> Value {
    let mut m = Map::new();
    m.insert("dst".into(), r.dst.to_string().into());
    if let Some(gw) = r.gw {
        m.insert("gw".into(), gw.to_string().into());
    }
    for (k, v) in &r.extra {
        m.insert(k.clone(), v.clone());
    }
    Value::Object(m)
}

/// Renders the result for `version`.
pub fn render(version: &str, iface: &Iface, ipam: &IpamResult) -> Value {
    let mut out = Map::new();
    out.insert("cniVersion".into(), version.into());
    if version == "0.1.0" || version == "0.2.0" {
        for (fam, v4) in [("ip4", true), ("ip6", false)] {
            if let Some(ip) = ipam.ips.iter().find(|i| i.address.addr.is_ipv4() == v4) {
                let mut m = Map::new();
                m.insert("ip".into(), ip.address.to_string().into());
                if let Some(g) = ip.gateway {
                    m.insert("gateway".into(), g.to_string().into());
                }
                let routes: Vec<Value> = ipam
                    .routes
                    .iter()
                    .filter(|r| r.dst.addr.is_ipv4() == v4)
                    .map(route_json)
                    .collect();
                if !routes.is_empty() {
                    m.insert("routes".into(), routes.into());
                }
                out.insert(fam.into(), Value::Object(m));
            }
        }
    } else {
        let modern = version.starts_with("1.");
        let mut i = Map::new();
        i.insert("name".into(), iface.name.clone().into());
        if let Some(mac) = &iface.mac {
            i.insert("mac".into(), mac.clone().into());
        }
        if modern && let Some(mtu) = iface.mtu {
            i.insert("mtu".into(), mtu.into());
        }
        i.insert("sandbox".into(), iface.sandbox.clone().into());
        out.insert("interfaces".into(), json!([i]));
        if !ipam.ips.is_empty() {
            let ips: Vec<Value> = ipam
                .ips
                .iter()
                .map(|ip| {
                    let mut m = Map::new();
                    if !modern {
                        m.insert(
                            "version".into(),
                            (if ip.address.addr.is_ipv4() { "4" } else { "6" }).into(),
                        );
                    }
                    m.insert("interface".into(), 0.into());
                    m.insert("address".into(), ip.address.to_string().into());
                    if let Some(g) = ip.gateway {
                        m.insert("gateway".into(), g.to_string().into());
                    }
                    Value::Object(m)
                })
                .collect();
            out.insert("ips".into(), ips.into());
        }
        if !ipam.routes.is_empty() {
            out.insert(
                "routes".into(),
                ipam.routes.iter().map(route_json).collect::<Vec<_>>().into(),
            );
        }
    }
    if !ipam.dns.is_empty() {
        out.insert("dns".into(), Value::Object(ipam.dns.clone()));
    }
    Value::Object(out)
}

/// The VERSION answer.
pub fn version_json() -> Value {
    json!({ "cniVersion": "1.1.0", "supportedVersions": crate::config::SUPPORTED_VERSIONS })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "result_tests.rs"]
mod tests;
