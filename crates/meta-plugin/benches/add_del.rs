//! The meta plugin's own cost per ADD and per DEL: in the same run, the `bridge` +
//! `host-local` delegate called directly (the floor) and through `multus` (same delegate as its
//! default network, no kubeconfig, so no API call), each from process start to exit, into a
//! netns this bench creates. Prints p50/p99 of both and the difference.
//! Root only. `cargo bench -p sriov-meta-plugin --bench add_del [-- ROUNDS]`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{HostLinks, Netns, REFERENCE_PLUGINS, host_local, leases, tag};
use serde_json::{Value, json};

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn run(bin: &str, command: &str, conf: &Value, netns: &str) -> Duration {
    let t = Instant::now();
    let mut c = Command::new(bin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "bench")
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=bench",
        )
        .env("CNI_PATH", REFERENCE_PLUGINS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{bin} {command}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    t.elapsed()
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("add_del: needs root (netns); skipped");
        return;
    }
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let t = tag();
    let dir = tempfile::tempdir().unwrap();
    let bridge = format!("mb{t}x");
    let _links = HostLinks(vec![bridge.clone()]);
    let netns = Netns::new(&format!("meta-bench-{t}"));
    let delegate = json!({"cniVersion": "1.0.0", "name": "defnet", "type": "bridge", "bridge": bridge,
        "ipam": host_local("10.217.200.0/24", &dir.path().join("ipam"))});
    let meta = json!({"cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
        "cniDir": dir.path().join("cni"), "binDir": REFERENCE_PLUGINS, "delegates": [delegate]});
    let bridge_bin = format!("{REFERENCE_PLUGINS}/bridge");
    let multus = env!("CARGO_BIN_EXE_multus");
    let (mut fa, mut fd, mut ma, mut md) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        fa.push(run(&bridge_bin, "ADD", &delegate, &netns.path()));
        fd.push(run(&bridge_bin, "DEL", &delegate, &netns.path()));
        ma.push(run(multus, "ADD", &meta, &netns.path()));
        md.push(run(multus, "DEL", &meta, &netns.path()));
    }
    assert!(leases(&dir.path().join("ipam")).is_empty(), "every lease freed");
    for (name, direct, through) in [("ADD", &mut fa, &mut ma), ("DEL", &mut fd, &mut md)] {
        let (d50, d99, m50, m99) = (
            pct(direct, 0.5),
            pct(direct, 0.99),
            pct(through, 0.5),
            pct(through, 0.99),
        );
        println!(
            "{name} ({rounds} rounds): bridge direct p50 {d50:6.2} ms p99 {d99:6.2} ms | through multus p50 {m50:6.2} ms p99 {m99:6.2} ms | meta plugin's own p50 {:6.2} ms",
            m50 - d50
        );
    }
}
