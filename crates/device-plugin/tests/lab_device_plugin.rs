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

/// Prints a result line and keeps it in `$LAB_OUT/device-plugin.txt` (shown by the lab script).
fn note(line: String) {
    eprintln!("{line}");
    if let Some(dir) = std::env::var_os("LAB_OUT") {
        use std::io::Write;
        let path = PathBuf::from(dir).join("device-plugin.txt");
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{line}");
        }
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
    note(format!("lab: exec -> {want} Register(s) in {:?}", t0.elapsed()));
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
    note(format!(
        "lab: igbvf pool {:?}",
        m.devices.iter().map(|d| (&d.id, &d.health)).collect::<Vec<_>>()
    ));

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
        note(format!(
            "lab: vfio Allocate specs {specs:?}, _INFO {}",
            c.envs["PCIDEVICE_LAB_EXAMPLE_COM_LAB_VFIO_INFO"]
        ));
    }

    // Health from the real kernel's link state: PF down → VFs Unhealthy, up → Healthy again.
    // The poll is 30 s here: only the netlink link events can make these transitions quick.
    let t = Instant::now();
    ip(&["link", "set", &pf_net, "down"]);
    let m = next(&mut s).await;
    note(format!("lab: PF down -> Unhealthy pushed in {:?}", t.elapsed()));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "pushed by the link event, not the 30 s poll"
    );
    assert!(m.devices.iter().all(|d| d.health == "Unhealthy"), "{m:?}");
    let t = Instant::now();
    ip(&["link", "set", &pf_net, "up"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = next(&mut s).await;
        if m.devices.iter().all(|d| d.health == "Healthy") {
            note(format!(
                "lab: PF up -> Healthy pushed in {:?} (igb link negotiation included)",
                t.elapsed()
            ));
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
