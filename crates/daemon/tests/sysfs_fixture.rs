//! The real sysfs host on the foundation's fake sysfs trees: discovery + plan of a host that
//! already matches makes zero writes; the writes apply makes land in the kernel's files; waits
//! are bounded and their failures name the step and the device.

use std::fs;
use std::time::Duration;

use sriov_api::{NodeStateInterface, NodeStateSpec, NodeStateStatus, VfGroup};
use sriov_daemon::apply::{ApplyOptions, apply};
use sriov_daemon::engine::{Backend, Desired, DrainAnswer, Engine};
use sriov_daemon::state::StateStore;
use sriov_daemon::sysfs_host::SysfsHost;
use sriov_daemon::{Host, Plan, plan};
use sriov_host::fixture::{Fixture, FixtureHost, scratch_base};

struct Null;
impl Backend for Null {
    fn publish(&mut self, _: &NodeStateStatus) {}
    fn request_drain(&mut self, _: &Plan) -> DrainAnswer {
        DrainAnswer::Proceed
    }
    fn release_drain(&mut self) {}
}

fn lab_desired(n: i32) -> Desired {
    let g = |r: &str, d: &str| VfGroup {
        vf_range: r.into(),
        device_type: d.into(),
        ..VfGroup::default()
    };
    let iface = NodeStateInterface {
        pci_address: "0000:01:00.0".into(),
        num_vfs: n,
        vf_groups: vec![g("0-2", "netdevice"), g("3-3", "vfio-pci")],
        ..NodeStateInterface::default()
    };
    Desired {
        spec: NodeStateSpec {
            interfaces: vec![iface],
            ..NodeStateSpec::default()
        },
        generation: 2,
    }
}

/// The lab igb with 4 VFs, VF 3 on vfio-pci: what the lab spec asks for.
fn lab_fixture(dir: &std::path::Path) -> Fixture {
    let mut fx = FixtureHost::new(dir).igb_82576(4).build().expect("fixture");
    fx.unbind_driver("0000:01:10.6").expect("unbind");
    fx.bind_driver("0000:01:10.6", "vfio-pci").expect("bind");
    fx
}

fn short() -> ApplyOptions {
    ApplyOptions {
        vf_timeout: Duration::from_millis(100),
        driver_timeout: Duration::from_millis(100),
        netdev_timeout: Duration::from_millis(100),
        poll: Duration::from_millis(10),
    }
}

#[test]
fn matching_host_zero_writes_and_status() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tmp");
    let fx = lab_fixture(tmp.path());
    let host = SysfsHost::new(fx.root().clone());
    let state = tempfile::tempdir().expect("state");
    let e = Engine::new(&host, StateStore::in_dir(state.path()));
    let r = e.sync(&lab_desired(4), &mut Null);
    assert_eq!(r.status.sync_status, "Succeeded", "{}", r.status.last_sync_error);
    assert_eq!(r.writes, 0);
    assert_eq!(host.writes(), 0);
    let pf = r
        .status
        .interfaces
        .iter()
        .find(|i| i.pci_address == "0000:01:00.0")
        .expect("PF in status");
    assert_eq!(pf.num_vfs, 4);
    assert_eq!(pf.vfs[3].driver, "vfio-pci");
    assert_eq!(pf.vfs[3].vf_id, 3);
}

#[test]
fn bind_writes_the_kernel_files_and_a_stuck_probe_names_step_and_vf() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tmp");
    let fx = FixtureHost::new(tmp.path())
        .igb_82576(4)
        .build()
        .expect("fixture");
    let host = SysfsHost::new(fx.root().clone());
    let devices = host.discover().expect("discover");
    let p = plan(&lab_desired(4).spec, &devices, &host.context(&devices)).expect("plan");
    assert_eq!(p.actions.len(), 1, "{:?}", p.actions);
    let errs = apply(&host, &p, &short()).expect_err("nothing binds in a fake tree");
    assert_eq!(host.writes(), 3);
    let vf = fx.device_path("0000:01:10.6");
    assert_eq!(
        fs::read_to_string(vf.join("driver_override")).expect("override"),
        "vfio-pci\n"
    );
    let unbind = fx.sys().join("bus/pci/drivers/igbvf/unbind");
    assert_eq!(fs::read_to_string(unbind).expect("unbind"), "0000:01:10.6");
    let probe = fx.sys().join("bus/pci/drivers_probe");
    assert_eq!(fs::read_to_string(probe).expect("probe"), "0000:01:10.6");
    let msg = errs[0].to_string();
    assert!(
        msg.contains("VF 3 driver igbvf -> vfio-pci") && msg.contains("0000:01:10.6"),
        "{msg}"
    );
}

#[test]
fn vfs_that_never_appear_time_out_naming_the_pf() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tmp");
    let fx = FixtureHost::new(tmp.path())
        .igb_82576(4)
        .build()
        .expect("fixture");
    let host = SysfsHost::new(fx.root().clone());
    let devices = host.discover().expect("discover");
    let p = plan(&lab_desired(6).spec, &devices, &host.context(&devices)).expect("plan");
    let errs = apply(&host, &p, &short()).expect_err("the fake tree does not react");
    let msg = errs[0].to_string();
    assert!(
        msg.contains("numVfs 4 -> 0 -> 6") && msg.contains("0000:01:00.0"),
        "{msg}"
    );
    assert!(msg.contains("VFs still present"), "{msg}");
    let numvfs = fs::read_to_string(fx.device_path("0000:01:00.0").join("sriov_numvfs")).expect("numvfs");
    assert_eq!(numvfs, "0");
}

/// The quick check reuses the last discovery only while nothing the plan reads has changed:
/// a VF rebound behind the daemon's back is seen at the next sync.
#[test]
fn drift_behind_the_daemons_back_is_seen() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tmp");
    let mut fx = lab_fixture(tmp.path());
    let host = SysfsHost::new(fx.root().clone());
    let state = tempfile::tempdir().expect("state");
    let mut e = Engine::new(&host, StateStore::in_dir(state.path()));
    e.opts = short();
    assert_eq!(e.sync(&lab_desired(4), &mut Null).status.sync_status, "Succeeded");
    assert_eq!(e.sync(&lab_desired(4), &mut Null).writes, 0);
    fx.unbind_driver("0000:01:10.6").expect("unbind");
    fx.bind_driver("0000:01:10.6", "igbvf").expect("bind");
    let r = e.sync(&lab_desired(4), &mut Null);
    let actions: Vec<String> = r
        .plan
        .expect("plan")
        .actions
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(actions, ["0000:01:00.0: VF 3 driver igbvf -> vfio-pci"]);
}
