//! The device path: a real kubelet (v1.36.2 on its fake CRI, `sriov-testcluster`) gives a pod
//! two VFs from our `sriovdp` (on a sysfs fixture of an Intel 82576, as
//! crates/device-plugin/tests/real_kubelet.rs); the meta plugin asks the kubelet's PodResources
//! API which devices the pod holds and hands the next unused one to each network naming the
//! resource, as Multus does: `deviceID`/`pciBusID` in the config, `deviceID` and
//! `CNIDeviceInfoFile` as runtime config, and the device plugin's device-info in network-status.
//!
//! The delegate for the VF network is a recording script, not a reference plugin: no reference
//! plugin reports the `deviceID` it was given (`host-device` would move the host's real PCI
//! netdev, which a fixture cannot provide), so the recorder writes the config it got on stdin
//! and answers with a minimal result. The default network is the real `bridge` plugin.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};
use sriov_device_plugin::{pod_resources, podresources as pr};
use sriov_host::fixture::{FixtureHost, scratch_base};
use sriov_meta_plugin::status::{NETWORK_STATUS_ANNOTATION, NetworkStatus};
use sriov_testcluster::{Cluster, require};

const RESOURCE: &str = "intel.com/vf";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sriovdp` next to the `multus` binary (`cargo test --workspace` builds it; else it is built).
fn sriovdp() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_multus")).with_file_name("sriovdp");
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "sriov-device-plugin", "--bin", "sriovdp"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok && p.exists(), "cannot build sriovdp at {}", p.display());
    }
    p
}

/// The recording delegate: writes `<dir>/<COMMAND>-<IFNAME>.json` (its stdin) and appends
/// `<COMMAND> <IFNAME>` to `<dir>/order`; answers ADD with one interface in the sandbox.
fn recorder(bin: &Path, record: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).unwrap();
    std::fs::create_dir_all(record).unwrap();
    let script = format!(
        r#"#!/bin/sh
cat > "{dir}/$CNI_COMMAND-$CNI_IFNAME.json"
echo "$CNI_COMMAND $CNI_IFNAME" >> "{dir}/order"
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{{"cniVersion":"1.0.0","interfaces":[{{"name":"%s","mac":"02:00:00:00:00:aa","sandbox":"%s"}}]}}' "$CNI_IFNAME" "$CNI_NETNS"
fi
"#,
        dir = record.display()
    );
    let p = bin.join("recorder");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The devices of [`RESOURCE`] the kubelet's device manager holds.
async fn kubelet_devices(socket: &Path) -> usize {
    let Ok(ep) = tonic::transport::Endpoint::from_shared(format!("unix://{}", socket.display())) else {
        return 0;
    };
    let Ok(ch) = ep.timeout(Duration::from_secs(2)).connect().await else {
        return 0;
    };
    let mut c = pr::pod_resources_lister_client::PodResourcesListerClient::new(ch);
    c.get_allocatable_resources(pr::AllocatableResourcesRequest {})
        .await
        .map(|r| {
            r.into_inner()
                .devices
                .iter()
                .filter(|d| d.resource_name == RESOURCE)
                .map(|d| d.device_ids.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn wait_running(pods: &Api<Pod>, name: &str) {
    let t0 = Instant::now();
    loop {
        let p = pods.get(name).await.unwrap();
        let phase = p
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if phase == "Running" {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "pod {name} is {phase:?}: {:?}",
            p.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_ids_from_the_kubelets_pod_resources() {
    sriov_test_support::require_root!();
    sriov_test_support::require!(
        Path::new(REFERENCE_PLUGINS).join("bridge").exists(),
        "{REFERENCE_PLUGINS}/bridge (scripts/deps/30-cni.sh)"
    );
    let Some(cluster) = Cluster::shared() else { return };
    let Some(node) = require(cluster.start_node("meta-dev")) else {
        return;
    };
    let client = cluster.client().unwrap();
    let tmp = tempfile::tempdir_in(scratch_base()).unwrap();
    let d = tmp.path();
    let kubeconfig = d.join("multus.kubeconfig");
    prepare_api(cluster, &client, &kubeconfig).await;
    let ns = "meta-dev";
    namespace(&client, ns).await;

    // sriovdp on a fixture 82576 with 3 VFs, registered with the real kubelet.
    let fx = FixtureHost::new(d.join("host")).igb_82576(3).build().unwrap();
    fx.set_admin_up("eth0", true).unwrap();
    fx.set_oper_state("eth0", "up").unwrap();
    let dp_config = d.join("dp.json");
    std::fs::write(
        &dp_config,
        r#"{"resourceList":[{"resourceName":"vf","selectors":{"vendors":["8086"],"devices":["10ca"],"drivers":["igbvf"]}}]}"#,
    )
    .unwrap();
    let devinfo = d.join("devinfo");
    let _dp = Killed(
        Command::new(sriovdp())
            .arg("--config-file")
            .arg(&dp_config)
            .arg("--sysfs-root")
            .arg(fx.sys())
            .arg("--dev-root")
            .arg(fx.dev())
            .arg("--device-plugin-dir")
            .arg(node.device_plugin_dir())
            .arg("--plugins-registry-dir")
            .arg(node.plugins_registry_dir())
            .arg("--device-info-dir")
            .arg(devinfo.join("dp"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sriovdp.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while kubelet_devices(&node.pod_resources_socket()).await < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the kubelet never got 3 VFs: {}",
            std::fs::read_to_string(d.join("sriovdp.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A pod with two VFs and two attachments of the VF network.
    let bin = d.join("bin");
    let record = d.join("record");
    recorder(&bin, &record);
    nad(
        &client,
        ns,
        "vf-net",
        &json!({"cniVersion": "1.0.0", "type": "recorder",
            "capabilities": {"deviceID": true, "CNIDeviceInfoFile": true}}),
        Some(RESOURCE),
    )
    .await;
    let networks = r#"[{"name":"vf-net"},{"name":"vf-net","interface":"fast1"}]"#;
    let extra = json!({"nodeName": node.name(), "containers": [{"name": "app", "image": "example.invalid/pause:1",
        "resources": {"requests": {RESOURCE: "2"}, "limits": {RESOURCE: "2"}}}]});
    let uid = pod(&client, ns, "vfpod", networks, extra).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    wait_running(&pods, "vfpod").await;
    let resp = pod_resources::list(&node.pod_resources_socket(), Duration::from_secs(5))
        .await
        .unwrap();
    let held: Vec<String> = pod_resources::flatten(&resp, Some(RESOURCE))
        .into_iter()
        .filter(|r| r.pod == "vfpod" && r.namespace == ns)
        .flat_map(|r| r.devices)
        .collect();
    assert_eq!(held.len(), 2, "PodResources: {held:?}");

    let t = tag();
    let bridge = format!("md{t}v");
    let _links = HostLinks(vec![bridge.clone()]);
    let netns = Netns::new(&format!("meta-{t}-vf"));
    let conf = json!({
        "cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
        "kubeconfig": kubeconfig, "cniDir": d.join("cni"), "binDir": bin,
        "podResourcesSocket": node.pod_resources_socket(), "deviceInfoDir": devinfo,
        "logLevel": "debug", "logFile": d.join("multus.log"), "logToStderr": false,
        "delegates": [{"cniVersion": "1.0.0", "name": "defnet", "plugins": [{
            "type": "bridge", "bridge": bridge, "ipam": host_local("10.217.9.0/24", &d.join("ipam-default"))}]}],
    });
    let args = containerd_args(ns, "vfpod", "sandbox-vf", &uid);
    let add = multus("ADD", &conf, "sandbox-vf", &netns.path(), &args);
    assert!(
        add.ok,
        "ADD: {add:?}\n{}",
        std::fs::read_to_string(d.join("multus.log")).unwrap_or_default()
    );

    // Each attachment got the next unused device, in the kubelet's sorted order.
    let cni_info = |ifname: &str| {
        devinfo
            .join("cni")
            .join(format!("{ns}-vf-net-sandbox-vf_{ifname}"))
            .display()
            .to_string()
    };
    for (ifname, want) in [("net1", &held[0]), ("fast1", &held[1])] {
        let got: Value = serde_json::from_str(
            &std::fs::read_to_string(record.join(format!("ADD-{ifname}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(got["deviceID"], json!(want), "{ifname}: {got}");
        assert_eq!(got["pciBusID"], json!(want), "{ifname}: {got}");
        assert_eq!(got["runtimeConfig"]["deviceID"], json!(want), "{ifname}: {got}");
        assert_eq!(
            got["runtimeConfig"]["CNIDeviceInfoFile"],
            json!(cni_info(ifname)),
            "{ifname}: {got}"
        );
        assert_eq!(got["name"], "vf-net");
    }
    let text = annotation(&client, ns, "vfpod", NETWORK_STATUS_ANNOTATION)
        .await
        .expect("network-status");
    let st: Vec<NetworkStatus> = serde_json::from_str(&text).unwrap();
    let summary: Vec<(&str, &str, String)> = st
        .iter()
        .map(|s| {
            let pci = s
                .device_info
                .as_ref()
                .and_then(|i| i.pci.as_ref())
                .map(|p| p.pci_address.clone());
            (s.name.as_str(), s.interface.as_str(), pci.unwrap_or_default())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("defnet", "eth0", String::new()),
            ("meta-dev/vf-net", "net1", held[0].clone()),
            ("meta-dev/vf-net", "fast1", held[1].clone()),
        ],
        "{text}"
    );

    let del = multus("DEL", &conf, "sandbox-vf", &netns.path(), &args);
    assert!(del.ok, "DEL: {del:?}");
    let order = std::fs::read_to_string(record.join("order")).unwrap();
    assert_eq!(
        order, "ADD net1\nADD fast1\nDEL fast1\nDEL net1\n",
        "delegates in order, DEL in reverse"
    );
    let del_conf: Value =
        serde_json::from_str(&std::fs::read_to_string(record.join("DEL-net1.json")).unwrap()).unwrap();
    assert_eq!(
        del_conf["deviceID"],
        json!(held[0]),
        "DEL gets the device ADD used"
    );
    assert!(!Path::new(&cni_info("net1")).exists() && !Path::new(&cni_info("fast1")).exists());
    assert!(leases(&d.join("ipam-default")).is_empty());

    let _ = pods
        .delete("vfpod", &DeleteParams::default().grace_period(0))
        .await;
    drop(node);
}
