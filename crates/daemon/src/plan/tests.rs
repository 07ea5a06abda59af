//! Table tests of the plan: (spec, host, context) → actions + verdict, including the cases where
//! upstream drains and sriov-rs need not.

use std::collections::BTreeSet;

use sriov_api::{NodeStateInterface, NodeStateSpec, VfGroup};
use sriov_host::{HostDevices, NetDevice, PciAddress, PciDevice, PfDevice, VfDevice};

use super::*;

pub(super) fn addr(s: &str) -> PciAddress {
    s.parse().expect("test address")
}

fn pci(a: &str, driver: Option<&str>, netdev: Option<(&str, u32)>) -> PciDevice {
    PciDevice {
        address: addr(a),
        vendor: "8086".into(),
        device: "10ca".into(),
        class: "020000".into(),
        driver: driver.map(str::to_string),
        numa_node: None,
        iommu_group: Some(1),
        vfio_dev: None,
        netdevs: netdev
            .map(|(n, mtu)| {
                vec![NetDevice {
                    name: n.into(),
                    mtu,
                    ..NetDevice::default()
                }]
            })
            .unwrap_or_default(),
        rdma_devices: vec![],
        acpi_index: None,
    }
}

/// PF `0000:0B:00.0`-style with `vfs` drivers: "igbvf" (with netdev, mtu 1500), "igbvf-" (no netdev:
/// moved into a pod), "vfio-pci", "" (no driver).
pub(super) fn pf(a: &str, total: u32, vfs: &[&str]) -> PfDevice {
    let bus = &a[..7];
    let vfs = vfs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let va = format!("{bus}:{:02x}.{}", 0x10 + i / 8, i % 8);
            let nd_name = format!("{}v{i}", &a[5..7]);
            let (drv, nd) = match *d {
                "" => (None, None),
                "igbvf-" => (Some("igbvf"), None),
                "vfio-pci" => (Some("vfio-pci"), None),
                other => (Some(other), Some((nd_name.as_str(), 1500))),
            };
            VfDevice {
                pci: pci(&va, drv, nd),
                vf_index: Some(i as u32),
                pf_address: Some(addr(a)),
            }
        })
        .collect::<Vec<_>>();
    PfDevice {
        pci: pci(a, Some("igb"), Some((&format!("eth{}", &a[5..7]), 1500))),
        total_vfs: total,
        num_vfs: vfs.len() as u32,
        eswitch_mode: None,
        vfs,
    }
}

pub(super) fn group(range: &str, dev: &str) -> VfGroup {
    VfGroup {
        resource_name: "r".into(),
        device_type: dev.into(),
        vf_range: range.into(),
        ..VfGroup::default()
    }
}

pub(super) fn iface(a: &str, n: i32, groups: Vec<VfGroup>) -> NodeStateInterface {
    NodeStateInterface {
        pci_address: a.into(),
        num_vfs: n,
        vf_groups: groups,
        ..NodeStateInterface::default()
    }
}

pub(super) fn spec(ifaces: Vec<NodeStateInterface>) -> NodeStateSpec {
    NodeStateSpec {
        interfaces: ifaces,
        ..NodeStateSpec::default()
    }
}

pub(super) fn host(pfs: Vec<PfDevice>) -> HostDevices {
    HostDevices {
        pfs,
        orphan_vfs: vec![],
    }
}

pub(super) fn ctx(in_use: &[&str]) -> PlanContext {
    PlanContext {
        vfs_in_use: in_use.iter().map(|a| addr(a)).collect::<BTreeSet<_>>(),
        iommu_enabled: true,
        reset_only: None,
    }
}

pub(super) const P1: &str = "0000:01:00.0";
pub(super) const P2: &str = "0000:02:00.0";

/// The lab's spec: 4 VFs, 0-2 netdevice, 3-3 vfio-pci.
pub(super) fn lab(n: i32) -> NodeStateInterface {
    iface(P1, n, vec![group("0-2", "netdevice"), group("3-3", "vfio-pci")])
}
pub(super) fn lab_host() -> PfDevice {
    pf(P1, 7, &["igbvf", "igbvf", "igbvf", "vfio-pci"])
}

/// The verdict's kind and, for drains, the PFs named.
fn kind(v: &Verdict) -> String {
    match v {
        Verdict::NothingToDo => "nothing".into(),
        Verdict::Apply => "apply".into(),
        Verdict::Drain { pfs } => {
            format!(
                "drain {}",
                pfs.iter().map(|d| d.pf.as_str()).collect::<Vec<_>>().join(",")
            )
        }
        Verdict::Reboot { .. } => "reboot".into(),
    }
}

struct Case {
    name: &'static str,
    spec: NodeStateSpec,
    host: HostDevices,
    ctx: PlanContext,
    actions: &'static [&'static str],
    verdict: &'static str,
}

fn cases() -> Vec<Case> {
    let mtu_iface = |mtu| NodeStateInterface { mtu, ..lab(4) };
    let mut mtu_group = lab(4);
    mtu_group.vf_groups[0].mtu = 9000;
    let mut ext = lab(2);
    ext.externally_managed = true;
    ext.vf_groups = vec![group("0-1", "netdevice")];
    let mut switchdev = lab(4);
    switchdev.e_switch_mode = "switchdev".into();
    let mut esw_host = lab_host();
    esw_host.eswitch_mode = Some("legacy".into());
    let mut legacy_on_igb = lab(4);
    legacy_on_igb.e_switch_mode = "legacy".into();
    vec![
        Case {
            name: "host matches the spec: nothing to do",
            spec: spec(vec![lab(4)]),
            host: host(vec![lab_host()]),
            ctx: ctx(&[]),
            actions: &[],
            verdict: "nothing",
        },
        Case {
            name: "legacy eSwitchMode on a PF without e-switch is already met",
            spec: spec(vec![legacy_on_igb]),
            host: host(vec![lab_host()]),
            ctx: ctx(&[]),
            actions: &[],
            verdict: "nothing",
        },
        Case {
            name: "first creation from 0 VFs never drains",
            spec: spec(vec![lab(4)]),
            host: host(vec![pf(P1, 7, &[])]),
            ctx: ctx(&[]),
            actions: &[
                "0000:01:00.0: numVfs 0 -> 4",
                "0000:01:00.0: VF 3 driver none -> vfio-pci",
            ],
            verdict: "apply",
        },
        Case {
            name: "numVfs 4 -> 6 with unused VFs: re-create through 0, no drain (upstream drains)",
            spec: spec(vec![lab(6)]),
            host: host(vec![lab_host()]),
            ctx: ctx(&[]),
            actions: &[
                "0000:01:00.0: numVfs 4 -> 0 -> 6 (re-create VFs)",
                "0000:01:00.0: VF 3 driver none -> vfio-pci",
            ],
            verdict: "apply",
        },
        Case {
            name: "numVfs change with a VF in use drains that PF",
            spec: spec(vec![lab(6)]),
            host: host(vec![pf(P1, 7, &["igbvf", "igbvf-", "igbvf", "vfio-pci"])]),
            ctx: ctx(&["0000:01:10.1"]),
            actions: &[
                "0000:01:00.0: numVfs 4 -> 0 -> 6 (re-create VFs)",
                "0000:01:00.0: VF 3 driver none -> vfio-pci",
            ],
            verdict: "drain 0000:01:00.0",
        },
        Case {
            name: "PF MTU increase with VFs in use: live, no drain (upstream drains)",
            spec: spec(vec![mtu_iface(9000)]),
            host: host(vec![pf(P1, 7, &["igbvf", "igbvf-", "igbvf", "vfio-pci"])]),
            ctx: ctx(&["0000:01:10.1"]),
            actions: &["0000:01:00.0: PF eth01 mtu 1500 -> 9000"],
            verdict: "apply",
        },
        Case {
            name: "PF MTU decrease is applied too (no endless reconcile)",
            spec: spec(vec![mtu_iface(1400)]),
            host: host(vec![lab_host()]),
            ctx: ctx(&[]),
            actions: &["0000:01:00.0: PF eth01 mtu 1500 -> 1400"],
            verdict: "apply",
        },
        Case {
            name: "driver change of an unused VF while another VF is in use: no drain (upstream drains)",
            spec: spec(vec![lab(4)]),
            host: host(vec![pf(P1, 7, &["igbvf-", "igbvf", "igbvf", "igbvf"])]),
            ctx: ctx(&["0000:01:10.0"]),
            actions: &["0000:01:00.0: VF 3 driver igbvf -> vfio-pci"],
            verdict: "apply",
        },
        Case {
            name: "driver change of a VF in use drains",
            spec: spec(vec![iface(P1, 4, vec![group("0-3", "netdevice")])]),
            host: host(vec![lab_host()]),
            ctx: ctx(&["0000:01:10.3"]),
            actions: &["0000:01:00.0: VF 3 driver vfio-pci -> default driver (netdevice)"],
            verdict: "drain 0000:01:00.0",
        },
        Case {
            name: "PF removed from the spec is reset to 0 VFs, no drain when unused",
            spec: spec(vec![]),
            host: host(vec![lab_host()]),
            ctx: ctx(&[]),
            actions: &["0000:01:00.0: numVfs 4 -> 0"],
            verdict: "apply",
        },
        Case {
            name: "PF removed from the spec with a VF in use drains",
            spec: spec(vec![]),
            host: host(vec![lab_host()]),
            ctx: ctx(&["0000:01:10.3"]),
            actions: &["0000:01:00.0: numVfs 4 -> 0"],
            verdict: "drain 0000:01:00.0",
        },
        Case {
            name: "Kubernetes mode: a PF absent from the spec whose VFs this daemon did not create is left alone",
            spec: spec(vec![]),
            host: host(vec![lab_host(), pf(P2, 7, &["igbvf"])]),
            ctx: PlanContext {
                reset_only: Some([addr(P2)].into()),
                ..ctx(&[])
            },
            actions: &["0000:02:00.0: numVfs 1 -> 0"],
            verdict: "apply",
        },
        Case {
            name: "PF absent from the spec with 0 VFs: nothing",
            spec: spec(vec![]),
            host: host(vec![pf(P1, 7, &[])]),
            ctx: ctx(&[]),
            actions: &[],
            verdict: "nothing",
        },
        Case {
            name: "each PF whose used VFs are disrupted is named",
            spec: spec(vec![lab(6), iface(P2, 3, vec![group("0-2", "netdevice")])]),
            host: host(vec![
                pf(P1, 7, &["igbvf-", "igbvf", "igbvf", "vfio-pci"]),
                pf(P2, 7, &["igbvf-"]),
            ]),
            ctx: ctx(&["0000:01:10.0", "0000:02:10.0"]),
            actions: &[
                "0000:01:00.0: numVfs 4 -> 0 -> 6 (re-create VFs)",
                "0000:01:00.0: VF 3 driver none -> vfio-pci",
                "0000:02:00.0: numVfs 1 -> 0 -> 3 (re-create VFs)",
            ],
            verdict: "drain 0000:01:00.0,0000:02:00.0",
        },
        Case {
            name: "a PF whose used VFs are untouched is not drained while another PF changes",
            spec: spec(vec![lab(6), iface(P2, 1, vec![group("0-0", "netdevice")])]),
            host: host(vec![lab_host(), pf(P2, 7, &["igbvf-"])]),
            ctx: ctx(&["0000:02:10.0"]),
            actions: &[
                "0000:01:00.0: numVfs 4 -> 0 -> 6 (re-create VFs)",
                "0000:01:00.0: VF 3 driver none -> vfio-pci",
            ],
            verdict: "apply",
        },
        Case {
            name: "vfio-pci without an IOMMU needs a reboot (kernel arguments)",
            spec: spec(vec![lab(4)]),
            host: host(vec![pf(P1, 7, &[])]),
            ctx: PlanContext {
                iommu_enabled: false,
                ..ctx(&[])
            },
            actions: &["0000:01:00.0: numVfs 0 -> 4"],
            verdict: "reboot",
        },
        Case {
            name: "group MTU on VF netdevs; a VF in use keeps its MTU (no drain)",
            spec: spec(vec![mtu_group]),
            host: host(vec![pf(P1, 7, &["igbvf", "igbvf-", "igbvf", "vfio-pci"])]),
            ctx: ctx(&["0000:01:10.1"]),
            actions: &[
                "0000:01:00.0: VF 0 mtu 1500 -> 9000",
                "0000:01:00.0: VF 2 mtu 1500 -> 9000",
            ],
            verdict: "apply",
        },
        Case {
            name: "VF without a driver (autoprobe off) in a netdevice group is bound",
            spec: spec(vec![lab(4)]),
            host: host(vec![pf(P1, 7, &["igbvf", "", "igbvf", "vfio-pci"])]),
            ctx: ctx(&[]),
            actions: &["0000:01:00.0: VF 1 driver none -> default driver (netdevice)"],
            verdict: "apply",
        },
        Case {
            name: "VFs outside every group are left alone",
            spec: spec(vec![iface(P1, 4, vec![group("0-1", "netdevice")])]),
            host: host(vec![lab_host()]),
            ctx: ctx(&[]),
            actions: &[],
            verdict: "nothing",
        },
        Case {
            name: "externally managed: VFs are never re-created, groups still configured",
            spec: spec(vec![ext]),
            host: host(vec![pf(P1, 7, &["igbvf", "vfio-pci", "igbvf"])]),
            ctx: ctx(&[]),
            actions: &["0000:01:00.0: VF 1 driver vfio-pci -> default driver (netdevice)"],
            verdict: "apply",
        },
        Case {
            name: "e-switch to switchdev with VFs in use drains",
            spec: spec(vec![switchdev.clone()]),
            host: host(vec![esw_host.clone()]),
            ctx: ctx(&["0000:01:10.3"]),
            actions: &["0000:01:00.0: eSwitchMode legacy -> switchdev"],
            verdict: "drain 0000:01:00.0",
        },
        Case {
            name: "e-switch to switchdev with unused VFs: no drain",
            spec: spec(vec![switchdev]),
            host: host(vec![esw_host]),
            ctx: ctx(&[]),
            actions: &["0000:01:00.0: eSwitchMode legacy -> switchdev"],
            verdict: "apply",
        },
        Case {
            name: "order within a PF: numVfs, PF MTU, drivers, VF MTUs",
            spec: spec(vec![{
                let mut i = iface(P1, 2, vec![group("0-0", "netdevice"), group("1-1", "vfio-pci")]);
                i.mtu = 9000;
                i.vf_groups[0].mtu = 9000;
                i
            }]),
            host: host(vec![pf(P1, 7, &[])]),
            ctx: ctx(&[]),
            actions: &[
                "0000:01:00.0: numVfs 0 -> 2",
                "0000:01:00.0: PF eth01 mtu 1500 -> 9000",
                "0000:01:00.0: VF 1 driver none -> vfio-pci",
                "0000:01:00.0: VF 0 mtu -> 9000",
            ],
            verdict: "apply",
        },
    ]
}

#[test]
fn plan_table() {
    for c in cases() {
        let p =
            plan(&c.spec, &c.host, &c.ctx).unwrap_or_else(|e| panic!("{}: unexpected errors {e:?}", c.name));
        let got: Vec<String> = p.actions.iter().map(|a| a.to_string()).collect();
        assert_eq!(got, c.actions, "{}: actions", c.name);
        assert_eq!(kind(&p.verdict), c.verdict, "{}: verdict {}", c.name, p.verdict);
    }
}

#[test]
fn drain_reason_names_pf_change_and_vfs() {
    let p = plan(
        &spec(vec![lab(6)]),
        &host(vec![pf(P1, 7, &["igbvf", "igbvf-"])]),
        &ctx(&["0000:01:10.1"]),
    )
    .expect("plan");
    let Verdict::Drain { pfs } = &p.verdict else {
        panic!("expected a drain, got {}", p.verdict)
    };
    assert_eq!(pfs[0].pf.as_str(), P1);
    assert!(pfs[0].reason.contains("numVfs 2 -> 6"), "{}", pfs[0].reason);
    assert!(pfs[0].reason.contains("0000:01:10.1"), "{}", pfs[0].reason);
}

#[test]
fn reboot_reason_names_kernel_arguments() {
    let c = PlanContext {
        iommu_enabled: false,
        ..ctx(&[])
    };
    let p = plan(&spec(vec![lab(4)]), &host(vec![pf(P1, 7, &[])]), &c).expect("plan");
    assert!(p.verdict.to_string().contains("intel_iommu=on"), "{}", p.verdict);
    assert!(p.verdict.to_string().contains("VF 3"), "{}", p.verdict);
}

#[test]
fn in_use_vf_mtu_is_noted() {
    let mut i = lab(4);
    i.vf_groups[0].mtu = 9000;
    let p = plan(
        &spec(vec![i]),
        &host(vec![pf(P1, 7, &["igbvf-", "igbvf-", "igbvf-", "vfio-pci"])]),
        &ctx(&["0000:01:10.0", "0000:01:10.1", "0000:01:10.2"]),
    )
    .expect("plan");
    assert_eq!(p.verdict, Verdict::NothingToDo);
    assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
}
