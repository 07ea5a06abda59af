//! Driven by a real CNI runtime: libcni (the CNI project's runtime library, via
//! crates/cni/tools/libcni-run, built by scripts/deps/30-cni.sh) runs ADD, CHECK and DEL
//! against the binary, with the `mac` capability injected as runtimeConfig.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Fixture, addrs, link};
use serde_json::{Value, json};

fn runner() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/bin/libcni-run");
    assert!(
        p.exists(),
        "{} missing: run scripts/deps/30-cni.sh (scripts/install-test-deps)",
        p.display()
    );
    p
}

/// (success, stdout, stderr)
fn libcni(f: &Fixture, cmd: &str, conflist: &Path, pod: &str) -> (bool, String, String) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_sriov"))
        .parent()
        .unwrap()
        .to_path_buf();
    let o = Command::new(runner())
        .args([cmd, &conflist.to_string_lossy(), &format!("/run/netns/{pod}")])
        .env("CNI_PATH", format!("{}:/usr/lib/cni", bin_dir.display()))
        .env("CNI_CONTAINERID", "libcni1")
        .env("CNI_IFNAME", "net1")
        .env("LIBCNI_CACHE_DIR", f.dir.path().join("libcni-cache"))
        .env("LIBCNI_CAP_MAC", "02:cc:00:00:00:01")
        .env("SRIOV_SYSFS_ROOT", f.sysfs())
        .env("SRIOV_CNI_STATE_DIR", f.state())
        .env("SRIOV_CNI_FAKE_PF", f.pf_file())
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn libcni_add_check_del() {
    need_root!();
    let _s = common::serial();
    let _ = runner();
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    for version in ["1.0.0", "0.4.0"] {
        let list = json!({"cniVersion": version, "name": format!("libcni{}", f.id), "plugins": [{
            "type": "sriov", "deviceID": f.vfs[0].pci, "vlan": 12, "spoofchk": "off",
            "capabilities": {"mac": true}, "ipam": f.host_local("10.82.0.0/24")}]});
        let path = f.dir.path().join("net.conflist");
        std::fs::write(&path, list.to_string()).unwrap();
        let (ok, out, err) = libcni(&f, "add", &path, &pod);
        assert!(ok, "{version} add: {out} {err}");
        // The plugin's log line reaches the runtime's stderr, not the result.
        assert!(err.contains("sriov: Add containerID=libcni1"), "{err}");
        let res: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
        assert_eq!(res["interfaces"][0]["mac"], "02:cc:00:00:00:01", "{out}");
        assert_eq!(link(Some(&pod), "net1").unwrap()["address"], "02:cc:00:00:00:01");
        assert_eq!(addrs(&pod, "net1").len(), 1);
        let (ok, out, err) = libcni(&f, "check", &path, &pod);
        assert!(ok, "{version} check: {out} {err}");
        let (ok, out, err) = libcni(&f, "del", &path, &pod);
        assert!(ok, "{version} del: {out} {err}");
        f.assert_original(0);
        assert_eq!(f.ipam_leases(), 0);
    }
}
