//! `sriovctl render --diff`: what a policy change does to each node, before it is applied. The
//! input is a cluster whose node state already carries the spec of a 2-VF policy and reports 2
//! VFs; the policy now asks for 4 VFs with MTU 9000.

use std::path::Path;
use std::process::{Command, Output};

fn cluster() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/render_diff_cluster.yaml")
        .display()
        .to_string()
}

fn diff(file: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sriovctl"))
        .args(["render", "--diff", "-f", file])
        .env("NAMESPACE", "sriov-network-operator")
        .output()
        .expect("sriovctl runs")
}

fn stdout(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_policy_change_shows_the_pf_change_and_the_drain_it_depends_on() {
    let text = stdout(&diff(&cluster()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "node w1:",
            "  0000:65:00.0: numVfs 2 -> 4; mtu 0 -> 9000; vfGroups -[intelnics 0-1 netdevice] +[intelnics 0-3 netdevice mtu 9000]",
            "  daemon, VFs idle: apply without drain",
            "  daemon, VFs in use: drain first: [0000:65:00.0: numVfs 2 -> 4 destroys its VFs while VFs 0000:65:01.0, 0000:65:01.1 are in use]",
        ]
    );
}

#[test]
fn an_unchanged_policy_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let same = std::fs::read_to_string(cluster())
        .expect("read")
        .replace("numVfs: 4", "numVfs: 2")
        .replace("  mtu: 9000\n", "");
    let p = dir.path().join("same.yaml");
    std::fs::write(&p, same).expect("write");
    let text = stdout(&diff(&p.display().to_string()));
    assert_eq!(text, "node w1:\n  spec unchanged\n  daemon: nothing to do\n");
}

#[test]
fn a_node_without_a_current_state_is_all_added() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(cluster()).expect("read");
    // Drop the current spec: the node state as the daemon first creates it (status only).
    let start = text.find("spec:\n  interfaces:").expect("spec in fixture");
    let end = text.find("status:").expect("status in fixture");
    let p = dir.path().join("new.yaml");
    std::fs::write(&p, format!("{}{}", &text[..start], &text[end..])).expect("write");
    let out = stdout(&diff(&p.display().to_string()));
    assert!(
        out.contains(
            "  0000:65:00.0: added (numVfs 4, mtu 9000, vfGroups intelnics 0-3 netdevice mtu 9000)\n"
        ),
        "{out}"
    );
}
