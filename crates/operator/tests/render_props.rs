//! Property tests of the node-state render: deterministic, never panics, never gives one VF
//! index to two groups, and every group lies within the PF's totalvfs.

mod render_fixtures;

use proptest::prelude::*;
use render_fixtures::*;
use sriov_api::NicSelector;
use sriov_operator::render::VfRange;

const PF_NAMES: [&str; 4] = ["eth0", "eth1", "eth2", "eth3"];

fn arb_pf_entry() -> impl Strategy<Value = String> {
    (0usize..4, proptest::option::of((0u32..40, 0u32..40))).prop_map(|(i, range)| match range {
        None => PF_NAMES[i].to_string(),
        Some((a, b)) => format!("{}#{}-{}", PF_NAMES[i], a.min(b), a.max(b)),
    })
}

fn arb_policy(i: usize) -> impl Strategy<Value = sriov_api::SriovNetworkNodePolicy> {
    (
        0i32..100,
        0i32..40,
        0usize..4,
        proptest::collection::vec(arb_pf_entry(), 0..3),
        any::<bool>(),
        0i32..3,
    )
        .prop_map(move |(priority, num_vfs, res, pf_names, by_vendor, mtu_step)| {
            let nic = NicSelector {
                pf_names,
                vendor: if by_vendor { "8086".into() } else { String::new() },
                ..Default::default()
            };
            let mut p = policy(&format!("p{i:02}"), priority, &format!("res{res}"), num_vfs, nic);
            p.spec.mtu = mtu_step * 1500;
            p
        })
}

fn arb_cluster() -> impl Strategy<Value = Cluster> {
    let pfs = proptest::collection::vec((1i32..33, any::<bool>()), 1..5);
    let policies = (0usize..12).prop_flat_map(|n| (0..n).map(arb_policy).collect::<Vec<_>>());
    (pfs, policies).prop_map(|(pfs, policies)| {
        let ifaces = pfs
            .iter()
            .enumerate()
            .map(|(i, (total, reported_total))| {
                pf(
                    &format!("0000:0{i}:00.0"),
                    PF_NAMES[i],
                    if *reported_total { *total } else { 0 },
                )
            })
            .collect();
        let mut c = Cluster::one_node(ifaces);
        c.policies = policies;
        c
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn render_is_deterministic_and_groups_are_disjoint_and_within_hardware(c in arb_cluster()) {
        let first = c.render();
        let second = c.render();
        prop_assert_eq!(&first, &second);
        let yaml_a = serde_json::to_string(&first.node_states).expect("serialize");
        let yaml_b = serde_json::to_string(&second.node_states).expect("serialize");
        prop_assert_eq!(yaml_a, yaml_b);

        let reported = &c.interfaces["node1"];
        for iface in &first.node_states["node1"].interfaces {
            let total = reported.iter().find(|p| p.pci_address == iface.pci_address).map(|p| p.total_vfs).unwrap_or(0);
            let ranges: Vec<VfRange> = iface
                .vf_groups
                .iter()
                .map(|g| VfRange::parse(&g.vf_range).expect("rendered range parses"))
                .collect();
            prop_assert!(!ranges.is_empty(), "a PF in the spec has at least one group");
            for (i, a) in ranges.iter().enumerate() {
                if total > 0 {
                    prop_assert!(a.last < total as u32, "group {} beyond totalvfs {}", a, total);
                    prop_assert!(iface.num_vfs <= total, "numVfs {} beyond totalvfs {}", iface.num_vfs, total);
                }
                for b in &ranges[i + 1..] {
                    prop_assert!(!a.overlaps(b), "groups {} and {} overlap on {}", a, b, iface.pci_address);
                }
            }
        }
    }

    #[test]
    fn shuffling_policy_input_order_changes_nothing(c in arb_cluster(), seed in any::<u64>()) {
        let mut shuffled = Cluster::one_node(c.interfaces["node1"].clone());
        shuffled.policies = c.policies.clone();
        let n = shuffled.policies.len();
        if n > 1 {
            shuffled.policies.rotate_left((seed as usize) % n);
        }
        // Names are unique, so application order is fully determined by (priority, name).
        prop_assert_eq!(c.render(), shuffled.render());
    }

    #[test]
    fn arbitrary_pf_name_text_never_panics(entries in proptest::collection::vec(".{0,12}", 0..4), num_vfs in -5i32..50) {
        let c = Cluster::one_node(vec![pf("0000:01:00.0", "eth0", 8)])
            .with(policy("p", 10, "r", num_vfs, NicSelector { pf_names: entries, ..Default::default() }));
        let _ = c.try_render();
    }
}
