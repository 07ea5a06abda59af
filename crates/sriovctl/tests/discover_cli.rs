//! `sriovctl discover` on fixtures, through the built binary.

use std::path::Path;
use std::process::{Command, Output};

use sriov_host::fixture::{Fixture, FixtureHost, scratch_base};
use sriov_host::{discover, to_status};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sriovctl"))
        .args(args)
        .output()
        .expect("run sriovctl")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

fn fixture(shape: impl FnOnce(FixtureHost) -> FixtureHost) -> (tempfile::TempDir, Fixture) {
    let dir = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let fx = shape(FixtureHost::new(dir.path())).build().expect("fixture");
    (dir, fx)
}

fn sys(fx: &Fixture) -> &str {
    fx.sys().to_str().expect("UTF-8 path")
}

#[test]
fn json_is_the_node_state_status_list() {
    let (_d, mut fx) = fixture(|h| h.igb_82576(3).e810_two_pfs(2).non_sriov_nic());
    fx.bind_driver("0000:01:10.4", "vfio-pci").expect("vfio");
    let out = run(&["discover", "--sysfs-root", sys(&fx), "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert!(
        out.stderr.is_empty(),
        "no warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = serde_json::to_value(to_status(&discover(fx.root()).expect("discover").devices)).expect("ser");
    assert_eq!(json, want);
    let list = json.as_array().expect("a JSON list");
    assert_eq!(list.len(), 4);
    let igb = &list[0];
    for key in [
        "name",
        "mac",
        "driver",
        "pciAddress",
        "vendor",
        "deviceID",
        "mtu",
        "numVfs",
        "totalvfs",
        "Vfs",
    ] {
        assert!(igb.get(key).is_some(), "{key} missing in {igb}");
    }
    assert_eq!(igb["totalvfs"], 7);
    let vfs = igb["Vfs"].as_array().expect("Vfs");
    let ids: Vec<_> = vfs.iter().map(|v| v["vfID"].clone()).collect();
    assert_eq!(ids, [0, 1, 2]);
    assert_eq!(
        (&vfs[2]["driver"], &vfs[2]["pciAddress"]),
        (&"vfio-pci".into(), &"0000:01:10.4".into())
    );
    assert!(vfs[2].get("name").is_none(), "a vfio-pci VF has no netdev");
}

#[test]
fn yaml_is_the_same_list() {
    let (_d, fx) = fixture(|h| h.igb_82576(1).mlx_ib_pf(1));
    let yaml = stdout(&run(&["discover", "--sysfs-root", sys(&fx), "-o", "yaml"]));
    let back: Vec<sriov_host::InterfaceExt> = serde_saphyr::from_str(&yaml).expect("YAML parses back");
    assert_eq!(back, to_status(&discover(fx.root()).expect("discover").devices));
    for needle in [
        "pciAddress: \"0000:01:00.0\"",
        "totalvfs: 7",
        "Vfs:",
        "vfID: 0",
        "vendor: \"8086\"",
    ] {
        assert!(yaml.contains(needle), "{needle:?} not in:\n{yaml}");
    }
}

#[test]
fn table_fits_80_columns_with_vfs_under_their_pf() {
    let (_d, mut fx) = fixture(|h| h.igb_82576(4).e810_two_pfs(3).mlx_ib_pf(2).vm_vfs_only());
    fx.bind_driver("0000:01:10.6", "vfio-pci").expect("vfio");
    let table = stdout(&run(&["discover", "--sysfs-root", sys(&fx)]));
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line:?}\n{table}");
    }
    let lines: Vec<&str> = table.lines().collect();
    let pf = lines
        .iter()
        .position(|l| l.starts_with("0000:01:00.0"))
        .expect("igb row");
    assert!(lines[pf].contains("eth0") && lines[pf].contains("igb") && lines[pf].contains("8086:10c9"));
    assert!(
        lines[pf].contains("4/7") && lines[pf].contains("1500"),
        "{}",
        lines[pf]
    );
    assert!(
        lines[pf + 1].trim_start().starts_with("VF"),
        "VF header under the PF"
    );
    let vf0 = lines[pf + 2];
    assert!(
        vf0.starts_with("  0 ") && vf0.contains("0000:01:10.0") && vf0.contains("eth1"),
        "{vf0}"
    );
    assert!(
        vf0.contains("igbvf") && vf0.contains("02:00:00:01:10:00") && vf0.ends_with(" 7"),
        "{vf0}"
    );
    let vf3 = lines[pf + 5];
    assert!(
        vf3.contains("0000:01:10.6") && vf3.contains("vfio-pci") && vf3.ends_with("vfio/10"),
        "{vf3}"
    );
    let e810 = lines
        .iter()
        .find(|l| l.starts_with("0000:3b:00.0"))
        .expect("e810");
    assert!(e810.contains("up 25G") && e810.contains("3/256"), "{e810}");
    let vm_vf = lines
        .iter()
        .find(|l| l.starts_with("0000:00:04.0"))
        .expect("VM VF as a NIC");
    assert!(vm_vf.contains(" - "), "no SR-IOV: VFS column is -: {vm_vf}");
}

#[test]
fn warnings_go_to_stderr_and_do_not_fail() {
    let (_d, fx) = fixture(|h| h.igb_82576(2));
    fx.write_attr("0000:01:00.0", "sriov_totalvfs", "junk\n")
        .expect("garbage");
    let out = run(&["discover", "--sysfs-root", sys(&fx), "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON still printed");
    assert_eq!(json[0]["pciAddress"], "0000:01:00.0");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("warning: ") && err.contains("sriov_totalvfs") && err.contains("\"junk\""),
        "{err}"
    );
}

#[test]
fn not_a_sysfs_root_fails_naming_the_path() {
    let dir = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let out = run(&["discover", "--sysfs-root", dir.path().to_str().expect("utf-8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            &Path::new(dir.path())
                .join("bus/pci/devices")
                .display()
                .to_string()
        ),
        "{err}"
    );
}

#[test]
fn empty_host_says_so() {
    let (_d, fx) = fixture(|h| h);
    assert_eq!(
        stdout(&run(&["discover", "--sysfs-root", sys(&fx)])),
        "no PCI network functions found\n"
    );
    assert_eq!(
        stdout(&run(&["discover", "--sysfs-root", sys(&fx), "-o", "json"])).trim(),
        "[]"
    );
}
