//! In the SR-IOV lab (lab/tests/30-device-plugin.sh prepares it): the `sriovdp` binary on the
//! guest's real igb VFs (VF0-2 on igbvf, VF3 on vfio-pci) against the fake kubelet. Checks both
//! pools' counts, the vfio device specs for the guest's real `/dev/vfio/N`, and health following
//! the real PF link (`ip link set <pf> down/up`).
//!
//! Env (set by the script): `SRIOVDP_BIN` (the binary in the guest), `LAB_DP_PF` (PF PCI address),
//! `LAB_DP_VFIO` (`1` when VF3 is on vfio-pci).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{FakeKubelet, plugin};
use sriov_device_plugin::v1beta1 as api;
use tokio_stream::StreamExt;

/// Kills the child if the test panics (so no sriovdp is left running in the guest).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} not set (run through lab/tests/30-device-plugin.sh)"))
}

fn link(p: &str) -> String {
    std::fs::read_link(p)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip runs");
    assert!(st.success(), "ip {args:?}");
}

async fn next(s: &mut tonic::Streaming<api::ListAndWatchResponse>) -> api::ListAndWatchResponse {
    tokio::time::timeout(Duration::from_secs(10), s.next())
        .await
        .expect("message in time")
        .expect("open")
        .expect("ok")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
async fn sriovdp_on_real_igb_vfs() {
    let pf = env("LAB_DP_PF");
    let vfio = env("LAB_DP_VFIO") == "1";
    let pf_dir = format!("/sys/bus/pci/devices/{pf}");
    let pf_net = std::fs::read_dir(format!("{pf_dir}/net"))
        .expect("PF netdev")
        .flatten()
        .next()
        .expect("one")
        .file_name();
    let pf_net = pf_net.to_string_lossy().into_owned();
    let vfs: Vec<String> = (0..4).map(|i| link(&format!("{pf_dir}/virtfn{i}"))).collect();

    let tmp = tempfile::tempdir().expect("tempdir");
    let dp = tmp.path().join("device-plugins");
    std::fs::create_dir_all(&dp).expect("mkdir");
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"resourceList":[
              {{"resourceName":"lab_igbvf","selectors":[{{"vendors":["8086"],"devices":["10ca"],"drivers":["igbvf"],"rootDevices":["{pf}"]}}]}},
              {{"resourceName":"lab_vfio","selectors":[{{"drivers":["vfio-pci"],"pfNames":["{pf_net}#0-6"]}}]}}]}}"#
        ),
    )
    .expect("config");
    let mut kubelet = FakeKubelet::start(&dp);
    let t0 = Instant::now();
    let mut child = KillOnDrop(
        Command::new(env("SRIOVDP_BIN"))
            .args([
                "-config-file",
                config.to_str().expect("utf8"),
                "-resource-prefix",
                "lab.example.com",
            ])
            .args([
                "--device-plugin-dir",
                dp.to_str().expect("utf8"),
                "--plugins-registry-dir",
                "/nonexistent",
            ])
            .args([
                "--device-info-dir",
                tmp.path().join("devinfo").to_str().expect("utf8"),
                "--health-interval-ms",
                "30000",
            ])
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sriovdp"),
    );

    let want = if vfio { 2 } else { 1 };
    let mut regs = Vec::new();
    for _ in 0..want {
        regs.push(kubelet.next(20).await);
    }
    eprintln!("lab: exec -> {want} Register(s) in {:?}", t0.elapsed());
    regs.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
    assert_eq!(regs[0].resource_name, "lab.example.com/lab_igbvf");

    let mut netdev = plugin(&dp.join("lab.example.com_lab_igbvf.sock")).await;
    let mut s = netdev
        .list_and_watch(api::Empty {})
        .await
        .expect("law")
        .into_inner();
    let m = next(&mut s).await;
    let ids: Vec<&str> = m.devices.iter().map(|d| d.id.as_str()).collect();
    let kernel_vfs = if vfio { &vfs[..3] } else { &vfs[..4] };
    assert_eq!(
        ids,
        kernel_vfs.iter().map(String::as_str).collect::<Vec<_>>(),
        "igbvf pool = the kernel-driver VFs"
    );
    eprintln!(
        "lab: igbvf pool {:?}",
        m.devices.iter().map(|d| (&d.id, &d.health)).collect::<Vec<_>>()
    );

    if vfio {
        assert_eq!(regs[1].resource_name, "lab.example.com/lab_vfio");
        let mut vc = plugin(&dp.join("lab.example.com_lab_vfio.sock")).await;
        let mut vs = vc.list_and_watch(api::Empty {}).await.expect("law").into_inner();
        let vm = next(&mut vs).await;
        assert_eq!(
            vm.devices.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
            [vfs[3].clone()]
        );
        let group = link(&format!("/sys/bus/pci/devices/{}/iommu_group", vfs[3]));
        let node = format!("/dev/vfio/{group}");
        assert!(PathBuf::from(&node).exists(), "{node} exists in the guest");
        let r = vc
            .allocate(api::AllocateRequest {
                container_requests: vec![api::ContainerAllocateRequest {
                    devices_ids: vec![vfs[3].clone()],
                }],
            })
            .await
            .expect("allocate")
            .into_inner();
        let c = &r.container_responses[0];
        let specs: Vec<(&str, &str)> = c
            .devices
            .iter()
            .map(|d| (d.host_path.as_str(), d.container_path.as_str()))
            .collect();
        assert_eq!(
            specs,
            [
                ("/dev/vfio/vfio", "/dev/vfio/vfio"),
                (node.as_str(), node.as_str())
            ]
        );
        assert_eq!(c.envs["PCIDEVICE_LAB_EXAMPLE_COM_LAB_VFIO"], vfs[3]);
        eprintln!(
            "lab: vfio Allocate specs {specs:?}, _INFO {}",
            c.envs["PCIDEVICE_LAB_EXAMPLE_COM_LAB_VFIO_INFO"]
        );
    }

    // Health from the real kernel's link state: PF down → VFs Unhealthy, up → Healthy again.
    // The poll is 30 s here: only the netlink link events can make these transitions quick.
    let t = Instant::now();
    ip(&["link", "set", &pf_net, "down"]);
    let m = next(&mut s).await;
    eprintln!("lab: PF down -> Unhealthy pushed in {:?}", t.elapsed());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "pushed by the link event, not the 30 s poll"
    );
    assert!(m.devices.iter().all(|d| d.health == "Unhealthy"), "{m:?}");
    ip(&["link", "set", &pf_net, "up"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = next(&mut s).await;
        if m.devices.iter().all(|d| d.health == "Healthy") {
            break;
        }
        assert!(Instant::now() < deadline, "healthy again after link up");
    }

    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let st = child.0.wait().expect("wait");
    assert!(st.success(), "{st}");
    assert!(!dp.join("lab.example.com_lab_igbvf.sock").exists());
    kubelet.stop().await;
}

/// The demo (lab/demo.d/30-device-plugin.sh): runs `sriovdp` on `DEMO_DP_CONFIG` and prints what
/// the kubelet is told: every registration, each pool's ListAndWatch, one Allocate per pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
async fn demo_pools_as_the_kubelet_sees_them() {
    let config = env("DEMO_DP_CONFIG");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dp = tmp.path().join("device-plugins");
    std::fs::create_dir_all(&dp).expect("mkdir");
    let mut kubelet = FakeKubelet::start(&dp);
    let t0 = Instant::now();
    let mut child = KillOnDrop(
        Command::new(env("SRIOVDP_BIN"))
            .args([
                "--config-file",
                &config,
                "--device-plugin-dir",
                dp.to_str().expect("utf8"),
            ])
            .args(["--plugins-registry-dir", "/nonexistent", "--device-info-dir", ""])
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sriovdp"),
    );
    let mut regs = vec![kubelet.next(20).await];
    let first = t0.elapsed();
    while let Ok(Some(r)) =
        tokio::time::timeout(Duration::from_millis(700), kubelet.registrations.recv()).await
    {
        regs.push(r);
    }
    println!(
        "kubelet: {} Register call(s), the first {first:.1?} after exec",
        regs.len()
    );
    for r in &regs {
        let o = r.options.unwrap_or_default();
        println!(
            "kubelet: Register {{resource: {}, endpoint: {}, version: {}, preferredAllocation: {}}}",
            r.resource_name, r.endpoint, r.version, o.get_preferred_allocation_available
        );
    }
    for r in &regs {
        let mut c = plugin(&dp.join(&r.endpoint)).await;
        let mut s = c.list_and_watch(api::Empty {}).await.expect("law").into_inner();
        let m = next(&mut s).await;
        println!(
            "kubelet: ListAndWatch {} -> {} device(s)",
            r.resource_name,
            m.devices.len()
        );
        for d in &m.devices {
            let numa = d
                .topology
                .as_ref()
                .and_then(|t| t.nodes.first())
                .map_or("-".to_string(), |n| n.id.to_string());
            println!("  {}  {}  numa {numa}", d.id, d.health);
        }
        let Some(d) = m.devices.first() else { continue };
        let req = api::AllocateRequest {
            container_requests: vec![api::ContainerAllocateRequest {
                devices_ids: vec![d.id.clone()],
            }],
        };
        let a = c.allocate(req).await.expect("allocate").into_inner();
        println!("kubelet: Allocate {} [{}] ->", r.resource_name, d.id);
        let cr = &a.container_responses[0];
        let mut envs: Vec<_> = cr.envs.iter().collect();
        envs.sort();
        for (k, v) in envs {
            println!("  env  {k}={v}");
        }
        for s in &cr.devices {
            println!(
                "  dev  {} -> {} ({})",
                s.host_path, s.container_path, s.permissions
            );
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    assert!(child.0.wait().expect("wait").success());
    println!(
        "sriovdp: stopped on SIGTERM, sockets removed: {}",
        std::fs::read_dir(&dp).expect("ls").count() == 1
    );
    kubelet.stop().await;
}
