//! sriovdp judged by gRPC clients we did not write: Python grpcio (the gRPC C core), connecting
//! with the target `unix:<socket path>`, and grpc-go dialing the bare socket path with a unix
//! dialer exactly as the kubelet does (tools/grpc-go-client); both send the socket PATH as the
//! HTTP/2 `:authority`. Every RPC of every socket sriovdp
//! serves is called, in both registration modes; a tonic client (which sends `localhost`) must
//! keep working on the same socket. Without the `:authority` adapter (src/authority.rs) h2 resets
//! every stream with PROTOCOL_ERROR and these tests fail.
//!
//! Both clients are installed by scripts/deps/40-grpc-clients.sh (`.tools/grpcio-venv`,
//! `.tools/bin/grpc-go-client`); under `CI=true` a missing one fails the tests, elsewhere they are
//! skipped with a message.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{FakeKubelet, eventually, plugin};
use sriov_device_plugin::health::SysfsLinks;
use sriov_device_plugin::manager::{self, Options};
use sriov_device_plugin::pluginregistration as pr;
use sriov_device_plugin::v1beta1 as api;
use sriov_host::fixture::{Fixture, FixtureHost, scratch_base};
use tokio_stream::StreamExt;
use tonic::transport::Endpoint;

mod grpcio_client {
    include!("grpcio/clients.rs");
}

const CONFIG: &str = r#"{"resourceList":[{"resourceName":"vf","selectors":{"drivers":["igbvf"]}}]}"#;

struct Serving {
    sock: PathBuf,
    kubelet: FakeKubelet,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), manager::StartError>>,
    _fx: Fixture,
}

/// Runs sriovdp in-process on a fake igb host (4 VFs), in plugin-watcher mode when `watcher`.
async fn serve(tmp: &Path, watcher: bool) -> Serving {
    let fx = FixtureHost::new(tmp.join("host"))
        .igb_82576(4)
        .build()
        .expect("fixture");
    let (dp, reg_dir) = (tmp.join("device-plugins"), tmp.join("plugins_registry"));
    std::fs::create_dir_all(&dp).expect("mkdir");
    if watcher {
        std::fs::create_dir_all(&reg_dir).expect("mkdir");
    }
    let config = tmp.join("c.json");
    std::fs::write(&config, CONFIG).expect("config");
    let kubelet = FakeKubelet::start(&dp);
    let mut opts = Options::new(config, "intel.com".into());
    opts.sysfs = fx.root().clone();
    opts.dev_root = fx.dev().to_path_buf();
    opts.plugin_dir = dp.clone();
    opts.plugins_registry = reg_dir.clone();
    opts.device_info_dir = None;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let links = Arc::new(SysfsLinks::polled(fx.sys()));
    let task = tokio::spawn(manager::run(opts, links, async {
        let _ = rx.await;
    }));
    let sock = if watcher { reg_dir } else { dp }.join("intel.com_vf.sock");
    assert!(eventually(5, || sock.exists()).await, "socket {}", sock.display());
    Serving {
        sock,
        kubelet,
        stop,
        task,
        _fx: fx,
    }
}

fn check_all(out: &serde_json::Value, sock: &Path, watcher: bool) {
    assert_eq!(
        out["options"],
        serde_json::json!({"pre_start_required": false, "get_preferred_allocation_available": true})
    );
    let devices = out["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 4, "{out}");
    let first = devices.iter().filter_map(|d| d[0].as_str()).min().expect("an id");
    assert_eq!(out["preferred"], serde_json::json!([[first]]));
    assert_eq!(
        out["allocate_envs"][0]["PCIDEVICE_INTEL_COM_VF"],
        serde_json::json!(first),
        "{out}"
    );
    assert_eq!(out["pre_start"], "ok");
    if watcher {
        assert_eq!(
            out["info"],
            serde_json::json!({"type": "DevicePlugin", "name": "intel.com/vf",
                "endpoint": sock.display().to_string(), "supported_versions": ["v1alpha1", "v1beta1"]})
        );
        assert_eq!(out["notify"], "ok");
    }
}

/// A tonic client (sends `localhost` as `:authority`) on the same socket.
async fn tonic_client_works(sock: &Path, watcher: bool) {
    let mut c = plugin(sock).await;
    let o = c
        .get_device_plugin_options(api::Empty {})
        .await
        .expect("options")
        .into_inner();
    assert!(o.get_preferred_allocation_available);
    let mut s = c.list_and_watch(api::Empty {}).await.expect("law").into_inner();
    let first = s.next().await.expect("a message").expect("ok");
    assert_eq!(first.devices.len(), 4);
    if watcher {
        let ch = Endpoint::from_shared(format!("unix://{}", sock.display()))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let info = pr::registration_client::RegistrationClient::new(ch)
            .get_info(pr::InfoRequest {})
            .await
            .expect("GetInfo")
            .into_inner();
        assert_eq!(info.name, "intel.com/vf");
    }
}

async fn every_rpc(watcher: bool) {
    let (Some(py), Some(go)) = (grpcio_client::python(), grpcio_client::grpc_go()) else {
        return;
    };
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let Serving {
        sock,
        mut kubelet,
        stop,
        task,
        _fx,
    } = serve(tmp.path(), watcher).await;
    if !watcher {
        let reg = kubelet.next(10).await;
        assert_eq!(reg.resource_name, "intel.com/vf");
    }
    let extra: &[&str] = if watcher { &["--watcher"] } else { &[] };
    let out = grpcio_client::run(&py, &tmp.path().join("py"), &sock, "all", extra).await;
    check_all(&out, &sock, watcher);
    let out = grpcio_client::run_go(&go, &sock, watcher).await;
    check_all(&out, &sock, watcher);
    tonic_client_works(&sock, watcher).await;
    stop.send(()).expect("stop");
    task.await.expect("join").expect("ok");
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_calls_every_rpc_in_plugin_watcher_mode() {
    every_rpc(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_calls_every_rpc_in_kubelet_sock_mode() {
    every_rpc(false).await;
}
