//! Discovery of a large fake host: 8 PFs × 256 VFs (2,048 VFs with netdevs), `synthetic(8, 256)`.
//! Target ≤ 20 ms per discovery. `cargo bench -p sriov-host --bench discover [-- ITERATIONS]`.
//!
//! Two runs, in the same process, over the same tree:
//!
//! * **sysfs**: every netdev attribute from its file under `net/<if>/` ([`NetdevSource::Sysfs`],
//!   what discovery does on a fake tree, whose netdevs exist nowhere else).
//! * **netlink**: what discovery does on a real host ([`NetdevSource::Auto`] on `/sys`): the
//!   netdev attributes from one `RTM_GETLINK` dump. For that the bench enters a private network
//!   namespace (needs root; skipped with a message otherwise) and creates there 2,056 real veth
//!   netdevs named, addressed and sized like the tree's (PF and VF netdevs), so the dump is the
//!   size a real node's would be. Before timing, the two runs' netdev names, MACs, MTUs and link
//!   types are checked equal.
//!
//! The tree lives on tmpfs (`/dev/shm`) when it can, and it is in the page cache after the first
//! pass, as the real sysfs always is; what is measured is discovery's own work and syscalls
//! (on real sysfs each `open` + `read` + `close` costs 3.7 µs on the build VM, 2 µs on tmpfs).
//! `SRIOV_DISCOVER_THREADS=1` measures the single-threaded scan. The CPU time per discovery is
//! the steadier figure on a shared machine: wall time moves with the machine's load.

use std::time::{Duration, Instant};

use sriov_host::fixture::{FixtureHost, scratch_base};
use sriov_host::{DiscoverOptions, NetdevSource, discover_with};

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
    let threads = DiscoverOptions::default().reader_threads;
    let sysfs = DiscoverOptions {
        reader_threads: threads,
        netdevs: NetdevSource::Sysfs,
    };
    let d = discover_with(fx.root(), &sysfs)?;
    let vfs: usize = d.devices.pfs.iter().map(|p| p.vfs.len()).sum();
    assert_eq!(
        (d.devices.pfs.len(), vfs, d.warnings.len()),
        (8, 2048, 0),
        "unexpected discovery"
    );
    run("sysfs", iterations, threads, || discover_with(fx.root(), &sysfs));
    let vf_dirs: Vec<VfFiles> = d
        .devices
        .pfs
        .iter()
        .flat_map(|p| {
            let pf_dir = fx.device_dir(p.pci.address.as_str());
            p.vfs.iter().map(move |v| (pf_dir.as_ref().ok().cloned(), v))
        })
        .filter_map(|(pf_dir, v)| {
            let pf_dir = pf_dir?;
            Some(VfFiles {
                parent: pf_dir.parent()?.to_path_buf(),
                pf_dir: pf_dir.clone(),
                virtfn: format!("virtfn{}", v.vf_index?),
                addr: v.pci.address.to_string(),
                netdev: v.pci.netdev()?.name.clone(),
            })
        })
        .collect();
    assert_eq!(vf_dirs.len(), vfs, "the floor reads every VF discovery read");
    floor(&vf_dirs, iterations, 1, true);
    floor(&vf_dirs, iterations, threads, true);

    match real_netdevs_like(&d) {
        Ok(n) => {
            let netlink = DiscoverOptions {
                reader_threads: threads,
                netdevs: NetdevSource::Netlink,
            };
            let dn = discover_with(fx.root(), &netlink)?;
            assert_eq!(netdev_facts(&dn), netdev_facts(&d), "netlink and sysfs disagree");
            println!("{n} veth netdevs in a private network namespace, same names, MACs, MTUs as the tree");
            run("netlink", iterations, threads, || {
                discover_with(fx.root(), &netlink)
            });
            floor(&vf_dirs, iterations, threads, false);
        }
        Err(e) => println!("netlink run skipped: {e}"),
    }
    Ok(())
}

/// Times `iterations` discoveries and prints min/p50/p99/max and the CPU time per discovery.
fn run(
    label: &str,
    iterations: usize,
    threads: usize,
    discover: impl Fn() -> Result<sriov_host::Discovery, sriov_host::DiscoverError>,
) {
    let mut times = Vec::with_capacity(iterations);
    let cpu_before = cpu_ticks();
    for _ in 0..iterations {
        let t = Instant::now();
        let d = discover();
        times.push(t.elapsed());
        std::hint::black_box(d.ok());
    }
    let cpu = cpu_ticks()
        .zip(cpu_before)
        .map(|(a, b)| (a - b) as f64 * 10.0 / iterations as f64);
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "discover synthetic(8, 256), netdevs from {label}, {threads} reader thread(s), {iterations} iterations: \
         min {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target <= 20 ms)",
        ms(times[0]),
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(times[times.len() - 1])
    );
    if let Some(cpu) = cpu {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "  CPU time (user+sys, all threads) per discovery: {cpu:.1} ms on {cpus} CPUs; load average {}",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split(' ')
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

/// What the floor reads for one VF.
struct VfFiles {
    parent: std::path::PathBuf,
    pf_dir: std::path::PathBuf,
    virtfn: String,
    addr: String,
    netdev: String,
}

/// The floor: the same kernel calls discovery makes for each VF (strace: `readlinkat` of the
/// PF's `virtfnN`; `uevent` and `numa_node` opened, read, closed; `readlinkat` of `driver` and
/// `iommu_group`; `stat` of `infiniband` and `acpi_index`; `net/` opened and listed; with
/// `netdev_files`, the netdev's `address`, `mtu`, `type`, `flags`, `operstate` and
/// `phys_port_name` opened, read, closed), issued bare on `threads` threads: no parsing, no
/// allocation, no model. With `netdev_files` false, one link dump as well, as discovery then does,
/// but on a thread of its own, beside the file reads (discovery runs it first).
/// Discovery's time minus this is discovery's own overhead.
fn floor(vfs: &[VfFiles], iterations: usize, threads: usize, netdev_files: bool) {
    use rustix::fs::{AtFlags, Mode, OFlags, RawDir, openat, readlinkat_raw, statat};
    use std::mem::MaybeUninit;
    let path_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let read_flags = OFlags::RDONLY | OFlags::CLOEXEC;
    let one = |v: &VfFiles| {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let pf = rustix::fs::open(&v.pf_dir, path_flags, Mode::empty()).expect("pf dir");
        let parent = rustix::fs::open(&v.parent, path_flags, Mode::empty()).expect("parent dir");
        let _ = readlinkat_raw(&pf, v.virtfn.as_str(), &mut buf);
        let rel = |n: &str| format!("{}/{n}", v.addr);
        for f in ["uevent", "numa_node"] {
            if let Ok(fd) = openat(&parent, rel(f), read_flags, Mode::empty()) {
                let _ = rustix::io::read(&fd, &mut buf);
            }
        }
        for l in ["driver", "iommu_group"] {
            let _ = readlinkat_raw(&parent, rel(l), &mut buf);
        }
        for f in ["infiniband", "acpi_index"] {
            let _ = statat(&parent, rel(f), AtFlags::SYMLINK_NOFOLLOW);
        }
        let net = openat(&parent, rel("net"), read_flags | OFlags::DIRECTORY, Mode::empty()).expect("net");
        {
            let mut dir = RawDir::new(&net, &mut buf);
            while let Some(e) = dir.next() {
                std::hint::black_box(e.ok());
            }
        }
        if netdev_files {
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            for f in ["address", "mtu", "type", "flags", "operstate", "phys_port_name"] {
                let p = format!("{}/{f}", v.netdev);
                if let Ok(fd) = openat(&net, p.as_str(), read_flags, Mode::empty()) {
                    let _ = rustix::io::read(&fd, &mut buf);
                }
            }
        }
        (pf, parent)
    };
    // The PF and parent descriptors are opened once per PF in discovery; here once per VF, which
    // only makes the floor higher by two opens per VF: subtract them with a second pass that
    // only opens them.
    let opens_only = |v: &VfFiles| {
        let pf = rustix::fs::open(&v.pf_dir, path_flags, Mode::empty()).expect("pf dir");
        let parent = rustix::fs::open(&v.parent, path_flags, Mode::empty()).expect("parent dir");
        (pf, parent)
    };
    let timed = |work: &(dyn Fn(&VfFiles) -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) + Sync),
                 dump: bool| {
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let t = Instant::now();
            let chunk = vfs.len().div_ceil(threads.max(1));
            std::thread::scope(|s| {
                // The best case for the dump: on its own thread, beside the file reads.
                if dump {
                    s.spawn(|| std::hint::black_box(sriov_host::netlink::dump_links().ok()));
                }
                for part in vfs.chunks(chunk.max(1)) {
                    s.spawn(move || {
                        for v in part {
                            std::hint::black_box(work(v));
                        }
                    });
                }
            });
            times.push(t.elapsed());
        }
        times.sort();
        times[times.len() / 2]
    };
    let full = timed(&one, !netdev_files);
    let opens = timed(&opens_only, false);
    let floor = full.saturating_sub(opens);
    println!(
        "  floor ({}, {threads} thread(s)): p50 {:.2} ms (the bare calls: {:.2} ms, minus {:.2} ms of per-VF directory opens discovery does once per PF)",
        if netdev_files {
            "netdev files"
        } else {
            "link dump on its own thread + no netdev files"
        },
        ms(floor),
        ms(full),
        ms(opens)
    );
}

/// (name, MAC, MTU, link type) of every netdev discovery found, in order.
fn netdev_facts(d: &sriov_host::Discovery) -> Vec<(String, String, u32, sriov_host::LinkType)> {
    d.devices
        .pfs
        .iter()
        .flat_map(|p| std::iter::once(&p.pci).chain(p.vfs.iter().map(|v| &v.pci)))
        .flat_map(|pci| &pci.netdevs)
        .map(|n| (n.name.clone(), n.mac.clone(), n.mtu, n.link_type))
        .collect()
}

/// Moves this process into a new network namespace and creates there, as veth pairs, a real
/// netdev for every netdev of `d` (same name, MAC and MTU). Returns how many.
fn real_netdevs_like(d: &sriov_host::Discovery) -> Result<usize, String> {
    use std::io::Write;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot create a network namespace ({e}); run as root"))?;
    let mut netdevs: Vec<_> = netdev_facts(d);
    if netdevs.len() % 2 == 1 {
        netdevs.pop();
    }
    let mut batch = String::new();
    for pair in netdevs.chunks(2) {
        let [(a, ma, mtua, _), (b, mb, mtub, _)] = pair else {
            continue;
        };
        batch.push_str(&format!(
            "link add {a} address {ma} mtu {mtua} type veth peer name {b} address {mb} mtu {mtub}\n"
        ));
    }
    let mut ip = std::process::Command::new("ip")
        .args(["-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    ip.stdin
        .take()
        .ok_or("no stdin for ip")?
        .write_all(batch.as_bytes())
        .map_err(|e| format!("writing to ip: {e}"))?;
    let status = ip.wait().map_err(|e| format!("ip: {e}"))?;
    if !status.success() {
        return Err(format!("ip -batch failed: {status}"));
    }
    Ok(netdevs.len())
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
