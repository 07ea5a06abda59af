//! A fake kubelet built from the real protocol: a `v1beta1.Registration` gRPC server on a temp
//! unix socket that records every `RegisterRequest`, and clients for the plugin sockets.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use sriov_device_plugin::v1beta1 as api;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

struct Recorder(mpsc::UnboundedSender<api::RegisterRequest>);

#[tonic::async_trait]
impl api::registration_server::Registration for Recorder {
    async fn register(&self, req: Request<api::RegisterRequest>) -> Result<Response<api::Empty>, Status> {
        let _ = self.0.send(req.into_inner());
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
    /// Serves `Registration` on `<dir>/kubelet.sock`.
    pub fn start(dir: &Path) -> FakeKubelet {
        let sock = dir.join("kubelet.sock");
        let _ = std::fs::remove_file(&sock);
        let listener = tokio::net::UnixListener::bind(&sock).expect("bind kubelet.sock");
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(api::registration_server::RegistrationServer::new(Recorder(tx)))
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::UnixListenerStream::new(listener),
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await
                .expect("kubelet server");
        });
        FakeKubelet {
            dir: dir.to_path_buf(),
            registrations: rx,
            stop: Some(stop_tx),
            task,
        }
    }

    /// Waits for the next registration (panics after `secs`).
    pub async fn next(&mut self, secs: u64) -> api::RegisterRequest {
        tokio::time::timeout(Duration::from_secs(secs), self.registrations.recv())
            .await
            .expect("a registration in time")
            .expect("kubelet channel open")
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
pub async fn plugin(socket: &Path) -> api::device_plugin_client::DevicePluginClient<Channel> {
    let ep = Endpoint::from_shared(format!("unix://{}", socket.display())).expect("uri");
    let ch = ep
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    api::device_plugin_client::DevicePluginClient::new(ch)
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
