//! The network configuration on stdin, parsed and validated before anything is touched.
//!
//! Keys bind as upstream's Go decoder binds them: exact name first, else case-insensitive
//! (`"VLAN"`, `"vlanqos"`); unknown keys are ignored. Unlike upstream, every value is checked
//! here (MAC syntax, `spoofchk`/`trust` on/off, rates), so a bad config fails before any change.

use std::fmt;
use std::str::FromStr;

use crate::pci::PciAddress;
use serde_json::{Map, Value};

use crate::error::{CniError, Result};

/// Spec versions this plugin accepts (as upstream's VERSION lists them).
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A 6-octet Ethernet MAC address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const ZERO: Mac = Mac([0; 6]);
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
    /// From netlink bytes (takes the first 6; `None` when shorter).
    pub fn from_slice(b: &[u8]) -> Option<Mac> {
        let a: [u8; 6] = b.get(..6)?.try_into().ok()?;
        Some(Mac(a))
    }
}

impl FromStr for Mac {
    type Err = ();
    /// Accepts `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`, any hex case.
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        let parts: Vec<&str> = if s.contains(':') {
            s.split(':').collect()
        } else {
            s.split('-').collect()
        };
        if parts.len() != 6 {
            return Err(());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(parts) {
            if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// VLAN protocol of a VF VLAN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VlanProto {
    #[default]
    Dot1Q,
    Dot1Ad,
}

impl VlanProto {
    pub fn ethertype(self) -> u16 {
        match self {
            VlanProto::Dot1Q => 0x8100,
            VlanProto::Dot1Ad => 0x88a8,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            VlanProto::Dot1Q => "802.1q",
            VlanProto::Dot1Ad => "802.1ad",
        }
    }
}

/// VF link state as the PF sets it (`IFLA_VF_LINK_STATE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Auto = 0,
    Enable = 1,
    Disable = 2,
}

/// The PF-side settings the config asks for; `None` = leave untouched.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VfRequest {
    /// (vlan, qos, proto) when `vlan` is set.
    pub vlan: Option<(u16, u8, VlanProto)>,
    pub mac: Option<Mac>,
    pub spoofchk: Option<bool>,
    pub trust: Option<bool>,
    pub link_state: Option<LinkState>,
    /// (min, max) Mb/s when either rate is set (the other is then 0, as upstream).
    pub rate: Option<(u32, u32)>,
}

/// The validated network configuration.
#[derive(Clone, Debug)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    /// `deviceID`, validated as a PCI address (absent only in DEL/CHECK/GC configs).
    pub device_id: Option<PciAddress>,
    pub request: VfRequest,
    /// `ipam.type`, empty when no IPAM.
    pub ipam_type: String,
    /// `runtimeConfig.mac` (validated).
    pub runtime_mac: Option<Mac>,
    pub log_level: String,
    pub log_file: String,
    /// The whole stdin object, as given.
    pub raw: Map<String, Value>,
}

/// Finds a key as Go's encoding/json does: exact match first, else case-insensitive.
pub fn lookup<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

fn get_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match lookup(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(CniError::config(format!(
            "field {key:?}: expected a string, got {v}"
        ))),
    }
}

fn get_int(obj: &Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match lookup(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| CniError::config(format!("field {key:?}: expected an integer, got {v}"))),
    }
}

fn on_off(key: &str, v: Option<String>) -> Result<Option<bool>> {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(None),
        Some("on") => Ok(Some(true)),
        Some("off") => Ok(Some(false)),
        Some(_) => Err(CniError::config(format!(
            "field {key:?}: invalid value {:?}: must be \"on\" or \"off\"",
            v.unwrap_or_default()
        ))),
    }
}

/// Parses a MAC from the config, naming the field on error.
pub fn parse_mac(field: &str, s: &str) -> Result<Mac> {
    let mac: Mac = s
        .parse()
        .map_err(|_| CniError::config(format!("field {field:?}: invalid MAC address {s:?}")))?;
    if mac.0[0] & 1 == 1 {
        return Err(CniError::config(format!(
            "field {field:?}: {s:?} is a multicast MAC address"
        )));
    }
    if mac.is_zero() {
        return Err(CniError::config(format!(
            "field {field:?}: the all-zero MAC {s:?} cannot be assigned"
        )));
    }
    Ok(mac)
}

/// Parses stdin into a JSON object and checks the version and name (every command).
pub fn parse_object(stdin: &[u8]) -> Result<Map<String, Value>> {
    let v: Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            crate::error::code::DECODE,
            format!("network config is not valid JSON: {e}"),
        )
    })?;
    match v {
        Value::Object(m) => Ok(m),
        other => Err(CniError::new(
            crate::error::code::DECODE,
            format!("network config must be a JSON object, got {}", kind(&other)),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `cniVersion` of a config object (missing = `0.1.0`, as upstream), checked against the list.
pub fn cni_version(obj: &Map<String, Value>) -> Result<String> {
    let v = get_str(obj, "cniVersion")?.unwrap_or_else(|| "0.1.0".into());
    if !SUPPORTED_VERSIONS.contains(&v.as_str()) {
        return Err(CniError::new(
            crate::error::code::INCOMPATIBLE_VERSION,
            format!("incompatible CNI versions: config is {v:?}, plugin supports {SUPPORTED_VERSIONS:?}"),
        ));
    }
    Ok(v)
}

/// True when the name matches the container-ID/network-name rule `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
pub fn valid_id(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl NetConf {
    /// Parses and validates a config. `need_device` is true for ADD (and CHECK).
    pub fn parse(stdin: &[u8], need_device: bool) -> Result<NetConf> {
        let raw = parse_object(stdin)?;
        let cni_version = cni_version(&raw)?;
        let name = get_str(&raw, "name")?.unwrap_or_default();
        if !valid_id(&name) {
            return Err(CniError::config(format!(
                "field \"name\": invalid network name {name:?}: must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
            )));
        }
        if let Some(t) = get_str(&raw, "type")?
            && t != "sriov"
        {
            return Err(CniError::config(format!(
                "field \"type\": {t:?} is not \"sriov\""
            )));
        }
        let rc = match lookup(&raw, "runtimeConfig") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(v) => {
                return Err(CniError::config(format!(
                    "field \"runtimeConfig\": expected an object, got {v}"
                )));
            }
        };
        // deviceID: top level (Multus) or runtimeConfig.deviceID (libcni capability).
        let dev = match get_str(&raw, "deviceID")? {
            Some(d) if !d.is_empty() => Some(d),
            _ => get_str(&rc, "deviceID")?.filter(|d| !d.is_empty()),
        };
        let device_id = match dev {
            None if need_device => {
                return Err(CniError::config("field \"deviceID\": VF PCI address is required"));
            }
            None => None,
            Some(d) => Some(
                d.parse::<PciAddress>()
                    .map_err(|e| CniError::config(format!("field \"deviceID\": {e}")))?,
            ),
        };
        let request = parse_request(&raw)?;
        let ipam_type = match lookup(&raw, "ipam") {
            None => String::new(),
            Some(Value::Object(m)) => get_str(m, "type")?.unwrap_or_default(),
            Some(v) => {
                return Err(CniError::config(format!(
                    "field \"ipam\": expected an object, got {v}"
                )));
            }
        };
        if !ipam_type.is_empty() {
            crate::ipam::plugin_name("ipam.type", &ipam_type)?;
        }
        let runtime_mac = match get_str(&rc, "mac")?.filter(|m| !m.is_empty()) {
            Some(m) => Some(parse_mac("runtimeConfig.mac", &m)?),
            None => None,
        };
        if (cni_version == "0.1.0" || cni_version == "0.2.0") && ipam_type.is_empty() && need_device {
            return Err(CniError::config(format!(
                "field \"ipam\": a cniVersion {cni_version} result needs IP configuration; add \"ipam\" or use cniVersion ≥ 0.3.0"
            )));
        }
        Ok(NetConf {
            cni_version,
            name,
            device_id,
            request,
            ipam_type,
            runtime_mac,
            log_level: get_str(&raw, "logLevel")?.unwrap_or_default(),
            log_file: get_str(&raw, "logFile")?.unwrap_or_default(),
            raw,
        })
    }

    /// The MAC to give the VF: `runtimeConfig.mac` > `CNI_ARGS` `MAC=` > `mac` (upstream's order).
    pub fn effective_mac(&self, args_mac: Option<Mac>) -> Option<Mac> {
        self.runtime_mac.or(args_mac).or(self.request.mac)
    }
}

/// Validates the PF-side settings (upstream's rules plus MAC, on/off and min ≤ max).
pub fn parse_request(raw: &Map<String, Value>) -> Result<VfRequest> {
    let vlan = get_int(raw, "vlan")?;
    let qos = get_int(raw, "vlanQoS")?;
    let proto = get_str(raw, "vlanProto")?;
    let vlan = match vlan {
        None => {
            if qos.is_some() {
                return Err(CniError::config(format!(
                    "field \"vlanQoS\": {} given without \"vlan\": vlan id must be configured to set vlan QoS",
                    qos.unwrap_or_default()
                )));
            }
            if let Some(p) = proto {
                return Err(CniError::config(format!(
                    "field \"vlanProto\": {p:?} given without \"vlan\": vlan id must be configured to set vlan proto"
                )));
            }
            None
        }
        Some(v) => {
            if !(0..=4094).contains(&v) {
                return Err(CniError::config(format!(
                    "field \"vlan\": vlan id {v} invalid: value must be in the range 0-4094"
                )));
            }
            let q = qos.unwrap_or(0);
            if !(0..=7).contains(&q) {
                return Err(CniError::config(format!(
                    "field \"vlanQoS\": vlan QoS PCP {q} invalid: value must be in the range 0-7"
                )));
            }
            if q != 0 && v == 0 {
                return Err(CniError::config(format!(
                    "field \"vlanQoS\": {q} needs a non-zero \"vlan\" (vlan is 0)"
                )));
            }
            let p = match proto.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("802.1q") => VlanProto::Dot1Q,
                Some("802.1ad") => VlanProto::Dot1Ad,
                Some(_) => {
                    return Err(CniError::config(format!(
                        "field \"vlanProto\": vlan Proto {:?} invalid: value must be '802.1Q' or '802.1ad'",
                        proto.unwrap_or_default()
                    )));
                }
            };
            if p == VlanProto::Dot1Ad && v == 0 {
                return Err(CniError::config(
                    "field \"vlanProto\": 802.1ad needs a non-zero \"vlan\" (vlan is 0)",
                ));
            }
            #[allow(clippy::cast_possible_truncation)]
            Some((v as u16, q as u8, p))
        }
    };
    let mac = match get_str(raw, "mac")?.filter(|m| !m.is_empty()) {
        Some(m) => Some(parse_mac("mac", &m)?),
        None => None,
    };
    let link_state = match get_str(raw, "link_state")?.as_deref() {
        None | Some("") => None,
        Some("auto") => Some(LinkState::Auto),
        Some("enable") => Some(LinkState::Enable),
        Some("disable") => Some(LinkState::Disable),
        Some(other) => {
            return Err(CniError::config(format!(
                "field \"link_state\": invalid link_state value {other:?}: must be auto, enable or disable"
            )));
        }
    };
    let rate_of = |key: &str| -> Result<Option<u32>> {
        match get_int(raw, key)? {
            None => Ok(None),
            Some(r) => u32::try_from(r).map(Some).map_err(|_| {
                CniError::config(format!("field {key:?}: rate {r} invalid: must be 0 or more Mb/s"))
            }),
        }
    };
    let (min, max) = (rate_of("min_tx_rate")?, rate_of("max_tx_rate")?);
    let rate = match (min, max) {
        (None, None) => None,
        (mi, ma) => {
            let (mi, ma) = (mi.unwrap_or(0), ma.unwrap_or(0));
            if ma != 0 && mi > ma {
                return Err(CniError::config(format!(
                    "field \"min_tx_rate\": {mi} is above \"max_tx_rate\" {ma}"
                )));
            }
            Some((mi, ma))
        }
    };
    Ok(VfRequest {
        vlan,
        mac,
        spoofchk: on_off("spoofchk", get_str(raw, "spoofchk")?)?,
        trust: on_off("trust", get_str(raw, "trust")?)?,
        link_state,
        rate,
    })
}

/// `CNI_ARGS` (`K=V;K=V`): returns `MAC=` (validated). Unknown keys fail unless
/// `IgnoreUnknown=1|true`, as upstream.
pub fn parse_cni_args(args: &str) -> Result<Option<Mac>> {
    let mut mac = None;
    let mut unknown = Vec::new();
    let mut ignore_unknown = false;
    for pair in args.split(';').filter(|p| !p.is_empty()) {
        let kv: Vec<&str> = pair.split('=').collect();
        if kv.len() != 2 {
            return Err(CniError::env(format!(
                "CNI_ARGS: invalid pair {pair:?}: expected KEY=VALUE"
            )));
        }
        match kv[0] {
            "MAC" => mac = Some(parse_mac("CNI_ARGS MAC", kv[1])?),
            "IgnoreUnknown" => ignore_unknown = kv[1] == "1" || kv[1].eq_ignore_ascii_case("true"),
            k => unknown.push(k.to_string()),
        }
    }
    if !unknown.is_empty() && !ignore_unknown {
        return Err(CniError::env(format!(
            "CNI_ARGS: unknown args {unknown:?} (set IgnoreUnknown=1 to allow them)"
        )));
    }
    Ok(mac)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "config_tests.rs"]
mod tests;
