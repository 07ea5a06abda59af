//! The running `sriovdp` binary on a fake 8 PFs × 256 VFs host (2,048 VFs in one pool) against the
//! fake kubelet: exec → first Register, first ListAndWatch response, Allocate RPC latency
//! (1 and 8 devices; p50 / p99; target p99 ≤ 1 ms), the bare gRPC round trip for comparison
//! (GetDevicePluginOptions), and resident memory (target ≤ 10 MiB).
//!
//! Then the memory acceptance with a client we did not write: a fresh `sriovdp` on 8 PFs × 255 VFs
//! (2,040 devices in one pool), Python grpcio (sending the socket path as `:authority`, as the
//! kubelet does) opens 20 ListAndWatch streams at once (each delivers its 2,040 devices), closes
//! them, and makes 400 Allocate calls; the process's peak `VmHWM` (target ≤ 16 MiB) and `VmRSS`
//! after (target ≤ 8 MiB) are printed.
//! `cargo bench -p sriov-device-plugin --bench sriovdp`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{FakeKubelet, plugin};

// Only the Python client is used here.
#[allow(dead_code)]
mod grpcio_client {
    include!("../tests/grpcio/clients.rs");
}
use prost::Message;
use sriov_device_plugin::v1beta1 as api;
use sriov_host::fixture::{Fixture, FixtureHost, scratch_base};
use tokio_stream::StreamExt;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let fx = FixtureHost::new(tmp.path().join("host"))
        .synthetic(8, 256)
        .build()
        .expect("fixture");
    let dp = tmp.path().join("dp");
    std::fs::create_dir_all(&dp).expect("mkdir");
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"resourceList":[{"resourceName":"iavf","selectors":{"drivers":["iavf"]}}]}"#,
    )
    .expect("config");
    let mut kubelet = FakeKubelet::start(&dp);

    let bin = env!("CARGO_BIN_EXE_sriovdp");
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args(["--config-file", config.to_str().expect("utf8")])
        .args([
            "--sysfs-root",
            fx.sys().to_str().expect("utf8"),
            "--dev-root",
            fx.dev().to_str().expect("utf8"),
        ])
        .args([
            "--device-plugin-dir",
            dp.to_str().expect("utf8"),
            "--plugins-registry-dir",
            "/nonexistent-sriovdp-bench",
        ])
        .args([
            "--device-info-dir",
            tmp.path().join("devinfo").to_str().expect("utf8"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sriovdp");
    let reg = kubelet.next(30).await;
    let to_register = t0.elapsed();
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle = status_kib(pid, "VmRSS:");
    let (anon, file) = (status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:"));

    let mut c = plugin(&dp.join(&reg.endpoint)).await;
    let t = Instant::now();
    let mut s = c.list_and_watch(api::Empty {}).await.expect("law").into_inner();
    let first = s.next().await.expect("msg").expect("ok");
    let law = t.elapsed();
    let ids: Vec<String> = first.devices.iter().map(|d| d.id.clone()).collect();

    let rounds = 2000;
    let mut measure = async |n: usize| {
        let mut v = Vec::with_capacity(rounds);
        for i in 0..rounds {
            let start = (i * n) % (ids.len() - n);
            let req = api::AllocateRequest {
                container_requests: vec![api::ContainerAllocateRequest {
                    devices_ids: ids[start..start + n].to_vec(),
                }],
            };
            let t = Instant::now();
            c.allocate(req).await.expect("allocate");
            v.push(t.elapsed());
        }
        v
    };
    let mut a1 = measure(1).await;
    let mut a8 = measure(8).await;
    let mut rt = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        c.get_device_plugin_options(api::Empty {}).await.expect("options");
        rt.push(t.elapsed());
    }
    let (rss, hwm) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));

    println!(
        "sriovdp binary, 8 PFs x 256 VFs, one pool of {} devices:",
        ids.len()
    );
    println!("  exec -> first Register           {to_register:>10.2?}   (upstream 7.7 s)");
    println!(
        "  first ListAndWatch response      {law:>10.2?}   {} bytes   (upstream 73 ms, 61 kB)",
        first.encoded_len()
    );
    println!(
        "  Allocate 1 device   p50 {:>9.2?}  p99 {:>9.2?}   (upstream p50 0.31 ms; target p99 <= 1 ms)",
        pct(&mut a1, 0.5),
        pct(&mut a1, 0.99)
    );
    println!(
        "  Allocate 8 devices  p50 {:>9.2?}  p99 {:>9.2?}   (upstream p50 0.49 ms)",
        pct(&mut a8, 0.5),
        pct(&mut a8, 0.99)
    );
    println!(
        "  gRPC round trip     p50 {:>9.2?}  p99 {:>9.2?}   (GetDevicePluginOptions)",
        pct(&mut rt, 0.5),
        pct(&mut rt, 0.99)
    );
    println!(
        "  resident memory once registered: VmRSS {:.1} MiB (anonymous {:.1} MiB, file-backed {:.1} MiB)",
        rss_idle as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0
    );
    println!(
        "  resident memory after the RPCs:  VmRSS {:.1} MiB, peak VmHWM {:.1} MiB   (upstream ~39 MiB; target <= 10 MiB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );

    let _ = nix_kill(pid);
    let _ = child.wait();
    kubelet.stop().await;

    grpcio_memory(bin).await;
}

/// The sriovdp child, stopped even when a client fails and the bench panics.
struct Sriovdp(std::process::Child);

impl Drop for Sriovdp {
    fn drop(&mut self) {
        let _ = nix_kill(self.0.id());
        let _ = self.0.wait();
    }
}

/// Starts `bin` on a fixture of `pfs` × `vfs` against a fake kubelet in `dir`; the child, the
/// kubelet and the socket once registered.
async fn start_sriovdp(
    bin: &str,
    dir: &std::path::Path,
    pfs: u32,
    vfs: u32,
) -> (Sriovdp, FakeKubelet, std::path::PathBuf, Fixture) {
    let fx = FixtureHost::new(dir.join("host"))
        .synthetic(pfs, vfs)
        .build()
        .expect("fixture");
    let dp = dir.join("dp");
    std::fs::create_dir_all(&dp).expect("mkdir");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        r#"{"resourceList":[{"resourceName":"iavf","selectors":{"drivers":["iavf"]}}]}"#,
    )
    .expect("config");
    let mut kubelet = FakeKubelet::start(&dp);
    let child = Command::new(bin)
        .args(["--config-file", config.to_str().expect("utf8")])
        .args(["--sysfs-root", fx.sys().to_str().expect("utf8")])
        .args(["--dev-root", fx.dev().to_str().expect("utf8")])
        .args(["--device-plugin-dir", dp.to_str().expect("utf8")])
        .args(["--plugins-registry-dir", "/nonexistent-sriovdp-bench"])
        .args(["--device-info-dir", dir.join("devinfo").to_str().expect("utf8")])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sriovdp");
    let reg = kubelet.next(30).await;
    let sock = dp.join(&reg.endpoint);
    (Sriovdp(child), kubelet, sock, fx)
}

async fn grpcio_memory(bin: &str) {
    let Some(py) = grpcio_client::python() else {
        println!("memory acceptance with grpcio: skipped (no grpcio; run scripts/deps/40-grpc-clients.sh)");
        return;
    };
    let tmp = tempfile::tempdir_in(scratch_base()).expect("tempdir");
    let (child, kubelet, sock, _fx) = start_sriovdp(bin, tmp.path(), 8, 255).await;
    let pid = child.0.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss0, hwm0) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));
    let out = grpcio_client::run(&py, &tmp.path().join("py"), &sock, "memory", &["20", "400"]).await;
    let (rss, hwm) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "memory acceptance, grpcio {} client, 8 PFs x 255 VFs = {} devices, 20 ListAndWatch streams + {} Allocate:",
        out["grpc_version"].as_str().unwrap_or("?"),
        out["devices"],
        out["allocations"]
    );
    println!(
        "  before the client: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        mib(rss0),
        mib(hwm0)
    );
    println!(
        "  after the client:  VmRSS {:.1} MiB (target <= 8 MiB: {}), peak VmHWM {:.1} MiB (target <= 16 MiB: {})",
        mib(rss),
        if rss <= 8 * 1024 { "ok" } else { "OVER" },
        mib(hwm),
        if hwm <= 16 * 1024 { "ok" } else { "OVER" }
    );
    drop(child);
    kubelet.stop().await;
}

fn nix_kill(pid: u32) -> std::io::Result<()> {
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .map(|_| ())
}
