//! `sriov-network-config-daemon`: applies this node's `SriovNetworkNodeState` spec.
//!
//! `--node-state-file PATH`: local mode (see `sriov_daemon::file_mode`). Without it: Kubernetes
//! mode (the node's own SriovNetworkNodeState, as upstream's daemon).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use sriov_daemon::Engine;
use sriov_daemon::state::StateStore;
use sriov_host::SysfsRoot;

#[derive(Parser, Debug)]
#[command(name = "sriov-network-config-daemon", version, about)]
struct Args {
    /// Upstream's subcommand word (`sriov-network-config-daemon start`, as the operator's
    /// DaemonSet runs it); optional.
    #[arg(value_parser = ["start"])]
    command: Option<String>,
    /// Upstream's `--disable-plugins=…` (vendor plugins; sriov-rs has none to disable): accepted.
    #[arg(long = "disable-plugins", hide = true)]
    disable_plugins: Option<String>,
    /// Upstream's `--parallel-nic-config` feature gate: accepted (sriov-rs plans PFs together).
    #[arg(long = "parallel-nic-config", hide = true)]
    parallel_nic_config: bool,
    /// Local mode: apply the SriovNetworkNodeState in this file, and again whenever it changes.
    #[arg(long, value_name = "PATH")]
    node_state_file: Option<PathBuf>,
    /// Where local mode writes the object with its status (default: PATH.status.json).
    #[arg(long, value_name = "PATH")]
    status_file: Option<PathBuf>,
    /// Where the last applied spec is kept across restarts.
    #[arg(long, env = "SRIOV_DAEMON_STATE_DIR", default_value = "/var/lib/sriov-rs")]
    state_dir: PathBuf,
    /// The sysfs root (tests point it at a fake tree).
    #[arg(long, env = sriov_host::SYSFS_ROOT_ENV, default_value = "/sys")]
    sysfs_root: PathBuf,
    /// Re-check the host against the spec this often (seconds), even without a change.
    #[arg(long, env = "SRIOV_DAEMON_RESYNC_SECS", default_value_t = 60)]
    resync_secs: u64,
    /// Kubernetes mode: this node's name (as upstream, from NODE_NAME).
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Kubernetes mode: the operator's namespace.
    #[arg(long, env = "NAMESPACE", default_value = "sriov-network-operator")]
    namespace: String,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // In the lab's build (feature `netdevsim`), netdevsim devices are PFs too.
    let host = sriov_daemon::node_host(SysfsRoot::from_arg(&args.sysfs_root));
    let mut engine = Engine::new(&host, StateStore::in_dir(&args.state_dir));
    let resync = Duration::from_secs(args.resync_secs.max(1));
    match &args.node_state_file {
        Some(path) => {
            let status = args.status_file.clone().unwrap_or_else(|| {
                let mut s = path.as_os_str().to_os_string();
                s.push(".status.json");
                PathBuf::from(s)
            });
            sriov_daemon::file_mode::run(&engine, path, status, resync)
        }
        None => {
            // As upstream: only PFs this daemon configured are reset when they leave the spec.
            engine.managed_only = true;
            let node = args.node_name.clone().ok_or_else(|| {
                anyhow::anyhow!("Kubernetes mode needs NODE_NAME (or --node-state-file PATH)")
            })?;
            sriov_daemon::kube_mode::run(&engine, &node, &args.namespace, resync)
        }
    }
}
