//! The `k8s.v1.cni.cncf.io/network-status` annotation, built from each delegate's CNI result
//! the way Multus builds it (network-attachment-definition-client's `CreateNetworkStatuses`)
//! and written in the same text: Go's `json.MarshalIndent` of each entry with four spaces,
//! joined by `,` inside `[` `]`. Consumers (and tests) read it byte for byte.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The annotation key.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";

/// DNS as in the annotation (Go's struct is not a pointer: `"dns": {}` is always written).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// `device-info` (device-info spec 1.1.0), in its fields' order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci: Option<PciDevice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vdpa: Option<Value>,
    #[serde(default, rename = "vhost-user", skip_serializing_if = "Option::is_none")]
    pub vhost_user: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memif: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PciDevice {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pci_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vhost_net: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rdma_device: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pf_pci_address: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub representor_device: String,
}

/// One entry of the annotation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mtu: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default, rename = "device-info", skip_serializing_if = "Option::is_none")]
    pub device_info: Option<DeviceInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn dns(result: &Value) -> Dns {
    let d = &result["dns"];
    Dns {
        nameservers: strs(&d["nameservers"]),
        domain: d["domain"].as_str().unwrap_or_default().to_string(),
        search: strs(&d["search"]),
        options: strs(&d["options"]),
    }
}

/// The address without its prefix length.
fn ip_of(ipc: &Value) -> Option<String> {
    let a = ipc["address"].as_str()?;
    Some(a.split_once('/').map_or(a, |(ip, _)| ip).to_string())
}

fn default_gateways(result: &Value) -> Vec<String> {
    result["routes"]
        .as_array()
        .map(|routes| {
            routes
                .iter()
                .filter(|r| matches!(r["dst"].as_str(), Some("0.0.0.0/0" | "::/0")))
                .filter_map(|r| r["gw"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The entries for one delegate's result (in CNI 1.x or 0.3/0.4 shape): one per interface
/// inside the sandbox; `default` on the default network's interface.
pub fn statuses(result: &Value, name: &str, default: bool, dev: Option<&DeviceInfo>) -> Vec<NetworkStatus> {
    let empty = Vec::new();
    let ifaces = result["interfaces"].as_array().unwrap_or(&empty);
    let ips = result["ips"].as_array().unwrap_or(&empty);
    let base = NetworkStatus {
        name: name.to_string(),
        dns: dns(result),
        device_info: dev.cloned(),
        gateway: default_gateways(result),
        ..NetworkStatus::default()
    };
    if ifaces.len() == 1 {
        // The one-interface shape: every IP on it, whichever interface the IPs name.
        let mut s = NetworkStatus {
            default,
            ips: ips.iter().filter_map(ip_of).collect(),
            ..base
        };
        if let Some(i) = ifaces
            .iter()
            .rfind(|i| i["sandbox"].as_str().is_some_and(|s| !s.is_empty()))
        {
            s.interface = i["name"].as_str().unwrap_or_default().into();
            s.mac = i["mac"].as_str().unwrap_or_default().into();
            s.mtu = i["mtu"].as_u64().unwrap_or(0);
        }
        return vec![s];
    }
    let gw_iface = if default {
        ips.iter()
            .find(|ip| ip.get("gateway").is_some() && ip.get("interface").is_some())
            .and_then(|ip| ip["interface"].as_u64())
    } else {
        None
    };
    let mut out: Vec<(usize, NetworkStatus)> = Vec::new();
    for (i, iface) in ifaces.iter().enumerate() {
        if iface["sandbox"].as_str().is_none_or(str::is_empty) {
            continue;
        }
        let is_default = default
            && match gw_iface {
                Some(g) => g == i as u64,
                None => out.is_empty(),
            };
        out.push((
            i,
            NetworkStatus {
                interface: iface["name"].as_str().unwrap_or_default().into(),
                mac: iface["mac"].as_str().unwrap_or_default().into(),
                mtu: iface["mtu"].as_u64().unwrap_or(0),
                default: is_default,
                ..base.clone()
            },
        ));
    }
    for ip in ips {
        let Some(addr) = ip_of(ip) else { continue };
        let target = match ip["interface"].as_u64() {
            Some(idx) => out.iter_mut().find(|(i, _)| *i as u64 == idx),
            None => out.last_mut(),
        };
        if let Some((_, s)) = target {
            s.ips.push(addr);
        }
    }
    out.into_iter().map(|(_, s)| s).collect()
}

/// The annotation's text, as Multus writes it.
pub fn render(statuses: &[NetworkStatus]) -> String {
    let parts: Vec<String> = statuses
        .iter()
        .map(|s| {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            // Serializing plain structs of strings cannot fail.
            let _ = s.serialize(&mut ser);
            String::from_utf8_lossy(&buf).into_owned()
        })
        .collect();
    format!("[{}]", parts.join(","))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bridge_result_renders_as_multus_writes_it() {
        let r = json!({"cniVersion":"1.0.0",
            "interfaces":[{"name":"cni0","mac":"aa:aa:aa:aa:aa:aa"},{"name":"veth1","mac":"bb:bb:bb:bb:bb:bb"},
                {"name":"eth0","mac":"0a:58:0a:f4:00:05","sandbox":"/var/run/netns/x"}],
            "ips":[{"address":"10.244.0.5/24","gateway":"10.244.0.1","interface":2}],
            "routes":[{"dst":"0.0.0.0/0","gw":"10.244.0.1"}],"dns":{}});
        let s = statuses(&r, "cbr0", true, None);
        assert_eq!(
            render(&s),
            "[{\n    \"name\": \"cbr0\",\n    \"interface\": \"eth0\",\n    \"ips\": [\n        \"10.244.0.5\"\n    ],\n    \"mac\": \"0a:58:0a:f4:00:05\",\n    \"default\": true,\n    \"dns\": {},\n    \"gateway\": [\n        \"10.244.0.1\"\n    ]\n}]"
        );
    }

    #[test]
    fn one_interface_result_with_device_info() {
        let r = json!({"cniVersion":"0.4.0",
            "interfaces":[{"name":"net1","mac":"02:00:00:00:00:01","sandbox":"/proc/1/ns/net","mtu":1400}],
            "ips":[{"version":"4","address":"10.56.0.2/24","interface":0},{"version":"6","address":"fd00::2/64"}],
            "dns":{"nameservers":["10.0.0.10"]}});
        let dev: DeviceInfo = serde_json::from_value(json!({"version":"1.1.0","type":"pci","extra":1,
            "pci":{"pf-pci-address":"0000:01:00.0","pci-address":"0000:01:10.1"}}))
        .unwrap();
        let s = statuses(&r, "ns/sriov", false, Some(&dev));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ips, ["10.56.0.2", "fd00::2"]);
        assert_eq!(s[0].mtu, 1400);
        let text = render(&s);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v[0]["device-info"],
            json!({"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:01:10.1","pf-pci-address":"0000:01:00.0"}})
        );
        assert!(v[0].get("default").is_none(), "false is omitted");
        assert_eq!(v[0]["dns"], json!({"nameservers":["10.0.0.10"]}));
        assert!(
            text.find("\"type\"").unwrap() < text.find("\"version\"").unwrap(),
            "Go's field order"
        );
    }

    #[test]
    fn entries_join_without_spaces_and_no_interface_means_no_entry() {
        let a = NetworkStatus {
            name: "a".into(),
            ..Default::default()
        };
        let b = NetworkStatus {
            name: "b".into(),
            ..Default::default()
        };
        assert_eq!(
            render(&[a, b]),
            "[{\n    \"name\": \"a\",\n    \"dns\": {}\n},{\n    \"name\": \"b\",\n    \"dns\": {}\n}]"
        );
        assert!(statuses(&json!({"cniVersion":"1.0.0"}), "x", false, None).is_empty());
    }
}
