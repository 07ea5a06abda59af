//! The gRPC side of one resource: the kubelet's `DevicePlugin` service (and, in plugin-watcher
//! mode, `pluginregistration.Registration`) on a unix socket.
//!
//! The pool and its health live in a `tokio::sync::watch` channel ([`PoolState`]); the manager
//! publishes a new state when health or the config changes, and every open `ListAndWatch` stream
//! sends the full device list again. Dropping the sender ends the streams.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::allocate::{self, DevNodes};
use crate::authority_stream::AuthorityStream;
use crate::config::DeviceType;
use crate::devinfo;
use crate::pluginregistration as pr;
use crate::pool::Pool;
use crate::preferred::preferred;
use crate::v1beta1 as api;

pub const HEALTHY: &str = "Healthy";
pub const UNHEALTHY: &str = "Unhealthy";

/// A pool and the health of each of its devices (same order).
#[derive(Clone, Debug)]
pub struct PoolState {
    pub pool: Arc<Pool>,
    pub health: Arc<Vec<bool>>,
}

impl PoolState {
    pub fn new(pool: Pool, health: Vec<bool>) -> Self {
        PoolState {
            pool: Arc::new(pool),
            health: Arc::new(health),
        }
    }

    /// The ListAndWatch message: every device with health and (unless excluded) its NUMA node.
    pub fn response(&self) -> api::ListAndWatchResponse {
        let exclude = self.pool.resource.exclude_topology;
        let mut devices: Vec<api::Device> =
            self.pool
                .devices
                .iter()
                .enumerate()
                .map(|(i, pd)| api::Device {
                    id: pd.device.id.clone(),
                    health: if self.health.get(i).copied().unwrap_or(true) {
                        HEALTHY
                    } else {
                        UNHEALTHY
                    }
                    .to_string(),
                    topology: pd.device.numa_node.filter(|n| *n >= 0 && !exclude).map(|n| {
                        api::TopologyInfo {
                            nodes: vec![api::NumaNode { id: n }],
                        }
                    }),
                })
                .collect();
        devices.sort_by(|a, b| a.id.cmp(&b.id));
        api::ListAndWatchResponse { devices }
    }
}

/// Host paths the Allocate handler checks.
#[derive(Clone, Debug)]
pub struct HostPaths {
    /// Device-node root (`/dev`): `vhost-net` and `net/tun` are looked up under it.
    pub dev_root: PathBuf,
    /// Device-info directory; `None` disables the files.
    pub device_info_dir: Option<PathBuf>,
}

impl HostPaths {
    fn nodes(&self) -> DevNodes {
        DevNodes {
            vhost_net: self.dev_root.join("vhost-net").exists(),
            tun: self.dev_root.join("net/tun").exists(),
        }
    }
}

/// `DevicePlugin` for one resource.
#[derive(Clone)]
pub struct PluginService {
    pub state: watch::Receiver<PoolState>,
    pub paths: Arc<HostPaths>,
}

pub const OPTIONS: api::DevicePluginOptions = api::DevicePluginOptions {
    pre_start_required: false,
    get_preferred_allocation_available: true,
};

/// Held by each ListAndWatch stream: when the kubelet closes it, the freed message buffers are
/// given back to the kernel (20 streams of 2,040 devices opened at once and closed left sriovdp
/// 1.5 MiB larger for good without it).
struct ReleaseOnClose;

impl Drop for ReleaseOnClose {
    fn drop(&mut self) {
        crate::memory::release_soon();
    }
}

type LawStream = Pin<Box<dyn Stream<Item = Result<api::ListAndWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl api::device_plugin_server::DevicePlugin for PluginService {
    async fn get_device_plugin_options(
        &self,
        _: Request<api::Empty>,
    ) -> Result<Response<api::DevicePluginOptions>, Status> {
        Ok(Response::new(OPTIONS))
    }

    type ListAndWatchStream = LawStream;

    async fn list_and_watch(&self, _: Request<api::Empty>) -> Result<Response<LawStream>, Status> {
        let rx = self.state.clone();
        let state = (rx, true, ReleaseOnClose);
        let stream = futures::stream::unfold(state, |(mut rx, first, guard)| async move {
            if !first {
                rx.changed().await.ok()?;
            }
            let msg = rx.borrow_and_update().response();
            Some((Ok(msg), (rx, false, guard)))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_preferred_allocation(
        &self,
        req: Request<api::PreferredAllocationRequest>,
    ) -> Result<Response<api::PreferredAllocationResponse>, Status> {
        let state = self.state.borrow().clone();
        let container_responses = req
            .into_inner()
            .container_requests
            .iter()
            .map(|c| api::ContainerPreferredAllocationResponse {
                device_i_ds: preferred(
                    &state.pool,
                    &c.available_device_i_ds,
                    &c.must_include_device_i_ds,
                    usize::try_from(c.allocation_size).unwrap_or(0),
                ),
            })
            .collect();
        Ok(Response::new(api::PreferredAllocationResponse {
            container_responses,
        }))
    }

    async fn allocate(
        &self,
        req: Request<api::AllocateRequest>,
    ) -> Result<Response<api::AllocateResponse>, Status> {
        let state = self.state.borrow().clone();
        let pool = &state.pool;
        let nodes = self.paths.nodes();
        let mut container_responses = Vec::new();
        for c in &req.get_ref().container_requests {
            let a = allocate::allocate(pool, &c.devices_ids, nodes)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            if pool.resource.device_type == DeviceType::NetDevice
                && let Some(dir) = &self.paths.device_info_dir
            {
                for id in &c.devices_ids {
                    if let Some(pd) = pool.get(id)
                        && let Err(e) = devinfo::write(dir, &pool.resource.full_name(), pd)
                    {
                        tracing::warn!(resource = %pool.resource.full_name(), device = %id, dir = %dir.display(), "cannot write device-info file: {e}");
                    }
                }
            }
            tracing::info!(resource = %pool.resource.full_name(), devices = ?c.devices_ids, "allocated");
            container_responses.push(api::ContainerAllocateResponse {
                envs: a.envs.into_iter().collect(),
                mounts: Vec::new(),
                devices: a
                    .specs
                    .into_iter()
                    .map(|s| api::DeviceSpec {
                        container_path: s.container_path,
                        host_path: s.host_path,
                        permissions: s.permissions,
                    })
                    .collect(),
                annotations: Default::default(),
                cdi_devices: Vec::new(),
            });
        }
        Ok(Response::new(api::AllocateResponse { container_responses }))
    }

    async fn pre_start_container(
        &self,
        _: Request<api::PreStartContainerRequest>,
    ) -> Result<Response<api::PreStartContainerResponse>, Status> {
        Ok(Response::new(api::PreStartContainerResponse {}))
    }
}

/// `pluginregistration.Registration` for plugin-watcher mode.
#[derive(Clone, Debug)]
pub struct WatcherInfo {
    pub resource_name: String,
    pub endpoint: PathBuf,
}

#[tonic::async_trait]
impl pr::registration_server::Registration for WatcherInfo {
    async fn get_info(&self, _: Request<pr::InfoRequest>) -> Result<Response<pr::PluginInfo>, Status> {
        Ok(Response::new(pr::PluginInfo {
            r#type: "DevicePlugin".into(),
            name: self.resource_name.clone(),
            endpoint: self.endpoint.to_string_lossy().into_owned(),
            supported_versions: vec!["v1alpha1".into(), "v1beta1".into()],
        }))
    }

    async fn notify_registration_status(
        &self,
        req: Request<pr::RegistrationStatus>,
    ) -> Result<Response<pr::RegistrationStatusResponse>, Status> {
        let s = req.into_inner();
        if s.plugin_registered {
            tracing::info!(resource = %self.resource_name, "registered with the kubelet (plugin watcher)");
        } else {
            // Upstream stops serving here for good; we keep serving so the kubelet can retry.
            tracing::error!(resource = %self.resource_name, error = %s.error, "the kubelet refused the registration");
        }
        Ok(Response::new(pr::RegistrationStatusResponse {}))
    }
}

/// A running server for one resource.
pub struct Running {
    pub socket: PathBuf,
    pub tx: watch::Sender<PoolState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds `socket` (removing a stale file first) and serves.
    pub fn start(
        socket: &Path,
        state: PoolState,
        paths: Arc<HostPaths>,
        watcher: Option<WatcherInfo>,
    ) -> std::io::Result<Running> {
        let (tx, rx) = watch::channel(state);
        Self::start_with(socket, tx, rx, paths, watcher)
    }

    /// Re-binds a new server on the same channel (after the kubelet removed our socket).
    pub fn restart(self, paths: Arc<HostPaths>, watcher: Option<WatcherInfo>) -> std::io::Result<Running> {
        let Running {
            socket,
            tx,
            shutdown,
            task,
        } = self;
        if let Some(s) = shutdown {
            let _ = s.send(());
        }
        task.abort();
        let rx = tx.subscribe();
        Self::start_with(&socket, tx, rx, paths, watcher)
    }

    fn start_with(
        socket: &Path,
        tx: watch::Sender<PoolState>,
        rx: watch::Receiver<PoolState>,
        paths: Arc<HostPaths>,
        watcher: Option<WatcherInfo>,
    ) -> std::io::Result<Running> {
        match std::fs::remove_file(socket) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = tokio::net::UnixListener::bind(socket)?;
        // Every connection goes through the `:authority` adapter: the kubelet (and grpcio,
        // grpc-java) send our socket's path as `:authority`, which h2 refuses (see authority.rs).
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener)
            .map(|conn| conn.map(AuthorityStream::new));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let svc = api::device_plugin_server::DevicePluginServer::new(PluginService { state: rx, paths });
        let router = tonic::transport::Server::builder()
            .add_service(svc)
            .add_optional_service(watcher.map(pr::registration_server::RegistrationServer::new));
        let name = socket.display().to_string();
        let task = tokio::spawn(async move {
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop_rx.await;
                })
                .await
            {
                tracing::error!(socket = %name, "gRPC server failed: {e}");
            }
        });
        Ok(Running {
            socket: socket.to_path_buf(),
            tx,
            shutdown: Some(stop_tx),
            task,
        })
    }

    /// Stops serving and removes the socket file.
    pub async fn stop(self) {
        let Running {
            socket,
            tx,
            shutdown,
            task,
        } = self;
        drop(tx); // ends every ListAndWatch stream
        if let Some(s) = shutdown {
            let _ = s.send(());
        }
        let abort = task.abort_handle();
        if tokio::time::timeout(std::time::Duration::from_millis(500), task)
            .await
            .is_err()
        {
            abort.abort();
        }
        let _ = std::fs::remove_file(&socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::pool::{HostFacts, build_pools};
    use crate::testutil::{vf, with};

    fn state(exclude: bool) -> PoolState {
        let text = format!(
            r#"{{"resourceList":[{{"resourceName":"r","excludeTopology":{exclude},"selectors":{{}}}}]}}"#
        );
        let c = Config::parse(&text, "intel.com").expect("valid");
        let devs = vec![
            with(vf("0000:01:10.2", "eth0", "0000:01:00.0", 1), |d| {
                d.numa_node = Some(1)
            }),
            with(vf("0000:01:10.0", "eth0", "0000:01:00.0", 0), |d| {
                d.numa_node = None
            }),
        ];
        let pool = build_pools(&c, &devs, HostFacts::default()).remove(0);
        PoolState::new(pool, vec![true, false])
    }

    #[test]
    fn list_and_watch_message() {
        let m = state(false).response();
        let got: Vec<_> = m
            .devices
            .iter()
            .map(|d| (d.id.as_str(), d.health.as_str(), d.topology.clone()))
            .collect();
        let numa1 = Some(api::TopologyInfo {
            nodes: vec![api::NumaNode { id: 1 }],
        });
        assert_eq!(
            got,
            vec![
                ("0000:01:10.0", "Healthy", None),
                ("0000:01:10.2", "Unhealthy", numa1)
            ]
        );
        let m = state(true).response();
        assert!(
            m.devices.iter().all(|d| d.topology.is_none()),
            "excludeTopology drops the NUMA node"
        );
    }
}
