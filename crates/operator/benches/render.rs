//! Render benchmark: 5,000 nodes × 200 policies, each node 2–4 PFs. Prints the time of one
//! full policy render (node-state specs + device-plugin configs + labels) for every node; the
//! target is ≤ 200 ms. A plain binary (`harness = false`): run `cargo bench -p sriov-operator
//! --bench render`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sriov_api::{NicSelector, NodePolicySpec, SriovNetworkNodePolicy};
use sriov_host::InterfaceExt;
use sriov_operator::admission::nics::SupportedNics;
use sriov_operator::render::{ClusterInput, NodeInfo, render_cluster};

const NS: &str = "sriov-network-operator";
const NODES: usize = 5_000;
const POLICIES: usize = 200;
const POOLS: usize = 20;
const ZONES: usize = 5;

fn nodes() -> (Vec<NodeInfo>, BTreeMap<String, Vec<InterfaceExt>>) {
    let mut nodes = Vec::with_capacity(NODES);
    let mut ifaces = BTreeMap::new();
    for n in 0..NODES {
        let name = format!("worker-{n:05}");
        let labels: BTreeMap<String, String> = [
            ("node-role.kubernetes.io/worker", String::new()),
            ("kubernetes.io/os", "linux".into()),
            ("kubernetes.io/arch", "amd64".into()),
            ("kubernetes.io/hostname", name.clone()),
            ("sriov/pool", format!("pool-{}", n % POOLS)),
            ("topology.kubernetes.io/zone", format!("zone-{}", n % ZONES)),
            ("feature.node.kubernetes.io/network-sriov.capable", "true".into()),
            ("node.kubernetes.io/instance-type", "metal".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let pfs = 2 + n % 3;
        let list = (0..pfs)
            .map(|i| InterfaceExt {
                name: format!("ens{}f{}", 1 + i / 2, i % 2),
                pci_address: format!("0000:{:02x}:00.{}", 0x3b + i / 2, i % 2),
                vendor: "8086".into(),
                device_id: if i < 2 { "1593".into() } else { "158b".into() },
                driver: "ice".into(),
                mtu: 1500,
                total_vfs: 64,
                link_type: "ETH".into(),
                alt_names: vec![format!("enp{}s0f{}", 59 + i / 2, i % 2)],
                ..Default::default()
            })
            .collect();
        ifaces.insert(name.clone(), list);
        nodes.push(NodeInfo { name, labels });
    }
    (nodes, ifaces)
}

fn policies() -> Vec<SriovNetworkNodePolicy> {
    (0..POLICIES)
        .map(|p| {
            let (key, value) = if p < 180 {
                ("sriov/pool", format!("pool-{}", p % POOLS))
            } else {
                ("topology.kubernetes.io/zone", format!("zone-{}", p % ZONES))
            };
            let pf = p % 4;
            let first = (p / 4 % 8) * 8;
            let nic = match p % 3 {
                0 => NicSelector {
                    pf_names: vec![format!("ens{}f{}#{}-{}", 1 + pf / 2, pf % 2, first, first + 7)],
                    ..Default::default()
                },
                1 => NicSelector {
                    vendor: "8086".into(),
                    device_id: "1593".into(),
                    ..Default::default()
                },
                _ => NicSelector {
                    root_devices: vec![format!("0000:{:02x}:00.{}", 0x3b + pf / 2, pf % 2)],
                    ..Default::default()
                },
            };
            let mut policy = SriovNetworkNodePolicy::new(
                &format!("policy-{p:03}"),
                NodePolicySpec {
                    resource_name: format!("res{}", p % 40),
                    node_selector: BTreeMap::from([(key.to_string(), value)]),
                    priority: (p % 100) as i32,
                    mtu: if p % 2 == 0 { 9000 } else { 1500 },
                    num_vfs: 64,
                    nic_selector: nic,
                    device_type: if p % 5 == 0 {
                        "vfio-pci".into()
                    } else {
                        "netdevice".into()
                    },
                    link_type: "eth".into(),
                    ..Default::default()
                },
            );
            policy.metadata.namespace = Some(NS.into());
            policy
        })
        .collect()
}

fn main() {
    let (nodes, interfaces) = nodes();
    let policies = policies();
    let nics = SupportedNics::builtin();
    let input = ClusterInput {
        namespace: NS,
        operator_config: None,
        nodes: &nodes,
        interfaces: &interfaces,
        policies: &policies,
        pools: &[],
        supported_nics: &nics,
    };
    let mut times: Vec<Duration> = Vec::new();
    let mut groups = 0usize;
    for _ in 0..7 {
        let start = Instant::now();
        let out = match render_cluster(&input) {
            Ok(out) => out,
            Err(e) => {
                eprintln!("render failed: {e}");
                std::process::exit(1);
            }
        };
        times.push(start.elapsed());
        groups = out
            .node_states
            .values()
            .flat_map(|s| &s.interfaces)
            .map(|i| i.vf_groups.len())
            .sum();
        std::hint::black_box(&out);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "render {NODES} nodes x {POLICIES} policies (2-4 PFs each, {groups} VF groups): median {:.1} ms, min {:.1} ms, max {:.1} ms (target <= 200 ms)",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
}
