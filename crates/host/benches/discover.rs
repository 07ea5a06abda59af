//! Discovery of a large fake host: 8 PFs × 256 VFs (2,048 VFs with netdevs), `synthetic(8, 256)`.
//! Target ≤ 20 ms per discovery. `cargo bench -p sriov-host --bench discover [-- ITERATIONS]`.
//!
//! The tree lives on tmpfs (`/dev/shm`) when it can, and it is in the page cache after the first
//! pass, as the real sysfs always is; what is measured is discovery's own work and syscalls.
//! `SRIOV_DISCOVER_THREADS=1` measures the single-threaded scan. The CPU time per discovery is
//! the steadier figure on a shared machine: wall time moves with the machine's load.
//!
//! Measured 2026-11-25 on the 2-vCPU build VM, load average 4.5-5.2 (other engineers' builds
//! and the QEMU lab on the same 2 cores), old and new binaries run alternately, 100 iterations:
//!
//! * path-based reads (std::fs, full `<sys>/devices/...` paths): CPU 121-125 ms per discovery,
//!   wall min 92-112 ms, p50 124-143 ms, p99 188-240 ms; 43 syscalls per VF.
//! * descriptor-relative reads (this version): CPU 97-99 ms (≈ 48 µs per VF), wall min 77-83 ms,
//!   p50 103-108 ms, p99 113-155 ms; 46 syscalls per VF (`strace -c -f`), 90 % of the time in the
//!   kernel. One thread (`SRIOV_DISCOVER_THREADS=1`): CPU 91-94 ms, wall p50 103-117 ms.
//!
//! The 20 ms target is not met. What is left is one `openat`+`read`+`close` per attribute the
//! model needs (4 per function, 7 per netdev) plus the directory opens and listings, at 1-2 µs of
//! kernel time each on this VM even with one-component lookups (micro-benchmark: 1.9 µs per
//! attribute from a directory descriptor, 2.7 µs by full path). Even on 2 idle cores that floor is
//! ≈ 40 ms of CPU, ≈ 20 ms of wall: the target needs fewer files read per VF (e.g. the PCI
//! `uevent`, or netlink for the netdevs), not cheaper reads.

use std::time::{Duration, Instant};

use sriov_host::discover;
use sriov_host::fixture::{FixtureHost, scratch_base};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir_in(scratch_base())?;
    let t = Instant::now();
    let fx = FixtureHost::new(dir.path()).synthetic(8, 256).build()?;
    println!(
        "fixture synthetic(8, 256) built in {:.0} ms under {}",
        ms(t.elapsed()),
        scratch_base().display()
    );

    let d = discover(fx.root())?;
    let vfs: usize = d.devices.pfs.iter().map(|p| p.vfs.len()).sum();
    assert_eq!(
        (d.devices.pfs.len(), vfs, d.warnings.len()),
        (8, 2048, 0),
        "unexpected discovery"
    );

    let mut times = Vec::with_capacity(iterations);
    let cpu_before = cpu_ticks();
    for _ in 0..iterations {
        let t = Instant::now();
        let d = discover(fx.root())?;
        times.push(t.elapsed());
        std::hint::black_box(d);
    }
    let cpu = cpu_ticks()
        .zip(cpu_before)
        .map(|(a, b)| (a - b) as f64 * 10.0 / iterations as f64);
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "discover synthetic(8, 256), {iterations} iterations: min {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target <= 20 ms)",
        ms(times[0]),
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(times[times.len() - 1])
    );
    if let Some(cpu) = cpu {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "CPU time (user+sys, all threads) per discovery: {cpu:.1} ms on {threads} CPUs; load average {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split(' ')
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}

/// utime + stime of the whole process (dead threads included), in clock ticks (1/100 s).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
