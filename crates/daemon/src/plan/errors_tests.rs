//! Bad specs: every error names the PF, the field and the value; nothing is planned.

use sriov_api::NodeStateInterface;
use sriov_host::PfDevice;

use super::tests::{P1, P2, ctx, group, host, iface, lab, lab_host, pf, spec};
use super::*;

#[test]
fn bad_specs() {
    let h = host(vec![
        lab_host(),
        PfDevice {
            total_vfs: 0,
            ..pf(P2, 0, &[])
        },
    ]);
    let bad = |i: NodeStateInterface| plan(&spec(vec![i]), &h, &ctx(&[])).expect_err("must be rejected");
    let cases: Vec<(NodeStateInterface, &[&str])> = vec![
        (lab(8), &["0000:01:00.0", "numVfs 8", "sriov_totalvfs 7"]),
        (lab(-1), &["0000:01:00.0", "numVfs -1"]),
        (
            iface("0000:09:00.0", 2, vec![]),
            &["0000:09:00.0", "pciAddress", "no such PF"],
        ),
        (iface("not-a-pci", 2, vec![]), &["not-a-pci", "pciAddress"]),
        (
            iface(P1, 4, vec![group("0-3", "dpdk-magic")]),
            &["0000:01:00.0", "vfGroups[0].deviceType", "dpdk-magic"],
        ),
        (
            iface(P1, 4, vec![group("0-4", "netdevice")]),
            &["0000:01:00.0", "vfGroups[0].vfRange", "0-4"],
        ),
        (
            iface(P1, 4, vec![group("3-1", "netdevice")]),
            &["vfGroups[0].vfRange", "3-1"],
        ),
        (
            iface(P1, 4, vec![group("x", "netdevice")]),
            &["vfGroups[0].vfRange", "\"x\""],
        ),
        (
            iface(P1, 4, vec![group("0-2", "netdevice"), group("2-3", "vfio-pci")]),
            &["vfGroups[1].vfRange", "overlaps vfGroups[0]"],
        ),
        (
            iface(P2, 2, vec![]),
            &["0000:02:00.0", "numVfs 2", "not SR-IOV capable"],
        ),
        (
            NodeStateInterface { mtu: 10, ..lab(4) },
            &["0000:01:00.0", "mtu 10"],
        ),
        (
            NodeStateInterface {
                e_switch_mode: "switchdev".into(),
                ..lab(4)
            },
            &["eSwitchMode", "switchdev"],
        ),
        (
            NodeStateInterface {
                e_switch_mode: "fancy".into(),
                ..lab(4)
            },
            &["eSwitchMode", "fancy"],
        ),
        (
            NodeStateInterface {
                link_type: "token-ring".into(),
                ..lab(4)
            },
            &["linkType", "token-ring"],
        ),
        (
            NodeStateInterface {
                externally_managed: true,
                ..lab(6)
            },
            &["numVfs 6", "externallyManaged", "4 VFs"],
        ),
    ];
    for (i, want) in cases {
        let errs = bad(i.clone());
        let msg = errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
        for w in want {
            assert!(msg.contains(w), "{i:?}: {msg:?} lacks {w:?}");
        }
    }
    let dup = plan(&spec(vec![lab(4), lab(4)]), &h, &ctx(&[])).expect_err("duplicate");
    assert!(matches!(dup[0], SpecError::DuplicatePf { .. }), "{dup:?}");
}

#[test]
fn vf_range_parse() {
    assert_eq!(crate::spec_error::parse_range("0-2"), Ok(0..=2));
    assert_eq!(crate::spec_error::parse_range("5"), Ok(5..=5));
    assert!(crate::spec_error::parse_range("2-1").is_err());
    assert!(crate::spec_error::parse_range("-1").is_err());
    assert!(crate::spec_error::parse_range("").is_err());
}
