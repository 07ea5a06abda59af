//! Plugin-watcher mode (upstream's default when `/var/lib/kubelet/plugins_registry` exists): the
//! socket lives in the registry dir and serves `pluginregistration.Registration` next to
//! `DevicePlugin`; nothing is sent to `kubelet.sock`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeKubelet, plugin};
use sriov_device_plugin::health::SysfsLinks;
use sriov_device_plugin::manager::{self, Options};
use sriov_device_plugin::pluginregistration as pr;
use sriov_device_plugin::v1beta1 as api;
use sriov_host::fixture::{FixtureHost, scratch_base};
use tonic::transport::Endpoint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_get_info_in_the_registry_dir() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let fx = FixtureHost::new(tmp.path().join("host"))
        .igb_82576(2)
        .build()
        .expect("fixture");
    let (dp, reg_dir) = (
        tmp.path().join("device-plugins"),
        tmp.path().join("plugins_registry"),
    );
    std::fs::create_dir_all(&dp).expect("mkdir");
    std::fs::create_dir_all(&reg_dir).expect("mkdir");
    let config = tmp.path().join("c.json");
    std::fs::write(
        &config,
        r#"{"resourceList":[{"resourceName":"vf","selectors":{}}]}"#,
    )
    .expect("w");
    let mut kubelet = FakeKubelet::start(&dp);
    let mut opts = Options::new(config, "intel.com".into());
    opts.sysfs = fx.root().clone();
    opts.plugin_dir = dp.clone();
    opts.plugins_registry = reg_dir.clone();
    opts.device_info_dir = None;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let links = Arc::new(SysfsLinks::polled(fx.sys()));
    let task = tokio::spawn(manager::run(opts, links, async {
        let _ = rx.await;
    }));

    let sock = reg_dir.join("intel.com_vf.sock");
    assert!(
        common::eventually(5, || sock.exists()).await,
        "socket in the registry dir"
    );
    let ch = Endpoint::from_shared(format!("unix://{}", sock.display()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut reg = pr::registration_client::RegistrationClient::new(ch);
    let info = reg
        .get_info(pr::InfoRequest {})
        .await
        .expect("GetInfo")
        .into_inner();
    assert_eq!(info.r#type, "DevicePlugin");
    assert_eq!(info.name, "intel.com/vf");
    assert_eq!(info.endpoint, sock.display().to_string());
    assert_eq!(info.supported_versions, ["v1alpha1", "v1beta1"]);
    reg.notify_registration_status(pr::RegistrationStatus {
        plugin_registered: false,
        error: "test".into(),
    })
    .await
    .expect("status");
    // Still serving after a refused registration (upstream stops for good).
    let mut c = plugin(&sock).await;
    let o = c
        .get_device_plugin_options(api::Empty {})
        .await
        .expect("options")
        .into_inner();
    assert!(o.get_preferred_allocation_available);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        kubelet.registrations.try_recv().is_err(),
        "no Register on kubelet.sock in watcher mode"
    );

    stop.send(()).expect("stop");
    task.await.expect("join").expect("ok");
    assert!(!sock.exists());
    kubelet.stop().await;
}
