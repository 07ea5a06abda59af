//! A fake kubelet built from the real protocol, for tests, benchmarks and the lab demo
//! (`sriovdp-fake-kubelet`): a `v1beta1.Registration` gRPC server on `<dir>/kubelet.sock` that
//! records every `RegisterRequest`, and a client for a plugin socket.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::v1beta1 as api;

struct Recorder {
    tx: mpsc::UnboundedSender<api::RegisterRequest>,
    /// How many more registrations to refuse (a kubelet not ready yet, or refusing a name).
    refuse: std::sync::atomic::AtomicUsize,
}

#[tonic::async_trait]
impl api::registration_server::Registration for Recorder {
    async fn register(&self, req: Request<api::RegisterRequest>) -> Result<Response<api::Empty>, Status> {
        use std::sync::atomic::Ordering;
        let _ = self.tx.send(req.into_inner());
        let refused = self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refused {
            return Err(Status::unavailable("fake kubelet: refusing this registration"));
        }
        Ok(Response::new(api::Empty {}))
    }
}

/// A running fake kubelet.
pub struct FakeKubelet {
    pub dir: PathBuf,
    pub registrations: mpsc::UnboundedReceiver<api::RegisterRequest>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKubelet {
    /// Serves `Registration` on `<dir>/kubelet.sock` (replacing a stale file).
    pub fn try_start(dir: &Path) -> io::Result<FakeKubelet> {
        Self::try_start_refusing(dir, 0)
    }

    /// Like [`try_start`](Self::try_start), refusing (`UNAVAILABLE`) the first `refuse`
    /// registrations; every attempt is still recorded.
    pub fn try_start_refusing(dir: &Path, refuse: usize) -> io::Result<FakeKubelet> {
        let sock = dir.join("kubelet.sock");
        match std::fs::remove_file(&sock) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(&sock)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let task = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(api::registration_server::RegistrationServer::new(Recorder {
                    tx,
                    refuse: refuse.into(),
                }))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!("fake kubelet: {e}");
            }
        });
        Ok(FakeKubelet {
            dir: dir.to_path_buf(),
            registrations: rx,
            stop: Some(stop_tx),
            task,
        })
    }

    /// [`try_start`](Self::try_start) for tests.
    ///
    /// # Panics
    /// When the socket cannot be bound.
    pub fn start(dir: &Path) -> FakeKubelet {
        Self::try_start(dir).unwrap_or_else(|e| panic!("fake kubelet on {}: {e}", dir.display()))
    }

    /// The next registration, or `None` after `timeout`.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<api::RegisterRequest> {
        tokio::time::timeout(timeout, self.registrations.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next registration (tests).
    ///
    /// # Panics
    /// When none arrives within `secs`.
    pub async fn next(&mut self, secs: u64) -> api::RegisterRequest {
        self.next_within(Duration::from_secs(secs))
            .await
            .unwrap_or_else(|| panic!("no registration within {secs} s"))
    }

    /// Stops serving and removes kubelet.sock.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
        let _ = std::fs::remove_file(self.dir.join("kubelet.sock"));
    }
}

/// A `DevicePlugin` client on a plugin socket.
pub async fn try_plugin(
    socket: &Path,
) -> Result<api::device_plugin_client::DevicePluginClient<Channel>, tonic::transport::Error> {
    let ep = Endpoint::from_shared(format!("unix://{}", socket.display()))?;
    Ok(api::device_plugin_client::DevicePluginClient::new(
        ep.connect().await?,
    ))
}

/// [`try_plugin`] for tests.
///
/// # Panics
/// When the socket cannot be reached.
pub async fn plugin(socket: &Path) -> api::device_plugin_client::DevicePluginClient<Channel> {
    try_plugin(socket)
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()))
}

/// Polls `cond` every 10 ms for up to `secs`.
pub async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
