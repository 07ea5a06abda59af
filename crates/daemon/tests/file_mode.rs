//! The daemon binary in local mode on a fake sysfs tree: applies the file, re-applies when it is
//! replaced by a rename, reports a bad spec as Failed naming PF and field, stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sriov_host::fixture::{FixtureHost, scratch_base};

const EXE: &str = env!("CARGO_BIN_EXE_sriov-network-config-daemon");

fn spec(num_vfs: u32, vfio: &str) -> String {
    format!(
        r#"apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodeState
metadata:
  name: node-1
  generation: 7
spec:
  interfaces:
  - pciAddress: "0000:01:00.0"
    numVfs: {num_vfs}
    vfGroups:
    - resourceName: net
      deviceType: netdevice
      vfRange: "0-2"
    - resourceName: dpdk
      deviceType: {vfio}
      vfRange: "3-3"
"#
    )
}

/// Replaces `path` by a rename, as editors and config managers do.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    /// The next `sync:` line the daemon prints.
    fn next_sync(&self) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("a sync line within 20 s");
            if l.starts_with("sync: ") {
                return l;
            }
        }
    }
}

fn start(sys: &Path, spec_path: &Path, state: &Path) -> Daemon {
    let mut child = Command::new(EXE)
        .arg("--node-state-file")
        .arg(spec_path)
        .env("SRIOV_SYSFS_ROOT", sys)
        .env("SRIOV_DAEMON_STATE_DIR", state)
        .env("SRIOV_DAEMON_RESYNC_SECS", "600")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn daemon");
    let err = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    Daemon { child, lines: rx }
}

#[test]
fn file_mode_applies_reapplies_and_stops() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tmp");
    let mut fx = FixtureHost::new(tmp.path().join("host"))
        .igb_82576(4)
        .build()
        .expect("fixture");
    fx.unbind_driver("0000:01:10.6").expect("unbind");
    fx.bind_driver("0000:01:10.6", "vfio-pci").expect("bind");
    let spec_path = tmp.path().join("node.yaml");
    let status_path = tmp.path().join("node.yaml.status.json");
    std::fs::write(&spec_path, spec(4, "vfio-pci")).expect("spec");
    let mut d = start(fx.sys(), &spec_path, &tmp.path().join("state"));

    assert_eq!(d.next_sync(), "sync: Succeeded writes=0 actions=0");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&status_path).expect("status file")).expect("json");
    assert_eq!(status["kind"], "SriovNetworkNodeState");
    assert_eq!(status["metadata"]["name"], "node-1");
    assert_eq!(status["status"]["syncStatus"], "Succeeded");
    let pf = &status["status"]["interfaces"][0];
    assert_eq!(pf["pciAddress"], "0000:01:00.0");
    assert_eq!(pf["Vfs"][3]["driver"], "vfio-pci");

    // Replaced by a rename with a bad spec: Failed, naming PF and field, nothing written.
    replace(&spec_path, &spec(9, "vfio-pci"));
    let l = d.next_sync();
    assert_eq!(l, "sync: Failed writes=0 actions=0", "{l}");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&status_path).expect("status file")).expect("json");
    assert_eq!(status["status"]["syncStatus"], "Failed");
    let err = status["status"]["lastSyncError"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("0000:01:00.0") && err.contains("numVfs 9") && err.contains("sriov_totalvfs 7"),
        "{err}"
    );

    replace(&spec_path, &spec(4, "uio-magic"));
    d.next_sync();
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&status_path).expect("status file")).expect("json");
    let err = status["status"]["lastSyncError"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("vfGroups[1].deviceType") && err.contains("uio-magic"),
        "{err}"
    );

    // Back to the good spec: nothing to write, Succeeded again.
    replace(&spec_path, &spec(4, "vfio-pci"));
    assert_eq!(d.next_sync(), "sync: Succeeded writes=0 actions=0");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(d.child.wait());
    });
    let st = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("exits within 10 s of SIGTERM")
        .expect("wait");
    assert!(st.success(), "{st:?}");
}

#[test]
fn unreadable_file_is_failed_not_a_crash() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tmp");
    let fx = FixtureHost::new(tmp.path().join("host"))
        .igb_82576(0)
        .build()
        .expect("fixture");
    let spec_path = tmp.path().join("node.yaml");
    std::fs::write(&spec_path, "kind: ConfigMap\n").expect("spec");
    let mut d = start(fx.sys(), &spec_path, &tmp.path().join("state"));
    let l = d.next_sync();
    assert!(
        l.starts_with("sync: Failed") && l.contains("SriovNetworkNodeState"),
        "{l}"
    );
    let _ = d.child.kill();
    let _ = d.child.wait();
}

/// The operator's DaemonSet runs `sriov-network-config-daemon start [--disable-plugins=…]
/// [--parallel-nic-config]` (upstream's command line): it parses. Systemd mode is not
/// implemented, so `--use-systemd-service` is refused rather than silently ignored.
#[test]
fn upstreams_daemonset_command_line_parses_and_systemd_mode_is_refused() {
    let bin = env!("CARGO_BIN_EXE_sriov-network-config-daemon");
    let ok = std::process::Command::new(bin)
        .args([
            "start",
            "--disable-plugins=mellanox",
            "--parallel-nic-config",
            "--help",
        ])
        .output()
        .expect("runs");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let systemd = std::process::Command::new(bin)
        .args(["start", "--use-systemd-service", "--help"])
        .output()
        .expect("runs");
    assert!(!systemd.status.success());
    assert!(String::from_utf8_lossy(&systemd.stderr).contains("--use-systemd-service"));
}
