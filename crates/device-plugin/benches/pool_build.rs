//! Pool build for 8 PFs × 256 VFs (fake sysfs on tmpfs), discovery included: config parse,
//! `sriov_host::discover`, candidates + sysfs extras, pools. Target ≤ 20 ms, not reachable here:
//! discovery's own floor (the same kernel calls, bare; `cargo bench -p sriov-host --bench
//! discover`) is ≈ 67 ms on one thread and ≈ 34 ms on two on the 2-vCPU build VM.
//! Prints numbers; `cargo bench -p sriov-device-plugin --bench pool_build`.

use std::time::{Duration, Instant};

use sriov_device_plugin::config::Config;
use sriov_device_plugin::manager::discover_devices;
use sriov_device_plugin::pool::{HostFacts, build_pools};
use sriov_host::fixture::{FixtureHost, scratch_base};

const CONFIG: &str = r#"{"resourceList":[
  {"resourceName":"even_pfs","selectors":[{"pfNames":["ens0f0","ens2f0","ens4f0","ens6f0"],"drivers":["iavf"]}]},
  {"resourceName":"vf_0_127","selectors":[{"rootDevices":["0000:14:00.0#0-127","0000:1c:00.0#0-127"]}]},
  {"resourceName":"rest","selectors":{"vendors":["8086"],"devices":["1889"]}}]}"#;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn main() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let t = Instant::now();
    let fx = FixtureHost::new(tmp.path().join("host"))
        .synthetic(8, 256)
        .build()
        .expect("fixture");
    eprintln!(
        "fixture 8 PFs x 256 VFs built in {:?} under {}",
        t.elapsed(),
        tmp.path().display()
    );

    let rounds = 30;
    let (mut total, mut discover) = (Vec::new(), Vec::new());
    let mut counts = Vec::new();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let config = Config::parse(CONFIG, "intel.com").expect("config");
        let devices = discover_devices(fx.root(), &config).expect("discover");
        let t1 = Instant::now();
        let pools = build_pools(&config, &devices, HostFacts::default());
        let t2 = Instant::now();
        discover.push(t1 - t0);
        total.push(t2 - t0);
        counts = pools.iter().map(|p| p.devices.len()).collect();
    }
    let only_pools = {
        let config = Config::parse(CONFIG, "intel.com").expect("config");
        let devices = discover_devices(fx.root(), &config).expect("discover");
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(build_pools(&config, &devices, HostFacts::default()));
        }
        t.elapsed() / rounds
    };
    // The options sriovdp itself uses (one reader thread unless SRIOV_DISCOVER_THREADS is set).
    let options = sriov_device_plugin::manager::discover_options();
    let host_only = {
        let mut v = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            std::hint::black_box(sriov_host::discover_with(fx.root(), &options).expect("discover"));
            v.push(t.elapsed());
        }
        pct(&mut v, 0.5)
    };
    println!(
        "pool build, 8 PFs x 256 VFs ({} devices in pools {counts:?}), {rounds} rounds:",
        counts.iter().sum::<usize>()
    );
    println!(
        "  discovery+candidates  p50 {:>9.2?}  p90 {:>9.2?}",
        pct(&mut discover, 0.5),
        pct(&mut discover, 0.9)
    );
    println!(
        "  of which sriov_host::discover p50 {host_only:>9.2?} ({} reader thread(s), as sriovdp; SRIOV_DISCOVER_THREADS=2 for two)",
        options.reader_threads
    );
    println!("  pools alone           mean {:>8.2?}", only_pools);
    println!(
        "  total (incl. discovery) p50 {:>7.2?}  p90 {:>9.2?}  (target <= 20 ms)",
        pct(&mut total, 0.5),
        pct(&mut total, 0.9)
    );
}
