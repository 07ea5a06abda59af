//! CVE-2021-20206 class: a network config must never make the plugin execute a path.
//! `"ipam": {"type": "/abs/x"}` or `"../x"` used to run `x` as root on DEL (ADD refused it, GC and
//! STATUS did not look). For every command the binary must refuse with code 7 naming `ipam.type`
//! and the value, and the would-be payload must not have run.
//!
//! The binary under test is `$SRIOV_RELEASE_BIN_DIR/sriov` when set (scripts/test runs this file
//! again against the release build), else the one cargo built for this test.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn plugin_bin() -> PathBuf {
    match std::env::var_os("SRIOV_RELEASE_BIN_DIR") {
        Some(d) => Path::new(&d).join("sriov"),
        None => PathBuf::from(env!("CARGO_BIN_EXE_sriov")),
    }
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::create_dir_all(dir.path().join("state")).unwrap();
        // The payload: proves it ran by writing a marker, and answers like a plugin would.
        let payload = dir.path().join("evil");
        fs::write(
            &payload,
            format!(
                "#!/bin/sh\necho ran >> {}\necho '{{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\",\"1.1.0\"]}}'\n",
                dir.path().join("marker").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&payload, fs::Permissions::from_mode(0o755)).unwrap();
        Setup { dir }
    }

    fn marker(&self) -> bool {
        self.dir.path().join("marker").exists()
    }

    fn run(&self, command: &str, ipam_type: &str) -> (Option<i32>, Value) {
        let conf = json!({
            "cniVersion": "1.1.0",
            "name": "sriov-net",
            "type": "sriov",
            "deviceID": "0000:00:00.1",
            "ipam": {"type": ipam_type},
        });
        let mut child = Command::new(plugin_bin())
            .env_clear()
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", "c-plugin-name")
            .env("CNI_NETNS", "/var/run/netns/does-not-exist")
            .env("CNI_IFNAME", "net1")
            .env("CNI_PATH", self.dir.path().join("bin"))
            .env("SRIOV_CNI_STATE_DIR", self.dir.path().join("state"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), v)
    }
}

fn assert_refused(command: &str, value_of: impl Fn(&Path) -> String) {
    let s = Setup::new();
    let value = value_of(s.dir.path());
    let (code, v) = s.run(command, &value);
    assert!(
        !s.marker(),
        "{command} with ipam.type {value:?} executed the payload"
    );
    assert_ne!(code, Some(0), "{command} with ipam.type {value:?} succeeded: {v}");
    assert_eq!(v["code"], 7, "{command} {value:?}: {v}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("ipam.type") && msg.contains(&value),
        "{command}: message must name the field and value: {msg}"
    );
}

fn absolute(d: &Path) -> String {
    d.join("evil").display().to_string()
}

fn dotdot(_: &Path) -> String {
    // CNI_PATH is <tmp>/bin: "../evil" is <tmp>/evil.
    "../evil".to_string()
}

#[test]
fn add_refuses_absolute_and_dotdot() {
    assert_refused("ADD", absolute);
    assert_refused("ADD", dotdot);
}

#[test]
fn del_refuses_absolute_and_dotdot() {
    assert_refused("DEL", absolute);
    assert_refused("DEL", dotdot);
}

#[test]
fn check_refuses_absolute_and_dotdot() {
    assert_refused("CHECK", absolute);
    assert_refused("CHECK", dotdot);
}

#[test]
fn gc_refuses_absolute_and_dotdot() {
    assert_refused("GC", absolute);
    assert_refused("GC", dotdot);
}

#[test]
fn status_refuses_absolute_and_dotdot() {
    assert_refused("STATUS", absolute);
    assert_refused("STATUS", dotdot);
}

/// The control: the same payload under a plain name in CNI_PATH is found and run, so the
/// refusals above are the name rule and not a setup that could never execute anything.
#[test]
fn a_plain_name_in_cni_path_is_still_executed() {
    let s = Setup::new();
    fs::copy(s.dir.path().join("evil"), s.dir.path().join("bin/evil")).unwrap();
    let (_code, v) = s.run("STATUS", "evil");
    assert!(s.marker(), "plain name not executed: {v}");
}
