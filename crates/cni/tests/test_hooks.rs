//! The test seams (`SRIOV_CNI_FAKE_PF`, `SRIOV_CNI_TEST_FAULT`) exist only in builds with the
//! `test-hooks` feature. One CHECK, whose first step reads the VF's state from the PF: the binary
//! cargo built for this test (feature on, through the crate's dev-dependency on itself) must read
//! it from the fake PF file (which reports VLAN 7 where the config wants 5, so CHECK fails naming
//! what the file said); the release binary (`$SRIOV_RELEASE_BIN_DIR/sriov`, scripts/test runs
//! this file again against it) must ignore the variable and ask the kernel, which has no such PF.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sriov_cni::state::{Cache, StateDir};

fn plugin_bin() -> (PathBuf, bool) {
    match std::env::var_os("SRIOV_RELEASE_BIN_DIR") {
        Some(d) => (Path::new(&d).join("sriov"), true),
        None => (PathBuf::from(env!("CARGO_BIN_EXE_sriov")), false),
    }
}

/// A PF name no host has (netdev names are at most 15 bytes).
const PF: &str = "sriovhookpf0";
/// CHECK wants an existing netns path; it fails at the PF before it would enter it.
const NETNS: &str = "/proc/self/ns/net";

#[test]
fn fake_pf_is_honoured_only_by_test_builds() {
    let (bin, release) = plugin_bin();
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path().join("state"));
    std::fs::create_dir_all(&state.dir).unwrap();
    let conf =
        json!({"cniVersion": "1.1.0", "name": "n", "type": "sriov", "deviceID": "0000:00:00.1", "vlan": 5});
    let cache = Cache {
        conf: conf.as_object().cloned().unwrap(),
        device_id: "0000:00:00.1".into(),
        master: PF.into(),
        vf_id: 0,
        mac: String::new(),
        mtu: 0,
        orig: Default::default(),
        dpdk: Some(false),
        netns: NETNS.into(),
        host_ifindex: 0,
        ifname: Some("net1".into()),
    };
    state.write_cache("c-hooks-net1", &cache).unwrap();
    let pf_file = dir.path().join("pf.json");
    std::fs::write(
        &pf_file,
        json!({"vfs": {format!("{PF}/0"): {"vlan": 7}}}).to_string(),
    )
    .unwrap();
    let mut child = Command::new(&bin)
        .env_clear()
        .env("CNI_COMMAND", "CHECK")
        .env("CNI_CONTAINERID", "c-hooks")
        .env("CNI_NETNS", NETNS)
        .env("CNI_IFNAME", "net1")
        .env("CNI_PATH", dir.path())
        .env("SRIOV_CNI_STATE_DIR", &state.dir)
        .env("SRIOV_CNI_FAKE_PF", &pf_file)
        .env("SRIOV_CNI_TEST_FAULT", "fail:never-reached")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let msg = v["msg"].as_str().unwrap_or_default();
    assert_ne!(out.status.code(), Some(0), "CHECK must fail either way: {v}");
    assert!(msg.contains(PF), "the error names the PF: {v}");
    // The fake file's VLAN 7, as CHECK reports the PF's view (`VfState { .., vlan: 7, .. }`).
    let read_the_file = msg.contains("vlan: 7,");
    if release {
        assert!(!read_the_file, "the release build read the fake PF file: {v}");
    } else {
        assert!(read_the_file, "the test build did not read the fake PF file: {v}");
    }
}
