//! One delegate (the default network, a `defaultNetworks` entry, or a network the pod selected)
//! and how it is invoked, as Multus does it: the interface name (`eth0` for the default
//! network, `net<position>` or the requested name otherwise), the runtime config each plugin
//! gets (only for the capabilities it declares, as libcni does), `deviceID`/`pciBusID` in the
//! config when the kubelet gave the pod a device, and `CNI_ARGS`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sriov_api::selection::{NetworkSelection, Requests};

use crate::cniargs::K8sArgs;

/// A delegate config that cannot be used; `field` says where it came from.
#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    #[error("`{field}` is not a JSON object: {reason}")]
    NotObject { field: String, reason: String },
    #[error("`{field}` has neither `type` nor `plugins`")]
    NoType { field: String },
    #[error("`{field}.plugins[{index}]` has no `type`")]
    PluginNoType { field: String, index: usize },
}

/// Checks that `v` is a CNI config (`type`) or config list (`plugins`, each with `type`).
pub fn check_conf(v: &Value, field: &str) -> Result<(), DelegateError> {
    let o = v.as_object().ok_or_else(|| DelegateError::NotObject {
        field: field.into(),
        reason: format!("{v}"),
    })?;
    if o.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        return Ok(());
    }
    match o.get("plugins").and_then(Value::as_array) {
        Some(p) if !p.is_empty() => {
            for (index, plugin) in p.iter().enumerate() {
                if plugin
                    .get("type")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(DelegateError::PluginNoType {
                        field: field.into(),
                        index,
                    });
                }
            }
            Ok(())
        }
        _ => Err(DelegateError::NoType { field: field.into() }),
    }
}

/// `true` for a config list (`plugins`), `false` for a single config (`type`).
pub fn is_list(conf: &Value) -> bool {
    conf.get("type").and_then(Value::as_str).is_none_or(str::is_empty)
}

/// The config's (or list's) `name`.
pub fn net_name(conf: &Value) -> &str {
    conf.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// The config's (or list's) `cniVersion` ("" when absent).
pub fn cni_version(conf: &Value) -> &str {
    conf.get("cniVersion").and_then(Value::as_str).unwrap_or_default()
}

/// One delegate, everything DEL needs included (it is cached at ADD).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delegate {
    /// The name in network-status: `namespace/name` for a NAD, the config's name otherwise.
    pub name: String,
    /// The config as invoked (device ID and `cni-args` already in it).
    pub conf: Value,
    /// The pod's default network: its result is the pod's result, its interface `CNI_IFNAME`.
    pub master: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ifname_request: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_route: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infiniband_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
}

/// Sets `deviceID` and `pciBusID` on the config, or on every plugin of a list (Multus does
/// both keys: `sriov` reads `deviceID`, `host-device` reads `pciBusID`).
pub fn with_device_id(mut conf: Value, id: &str) -> Value {
    let set = |o: &mut Value| {
        if let Some(o) = o.as_object_mut() {
            o.insert("deviceID".into(), json!(id));
            o.insert("pciBusID".into(), json!(id));
        }
    };
    if is_list(&conf) {
        if let Some(plugins) = conf.get_mut("plugins").and_then(Value::as_array_mut) {
            plugins.iter_mut().for_each(set);
        }
    } else {
        set(&mut conf);
    }
    conf
}

/// Merges `args` into the config's `args.cni` (every plugin of a list).
pub fn with_cni_args(mut conf: Value, args: &Map<String, Value>) -> Value {
    let merge = |o: &mut Value| {
        let Some(o) = o.as_object_mut() else { return };
        let a = o.entry("args").or_insert_with(|| json!({}));
        if !a.is_object() {
            *a = json!({});
        }
        if let Some(a) = a.as_object_mut() {
            let cni = a.entry("cni").or_insert_with(|| json!({}));
            if !cni.is_object() {
                *cni = json!({});
            }
            if let Some(cni) = cni.as_object_mut() {
                cni.extend(args.clone());
            }
        }
    };
    if is_list(&conf) {
        if let Some(plugins) = conf.get_mut("plugins").and_then(Value::as_array_mut) {
            plugins.iter_mut().for_each(merge);
        }
    } else {
        merge(&mut conf);
    }
    conf
}

impl Delegate {
    /// A default-network delegate from a config (inline, a file, or a NAD without requests).
    pub fn from_conf(conf: Value, field: &str) -> Result<Delegate, DelegateError> {
        check_conf(&conf, field)?;
        Ok(Delegate {
            name: net_name(&conf).to_string(),
            conf,
            ..Delegate::default()
        })
    }

    /// A selected network: the NAD's `spec.config` (its `name` defaulted to the NAD's name),
    /// the element's requests, and the device the kubelet gave the pod for the NAD's resource.
    pub fn from_selection(
        config: &str,
        selection: &NetworkSelection,
        requests: Requests,
        device: Option<(&str, &str)>,
    ) -> Result<Delegate, DelegateError> {
        let field = format!(
            "NetworkAttachmentDefinition {} spec.config",
            selection.qualified_name()
        );
        let mut conf: Value = serde_json::from_str(config).map_err(|e| DelegateError::NotObject {
            field: field.clone(),
            reason: e.to_string(),
        })?;
        if let Some(o) = conf.as_object_mut()
            && o.get("name").and_then(Value::as_str).is_none_or(str::is_empty)
        {
            o.insert("name".into(), json!(selection.name));
        }
        check_conf(&conf, &field)?;
        let (resource_name, device_id) = match device {
            Some((resource, id)) => {
                conf = with_device_id(conf, id);
                (Some(resource.to_string()), Some(id.to_string()))
            }
            // An element's own deviceID is runtime config only, as in Multus.
            None => (None, requests.device_id.clone()),
        };
        if let Some(args) = &requests.cni_args {
            conf = with_cni_args(conf, args);
        }
        Ok(Delegate {
            name: selection.qualified_name(),
            conf,
            master: false,
            ifname_request: selection.interface.clone(),
            mac: requests.mac,
            ips: requests.ips,
            default_route: requests
                .default_route
                .map(|v| v.iter().map(ToString::to_string).collect()),
            infiniband_guid: requests.infiniband_guid,
            port_mappings: requests.port_mappings,
            bandwidth: requests.bandwidth,
            device_id,
            resource_name,
        })
    }
}

/// The interface name of the delegate at `position` in the delegate list: the requested name,
/// the runtime's `CNI_IFNAME` for the default network, else `net<position>`.
pub fn ifname(d: &Delegate, position: usize, cni_ifname: &str) -> String {
    if !d.ifname_request.is_empty() {
        d.ifname_request.clone()
    } else if d.master {
        cni_ifname.to_string()
    } else {
        format!("net{position}")
    }
}

/// Where Multus puts the device-info file it hands a delegate (`CNIDeviceInfoFile`).
pub fn cni_device_info_file(base: &Path, d: &Delegate, container_id: &str, ifname: &str) -> PathBuf {
    base.join("cni")
        .join(format!("{}-{container_id}_{ifname}", d.name).replace('/', "-"))
}

/// The file a device plugin wrote for one allocated device.
pub fn dp_device_info_file(base: &Path, resource: &str, id: &str) -> PathBuf {
    base.join("dp").join(format!(
        "{}-{}-device.json",
        resource.replace('/', "-"),
        id.replace('/', "-")
    ))
}

/// The capability arguments for one delegate: the runtime's runtime config, overridden (for
/// every delegate but the default network) by the element's requests and the device.
pub fn capability_args(
    runtime_config: &Map<String, Value>,
    d: &Delegate,
    device_info_file: Option<&Path>,
) -> Map<String, Value> {
    let mut caps = runtime_config.clone();
    if d.master {
        return caps;
    }
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            caps.insert(k.into(), v);
        }
    };
    set("portMappings", d.port_mappings.clone());
    set("bandwidth", d.bandwidth.clone());
    set("ips", d.ips.as_ref().map(|v| json!(v)));
    set("mac", d.mac.as_ref().map(|v| json!(v)));
    set("infinibandGUID", d.infiniband_guid.as_ref().map(|v| json!(v)));
    set("deviceID", d.device_id.as_ref().map(|v| json!(v)));
    if d.device_id.is_some() {
        set(
            "CNIDeviceInfoFile",
            device_info_file.map(|p| json!(p.display().to_string())),
        );
    }
    caps
}

/// Each plugin's stdin (without `prevResult`, which the chain adds): the list's `name` and
/// `cniVersion` injected, and `runtimeConfig` holding only the declared capabilities — what
/// libcni does for a runtime. A delegate without `cniVersion` gets `fallback_version`.
pub fn plugin_confs(d: &Delegate, caps: &Map<String, Value>, fallback_version: &str) -> Vec<Value> {
    let version = match cni_version(&d.conf) {
        "" => fallback_version,
        v => v,
    };
    let name = net_name(&d.conf);
    let plugins: Vec<Value> = if is_list(&d.conf) {
        d.conf
            .get("plugins")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    } else {
        vec![d.conf.clone()]
    };
    plugins
        .into_iter()
        .map(|mut p| {
            let declared: Map<String, Value> = p
                .get("capabilities")
                .and_then(Value::as_object)
                .map(|c| {
                    c.iter()
                        .filter(|(k, on)| on.as_bool() == Some(true) && caps.contains_key(*k))
                        .map(|(k, _)| (k.clone(), caps[k].clone()))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(o) = p.as_object_mut() {
                o.insert("name".into(), json!(name));
                o.insert("cniVersion".into(), json!(version));
                if !declared.is_empty() {
                    o.insert("runtimeConfig".into(), Value::Object(declared));
                }
            }
            p
        })
        .collect()
}

/// `CNI_ARGS` for a delegate, in Multus' order: `IgnoreUnknown=true`, the pod's four
/// `K8S_*` args, the runtime's other args, then (ADD only) the deprecated `MAC` and `IP`.
pub fn cni_args(k8s: &K8sArgs, runtime_args: &[(String, String)], d: &Delegate, add: bool) -> String {
    let mut args: Vec<(String, String)> = vec![
        ("IgnoreUnknown".into(), "true".into()),
        ("K8S_POD_NAMESPACE".into(), k8s.namespace.clone()),
        ("K8S_POD_NAME".into(), k8s.name.clone()),
        (
            "K8S_POD_INFRA_CONTAINER_ID".into(),
            k8s.infra_container_id.clone(),
        ),
        ("K8S_POD_UID".into(), k8s.uid.clone()),
    ];
    for (k, v) in runtime_args {
        if args.iter().any(|(ak, av)| ak == k && av == v) {
            continue;
        }
        match args
            .iter_mut()
            .find(|(ak, av)| ak == k && av.is_empty() && !v.is_empty())
        {
            Some(existing) => existing.1 = v.clone(),
            None => args.push((k.clone(), v.clone())),
        }
    }
    if add {
        if let Some(mac) = &d.mac {
            args.push(("MAC".into(), mac.clone()));
        }
        if let Some(ips) = &d.ips {
            args.push(("IP".into(), ips.join(",")));
        }
    }
    args.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sriov_api::selection::parse;

    fn selected(annotation: &str, config: &str, device: Option<(&str, &str)>) -> Delegate {
        let s = &parse(annotation, "pods").unwrap()[0];
        Delegate::from_selection(config, s, s.requests(0).unwrap(), device).unwrap()
    }

    #[test]
    fn nad_delegate_gets_name_device_and_cni_args() {
        let d = selected(
            r#"[{"name":"vf","interface":"fast0","mac":"02:00:00:00:00:09","cni-args":{"x":1}}]"#,
            r#"{"cniVersion":"1.0.0","type":"sriov","vlan":5}"#,
            Some(("intel.com/vf", "0000:01:10.2")),
        );
        assert_eq!(d.name, "pods/vf");
        assert_eq!(d.conf["name"], "vf", "the NAD's name when the config has none");
        assert_eq!(d.conf["deviceID"], "0000:01:10.2");
        assert_eq!(d.conf["pciBusID"], "0000:01:10.2");
        assert_eq!(d.conf["args"]["cni"]["x"], 1);
        assert_eq!(d.resource_name.as_deref(), Some("intel.com/vf"));
        assert_eq!(ifname(&d, 3, "eth0"), "fast0");

        let list = selected(
            "br",
            r#"{"cniVersion":"1.0.0","name":"l","plugins":[{"type":"bridge"},{"type":"tuning"}]}"#,
            Some(("r", "d1")),
        );
        for p in list.conf["plugins"].as_array().unwrap() {
            assert_eq!(p["deviceID"], "d1");
        }
        assert_eq!(list.conf["name"], "l", "a config's own name is kept");
    }

    #[test]
    fn bad_nad_config_names_the_nad_and_field() {
        let s = &parse("bad", "pods").unwrap()[0];
        let e = Delegate::from_selection("{", s, Requests::default(), None).unwrap_err();
        assert!(
            e.to_string()
                .contains("NetworkAttachmentDefinition pods/bad spec.config"),
            "{e}"
        );
        let e = Delegate::from_selection(r#"{"plugins":[{}]}"#, s, Requests::default(), None).unwrap_err();
        assert!(
            e.to_string().contains("spec.config.plugins[0]` has no `type`"),
            "{e}"
        );
    }

    #[test]
    fn interface_names_follow_the_position() {
        let master = Delegate {
            master: true,
            ..Delegate::default()
        };
        let other = Delegate::default();
        assert_eq!(ifname(&master, 0, "eth0"), "eth0");
        assert_eq!(ifname(&other, 1, "eth0"), "net1");
        assert_eq!(ifname(&other, 2, "eth0"), "net2");
    }

    #[test]
    fn runtime_config_only_for_declared_capabilities() {
        let d = selected(
            r#"[{"name":"m","mac":"02:00:00:00:00:01","ips":["10.9.0.7/24"]}]"#,
            r#"{"cniVersion":"0.4.0","plugins":[
                {"type":"macvlan","capabilities":{"mac":true,"ips":false}},
                {"type":"tuning"}]}"#,
            None,
        );
        let rc: Map<String, Value> = serde_json::from_str(r#"{"portMappings":[{"hostPort":8}]}"#).unwrap();
        let caps = capability_args(&rc, &d, None);
        assert_eq!(caps["ips"], json!(["10.9.0.7/24"]));
        assert!(caps.contains_key("portMappings"));
        let confs = plugin_confs(&d, &caps, "1.0.0");
        assert_eq!(confs.len(), 2);
        assert_eq!(confs[0]["runtimeConfig"], json!({"mac": "02:00:00:00:00:01"}));
        assert_eq!(confs[0]["name"], "m");
        assert_eq!(confs[0]["cniVersion"], "0.4.0");
        assert!(confs[1].get("runtimeConfig").is_none());

        let master = Delegate::from_conf(
            json!({"type":"bridge","name":"cbr0","capabilities":{"portMappings":true,"mac":true}}),
            "delegates[0]",
        )
        .unwrap();
        let master = Delegate {
            master: true,
            mac: Some("02:00:00:00:00:02".into()),
            ..master
        };
        let confs = plugin_confs(&master, &capability_args(&rc, &master, None), "1.1.0");
        assert_eq!(
            confs[0]["runtimeConfig"],
            json!({"portMappings":[{"hostPort":8}]}),
            "no requests for the default network"
        );
        assert_eq!(confs[0]["cniVersion"], "1.1.0");
    }

    #[test]
    fn device_id_goes_to_runtime_config_with_its_info_file() {
        let d = selected(
            "vf",
            r#"{"type":"sriov","capabilities":{"deviceID":true,"CNIDeviceInfoFile":true}}"#,
            Some(("intel.com/vf", "0000:01:10.0")),
        );
        let file = cni_device_info_file(Path::new("/run/devinfo"), &d, "c1", "net1");
        assert_eq!(file, PathBuf::from("/run/devinfo/cni/pods-vf-c1_net1"));
        let caps = capability_args(&Map::new(), &d, Some(&file));
        let conf = &plugin_confs(&d, &caps, "1.0.0")[0];
        assert_eq!(conf["runtimeConfig"]["deviceID"], "0000:01:10.0");
        assert_eq!(
            conf["runtimeConfig"]["CNIDeviceInfoFile"],
            "/run/devinfo/cni/pods-vf-c1_net1"
        );
        assert_eq!(
            dp_device_info_file(Path::new("/b"), "intel.com/vf", "0000:01:10.0"),
            PathBuf::from("/b/dp/intel.com-vf-0000:01:10.0-device.json")
        );
    }

    #[test]
    fn cni_args_in_multus_order() {
        let k = K8sArgs {
            namespace: "ns".into(),
            name: "p".into(),
            infra_container_id: "c".into(),
            uid: "u".into(),
        };
        let runtime = vec![
            ("IgnoreUnknown".into(), "1".into()),
            ("K8S_POD_NAMESPACE".into(), "ns".into()),
            ("EXTRA".into(), "x".into()),
        ];
        let d = Delegate {
            mac: Some("02:00:00:00:00:01".into()),
            ips: Some(vec!["10.0.0.1/24".into(), "10.0.0.2/24".into()]),
            ..Delegate::default()
        };
        assert_eq!(
            cni_args(&k, &runtime, &d, true),
            "IgnoreUnknown=true;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=c;K8S_POD_UID=u;IgnoreUnknown=1;EXTRA=x;MAC=02:00:00:00:00:01;IP=10.0.0.1/24,10.0.0.2/24"
        );
        assert!(!cni_args(&k, &runtime, &d, false).contains("MAC="));
    }
}
