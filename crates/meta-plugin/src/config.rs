//! The meta plugin's own network config: Multus' thin-plugin config (the same JSON keys, the
//! same defaults), read from stdin. Parsing checks every field Multus reads and names the one
//! that is wrong; nothing here touches the file system.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::delegate::{DelegateError, check_conf};

/// Multus' defaults (`pkg/types/conf.go`).
pub const DEFAULT_CNI_DIR: &str = "/var/lib/cni/multus";
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/multus/net.d";
pub const DEFAULT_BIN_DIR: &str = "/opt/cni/bin";
pub const DEFAULT_MULTUS_NAMESPACE: &str = "kube-system";
/// The base of the device-information files (the k8snetworkplumbingwg device-info spec).
pub const DEFAULT_DEVICE_INFO_DIR: &str = "/var/run/k8s.cni.cncf.io/devinfo";
/// The runtime config key containerd fills with every pod annotation when the plugin declares
/// the capability.
pub const POD_ANNOTATIONS_CAPABILITY: &str = "io.kubernetes.cri.pod-annotations";
/// The keys of Multus' `RuntimeConfig`: the only runtime config handed on to delegates.
pub const RUNTIME_CONFIG_KEYS: &[&str] = &[
    "portMappings",
    "bandwidth",
    "ips",
    "mac",
    "infinibandGUID",
    "deviceID",
    "CNIDeviceInfoFile",
];

/// Where the pod's default network comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DefaultNetwork {
    /// `delegates`: inline configs; the first is the default network, the others follow it.
    Delegates(Vec<Value>),
    /// `clusterNetwork` (+ `defaultNetworks`): each a NAD name (in `multusNamespace`), a CNI
    /// config name in `confDir`, a directory (its first config) or a config file path.
    Named {
        cluster_network: String,
        default_networks: Vec<String>,
    },
}

/// A config field that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("meta plugin config is not a JSON object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("meta plugin config: field `{field}` {reason}")]
    Field { field: String, reason: String },
    #[error("meta plugin config: one of `delegates` or `clusterNetwork` must be set")]
    NoDefaultNetwork,
    #[error("meta plugin config: {0}")]
    Delegate(#[from] DelegateError),
}

/// The parsed config.
#[derive(Clone, Debug, PartialEq)]
pub struct MetaConfig {
    pub cni_version: String,
    pub name: String,
    pub kubeconfig: Option<PathBuf>,
    pub default_network: DefaultNetwork,
    pub conf_dir: PathBuf,
    pub cni_dir: PathBuf,
    pub bin_dir: PathBuf,
    pub log_file: Option<PathBuf>,
    pub log_level: String,
    pub log_to_stderr: bool,
    pub namespace_isolation: bool,
    /// `globalNamespaces`: namespaces any pod may reference under isolation.
    pub global_namespaces: Vec<String>,
    /// `systemNamespaces`: their pods get no `defaultNetworks`.
    pub system_namespaces: Vec<String>,
    pub multus_namespace: String,
    pub readiness_indicator_file: Option<PathBuf>,
    /// The runtime's runtimeConfig, reduced to Multus' keys: every delegate gets it.
    pub runtime_config: Map<String, Value>,
    /// The pod's annotations when the runtime sent them (containerd's
    /// `io.kubernetes.cri.pod-annotations`): no API call is needed to read them.
    pub pod_annotations: Option<BTreeMap<String, String>>,
    /// Extension: the kubelet's PodResources socket (Multus' is fixed).
    pub pod_resources_socket: PathBuf,
    /// Extension: the device-info base directory (Multus' is fixed).
    pub device_info_dir: PathBuf,
}

fn field_err(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn opt_str(m: &Map<String, Value>, key: &str) -> Result<Option<String>, ConfigError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(field_err(key, format!("must be a string, not {v}"))),
    }
}

fn opt_bool(m: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ConfigError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(field_err(key, format!("must be true or false, not {v}"))),
    }
}

fn opt_str_list(m: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| field_err(key, format!("must list strings, not {v}")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => Err(field_err(key, format!("must be a list of strings, not {v}"))),
    }
}

fn path_or(m: &Map<String, Value>, key: &str, default: &str) -> Result<PathBuf, ConfigError> {
    Ok(PathBuf::from(
        opt_str(m, key)?.unwrap_or_else(|| default.to_string()),
    ))
}

fn pod_annotations(rc: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
    let field = format!("runtimeConfig.{POD_ANNOTATIONS_CAPABILITY}");
    match rc.get(POD_ANNOTATIONS_CAPABILITY) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => Ok((k.clone(), s.to_string())),
                None => Err(field_err(&field, format!("annotation {k:?} is not a string"))),
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Some),
        Some(v) => Err(field_err(&field, format!("must be an object, not {v}"))),
    }
}

/// Parses and checks the config the runtime wrote on stdin.
pub fn parse(stdin: &[u8]) -> Result<MetaConfig, ConfigError> {
    let m: Map<String, Value> = serde_json::from_slice(stdin)?;
    let cluster_network = opt_str(&m, "clusterNetwork")?;
    let default_network = match cluster_network {
        Some(cluster_network) => DefaultNetwork::Named {
            cluster_network,
            default_networks: opt_str_list(&m, "defaultNetworks")?.unwrap_or_default(),
        },
        None => match m.get("delegates") {
            Some(Value::Array(a)) if !a.is_empty() => {
                for (i, d) in a.iter().enumerate() {
                    check_conf(d, &format!("delegates[{i}]"))?;
                }
                DefaultNetwork::Delegates(a.clone())
            }
            Some(Value::Array(_)) | None | Some(Value::Null) => return Err(ConfigError::NoDefaultNetwork),
            Some(v) => {
                return Err(field_err(
                    "delegates",
                    format!("must be a list of CNI configs, not {v}"),
                ));
            }
        },
    };
    let rc = match m.get("runtimeConfig") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(v) => return Err(field_err("runtimeConfig", format!("must be an object, not {v}"))),
    };
    let global = opt_str(&m, "globalNamespaces")?.unwrap_or_else(|| "default".into());
    Ok(MetaConfig {
        cni_version: opt_str(&m, "cniVersion")?.unwrap_or_default(),
        name: opt_str(&m, "name")?.unwrap_or_default(),
        kubeconfig: opt_str(&m, "kubeconfig")?.map(PathBuf::from),
        default_network,
        conf_dir: path_or(&m, "confDir", DEFAULT_CONF_DIR)?,
        cni_dir: path_or(&m, "cniDir", DEFAULT_CNI_DIR)?,
        bin_dir: path_or(&m, "binDir", DEFAULT_BIN_DIR)?,
        log_file: opt_str(&m, "logFile")?.map(PathBuf::from),
        log_level: opt_str(&m, "logLevel")?.unwrap_or_default(),
        log_to_stderr: opt_bool(&m, "logToStderr", true)?,
        namespace_isolation: opt_bool(&m, "namespaceIsolation", false)?,
        global_namespaces: global.split(',').map(|s| s.trim().to_string()).collect(),
        system_namespaces: opt_str_list(&m, "systemNamespaces")?
            .unwrap_or_else(|| vec!["kube-system".into()]),
        multus_namespace: opt_str(&m, "multusNamespace")?.unwrap_or_else(|| DEFAULT_MULTUS_NAMESPACE.into()),
        readiness_indicator_file: opt_str(&m, "readinessindicatorfile")?.map(PathBuf::from),
        pod_annotations: pod_annotations(&rc)?,
        runtime_config: rc
            .into_iter()
            .filter(|(k, _)| RUNTIME_CONFIG_KEYS.contains(&k.as_str()))
            .collect(),
        pod_resources_socket: path_or(
            &m,
            "podResourcesSocket",
            sriov_device_plugin::pod_resources::DEFAULT_SOCKET,
        )?,
        device_info_dir: path_or(&m, "deviceInfoDir", DEFAULT_DEVICE_INFO_DIR)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn multus_thin_config_with_defaults() {
        let c = parse(
            br#"{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus",
            "kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig",
            "delegates":[{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"bridge"}]}],
            "runtimeConfig":{"portMappings":[],"io.kubernetes.cri.pod-annotations":{"a":"b"},"other":1}}"#,
        )
        .unwrap();
        assert_eq!(c.cni_dir, PathBuf::from(DEFAULT_CNI_DIR));
        assert_eq!(c.conf_dir, PathBuf::from(DEFAULT_CONF_DIR));
        assert_eq!(c.bin_dir, PathBuf::from(DEFAULT_BIN_DIR));
        assert_eq!(c.multus_namespace, "kube-system");
        assert_eq!(c.global_namespaces, ["default"]);
        assert!(c.log_to_stderr);
        assert!(matches!(&c.default_network, DefaultNetwork::Delegates(d) if d.len() == 1));
        assert_eq!(c.pod_annotations.unwrap()["a"], "b");
        assert_eq!(c.runtime_config.keys().collect::<Vec<_>>(), ["portMappings"]);
    }

    #[test]
    fn cluster_network_wins_over_delegates() {
        let c = parse(
            br#"{"clusterNetwork":"/etc/cni/net.d/10-bridge.conflist","defaultNetworks":["extra"],
            "delegates":[{"type":"bridge"}],"namespaceIsolation":true,"globalNamespaces":"a, b"}"#,
        )
        .unwrap();
        assert_eq!(
            c.default_network,
            DefaultNetwork::Named {
                cluster_network: "/etc/cni/net.d/10-bridge.conflist".into(),
                default_networks: vec!["extra".into()]
            }
        );
        assert_eq!(c.global_namespaces, ["a", "b"]);
        assert!(c.namespace_isolation);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{}"#, "`delegates` or `clusterNetwork`"),
            (r#"{"delegates":[]}"#, "`delegates` or `clusterNetwork`"),
            (r#"{"delegates":{"type":"x"}}"#, "field `delegates`"),
            (
                r#"{"delegates":[{"type":"bridge"},{"name":"x"}]}"#,
                "delegates[1]",
            ),
            (
                r#"{"delegates":[{"plugins":[{"name":"x"}]}]}"#,
                "delegates[0].plugins[0]",
            ),
            (r#"{"clusterNetwork":5}"#, "field `clusterNetwork`"),
            (
                r#"{"clusterNetwork":"a","defaultNetworks":"b"}"#,
                "field `defaultNetworks`",
            ),
            (r#"{"clusterNetwork":"a","kubeconfig":1}"#, "field `kubeconfig`"),
            (
                r#"{"clusterNetwork":"a","namespaceIsolation":"yes"}"#,
                "field `namespaceIsolation`",
            ),
            (
                r#"{"clusterNetwork":"a","runtimeConfig":[]}"#,
                "field `runtimeConfig`",
            ),
            (
                r#"{"clusterNetwork":"a","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k":1}}}"#,
                "runtimeConfig.io.kubernetes.cri.pod-annotations",
            ),
            ("not json", "not a JSON object"),
        ];
        for (text, want) in cases {
            let e = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
