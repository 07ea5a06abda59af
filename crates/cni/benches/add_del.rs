//! ADD+DEL latency of the `sriov` binary, process start to result, on a veth stand-in:
//! without IPAM and with host-local. In the same run it measures the floor — the same veth moved
//! into the netns and back by bare netlink requests — and prints total, floor and overhead.
//! Root only. `cargo bench -p sriov-cni --bench add_del [-- ROUNDS]`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::Fixture;
use serde_json::{Value, json};
use sriov_cni::netns::NetNs;
use sriov_cni::nl::{LinkChange, Netlink};

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn report(name: &str, total: &mut [Duration], floor: &mut [Duration]) {
    let (t50, t99, f50, f99) = (
        pct(total, 0.5),
        pct(total, 0.99),
        pct(floor, 0.5),
        pct(floor, 0.99),
    );
    println!(
        "{name:<34} total p50 {t50:7.2} ms p99 {t99:7.2} ms | floor p50 {f50:6.2} ms p99 {f99:6.2} ms | overhead p50 {:6.2} ms p99 {:6.2} ms",
        t50 - f50,
        t99 - f99
    );
}

/// CPU time (user + system) of reaped children so far.
fn child_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

/// CPU time (user + system) of this process so far (the bare moves run here).
fn self_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}

/// Wall time and CPU time of one ADD+DEL (`env`: extra environment, e.g. another state dir).
fn add_del_env(f: &Fixture, pod: &str, conf: &Value, env: &[(&str, &str)]) -> (Duration, Duration) {
    let c = child_cpu();
    let t = Instant::now();
    f.run("ADD", "bench", Some(pod), "net1", conf, env).ok();
    f.run("DEL", "bench", Some(pod), "net1", conf, env).ok();
    (t.elapsed(), child_cpu() - c)
}

fn add_del(f: &Fixture, pod: &str, conf: &Value) -> (Duration, Duration) {
    add_del_env(f, pod, conf, &[])
}

/// The bare moves plus the link-up every ADD must do (the DEL move then closes an up link).
fn bare_move_up(host: &mut Netlink, pod_ns: &NetNs, home: &NetNs, name: &str) -> Duration {
    let t = Instant::now();
    let idx = host
        .link_by_name(name)
        .ok()
        .flatten()
        .map(|l| l.index)
        .unwrap_or(0);
    host.set_link(
        idx,
        &LinkChange {
            netns: Some(pod_ns.file.as_fd()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut pod = pod_ns.netlink().unwrap();
    let l = pod.link_by_name(name).unwrap().unwrap();
    pod.set_link(
        l.index,
        &LinkChange {
            up: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    pod.set_link(
        l.index,
        &LinkChange {
            netns: Some(home.file.as_fd()),
            ..Default::default()
        },
    )
    .unwrap();
    t.elapsed()
}

fn bare_move(host: &mut Netlink, pod_ns: &NetNs, home: &NetNs, name: &str) -> Duration {
    let t = Instant::now();
    let idx = host
        .link_by_name(name)
        .ok()
        .flatten()
        .map(|l| l.index)
        .unwrap_or(0);
    host.set_link(
        idx,
        &LinkChange {
            netns: Some(pod_ns.file.as_fd()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut pod = pod_ns.netlink().unwrap();
    let l = pod.link_by_name(name).unwrap().unwrap();
    pod.set_link(
        l.index,
        &LinkChange {
            netns: Some(home.file.as_fd()),
            ..Default::default()
        },
    )
    .unwrap();
    t.elapsed()
}

fn main() {
    if !sriov_test_support::prerequisite(sriov_test_support::is_root(), "root (add_del bench)") {
        return;
    }
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let mut f = Fixture::new(1, 0);
    let pod = f.pod();
    let name = f.vfs[0].netdev.clone().unwrap();
    let pod_ns = NetNs::open(&format!("/run/netns/{pod}")).unwrap();
    let home = NetNs::current().unwrap();
    let mut host = Netlink::open().unwrap();
    let plain = f.conf(0, "1.0.0", json!({}));
    let settings = f.conf(
        0,
        "1.0.0",
        json!({"vlan": 100, "spoofchk": "off", "trust": "on", "mac": "02:11:22:33:44:55"}),
    );
    let ipam = f.conf(0, "1.0.0", json!({"ipam": f.host_local("10.90.0.0/16")}));
    // Warm up.
    for _ in 0..5 {
        let _ = add_del(&f, &pod, &plain);
        bare_move(&mut host, &pod_ns, &home, &name);
    }
    let mut version = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        f.run("VERSION", "", None, "", &json!({}), &[]).ok();
        version.push(t.elapsed());
    }
    let mut truebin = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let _ = std::process::Command::new("/bin/true").status();
        truebin.push(t.elapsed());
    }
    println!("rounds per case: {rounds}");
    println!(
        "{:<34} p50 {:7.2} ms p99 {:7.2} ms (the process-model floor: ADD+DEL is 2 execs)",
        "/bin/true",
        pct(&mut truebin, 0.5),
        pct(&mut truebin, 0.99)
    );
    println!(
        "{:<34} p50 {:7.2} ms p99 {:7.2} ms (process spawn + exec + result)",
        "VERSION",
        pct(&mut version, 0.5),
        pct(&mut version, 0.99)
    );
    // Interleave every case with a bare move in each round so all see the same machine load.
    let shm_state = f.shm.path().join("state").to_string_lossy().into_owned();
    let on_disk: &[(&str, &str)] = &[];
    let on_tmpfs: &[(&str, &str)] = &[("SRIOV_CNI_STATE_DIR", &shm_state)];
    let cases = [
        ("ADD+DEL, no IPAM", &plain, on_disk),
        ("ADD+DEL, no IPAM, cache on tmpfs", &plain, on_tmpfs),
        ("ADD+DEL, vlan/spoofchk/trust/mac", &settings, on_disk),
        ("ADD+DEL, host-local IPAM", &ipam, on_disk),
    ];
    let mut total: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut cpu: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    let mut floor = Vec::new();
    let mut floor_up = Vec::new();
    let mut floor_cpu = Vec::new();
    for _ in 0..rounds {
        for (i, (_, conf, env)) in cases.iter().enumerate() {
            let (t, c) = add_del_env(&f, &pod, conf, env);
            total[i].push(t);
            cpu[i].push(c);
        }
        let c0 = self_cpu();
        floor.push(bare_move(&mut host, &pod_ns, &home, &name));
        floor_cpu.push(self_cpu() - c0);
        floor_up.push(bare_move_up(&mut host, &pod_ns, &home, &name));
    }
    println!(
        "{:<34} p50 {:7.2} ms p99 {:7.2} ms (bare netlink: move in, up, move out; the floor column is move in + out only)",
        "floor with link-up",
        pct(&mut floor_up.clone(), 0.5),
        pct(&mut floor_up, 0.99)
    );
    println!(
        "{:<34} p50 {:7.2} ms (CPU of the bare move in + out, for the CPU lines below)",
        "floor CPU",
        pct(&mut floor_cpu, 0.5)
    );
    for (i, (label, _, _)) in cases.iter().enumerate() {
        report(label, &mut total[i], &mut floor.clone());
        println!(
            "{:<34} CPU (user+sys, plugin and its IPAM child) p50 {:6.2} ms",
            "",
            pct(&mut cpu[i], 0.5)
        );
    }
    // host-local alone (ADD+DEL), for comparison with the IPAM case.
    let hl_conf =
        json!({"cniVersion": "1.0.0", "name": "hl", "ipam": f.host_local("10.91.0.0/16")}).to_string();
    let mut hl = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        for cmd in ["ADD", "DEL"] {
            use std::io::Write;
            let mut c = std::process::Command::new("/usr/lib/cni/host-local")
                .envs([
                    ("CNI_COMMAND", cmd),
                    ("CNI_CONTAINERID", "hl"),
                    ("CNI_IFNAME", "net1"),
                    ("CNI_PATH", "/usr/lib/cni"),
                ])
                .env("CNI_NETNS", format!("/run/netns/{pod}"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let _ = c.stdin.take().unwrap().write_all(hl_conf.as_bytes());
            assert!(c.wait().unwrap().success(), "host-local {cmd}");
        }
        hl.push(t.elapsed());
    }
    println!(
        "{:<34} p50 {:7.2} ms p99 {:7.2} ms",
        "host-local alone ADD+DEL",
        pct(&mut hl, 0.5),
        pct(&mut hl, 0.99)
    );
}
