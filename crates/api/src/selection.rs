//! The pod's network selection annotation (`k8s.v1.cni.cncf.io/networks`): a JSON list of
//! Multus `NetworkSelectionElement`s, or the comma list `[namespace/]name[@interface]`.
//!
//! One parser for every reader: the network resources injector needs only the namespaces and
//! names, the meta plugin the whole element. [`parse`] checks the structure only (so the
//! injector keeps admitting what upstream's injector admits); [`NetworkSelection::requests`]
//! reads and checks the per-attachment requests (mac, ips, default-route, …) the meta plugin
//! hands to the delegate, naming the offending field.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::{Map, Value};

/// The annotation key.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";

/// One network the pod asks for, namespace resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSelection {
    pub namespace: String,
    pub name: String,
    /// `interface` (JSON) or `@iface` (comma list); empty when not requested.
    pub interface: String,
    /// The JSON element as written (empty for the comma list): the source of [`Self::requests`].
    pub element: Map<String, Value>,
}

/// A malformed annotation; the messages are upstream's (tests and users grep them).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("empty string passed as network selection elements list")]
    Empty,
    #[error(
        "error parsing network selection element: invalid network selection element - more than one '/' rune in: '{0}'"
    )]
    TooManySlashes(String),
    #[error(
        "error parsing network selection element: invalid network selection element - more than one '@' rune in: '{0}'"
    )]
    TooManyAts(String),
    #[error(
        "error parsing network selection element: at least one of the network selection units is invalid: error found at '{0}'"
    )]
    InvalidUnit(String),
}

/// A request field of one element that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("network selection element {index} ({name}): field `{field}` {reason}")]
pub struct RequestError {
    pub index: usize,
    pub name: String,
    pub field: &'static str,
    pub reason: String,
}

/// The per-attachment requests of one element, as Multus reads them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    /// `mac`: the MAC address for the interface (runtimeConfig `mac`, CNI_ARGS `MAC`).
    pub mac: Option<String>,
    /// `ips`: addresses, with or without prefix length (runtimeConfig `ips`, CNI_ARGS `IP`).
    pub ips: Option<Vec<String>>,
    /// `default-route`: gateways this attachment's default route goes through.
    pub default_route: Option<Vec<IpAddr>>,
    /// `infiniband-guid`.
    pub infiniband_guid: Option<String>,
    /// `deviceID`: used only when the NAD names no resource.
    pub device_id: Option<String>,
    /// `portMappings`, `bandwidth`: passed through as runtimeConfig.
    pub port_mappings: Option<Value>,
    pub bandwidth: Option<Value>,
    /// `cni-args`: merged into the delegate config's `args.cni`.
    pub cni_args: Option<Map<String, Value>>,
}

/// RFC 1123 label: `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => ok(first) && ok(last) && b.iter().all(|c| ok(c) || *c == b'-'),
        _ => false,
    }
}

/// One comma-list unit, `[namespace/]name[@interface]`, borrowed from the annotation.
fn parse_unit<'a>(text: &'a str, default_namespace: &'a str) -> Result<NetworkName<'a>, ParseError> {
    let (namespace, rest) = match text.split_once('/') {
        None => (default_namespace, text),
        Some((_, rest)) if rest.contains('/') => return Err(ParseError::TooManySlashes(text.to_string())),
        Some((ns, rest)) => (ns, rest),
    };
    let (name, interface) = match rest.split_once('@') {
        None => (rest, ""),
        Some((_, iface)) if iface.contains('@') => return Err(ParseError::TooManyAts(text.to_string())),
        Some((name, iface)) => (name, iface),
    };
    for unit in [namespace, name, interface] {
        if !unit.is_empty() && !is_dns_label(unit) {
            return Err(ParseError::InvalidUnit(unit.to_string()));
        }
    }
    Ok(NetworkName {
        namespace: Cow::Borrowed(namespace),
        name: Cow::Borrowed(name),
        interface: Cow::Borrowed(interface),
    })
}

/// serde_json reads a `Vec` only from a JSON array (after JSON whitespace): anything else is
/// the comma list, known without running (and allocating the error of) the JSON parser.
fn is_json_list(value: &str) -> bool {
    value.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('[')
}

fn str_field<'e>(e: &'e Map<String, Value>, key: &str) -> &'e str {
    e.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The namespace, name and interface of one network the pod asks for, namespace resolved;
/// borrowed from the annotation where it can be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkName<'a> {
    pub namespace: Cow<'a, str>,
    pub name: Cow<'a, str>,
    /// Empty when not requested.
    pub interface: Cow<'a, str>,
}

impl<'a> NetworkName<'a> {
    /// A copy that borrows nothing.
    pub fn into_owned(self) -> NetworkName<'static> {
        NetworkName {
            namespace: Cow::Owned(self.namespace.into_owned()),
            name: Cow::Owned(self.name.into_owned()),
            interface: Cow::Owned(self.interface.into_owned()),
        }
    }

    fn of_element(e: &'a Map<String, Value>, default_namespace: &'a str) -> NetworkName<'a> {
        let namespace = str_field(e, "namespace");
        let mut interface = str_field(e, "interface");
        if interface.is_empty() {
            // Multus' pre-3.2 spelling, still honoured.
            interface = str_field(e, "interfaceRequest");
        }
        NetworkName {
            namespace: Cow::Borrowed(if namespace.is_empty() {
                default_namespace
            } else {
                namespace
            }),
            name: Cow::Borrowed(str_field(e, "name")),
            interface: Cow::Borrowed(interface),
        }
    }
}

/// Parses the annotation value as upstream's injector does: JSON first, the comma list when
/// that fails; an element without a namespace gets `default_namespace`.
pub fn parse(value: &str, default_namespace: &str) -> Result<Vec<NetworkSelection>, ParseError> {
    parse_into(
        value,
        default_namespace,
        |element| {
            let n = NetworkName::of_element(&element, default_namespace).into_owned();
            NetworkSelection {
                namespace: n.namespace.into_owned(),
                name: n.name.into_owned(),
                interface: n.interface.into_owned(),
                element,
            }
        },
        |n| NetworkSelection {
            namespace: n.namespace.into_owned(),
            name: n.name.into_owned(),
            interface: n.interface.into_owned(),
            element: Map::new(),
        },
    )
}

/// The same parse for a reader that needs only the names (the injector, on every admission):
/// the comma list is borrowed from `value`, one allocation (the list) in all.
pub fn parse_names<'a>(
    value: &'a str,
    default_namespace: &'a str,
) -> Result<Vec<NetworkName<'a>>, ParseError> {
    parse_into(
        value,
        default_namespace,
        |element| NetworkName::of_element(&element, default_namespace).into_owned(),
        |n| n,
    )
}

/// The one parse: each JSON element through `json`, or each comma-list unit through `unit`.
fn parse_into<'a, T>(
    value: &'a str,
    default_namespace: &'a str,
    json: impl Fn(Map<String, Value>) -> T,
    unit: impl Fn(NetworkName<'a>) -> T,
) -> Result<Vec<T>, ParseError> {
    if value.is_empty() {
        return Err(ParseError::Empty);
    }
    if is_json_list(value)
        && let Ok(elements) = serde_json::from_str::<Vec<Map<String, Value>>>(value)
    {
        return Ok(elements.into_iter().map(json).collect());
    }
    value
        .split(',')
        .map(|e| parse_unit(e.trim(), default_namespace).map(&unit))
        .collect()
}

/// A MAC address as Go's `net.ParseMAC` accepts for Ethernet: six hex octets separated by `:`
/// or `-`.
fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok())
}

/// An IP address, or a CIDR (`addr/len` within the family's width).
fn is_ip_or_cidr(s: &str) -> bool {
    match s.split_once('/') {
        None => s.parse::<IpAddr>().is_ok(),
        Some((ip, len)) => match (ip.parse::<IpAddr>(), len.parse::<u8>()) {
            (Ok(IpAddr::V4(_)), Ok(l)) => l <= 32,
            (Ok(IpAddr::V6(_)), Ok(l)) => l <= 128,
            _ => false,
        },
    }
}

impl NetworkSelection {
    /// `namespace/name`: how Multus names the attachment in network-status.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Reads and checks the requests of element `index` (its position in the annotation).
    pub fn requests(&self, index: usize) -> Result<Requests, RequestError> {
        let err = |field: &'static str, reason: String| RequestError {
            index,
            name: self.qualified_name(),
            field,
            reason,
        };
        let e = &self.element;
        let mut r = Requests::default();
        if self.interface.len() > 15 || self.interface.contains(|c: char| c == '/' || c.is_whitespace()) {
            return Err(err(
                "interface",
                format!(
                    "{:?}: must be at most 15 characters, without '/' or spaces",
                    self.interface
                ),
            ));
        }
        if let Some(v) = e.get("mac") {
            match v.as_str() {
                Some(m) if is_mac(m) => r.mac = Some(m.to_string()),
                _ => return Err(err("mac", format!("{v} is not a MAC address"))),
            }
        }
        if let Some(v) = e.get("infiniband-guid") {
            match v.as_str() {
                Some(g) => r.infiniband_guid = Some(g.to_string()),
                None => return Err(err("infiniband-guid", format!("{v} is not a string"))),
            }
        }
        if let Some(v) = e.get("ips") {
            let list = v
                .as_array()
                .ok_or_else(|| err("ips", format!("{v} is not a list")))?;
            let mut ips = Vec::new();
            for ip in list {
                match ip.as_str() {
                    Some(s) if is_ip_or_cidr(s) => ips.push(s.to_string()),
                    _ => return Err(err("ips", format!("{ip} is not an IP address or CIDR"))),
                }
            }
            r.ips = Some(ips);
        }
        if let Some(v) = e.get("default-route") {
            let list = v
                .as_array()
                .ok_or_else(|| err("default-route", format!("{v} is not a list")))?;
            let mut gws = Vec::new();
            for gw in list {
                match gw.as_str().map(str::parse::<IpAddr>) {
                    Some(Ok(ip)) => gws.push(ip),
                    _ => return Err(err("default-route", format!("{gw} is not an IP address"))),
                }
            }
            r.default_route = Some(gws);
        }
        if let Some(v) = e.get("deviceID") {
            match v.as_str() {
                Some(d) => r.device_id = Some(d.to_string()).filter(|d| !d.is_empty()),
                None => return Err(err("deviceID", format!("{v} is not a string"))),
            }
        }
        r.port_mappings = e.get("portMappings").filter(|v| !v.is_null()).cloned();
        r.bandwidth = e.get("bandwidth").filter(|v| !v.is_null()).cloned();
        if let Some(v) = e.get("cni-args").filter(|v| !v.is_null()) {
            r.cni_args = Some(
                v.as_object()
                    .cloned()
                    .ok_or_else(|| err("cni-args", format!("{v} is not an object")))?,
            );
        }
        Ok(r)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(v: &[NetworkSelection]) -> Vec<(&str, &str, &str)> {
        v.iter()
            .map(|s| (s.namespace.as_str(), s.name.as_str(), s.interface.as_str()))
            .collect()
    }

    #[test]
    fn comma_list_with_namespace_and_interface() {
        let v = parse("a, other/b@net1,c@eth2", "pods").unwrap();
        assert_eq!(
            names(&v),
            [("pods", "a", ""), ("other", "b", "net1"), ("pods", "c", "eth2")]
        );
    }

    #[test]
    fn json_list_defaults_the_namespace_and_keeps_the_element() {
        let v = r#"[{"name":"a","interface":"x","mac":"02:00:00:00:00:01"},{"name":"b","namespace":"other","interfaceRequest":"old"}]"#;
        let s = parse(v, "pods").unwrap();
        assert_eq!(names(&s), [("pods", "a", "x"), ("other", "b", "old")]);
        assert_eq!(
            s[0].requests(0).unwrap().mac.as_deref(),
            Some("02:00:00:00:00:01")
        );
        assert_eq!(s[1].qualified_name(), "other/b");
    }

    #[test]
    fn malformed_elements_carry_upstreams_messages() {
        assert_eq!(
            parse("a/b/c", "d"),
            Err(ParseError::TooManySlashes("a/b/c".into()))
        );
        assert_eq!(parse("a@b@c", "d"), Err(ParseError::TooManyAts("a@b@c".into())));
        let err = parse("Bad_Net", "d").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error parsing network selection element: at least one of the network selection units is invalid: error found at 'Bad_Net'"
        );
        assert_eq!(parse("", "d"), Err(ParseError::Empty));
    }

    /// `parse_names` is `parse` without the elements, on every shape: both lists, defaults,
    /// the old `interfaceRequest`, JSON whitespace, and each error.
    #[test]
    fn parse_names_agrees_with_parse() {
        for value in [
            "a, other/b@net1,c@eth2",
            " \n[{\"name\":\"a\",\"interface\":\"x\"},{\"name\":\"b\",\"namespace\":\"o\"}]",
            r#"[{"name":"a","interfaceRequest":"old"}]"#,
            "[not json, b",
            "a/b/c",
            "x@y/z/w",
            "a@b@c",
            "a@b/c",
            "Bad_Net",
            "",
            "a,,b",
        ] {
            let full = parse(value, "d").map(|v| {
                v.into_iter()
                    .map(|s| (s.namespace, s.name, s.interface))
                    .collect::<Vec<_>>()
            });
            let names = parse_names(value, "d").map(|v| {
                v.into_iter()
                    .map(|n| {
                        (
                            n.namespace.into_owned(),
                            n.name.into_owned(),
                            n.interface.into_owned(),
                        )
                    })
                    .collect::<Vec<_>>()
            });
            assert_eq!(full, names, "{value:?}");
        }
        assert_eq!(
            parse_names("x@y/z/w", "d"),
            Err(ParseError::TooManySlashes("x@y/z/w".into()))
        );
        assert_eq!(
            parse_names("a@b/c", "d"),
            Err(ParseError::InvalidUnit("a@b".into()))
        );
    }

    #[test]
    fn requests_are_read_and_checked_naming_the_field() {
        let v = r#"[{"name":"n","ips":["10.1.0.5/24","fd00::1"],"default-route":["10.1.0.1"],
            "cni-args":{"k":"v"},"portMappings":[{"hostPort":1,"containerPort":2}],"deviceID":"0000:01:10.1"}]"#;
        let r = parse(v, "ns").unwrap()[0].requests(0).unwrap();
        assert_eq!(r.ips.unwrap(), ["10.1.0.5/24", "fd00::1"]);
        assert_eq!(r.default_route.unwrap(), ["10.1.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.cni_args.unwrap()["k"], "v");
        assert!(r.port_mappings.is_some());
        assert_eq!(r.device_id.as_deref(), Some("0000:01:10.1"));

        for (json, field) in [
            (r#"[{"name":"n","mac":"zz:00:00:00:00:01"}]"#, "mac"),
            (r#"[{"name":"n","ips":["10.1.0.300"]}]"#, "ips"),
            (r#"[{"name":"n","ips":"10.1.0.3"}]"#, "ips"),
            (r#"[{"name":"n","ips":["10.1.0.3/33"]}]"#, "ips"),
            (r#"[{"name":"n","default-route":["x"]}]"#, "default-route"),
            (r#"[{"name":"n","interface":"much-too-long-name0"}]"#, "interface"),
            (r#"[{"name":"n","cni-args":[1]}]"#, "cni-args"),
        ] {
            let e = parse(json, "ns").unwrap()[0].requests(3).unwrap_err();
            assert_eq!(e.field, field, "{json}");
            let msg = e.to_string();
            assert!(msg.contains("element 3 (ns/n)") && msg.contains(field), "{msg}");
        }
    }
}
