//! Property: for any valid spec and any starting host, one sync on the in-memory kernel reaches
//! a host the plan finds nothing to do on, and the next sync writes nothing.

use proptest::prelude::*;
use sriov_api::{NodeStateInterface, NodeStateSpec, NodeStateStatus, VfGroup};
use sriov_daemon::engine::{Backend, Desired, DrainAnswer, Engine};
use sriov_daemon::fake::FakeHost;
use sriov_daemon::state::StateStore;
use sriov_daemon::{Host, Plan, Verdict, plan};
use sriov_host::{HostDevices, NetDevice, PciDevice, PfDevice};

struct Null;
impl Backend for Null {
    fn publish(&mut self, _: &NodeStateStatus) {}
    fn request_drain(&mut self, _: &Plan) -> DrainAnswer {
        DrainAnswer::Proceed
    }
    fn release_drain(&mut self) {}
}

fn pf(a: &str, nd: &str) -> PfDevice {
    PfDevice {
        pci: PciDevice {
            address: a.parse().expect("addr"),
            vendor: "8086".into(),
            device: "10c9".into(),
            class: "020000".into(),
            driver: Some("igb".into()),
            numa_node: None,
            iommu_group: None,
            vfio_dev: None,
            netdevs: vec![NetDevice {
                name: nd.into(),
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

/// (numVfs, split point, vfio for the upper group, group mtu, pf mtu) per PF; `None` = not in spec.
type PfSpec = Option<(u32, u32, bool, u32, u32)>;

fn iface(addr: &str, (n, split, vfio, gmtu, pmtu): (u32, u32, bool, u32, u32)) -> NodeStateInterface {
    let mut groups = Vec::new();
    let split = split.min(n);
    if split > 0 {
        groups.push(VfGroup {
            vf_range: format!("0-{}", split - 1),
            device_type: "netdevice".into(),
            mtu: if gmtu > 0 { 1500 + gmtu as i32 } else { 0 },
            ..VfGroup::default()
        });
    }
    if n > split {
        groups.push(VfGroup {
            vf_range: format!("{split}-{}", n - 1),
            device_type: if vfio { "vfio-pci" } else { "netdevice" }.into(),
            ..VfGroup::default()
        });
    }
    NodeStateInterface {
        pci_address: addr.into(),
        num_vfs: n as i32,
        mtu: if pmtu > 0 { 1500 + pmtu as i32 * 100 } else { 0 },
        vf_groups: groups,
        ..NodeStateInterface::default()
    }
}

fn pf_spec() -> impl Strategy<Value = PfSpec> {
    prop::option::of((0u32..=7, 0u32..=7, any::<bool>(), 0u32..3, 0u32..3))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn one_sync_converges(start in (0u32..=7, 0u32..=7), a in pf_spec(), b in pf_spec(), first in pf_spec()) {
        let host = FakeHost::new(HostDevices { pfs: vec![pf("0000:01:00.0", "eth0"), pf("0000:02:00.0", "eth1")], orphan_vfs: vec![] }, "igbvf");
        let dir = tempfile::tempdir().expect("tmp");
        let engine = Engine::new(&host, StateStore::in_dir(dir.path()));
        host.write_num_vfs(&"0000:01:00.0".parse().expect("a"), start.0).expect("start");
        host.write_num_vfs(&"0000:02:00.0".parse().expect("a"), start.1).expect("start");
        let mk = |x: PfSpec, y: PfSpec| {
            let mut interfaces = Vec::new();
            if let Some(x) = x { interfaces.push(iface("0000:01:00.0", x)); }
            if let Some(y) = y { interfaces.push(iface("0000:02:00.0", y)); }
            Desired { spec: NodeStateSpec { interfaces, ..NodeStateSpec::default() }, generation: 1 }
        };
        // an earlier spec first, then the one under test: any host state the daemon can leave
        let r0 = engine.sync(&mk(first, None), &mut Null);
        prop_assert_eq!(r0.status.sync_status.as_str(), "Succeeded", "{}", r0.status.last_sync_error);
        let d = mk(a, b);
        let r = engine.sync(&d, &mut Null);
        prop_assert_eq!(r.status.sync_status.as_str(), "Succeeded", "{}", r.status.last_sync_error);
        let devices = host.discover().expect("discover");
        let p = plan(&d.spec, &devices, &host.context(&devices)).expect("valid");
        prop_assert!(p.actions.is_empty(), "left: {:?}", p.actions);
        prop_assert_eq!(p.verdict, Verdict::NothingToDo);
        prop_assert_eq!(engine.sync(&d, &mut Null).writes, 0);
        for (i, s) in [a, b].iter().enumerate() {
            let want = s.map_or(0, |s| s.0);
            prop_assert_eq!(devices.pfs[i].num_vfs, want);
        }
    }
}
