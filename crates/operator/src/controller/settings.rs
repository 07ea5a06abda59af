//! The operator's environment (what upstream's Deployment sets) read into plain data, once, by a
//! pure function over a variable lookup, so every rule (defaults, the mandatory
//! `RESOURCE_PREFIX`, the accepted `CLUSTER_TYPE`s) is tested without touching the process
//! environment. Also the parsing of the address and duration flags, which follow Go's syntax.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Where the operator runs when `NAMESPACE` is unset (the project's convention, as the daemon
/// and `sriovctl` use it).
pub const DEFAULT_NAMESPACE: &str = "sriov-network-operator";

/// Upstream's CNI binary directory on the host when `SRIOV_CNI_BIN_PATH` is empty
/// (`controllers/sriovoperatorconfig_controller.go`).
pub const DEFAULT_CNI_BIN_PATH: &str = "/var/lib/cni/bin";

/// Which orchestrator the cluster is (`CLUSTER_TYPE`): upstream refuses any other value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterType {
    Kubernetes,
    Openshift,
}

impl ClusterType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterType::Kubernetes => "kubernetes",
            ClusterType::Openshift => "openshift",
        }
    }
}

/// The images the operator deploys (env `*_IMAGE`); empty when unset, as upstream passes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Images {
    pub sriov_cni: String,
    pub sriov_infiniband_cni: String,
    pub ovs_cni: String,
    pub rdma_cni: String,
    pub sriov_device_plugin: String,
    pub network_resources_injector: String,
    pub sriov_network_config_daemon: String,
    pub sriov_network_webhook: String,
    pub metrics_exporter: String,
}

/// Everything the operator reads from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSettings {
    /// `NAMESPACE`: policies, node states, the device-plugin ConfigMap and the DaemonSets.
    pub namespace: String,
    /// `RESOURCE_PREFIX` (mandatory): `<prefix>/<resourceName>` in NADs and the device plugin.
    pub resource_prefix: String,
    pub images: Images,
    /// `SRIOV_CNI_BIN_PATH`, else [`DEFAULT_CNI_BIN_PATH`].
    pub cni_bin_path: String,
    pub cluster_type: ClusterType,
    /// `DEV_MODE=TRUE` (exactly, as upstream): NICs outside `supported-nic-ids` are accepted.
    pub dev_mode: bool,
    /// `ADMISSION_CONTROLLERS_ENABLED=true`: the default `SriovOperatorConfig` enables the
    /// injector and the operator webhook.
    pub admission_controllers_enabled: bool,
    /// `USE_EXTERNAL_DRAINER=true`: passed to the config daemon; the drain controller still
    /// finishes drains it started.
    pub use_external_drainer: bool,
    /// `RELEASEVERSION`, stamped on what the operator deploys.
    pub release_version: String,
    /// `IMAGE_PULL_SECRETS`, comma-separated, for the deployed pods.
    pub image_pull_secrets: Vec<String>,
    /// `STALE_NODE_STATE_CLEANUP_DELAY_MINUTES` (default 30; 0 deletes at once).
    pub stale_node_state_cleanup_delay: Duration,
    /// What defaulted or was ignored, for the start-up log.
    pub notes: Vec<String>,
}

/// A variable the operator cannot run with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("RESOURCE_PREFIX environment variable can't be empty")]
    MissingResourcePrefix,
    #[error("CLUSTER_TYPE {0:?} is not a known cluster type (kubernetes or openshift)")]
    UnknownClusterType(String),
    #[error("STALE_NODE_STATE_CLEANUP_DELAY_MINUTES {0:?} is not a number of minutes")]
    BadCleanupDelay(String),
}

impl OperatorSettings {
    /// Reads the settings through `var` (`|k| std::env::var(k).ok()` in the binary). An empty
    /// variable counts as unset, as Go's `os.Getenv` returns "" for both.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<OperatorSettings, SettingsError> {
        let get = |k: &str| var(k).filter(|v| !v.is_empty());
        let mut notes = Vec::new();
        let resource_prefix = get("RESOURCE_PREFIX").ok_or(SettingsError::MissingResourcePrefix)?;
        let namespace = get("NAMESPACE").unwrap_or_else(|| {
            notes.push(format!("NAMESPACE is unset: using {DEFAULT_NAMESPACE}"));
            DEFAULT_NAMESPACE.to_string()
        });
        let cluster_type = match get("CLUSTER_TYPE").as_deref() {
            Some("kubernetes") => ClusterType::Kubernetes,
            Some("openshift") => ClusterType::Openshift,
            // Upstream exits here too; we take Helm's default so a bare `cargo run` works.
            None => {
                notes.push("CLUSTER_TYPE is unset: using kubernetes".into());
                ClusterType::Kubernetes
            }
            Some(other) => return Err(SettingsError::UnknownClusterType(other.to_string())),
        };
        let stale_minutes = match get("STALE_NODE_STATE_CLEANUP_DELAY_MINUTES") {
            None => 30,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| SettingsError::BadCleanupDelay(v.clone()))?,
        };
        let images = Images {
            sriov_cni: get("SRIOV_CNI_IMAGE").unwrap_or_default(),
            sriov_infiniband_cni: get("SRIOV_INFINIBAND_CNI_IMAGE").unwrap_or_default(),
            ovs_cni: get("OVS_CNI_IMAGE").unwrap_or_default(),
            rdma_cni: get("RDMA_CNI_IMAGE").unwrap_or_default(),
            sriov_device_plugin: get("SRIOV_DEVICE_PLUGIN_IMAGE").unwrap_or_default(),
            network_resources_injector: get("NETWORK_RESOURCES_INJECTOR_IMAGE").unwrap_or_default(),
            sriov_network_config_daemon: get("SRIOV_NETWORK_CONFIG_DAEMON_IMAGE").unwrap_or_default(),
            sriov_network_webhook: get("SRIOV_NETWORK_WEBHOOK_IMAGE").unwrap_or_default(),
            metrics_exporter: get("METRICS_EXPORTER_IMAGE").unwrap_or_default(),
        };
        Ok(OperatorSettings {
            namespace,
            resource_prefix,
            images,
            cni_bin_path: get("SRIOV_CNI_BIN_PATH").unwrap_or_else(|| DEFAULT_CNI_BIN_PATH.into()),
            cluster_type,
            dev_mode: get("DEV_MODE").is_some_and(|v| v == "TRUE"),
            admission_controllers_enabled: get("ADMISSION_CONTROLLERS_ENABLED").is_some_and(|v| v == "true"),
            use_external_drainer: get("USE_EXTERNAL_DRAINER").is_some_and(|v| v == "true"),
            release_version: get("RELEASEVERSION").unwrap_or_default(),
            image_pull_secrets: get("IMAGE_PULL_SECRETS")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            stale_node_state_cleanup_delay: Duration::from_secs(stale_minutes.saturating_mul(60)),
            notes,
        })
    }
}

/// A bind-address flag that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag} {value:?}: expected \"0\" (off), \":PORT\" or \"HOST:PORT\"")]
pub struct BadAddress {
    pub flag: &'static str,
    pub value: String,
}

/// controller-runtime's bind-address syntax: `"0"` (or empty) turns the server off, `":8081"`
/// listens on every address, `"127.0.0.1:8081"` / `"[::1]:8081"` on one. `None` means off.
pub fn parse_bind_address(flag: &'static str, value: &str) -> Result<Option<SocketAddr>, BadAddress> {
    let bad = || BadAddress {
        flag,
        value: value.to_string(),
    };
    let value = value.trim();
    if value.is_empty() || value == "0" {
        return Ok(None);
    }
    if let Some(port) = value.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| bad())?;
        // `[::]` accepts IPv4 too on Linux (bindv6only=0), as Go's ":port" does.
        return Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)));
    }
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    // `localhost:8081`
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host == "localhost" {
        return Ok(Some(SocketAddr::from(([127, 0, 0, 1], port))));
    }
    Err(bad())
}

/// A duration flag that is not Go's `time.ParseDuration` syntax.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a duration (e.g. \"15s\", \"1m30s\", \"500ms\")")]
pub struct BadDuration(pub String);

/// Go's duration syntax (`time.ParseDuration`) for non-negative values: a sequence of
/// number+unit (`h`, `m`, `s`, `ms`, `us`, `ns`), decimals allowed (`1.5s`).
pub fn parse_go_duration(text: &str) -> Result<Duration, BadDuration> {
    let bad = || BadDuration(text.to_string());
    let mut rest = text.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Go's `flag` package takes `-name` as well as `--name`; clap only `--name`. Every single-dash
/// word longer than one letter after the program name becomes double-dash.
pub fn go_style_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i > 0 && a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn resource_prefix_is_mandatory_unset_or_empty() {
        assert_eq!(
            OperatorSettings::from_lookup(env(&[("NAMESPACE", "x")])),
            Err(SettingsError::MissingResourcePrefix)
        );
        assert_eq!(
            OperatorSettings::from_lookup(env(&[("RESOURCE_PREFIX", "")])),
            Err(SettingsError::MissingResourcePrefix)
        );
        assert!(
            SettingsError::MissingResourcePrefix
                .to_string()
                .contains("RESOURCE_PREFIX")
        );
    }

    #[test]
    fn upstream_deployment_environment_is_read() {
        let s = OperatorSettings::from_lookup(env(&[
            ("RESOURCE_PREFIX", "openshift.io"),
            ("NAMESPACE", "sriov"),
            ("CLUSTER_TYPE", "openshift"),
            ("DEV_MODE", "TRUE"),
            ("ADMISSION_CONTROLLERS_ENABLED", "true"),
            ("SRIOV_CNI_BIN_PATH", "/opt/cni/bin"),
            ("SRIOV_CNI_IMAGE", "cni:1"),
            ("SRIOV_DEVICE_PLUGIN_IMAGE", "dp:1"),
            ("SRIOV_NETWORK_CONFIG_DAEMON_IMAGE", "daemon:1"),
            ("SRIOV_NETWORK_WEBHOOK_IMAGE", "webhook:1"),
            ("NETWORK_RESOURCES_INJECTOR_IMAGE", "nri:1"),
            ("SRIOV_INFINIBAND_CNI_IMAGE", "ib:1"),
            ("IMAGE_PULL_SECRETS", "a, b,,"),
            ("STALE_NODE_STATE_CLEANUP_DELAY_MINUTES", "0"),
        ]))
        .unwrap();
        assert_eq!(s.namespace, "sriov");
        assert_eq!(s.resource_prefix, "openshift.io");
        assert_eq!(s.cluster_type, ClusterType::Openshift);
        assert!(s.dev_mode && s.admission_controllers_enabled && !s.use_external_drainer);
        assert_eq!(s.cni_bin_path, "/opt/cni/bin");
        assert_eq!(s.images.sriov_cni, "cni:1");
        assert_eq!(s.images.sriov_device_plugin, "dp:1");
        assert_eq!(s.images.sriov_network_config_daemon, "daemon:1");
        assert_eq!(s.images.sriov_network_webhook, "webhook:1");
        assert_eq!(s.images.network_resources_injector, "nri:1");
        assert_eq!(s.images.sriov_infiniband_cni, "ib:1");
        assert_eq!(s.image_pull_secrets, vec!["a", "b"]);
        assert_eq!(s.stale_node_state_cleanup_delay, Duration::ZERO);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
    }

    #[test]
    fn defaults_follow_upstream_and_are_noted() {
        let s =
            OperatorSettings::from_lookup(env(&[("RESOURCE_PREFIX", "p"), ("DEV_MODE", "true")])).unwrap();
        assert_eq!(s.namespace, DEFAULT_NAMESPACE);
        assert_eq!(s.cluster_type, ClusterType::Kubernetes);
        assert_eq!(s.cni_bin_path, DEFAULT_CNI_BIN_PATH);
        // Upstream compares with "TRUE" exactly.
        assert!(!s.dev_mode);
        assert!(!s.admission_controllers_enabled);
        assert_eq!(s.stale_node_state_cleanup_delay, Duration::from_secs(30 * 60));
        assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
    }

    #[test]
    fn unknown_cluster_type_and_bad_delay_are_refused_with_the_value() {
        let e = OperatorSettings::from_lookup(env(&[("RESOURCE_PREFIX", "p"), ("CLUSTER_TYPE", "k3s")]))
            .unwrap_err();
        assert_eq!(e, SettingsError::UnknownClusterType("k3s".into()));
        assert!(e.to_string().contains("CLUSTER_TYPE \"k3s\""), "{e}");
        let e = OperatorSettings::from_lookup(env(&[
            ("RESOURCE_PREFIX", "p"),
            ("STALE_NODE_STATE_CLEANUP_DELAY_MINUTES", "soon"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("\"soon\""), "{e}");
    }

    #[test]
    fn bind_addresses_as_controller_runtime_reads_them() {
        assert_eq!(parse_bind_address("--metrics-bind-address", "0"), Ok(None));
        assert_eq!(parse_bind_address("--metrics-bind-address", ""), Ok(None));
        assert_eq!(
            parse_bind_address("--health-probe-bind-address", ":8081"),
            Ok(Some("[::]:8081".parse().unwrap()))
        );
        assert_eq!(
            parse_bind_address("x", "127.0.0.1:9000"),
            Ok(Some("127.0.0.1:9000".parse().unwrap()))
        );
        assert_eq!(
            parse_bind_address("x", "[::1]:9000"),
            Ok(Some("[::1]:9000".parse().unwrap()))
        );
        assert_eq!(
            parse_bind_address("x", "localhost:9000"),
            Ok(Some("127.0.0.1:9000".parse().unwrap()))
        );
        let e = parse_bind_address("--metrics-bind-address", "8080").unwrap_err();
        assert!(e.to_string().contains("--metrics-bind-address \"8080\""), "{e}");
        assert!(parse_bind_address("x", ":http").is_err());
        assert!(parse_bind_address("x", "example.com:80").is_err());
    }

    #[test]
    fn go_flags_take_one_or_two_dashes() {
        let args = [
            "op",
            "-leader-elect",
            "--metrics-bind-address=:8080",
            "-v",
            "-zap-log-level=2",
        ]
        .map(String::from);
        assert_eq!(
            go_style_args(args),
            vec![
                "op",
                "--leader-elect",
                "--metrics-bind-address=:8080",
                "-v",
                "--zap-log-level=2"
            ]
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "15", "s", "15x", "-1s", "1..5s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
