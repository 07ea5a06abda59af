//! sriovdp's life cycle: load the config, discover, build pools, serve one socket per non-empty
//! pool, register, then keep everything current:
//!
//! * **health**: every `health_interval` the link states are read and a changed pool is pushed to
//!   its ListAndWatch streams;
//! * **kubelet restart**: every `kubelet_check_interval` (100 ms) each resource checks that its
//!   socket still exists (the kubelet wipes the directory when it starts) and that
//!   `kubelet.sock` is the file it registered with; if not, it re-binds and registers again;
//! * **config reload**: every `config_check_interval` the file is re-read; when its bytes change
//!   it is parsed (a bad file is logged and the running pools are kept), the host re-discovered
//!   and the pools rebuilt. A resource that stays keeps its server and streams (allocations are
//!   untouched; its device list is re-sent), a new one is started and registered, a removed one
//!   is stopped and its socket removed;
//! * **rediscovery**: every `rediscover_interval` (30 s) the host is discovered again and pools
//!   that changed (VFs created or removed, drivers rebound) are re-sent; a pool that gains its
//!   first devices is served and registered (upstream discovers once, at start);
//! * **shutdown** (the future passed to [`run`] completes): every server stops and its socket and
//!   device-info files are removed.
//!
//! Registration mode as upstream: plugin-watcher when the plugins-registry directory exists
//! (sockets there, the kubelet finds them), else `Register` through `kubelet.sock` in the
//! device-plugins directory.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sriov_host::SysfsRoot;

use crate::config::{Config, ConfigError};
use crate::health::{self, LinkSource};
use crate::kubelet;
use crate::pool::{HostFacts, Pool, build_pools_owned};
use crate::server::{HostPaths, PoolState, Running, WatcherInfo};
use crate::{devinfo, from_host, sysfs_extra};

/// Everything sriovdp needs to know; see `sriovdp --help`.
#[derive(Clone, Debug)]
pub struct Options {
    pub config_file: PathBuf,
    pub resource_prefix: String,
    pub sysfs: SysfsRoot,
    /// The kubelet's device-plugins directory (holds `kubelet.sock`).
    pub plugin_dir: PathBuf,
    /// The kubelet's plugin-watcher directory; when it exists, watcher mode is used.
    pub plugins_registry: PathBuf,
    pub dev_root: PathBuf,
    pub device_info_dir: Option<PathBuf>,
    pub health_interval: Duration,
    pub kubelet_check_interval: Duration,
    pub config_check_interval: Duration,
    /// Re-discover the host this often (VFs created or removed, drivers rebound); `None` = never.
    pub rediscover_interval: Option<Duration>,
    pub register_timeout: Duration,
}

impl Options {
    /// Upstream's paths and sriov-rs's intervals.
    pub fn new(config_file: PathBuf, resource_prefix: String) -> Self {
        Options {
            config_file,
            resource_prefix,
            sysfs: SysfsRoot::default(),
            plugin_dir: "/var/lib/kubelet/device-plugins".into(),
            plugins_registry: "/var/lib/kubelet/plugins_registry".into(),
            dev_root: "/dev".into(),
            device_info_dir: Some("/var/run/k8s.cni.cncf.io/devinfo/dp".into()),
            health_interval: Duration::from_secs(1),
            kubelet_check_interval: Duration::from_millis(100),
            config_check_interval: Duration::from_secs(1),
            rediscover_interval: Some(Duration::from_secs(30)),
            register_timeout: Duration::from_secs(2),
        }
    }
}

/// Why sriovdp cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Config { path: String, source: ConfigError },
    #[error(transparent)]
    Discover(#[from] sriov_host::DiscoverError),
    #[error("cannot serve resource {resource} on {socket}: {source}")]
    Bind {
        resource: String,
        socket: String,
        source: std::io::Error,
    },
}

/// Reads and validates the config file.
pub fn load_config(opts: &Options) -> Result<(Vec<u8>, Config), StartError> {
    let path = opts.config_file.display().to_string();
    let bytes = std::fs::read(&opts.config_file).map_err(|source| StartError::Read {
        path: path.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let config =
        Config::parse(&text, &opts.resource_prefix).map_err(|source| StartError::Config { path, source })?;
    Ok((bytes, config))
}

/// Every candidate device on the host, with the sysfs facts `config` needs.
pub fn discover_devices(
    sysfs: &SysfsRoot,
    config: &Config,
) -> Result<Vec<crate::device::Device>, StartError> {
    let found = sriov_host::discover_with(sysfs, &discover_options())?;
    for w in &found.warnings {
        tracing::warn!("discovery: {w:?}");
    }
    let mut devices = from_host::devices(&found.devices);
    drop(found);
    sysfs_extra::enrich(sysfs, &mut devices, sysfs_extra::Needs::of(config));
    Ok(devices)
}

/// Discovers the host and builds the pools of `config`.
pub fn build(opts: &Options, config: &Config) -> Result<Vec<Pool>, StartError> {
    let devices = discover_devices(&opts.sysfs, config)?;
    let facts = HostFacts {
        vhost_net: opts.dev_root.join("vhost-net").exists(),
    };
    let pools = build_pools_owned(config, devices, facts);
    // Discovery's short-lived strings sit between the long-lived ones: give their pages back.
    crate::memory::release_freed_memory();
    Ok(pools)
}

struct Served {
    running: Running,
    /// `kubelet.sock` identity we registered with (deprecated mode).
    registered: Option<(u64, u64, i64, i64)>,
    last_error: Option<String>,
    /// When the last registration failed: retried after [`RETRY`], not on every check.
    failed_at: Option<tokio::time::Instant>,
}

/// Wait before retrying a refused or failed registration.
const RETRY: Duration = Duration::from_secs(1);

struct Manager {
    opts: Options,
    links: Arc<dyn LinkSource>,
    paths: Arc<HostPaths>,
    watcher_mode: bool,
    served: BTreeMap<String, Served>,
    /// The config in force (the last one that loaded).
    config: Config,
}

/// Runs until `shutdown` completes. Fails only at start (bad config, no PCI bus, socket bind).
pub async fn run(
    opts: Options,
    links: Arc<dyn LinkSource>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let (mut config_bytes, config) = load_config(&opts)?;
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let pools = build(&opts, &config)?;
    let watcher_mode = opts.plugins_registry.is_dir();
    let paths = Arc::new(HostPaths {
        dev_root: opts.dev_root.clone(),
        device_info_dir: opts.device_info_dir.clone(),
    });
    let mut m = Manager {
        opts,
        links,
        paths,
        watcher_mode,
        served: BTreeMap::new(),
        config,
    };
    tracing::info!(
        mode = if watcher_mode {
            "plugin-watcher"
        } else {
            "kubelet.sock"
        },
        "starting"
    );
    m.apply(pools, true)?;
    m.check_kubelet().await;
    let wake = Arc::new(tokio::sync::Notify::new());
    m.links.subscribe(wake.clone());

    let mut health_tick = tokio::time::interval(m.opts.health_interval);
    let mut kubelet_tick = tokio::time::interval(m.opts.kubelet_check_interval);
    let mut config_tick = tokio::time::interval(m.opts.config_check_interval);
    let mut rediscover_tick =
        tokio::time::interval(m.opts.rediscover_interval.unwrap_or(Duration::from_secs(3600)));
    rediscover_tick.reset();
    for t in [
        &mut health_tick,
        &mut kubelet_tick,
        &mut config_tick,
        &mut rediscover_tick,
    ] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = health_tick.tick() => m.update_health(),
            _ = wake.notified() => m.update_health(),
            _ = kubelet_tick.tick() => m.check_kubelet().await,
            _ = rediscover_tick.tick(), if m.opts.rediscover_interval.is_some() => {
                m.rediscover();
                m.check_kubelet().await;
            }
            _ = config_tick.tick() => {
                if let Some(bytes) = m.config_changed(&config_bytes) {
                    config_bytes = bytes;
                    m.reload();
                    m.check_kubelet().await;
                }
            }
        }
    }
    m.stop_all().await;
    tracing::info!("stopped");
    Ok(())
}

impl Manager {
    fn socket_dir(&self) -> PathBuf {
        if self.watcher_mode {
            self.opts.plugins_registry.clone()
        } else {
            self.opts.plugin_dir.clone()
        }
    }

    fn watcher_info(&self, pool: &Pool) -> Option<WatcherInfo> {
        self.watcher_mode.then(|| WatcherInfo {
            resource_name: pool.resource.full_name(),
            endpoint: self.socket_dir().join(pool.resource.socket_name()),
        })
    }

    fn state_of(&self, pool: Pool) -> PoolState {
        let health = health::evaluate(pool.devices.iter().map(|d| &d.device), self.links.as_ref());
        PoolState::new(pool, health)
    }

    /// Starts, updates and stops servers so that exactly the given pools are served.
    fn apply(&mut self, pools: Vec<Pool>, announce: bool) -> Result<(), StartError> {
        let wanted: Vec<String> = pools.iter().map(|p| p.resource.full_name()).collect();
        let gone: Vec<String> = self
            .served
            .keys()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        for name in gone {
            if let Some(s) = self.served.remove(&name) {
                tracing::info!(resource = %name, "resource removed from the config: stopping");
                self.clean_devinfo(&name);
                tokio::spawn(s.running.stop());
            }
        }
        for pool in pools {
            let name = pool.resource.full_name();
            let count = pool.devices.len();
            if let Some(s) = self.served.get(&name) {
                let unchanged = *s.running.tx.borrow().pool == pool;
                if !unchanged {
                    let state = self.state_of(pool);
                    s.running.tx.send_replace(state);
                    tracing::info!(resource = %name, devices = count, "pool rebuilt");
                }
                continue;
            }
            if count == 0 {
                if announce {
                    tracing::warn!(resource = %name, "no devices in the pool: not advertised");
                }
                continue;
            }
            let socket = self.socket_dir().join(pool.resource.socket_name());
            let watcher = self.watcher_info(&pool);
            let state = self.state_of(pool);
            self.clean_devinfo(&name);
            let running = Running::start(&socket, state, self.paths.clone(), watcher).map_err(|source| {
                StartError::Bind {
                    resource: name.clone(),
                    socket: socket.display().to_string(),
                    source,
                }
            })?;
            tracing::info!(resource = %name, devices = count, socket = %socket.display(), "serving");
            self.served.insert(
                name,
                Served {
                    running,
                    registered: None,
                    last_error: None,
                    failed_at: None,
                },
            );
        }
        Ok(())
    }

    fn clean_devinfo(&self, name: &str) {
        if let Some(dir) = &self.opts.device_info_dir {
            devinfo::clean(dir, name);
        }
    }

    fn update_health(&mut self) {
        for s in self.served.values() {
            let tx = &s.running.tx;
            let current = tx.borrow().clone();
            let health = health::evaluate(
                current.pool.devices.iter().map(|d| &d.device),
                self.links.as_ref(),
            );
            if *current.health != health {
                let down = health.iter().filter(|h| !**h).count();
                tracing::info!(resource = %current.pool.resource.full_name(), unhealthy = down, "device health changed");
                tx.send_replace(PoolState {
                    pool: current.pool.clone(),
                    health: Arc::new(health),
                });
            }
        }
    }

    /// Re-binds vanished sockets and (re-)registers where needed.
    async fn check_kubelet(&mut self) {
        let kubelet_sock = self.opts.plugin_dir.join("kubelet.sock");
        let kubelet_id = kubelet::identity(&kubelet_sock);
        let names: Vec<String> = self.served.keys().cloned().collect();
        for name in names {
            let Some(mut s) = self.served.remove(&name) else {
                continue;
            };
            if !s.running.socket.exists() {
                tracing::warn!(resource = %name, socket = %s.running.socket.display(), "socket removed (kubelet restart?): serving again");
                let pool = s.running.tx.borrow().pool.clone();
                let watcher = self.watcher_info(&pool);
                match s.running.restart(self.paths.clone(), watcher) {
                    Ok(r) => {
                        s = Served {
                            running: r,
                            registered: None,
                            last_error: None,
                            failed_at: None,
                        }
                    }
                    Err(e) => {
                        tracing::error!(resource = %name, "cannot serve again: {e}");
                        continue;
                    }
                }
            }
            let backing_off = s.failed_at.is_some_and(|t| t.elapsed() < RETRY);
            if !self.watcher_mode && kubelet_id.is_some() && s.registered != kubelet_id && !backing_off {
                let endpoint = s
                    .running
                    .socket
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match kubelet::register(&kubelet_sock, &endpoint, &name, self.opts.register_timeout).await {
                    Ok(()) => {
                        tracing::info!(resource = %name, endpoint = %endpoint, "registered with the kubelet");
                        s.registered = kubelet_id;
                        s.last_error = None;
                        s.failed_at = None;
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        if s.last_error.as_deref() != Some(msg.as_str()) {
                            tracing::error!(resource = %name, "registration failed (retrying): {msg}");
                        }
                        s.last_error = Some(msg);
                        s.failed_at = Some(tokio::time::Instant::now());
                    }
                }
            }
            self.served.insert(name, s);
        }
    }

    fn config_changed(&self, last: &[u8]) -> Option<Vec<u8>> {
        let now = std::fs::read(&self.opts.config_file).ok()?;
        (now != last).then_some(now)
    }

    fn reload(&mut self) {
        let result = load_config(&self.opts).and_then(|(_, c)| build(&self.opts, &c).map(|p| (c, p)));
        match result {
            Ok((config, pools)) => {
                for w in &config.warnings {
                    tracing::warn!("{w}");
                }
                tracing::info!(
                    resources = config.resources.len(),
                    "config changed: pools rebuilt"
                );
                self.config = config;
                if let Err(e) = self.apply(pools, true) {
                    tracing::error!("reload: {e}");
                }
            }
            Err(e) => tracing::error!("config changed but cannot be used, keeping the running pools: {e}"),
        }
    }

    /// Rebuilds the pools of the config in force from a fresh discovery; only changed pools are
    /// re-sent.
    fn rediscover(&mut self) {
        match build(&self.opts, &self.config) {
            Ok(pools) => {
                if let Err(e) = self.apply(pools, false) {
                    tracing::error!("rediscovery: {e}");
                }
            }
            Err(e) => tracing::error!("rediscovery failed, keeping the running pools: {e}"),
        }
    }

    async fn stop_all(&mut self) {
        let all = std::mem::take(&mut self.served);
        for (name, s) in all {
            self.clean_devinfo(&name);
            s.running.stop().await;
        }
    }
}

/// sriov-host reads VFs on several threads by default. For a long-running DaemonSet on a small
/// CPU budget that costs more than it saves (measured with 2,048 VFs on 2 vCPUs: 9.7 → 7.5 MiB
/// resident, 213 → 139 ms to the first Register), so sriovdp discovers on one thread unless the
/// admin sets `SRIOV_DISCOVER_THREADS`.
pub fn discover_options() -> sriov_host::DiscoverOptions {
    if std::env::var_os("SRIOV_DISCOVER_THREADS").is_some() {
        sriov_host::DiscoverOptions::default()
    } else {
        sriov_host::DiscoverOptions {
            reader_threads: 1,
            ..sriov_host::DiscoverOptions::default()
        }
    }
}
