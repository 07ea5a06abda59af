//! `sriovdp`: the SR-IOV network device plugin.
//!
//! `sriovdp --config-file PATH [--resource-prefix P]`, upstream's command line; Go-style single
//! dashes (`-config-file`, `-v=10`, `-logtostderr`) are accepted too. A bad config exits non-zero
//! with a message naming the resource and field, before anything is registered.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sriov_device_plugin::health::SysfsLinks;
use sriov_device_plugin::manager::{self, Options};
use sriov_host::SysfsRoot;

#[derive(Parser, Debug)]
#[command(
    name = "sriovdp",
    version,
    about = "SR-IOV network device plugin for the kubelet (drop-in for sriov-network-device-plugin)"
)]
struct Cli {
    /// The device plugin config (upstream's format).
    #[arg(long = "config-file", default_value = "/etc/pcidp/config.json")]
    config_file: PathBuf,
    /// Resource prefix for resources without `resourcePrefix`.
    #[arg(long = "resource-prefix", default_value = "intel.com")]
    resource_prefix: String,
    /// sysfs root.
    #[arg(long = "sysfs-root", env = sriov_host::SYSFS_ROOT_ENV, default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Device-node root (vhost-net, net/tun are looked up here).
    #[arg(long = "dev-root", default_value = "/dev")]
    dev_root: PathBuf,
    /// The kubelet's device-plugins directory (kubelet.sock and our sockets).
    #[arg(long = "device-plugin-dir", default_value = "/var/lib/kubelet/device-plugins")]
    device_plugin_dir: PathBuf,
    /// The kubelet's plugin-watcher directory; when it exists sriovdp serves its sockets there.
    #[arg(
        long = "plugins-registry-dir",
        default_value = "/var/lib/kubelet/plugins_registry"
    )]
    plugins_registry_dir: PathBuf,
    /// Device-info files for Multus; empty disables them.
    #[arg(
        long = "device-info-dir",
        default_value = "/var/run/k8s.cni.cncf.io/devinfo/dp"
    )]
    device_info_dir: String,
    /// How often link states are read, in milliseconds.
    #[arg(long = "health-interval-ms", default_value_t = 1000)]
    health_interval_ms: u64,
    /// How often the config file is checked for changes, in milliseconds.
    #[arg(long = "config-check-interval-ms", default_value_t = 1000)]
    config_check_interval_ms: u64,
    /// How often the host is re-discovered (VFs created or removed), in milliseconds; 0 disables.
    #[arg(long = "rediscover-interval-ms", default_value_t = 30_000)]
    rediscover_interval_ms: u64,
    /// Upstream's CDI mode: not supported by sriov-rs (refused).
    #[arg(long = "use-cdi", num_args = 0..=1, default_missing_value = "true")]
    use_cdi: Option<bool>,
    /// glog verbosity (upstream); ≥ 4 logs debug.
    #[arg(long = "v", default_value_t = 0)]
    v: u32,
    /// Upstream's newer spelling of the verbosity (the operator's DaemonSet passes
    /// `--log-level=10`); the same scale as `-v`, the higher of the two wins.
    #[arg(long = "log-level", default_value_t = 0)]
    log_level: u32,
    /// glog flags, accepted for compatibility and ignored (logs go to stderr).
    #[arg(long = "logtostderr", num_args = 0..=1, default_missing_value = "true")]
    logtostderr: Option<bool>,
    #[arg(long = "alsologtostderr", num_args = 0..=1, default_missing_value = "true", hide = true)]
    alsologtostderr: Option<bool>,
    #[arg(long = "log_dir", hide = true)]
    log_dir: Option<String>,
    #[arg(long = "stderrthreshold", hide = true)]
    stderrthreshold: Option<String>,
    #[arg(long = "vmodule", hide = true)]
    vmodule: Option<String>,
    #[arg(long = "log_link", hide = true)]
    log_link: Option<String>,
    #[arg(long = "logbuflevel", hide = true)]
    logbuflevel: Option<String>,
    #[arg(long = "log_backtrace_at", hide = true)]
    log_backtrace_at: Option<String>,
}

/// Go's `flag` package takes `-name` like `--name`: turn single-dash long flags into double-dash.
fn go_style(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, a)| {
            let single = a.starts_with('-') && !a.starts_with("--") && a.len() > 1;
            let is_flag = a
                .strip_prefix('-')
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_alphabetic()));
            if i > 0 && single && is_flag && a != "-h" && a != "-V" {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

/// Installs the handlers now (before anything is registered), and returns a future that
/// completes on SIGTERM, SIGINT, SIGQUIT or SIGHUP (upstream's set).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigs = Vec::new();
    for kind in [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::quit(),
        SignalKind::hangup(),
    ] {
        match signal(kind) {
            Ok(s) => sigs.push(s),
            Err(e) => tracing::warn!("cannot watch signal {kind:?}: {e}"),
        }
    }
    async move {
        if sigs.is_empty() {
            std::future::pending::<()>().await;
        }
        futures::future::select_all(sigs.iter_mut().map(|s| Box::pin(s.recv()))).await;
    }
}

fn main() -> std::process::ExitCode {
    let mut cli = Cli::parse_from(go_style(std::env::args()));
    cli.v = cli.v.max(cli.log_level);
    // A plain level (no EnvFilter: its regex engine alone would cost resident memory).
    let level = if cli.v >= 4 {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    if cli.use_cdi == Some(true) {
        eprintln!(
            "sriovdp: --use-cdi: CDI mode is not supported by sriov-rs; run without it (device specs are returned directly)"
        );
        return std::process::ExitCode::from(2);
    }
    let mut opts = Options::new(cli.config_file, cli.resource_prefix);
    opts.sysfs = SysfsRoot::with_dev(&cli.sysfs_root, &cli.dev_root);
    opts.dev_root = cli.dev_root;
    opts.plugin_dir = cli.device_plugin_dir;
    opts.plugins_registry = cli.plugins_registry_dir;
    opts.device_info_dir = (!cli.device_info_dir.is_empty()).then(|| PathBuf::from(cli.device_info_dir));
    opts.health_interval = Duration::from_millis(cli.health_interval_ms.max(10));
    opts.config_check_interval = Duration::from_millis(cli.config_check_interval_ms.max(10));
    opts.rediscover_interval =
        (cli.rediscover_interval_ms > 0).then(|| Duration::from_millis(cli.rediscover_interval_ms.max(10)));
    let links = Arc::new(SysfsLinks {
        sys: opts.sysfs.sys().to_path_buf(),
        netlink_events: true,
    });

    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sriovdp: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(async { manager::run(opts, links, shutdown_signal()).await }) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sriovdp: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_flags() {
        let argv = [
            "sriovdp",
            "-config-file",
            "/c.json",
            "-resource-prefix=x.io",
            "--v=3",
            "-logtostderr",
            "-h",
            "-",
            "",
            "-é",
        ];
        let got = go_style(argv.iter().map(|s| s.to_string()));
        assert_eq!(
            got,
            [
                "sriovdp",
                "--config-file",
                "/c.json",
                "--resource-prefix=x.io",
                "--v=3",
                "--logtostderr",
                "-h",
                "-",
                "",
                "-é"
            ]
        );
        let cli = Cli::try_parse_from(go_style(
            [
                "sriovdp",
                "-config-file",
                "/c.json",
                "-resource-prefix",
                "x.io",
                "-v",
                "10",
                "-logtostderr",
                "-log_dir=/var/log",
            ]
            .iter()
            .map(|s| s.to_string()),
        ))
        .expect("upstream's flags parse");
        assert_eq!(
            (cli.config_file, cli.resource_prefix.as_str(), cli.v),
            (PathBuf::from("/c.json"), "x.io", 10)
        );
        let cli = Cli::try_parse_from(["sriovdp"]).expect("defaults");
        assert_eq!(
            (cli.config_file, cli.resource_prefix.as_str()),
            (PathBuf::from("/etc/pcidp/config.json"), "intel.com")
        );
    }
}
