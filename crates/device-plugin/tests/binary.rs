//! The `sriovdp` binary as the DaemonSet runs it: upstream's command line, a bad config refused
//! before anything is registered, a good one registered and cleaned up on SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::FakeKubelet;
use sriov_host::fixture::{FixtureHost, scratch_base};

fn sriovdp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sriovdp"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_exits_nonzero_naming_resource_and_field_and_registers_nothing() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let fx = FixtureHost::new(tmp.path().join("host"))
        .igb_82576(2)
        .build()
        .expect("fixture");
    let plugin_dir = tmp.path().join("dp");
    std::fs::create_dir_all(&plugin_dir).expect("mkdir");
    let mut kubelet = FakeKubelet::start(&plugin_dir);
    let cases = [
        (
            r#"{"resourceList":[{"resourceName":"ok","selectors":{}},{"resourceName":"bad","selectors":[{"pfNames":["eth0#7-2"]}]}]}"#,
            r#"resource "bad": selectors[0].pfNames: "eth0#7-2": range 7-2 ends before it starts"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"v","deviceType":"vfio-pci","selectors":{}}]}"#,
            r#"resource "v": deviceType: unsupported deviceType "vfio-pci""#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a/b","selectors":{}}]}"#,
            r#"resource "a/b": resourceName"#,
        ),
        ("{", "not valid JSON"),
    ];
    for (i, (config, want)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("c{i}.json"));
        std::fs::write(&path, config).expect("write");
        let out = sriovdp()
            .args([
                "-config-file",
                path.to_str().expect("utf8"),
                "-resource-prefix",
                "intel.com",
            ])
            .args([
                "--sysfs-root",
                fx.sys().to_str().expect("utf8"),
                "--device-plugin-dir",
                plugin_dir.to_str().expect("utf8"),
            ])
            .args(["--plugins-registry-dir", "/nonexistent-sriovdp-test"])
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{config}: must fail");
        assert!(stderr.contains(want), "{config}\nstderr: {stderr}");
    }
    let missing = sriovdp()
        .args(["--config-file", "/nonexistent/config.json"])
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read config file /nonexistent/config.json")
    );
    // the operator's DaemonSet command line (`--log-level=10`, upstream's) parses: the failure is
    // the missing file, not a usage error
    let operator_args = sriovdp()
        .args([
            "--log-level=10",
            "--resource-prefix=openshift.io",
            "--config-file=/nonexistent/node-1",
        ])
        .output()
        .expect("runs");
    assert!(!operator_args.status.success());
    assert!(
        String::from_utf8_lossy(&operator_args.stderr)
            .contains("cannot read config file /nonexistent/node-1"),
        "{}",
        String::from_utf8_lossy(&operator_args.stderr)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(kubelet.registrations.try_recv().is_err(), "nothing registered");
    assert_eq!(
        std::fs::read_dir(&plugin_dir).expect("ls").count(),
        1,
        "only kubelet.sock"
    );
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_registers_and_cleans_up_on_sigterm() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let fx = FixtureHost::new(tmp.path().join("host"))
        .igb_82576(4)
        .build()
        .expect("fixture");
    let plugin_dir = tmp.path().join("dp");
    std::fs::create_dir_all(&plugin_dir).expect("mkdir");
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"resourceList":[{"resourceName":"igbvf","selectors":{"drivers":["igbvf"]}}]}"#,
    )
    .expect("write");
    let mut kubelet = FakeKubelet::start(&plugin_dir);
    let t0 = Instant::now();
    let mut child = sriovdp()
        .args([
            "--config-file",
            config.to_str().expect("utf8"),
            "--resource-prefix",
            "example.com",
        ])
        .args([
            "--sysfs-root",
            fx.sys().to_str().expect("utf8"),
            "--dev-root",
            fx.dev().to_str().expect("utf8"),
        ])
        .args([
            "--device-plugin-dir",
            plugin_dir.to_str().expect("utf8"),
            "--plugins-registry-dir",
            "/nonexistent-sriovdp-test",
        ])
        .args([
            "--device-info-dir",
            tmp.path().join("devinfo").to_str().expect("utf8"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let reg = kubelet.next(10).await;
    eprintln!("exec → first Register: {:?}", t0.elapsed());
    assert_eq!(
        (reg.resource_name.as_str(), reg.endpoint.as_str()),
        ("example.com/igbvf", "example.com_igbvf.sock")
    );
    assert!(plugin_dir.join("example.com_igbvf.sock").exists());
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("sigterm");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "{status}");
    assert!(
        !plugin_dir.join("example.com_igbvf.sock").exists(),
        "socket removed on shutdown"
    );
    kubelet.stop().await;
}

#[test]
fn the_demo_kubelet_prints_what_the_kubelet_is_told() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let mut fx = FixtureHost::new(tmp.path().join("host"))
        .igb_82576(4)
        .build()
        .expect("fixture");
    fx.bind_driver("0000:01:10.6", "vfio-pci").expect("vfio");
    fx.set_admin_up("eth0", true).expect("pf up");
    fx.set_oper_state("eth0", "up").expect("pf carrier");
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"resourceList":[{"resourceName":"netdev","selectors":{"drivers":["igbvf"]}},{"resourceName":"dpdk","selectors":{"drivers":["vfio-pci"]}}]}"#,
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_sriovdp-fake-kubelet"))
        .args([
            "--sriovdp",
            env!("CARGO_BIN_EXE_sriovdp"),
            "--config",
            config.to_str().expect("utf8"),
        ])
        .args([
            "--",
            "--sysfs-root",
            fx.sys().to_str().expect("utf8"),
            "--dev-root",
            fx.dev().to_str().expect("utf8"),
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "kubelet: 2 Register call(s)",
        "kubelet: ListAndWatch intel.com/netdev -> 3 device(s)",
        "kubelet: ListAndWatch intel.com/dpdk -> 1 device(s)",
        "  0000:01:10.6  Healthy  numa -",
        "  env  PCIDEVICE_INTEL_COM_DPDK=0000:01:10.6",
        "  dev  /dev/vfio/10 -> /dev/vfio/10 (rw)",
        "plugin sockets left behind: 0",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
}
