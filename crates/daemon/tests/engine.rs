//! The engine on the in-memory kernel: apply, verify, idempotence, restarts, crashes at every
//! write, bad specs, drains, reboots.

use sriov_api::{NodeStateInterface, NodeStateSpec, NodeStateStatus, VfGroup};
use sriov_daemon::engine::{Backend, Desired, DrainAnswer, Engine};
use sriov_daemon::fake::FakeHost;
use sriov_daemon::state::StateStore;
use sriov_daemon::{Host, Plan};
use sriov_host::{HostDevices, NetDevice, PciDevice, PfDevice};

const P1: &str = "0000:01:00.0";
const P2: &str = "0000:02:00.0";

fn pf(a: &str, netdev: &str) -> PfDevice {
    PfDevice {
        pci: PciDevice {
            address: a.parse().expect("addr"),
            vendor: "8086".into(),
            device: "10c9".into(),
            class: "020000".into(),
            driver: Some("igb".into()),
            numa_node: None,
            iommu_group: Some(5),
            vfio_dev: None,
            netdevs: vec![NetDevice {
                name: netdev.into(),
                mtu: 1500,
                ..NetDevice::default()
            }],
            rdma_devices: vec![],
            acpi_index: None,
        },
        total_vfs: 7,
        num_vfs: 0,
        eswitch_mode: None,
        vfs: vec![],
    }
}

fn fake() -> FakeHost {
    FakeHost::new(
        HostDevices {
            pfs: vec![pf(P1, "eth0"), pf(P2, "eth1")],
            orphan_vfs: vec![],
        },
        "igbvf",
    )
}

fn group(range: &str, dev: &str, mtu: i32) -> VfGroup {
    VfGroup {
        resource_name: "r".into(),
        device_type: dev.into(),
        vf_range: range.into(),
        mtu,
        ..VfGroup::default()
    }
}

fn lab_spec(n: i32, mtu: i32) -> Desired {
    let iface = NodeStateInterface {
        pci_address: P1.into(),
        num_vfs: n,
        mtu,
        vf_groups: vec![group("0-2", "netdevice", 0), group("3-3", "vfio-pci", 0)],
        ..NodeStateInterface::default()
    };
    Desired {
        spec: NodeStateSpec {
            interfaces: vec![iface],
            ..NodeStateSpec::default()
        },
        generation: 1,
    }
}

#[derive(Default)]
struct Recorder {
    published: Vec<NodeStateStatus>,
    drain_answer: Option<DrainAnswer>,
    drains_requested: usize,
    released: usize,
}

impl Backend for Recorder {
    fn publish(&mut self, status: &NodeStateStatus) {
        self.published.push(status.clone());
    }
    fn request_drain(&mut self, _plan: &Plan) -> DrainAnswer {
        self.drains_requested += 1;
        self.drain_answer.clone().unwrap_or(DrainAnswer::Proceed)
    }
    fn release_drain(&mut self) {
        self.released += 1;
    }
}

fn engine<'a>(host: &'a FakeHost, dir: &tempfile::TempDir) -> Engine<'a> {
    Engine::new(host, StateStore::in_dir(dir.path()))
}

fn drivers(host: &FakeHost, pf: &str) -> Vec<String> {
    let d = host.devices();
    let p = d.pfs.iter().find(|p| p.pci.address.as_str() == pf).expect("pf");
    p.vfs
        .iter()
        .map(|v| v.pci.driver.clone().unwrap_or_default())
        .collect()
}

#[test]
fn lab_spec_applies_then_reapplies_with_zero_writes() {
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let e = engine(&host, &dir);
    let mut b = Recorder::default();
    let r = e.sync(&lab_spec(4, 0), &mut b);
    assert_eq!(r.status.sync_status, "Succeeded", "{}", r.status.last_sync_error);
    assert_eq!(drivers(&host, P1), ["igbvf", "igbvf", "igbvf", "vfio-pci"]);
    // numvfs + override + unbind + probe
    assert_eq!(r.writes, 4);
    let st = b
        .published
        .iter()
        .map(|s| s.sync_status.as_str())
        .collect::<Vec<_>>();
    assert_eq!(st, ["InProgress", "Succeeded"]);

    let again = e.sync(&lab_spec(4, 0), &mut b);
    assert_eq!(again.writes, 0);
    assert_eq!(again.status.sync_status, "Succeeded");

    // A restarted daemon (new engine, same state dir) with the same spec: nothing, no InProgress.
    let e2 = engine(&host, &dir);
    let mut b2 = Recorder::default();
    let r2 = e2.sync(&lab_spec(4, 0), &mut b2);
    assert_eq!(r2.writes, 0);
    assert_eq!(
        b2.published
            .iter()
            .map(|s| s.sync_status.as_str())
            .collect::<Vec<_>>(),
        ["Succeeded"]
    );
    let saved = StateStore::in_dir(dir.path()).load();
    assert!(
        saved.applied.is_some() && saved.in_progress.is_none(),
        "{saved:?}"
    );
}

#[test]
fn grow_remove_and_mtu() {
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let e = engine(&host, &dir);
    let mut b = Recorder::default();
    e.sync(&lab_spec(4, 0), &mut b);
    let before: Vec<_> = host.devices().pfs[0]
        .vfs
        .iter()
        .map(|v| v.pci.address.clone())
        .collect();
    let r = e.sync(&lab_spec(6, 0), &mut b);
    assert_eq!(r.status.sync_status, "Succeeded", "{}", r.status.last_sync_error);
    assert_eq!(
        drivers(&host, P1),
        ["igbvf", "igbvf", "igbvf", "vfio-pci", "igbvf", "igbvf"]
    );
    assert_eq!(
        host.devices().pfs[0].vfs[..4]
            .iter()
            .map(|v| v.pci.address.clone())
            .collect::<Vec<_>>(),
        before
    );

    let r = e.sync(&lab_spec(6, 9000), &mut b);
    assert_eq!(r.status.sync_status, "Succeeded");
    assert_eq!(r.writes, 1, "only the PF MTU is written");
    assert_eq!(host.devices().pfs[0].pci.netdevs[0].mtu, 9000);

    let empty = Desired {
        spec: NodeStateSpec::default(),
        generation: 3,
    };
    let r = e.sync(&empty, &mut b);
    assert_eq!(r.status.sync_status, "Succeeded");
    assert_eq!(host.devices().pfs[0].num_vfs, 0);
    assert_eq!(r.writes, 1);
}

#[test]
fn vf_group_mtu_on_new_vfs() {
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = lab_spec(4, 9000);
    d.spec.interfaces[0].vf_groups[0].mtu = 9000;
    let r = engine(&host, &dir).sync(&d, &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Succeeded", "{}", r.status.last_sync_error);
    let mtus: Vec<u32> = host.devices().pfs[0].vfs[..3]
        .iter()
        .map(|v| v.pci.netdevs[0].mtu)
        .collect();
    assert_eq!(mtus, [9000, 9000, 9000]);
}

/// A crash at any write, then a restart: the same end state as an uninterrupted apply.
#[test]
fn crash_at_every_write_resumes_to_the_same_end_state() {
    let reference = fake();
    let rdir = tempfile::tempdir().expect("tmp");
    let mut d = lab_spec(4, 9000);
    d.spec.interfaces[0].vf_groups[0].mtu = 9000;
    // Start from 2 VFs so the apply goes N -> 0 -> M.
    let start = |h: &FakeHost, dir: &tempfile::TempDir| {
        engine(h, dir).sync(
            &lab_spec(2, 0).tap(|d| d.spec.interfaces[0].vf_groups.truncate(0)),
            &mut Recorder::default(),
        )
    };
    start(&reference, &rdir);
    let w0 = reference.writes();
    let r = engine(&reference, &rdir).sync(&d, &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Succeeded");
    let total = reference.writes() - w0;
    assert!(total >= 8, "{total} writes");
    for k in 0..total {
        let host = fake();
        let dir = tempfile::tempdir().expect("tmp");
        start(&host, &dir);
        host.fail_from(Some(host.writes() + k));
        let crashed = engine(&host, &dir).sync(&d, &mut Recorder::default());
        assert_eq!(crashed.status.sync_status, "Failed", "crash at write {k}");
        assert!(
            crashed.status.last_sync_error.contains("step"),
            "{}",
            crashed.status.last_sync_error
        );
        assert!(StateStore::in_dir(dir.path()).load().in_progress.is_some());
        host.fail_from(None);
        let resumed = engine(&host, &dir).sync(&d, &mut Recorder::default());
        assert_eq!(
            resumed.status.sync_status, "Succeeded",
            "resume after crash at {k}: {}",
            resumed.status.last_sync_error
        );
        assert_eq!(
            host.devices(),
            reference.devices(),
            "end state after a crash at write {k}"
        );
        assert!(StateStore::in_dir(dir.path()).load().in_progress.is_none());
    }
}

trait Tap: Sized {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}
impl Tap for Desired {}

#[test]
fn bad_spec_fails_with_pf_and_field_and_writes_nothing() {
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = lab_spec(8, 0);
    d.spec.interfaces.push(NodeStateInterface {
        pci_address: P2.into(),
        num_vfs: 2,
        vf_groups: vec![group("0-1", "e1000-magic", 0)],
        ..NodeStateInterface::default()
    });
    let r = engine(&host, &dir).sync(&d, &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Failed");
    assert_eq!(r.writes, 0);
    let m = &r.status.last_sync_error;
    for want in [
        "nothing applied",
        P1,
        "numVfs 8",
        P2,
        "vfGroups[0].deviceType",
        "e1000-magic",
    ] {
        assert!(m.contains(want), "{m:?} lacks {want}");
    }
    assert!(!r.status.interfaces.is_empty() || host.devices().pfs.is_empty());
}

#[test]
fn drain_is_requested_only_when_used_vfs_are_disrupted() {
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let e = engine(&host, &dir);
    let mut b = Recorder::default();
    e.sync(&lab_spec(4, 0), &mut b);
    assert_eq!(b.drains_requested, 0);
    let vf1 = host.devices().pfs[0].vfs[1].pci.address.clone();
    host.set_in_use([vf1].into());
    // MTU on the PF: live.
    e.sync(&lab_spec(4, 9000), &mut b);
    assert_eq!(b.drains_requested, 0);
    // numVfs change: drain; the drainer says wait → nothing written.
    b.drain_answer = Some(DrainAnswer::Wait("pods still evicting".into()));
    let w = host.writes();
    let r = e.sync(&lab_spec(6, 9000), &mut b);
    assert_eq!((b.drains_requested, host.writes() - w), (1, 0));
    assert_eq!(r.status.sync_status, "InProgress");
    assert!(r.status.last_sync_error.contains("pods still evicting"));
    b.drain_answer = None;
    let r = e.sync(&lab_spec(6, 9000), &mut b);
    assert_eq!(r.status.sync_status, "Succeeded");
    assert_eq!((b.drains_requested, b.released), (2, 1));
}

#[test]
fn no_iommu_applies_the_rest_and_reports_reboot() {
    let host = fake();
    host.set_iommu(false);
    let dir = tempfile::tempdir().expect("tmp");
    let r = engine(&host, &dir).sync(&lab_spec(4, 0), &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Failed");
    assert!(
        r.status.last_sync_error.contains("reboot needed"),
        "{}",
        r.status.last_sync_error
    );
    assert!(r.status.last_sync_error.contains("intel_iommu=on"));
    assert_eq!(drivers(&host, P1), ["igbvf"; 4]);
    // Again: nothing left to write, still Failed with the reason, and no InProgress flip.
    let mut b = Recorder::default();
    let again = engine(&host, &dir).sync(&lab_spec(4, 0), &mut b);
    assert_eq!(again.writes, 0);
    assert_eq!(
        b.published
            .iter()
            .map(|s| s.sync_status.as_str())
            .collect::<Vec<_>>(),
        ["Failed"]
    );
    assert!(again.status.last_sync_error.contains("reboot needed"));
}

#[test]
fn autoprobe_off_binds_netdevice_vfs_in_a_second_round() {
    let host = fake();
    host.set_autoprobe(false);
    let dir = tempfile::tempdir().expect("tmp");
    let r = engine(&host, &dir).sync(&lab_spec(4, 0), &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Succeeded", "{}", r.status.last_sync_error);
    assert_eq!(drivers(&host, P1), ["igbvf", "igbvf", "igbvf", "vfio-pci"]);
}

#[test]
fn independent_pfs_both_apply() {
    let host = fake();
    let dir = tempfile::tempdir().expect("tmp");
    let mut d = lab_spec(4, 0);
    d.spec.interfaces.push(NodeStateInterface {
        pci_address: P2.into(),
        num_vfs: 7,
        vf_groups: vec![group("0-6", "vfio-pci", 0)],
        ..NodeStateInterface::default()
    });
    let r = engine(&host, &dir).sync(&d, &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Succeeded", "{}", r.status.last_sync_error);
    assert_eq!(drivers(&host, P2), ["vfio-pci"; 7]);
}

/// Kubernetes mode resets only the PFs it configured; VFs created by someone else stay.
#[test]
fn managed_only_resets_only_its_own_pfs() {
    let host = fake();
    sriov_daemon::Host::write_num_vfs(&host, &P1.parse().expect("addr"), 3).expect("external VFs");
    let dir = tempfile::tempdir().expect("tmp");
    let mut e = engine(&host, &dir);
    e.managed_only = true;
    let mut d = lab_spec(2, 0);
    d.spec.interfaces[0].pci_address = P2.into();
    d.spec.interfaces[0].vf_groups = vec![group("0-1", "netdevice", 0)];
    let r = e.sync(&d, &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Succeeded", "{}", r.status.last_sync_error);
    let nums = |h: &FakeHost| h.devices().pfs.iter().map(|p| p.num_vfs).collect::<Vec<_>>();
    assert_eq!(nums(&host), [3, 2]);
    let empty = Desired {
        spec: NodeStateSpec::default(),
        generation: 2,
    };
    let r = e.sync(&empty, &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Succeeded");
    assert_eq!(nums(&host), [3, 0], "only the daemon's own PF is reset");
    // File mode (the default) resets every PF absent from the spec.
    let r = engine(&host, &dir).sync(&empty, &mut Recorder::default());
    assert_eq!(r.status.sync_status, "Succeeded");
    assert_eq!(nums(&host), [0, 0]);
}
