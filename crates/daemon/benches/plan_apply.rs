//! Benchmark (prints numbers; `cargo bench -p sriov-daemon --bench plan_apply`):
//! * one sync with nothing to change (quick re-read of what the plan depends on + plan + state
//!   check) on a fake-sysfs host of 8 PFs × 64 VFs: target ≤ 10 ms and zero host writes;
//! * the same right after a restart (full discovery), and discovery alone;
//! * the plan alone on the same discovered host;
//! * the daemon binary's peak RSS after its first sync of that host in file mode: target ≤ 15 MiB.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sriov_api::{NodeStateInterface, NodeStateSpec, NodeStateStatus, VfGroup};
use sriov_daemon::engine::{Backend, Desired, DrainAnswer, Engine};
use sriov_daemon::state::StateStore;
use sriov_daemon::sysfs_host::SysfsHost;
use sriov_daemon::{Host, Plan, plan};
use sriov_host::fixture::{FixtureHost, scratch_base};

struct Null;
impl Backend for Null {
    fn publish(&mut self, _: &NodeStateStatus) {}
    fn request_drain(&mut self, _: &Plan) -> DrainAnswer {
        DrainAnswer::Proceed
    }
    fn release_drain(&mut self) {}
}

fn stats(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "p50 {:.3} ms, p90 {:.3} ms, min {:.3} ms (n={})",
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        ms(v[0]),
        v.len()
    )
}

fn main() {
    let (pfs, vfs) = (8u32, 64u32);
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tmp");
    let fx = FixtureHost::new(tmp.path().join("host"))
        .synthetic(pfs, vfs)
        .build()
        .expect("fixture");
    let g = |r: &str| VfGroup {
        vf_range: r.into(),
        device_type: "netdevice".into(),
        ..VfGroup::default()
    };
    let interfaces = (0..pfs)
        .map(|p| NodeStateInterface {
            pci_address: format!("0000:{:02x}:00.0", 0x10 + 4 * p),
            num_vfs: vfs as i32,
            vf_groups: vec![g("0-31"), g("32-63")],
            ..NodeStateInterface::default()
        })
        .collect();
    let desired = Desired {
        spec: NodeStateSpec {
            interfaces,
            ..NodeStateSpec::default()
        },
        generation: 1,
    };

    let host = SysfsHost::new(fx.root().clone());
    let state = tempfile::tempdir().expect("state");
    let engine = Engine::new(&host, StateStore::in_dir(state.path()));
    let first = engine.sync(&desired, &mut Null);
    assert_eq!(
        first.status.sync_status, "Succeeded",
        "{}",
        first.status.last_sync_error
    );
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let r = engine.sync(&desired, &mut Null);
        times.push(t.elapsed());
        assert_eq!(r.writes, 0);
    }
    println!(
        "sync, nothing to change, {pfs} PFs x {vfs} VFs (fake sysfs): {}",
        stats(times)
    );
    println!("host writes over 51 syncs: {} (target 0)", host.writes());
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let cold = Engine::new(&host, StateStore::in_dir(state.path()));
        let r = cold.sync(&desired, &mut Null);
        times.push(t.elapsed());
        assert_eq!(r.writes, 0);
    }
    println!(
        "sync right after a restart (saved discovery + quick check, nothing to change): {}",
        stats(times)
    );
    let mut times = Vec::new();
    for _ in 0..20 {
        let fresh = tempfile::tempdir().expect("state");
        let t = Instant::now();
        let cold = Engine::new(&host, StateStore::in_dir(fresh.path()));
        let r = cold.sync(&desired, &mut Null);
        times.push(t.elapsed());
        assert_eq!(r.writes, 0);
    }
    println!(
        "first sync ever or after a reboot (full discovery, nothing to change): {}",
        stats(times)
    );
    println!("host writes after the restarts too: {} (target 0)", host.writes());

    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = host.discover().expect("discover");
        times.push(t.elapsed());
    }
    println!(
        "discovery alone (sriov_host::discover), same host: {}",
        stats(times)
    );
    let devices = host.discover().expect("discover");
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let _ = sriov_daemon::status::interfaces(&devices);
        times.push(t.elapsed());
    }
    println!("status interfaces alone: {}", stats(times));
    let ctx = host.context(&devices);
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let p = plan(&desired.spec, &devices, &ctx).expect("plan");
        times.push(t.elapsed());
        assert!(p.actions.is_empty());
    }
    println!("plan alone, same host: {}", stats(times));

    // The daemon binary on the same tree: peak RSS after its first sync.
    let spec_path = tmp.path().join("node.json");
    let doc = serde_json::json!({"apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": "bench"}, "spec": desired.spec});
    std::fs::write(&spec_path, serde_json::to_vec(&doc).expect("json")).expect("spec");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sriov-network-config-daemon"))
        .arg("--node-state-file")
        .arg(&spec_path)
        .env("SRIOV_SYSFS_ROOT", fx.sys())
        .env("SRIOV_DAEMON_STATE_DIR", tmp.path().join("dstate"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("daemon");
    let err = child.stderr.take().expect("stderr");
    let line = BufReader::new(err)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("sync: "));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l.to_string())
            .unwrap_or_default()
    };
    println!("daemon first sync: {}", line.unwrap_or_default());
    println!(
        "daemon {} / {} (target <= 15 MiB = 15360 kB)",
        field("VmHWM"),
        field("VmRSS")
    );
    let _ = child.kill();
    let _ = child.wait();
}
