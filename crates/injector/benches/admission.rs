//! Admissions per second, latency and resident memory of the injector binary with 1,000 NADs
//! cached, driven by a load generator we did not write (Debian's `h2load --h1`, 8 kept-alive
//! HTTPS connections, sharing the machine's cores) against the webhook, with the NADs served by
//! a real kube-apiserver (sriov-testcluster) and the API calls per admission counted from that
//! apiserver's own metrics. Upstream v1.9.0 measured the same way: 5,137 req/s, mean 1.55 ms,
//! max 21 ms, 40 MiB RSS. Targets: >= 20,000 req/s, mean <= 0.5 ms, <= 10 MiB.
//!
//! What runs in the cluster is the musl static `release-small` binary (`scripts/images`), not
//! the glibc one cargo builds for this bench, and the two differ in resident memory (shared
//! libraries, allocator, code size), so the bench measures both, one after the other on the same
//! cluster, when the musl build exists, and ends with a table comparing them:
//!
//!   cargo build --profile release-small --locked --target x86_64-unknown-linux-musl \
//!       -p sriov-network-resources-injector --bin network-resources-injector
//!   cargo bench -p sriov-network-resources-injector --bench admission
//!
//! `INJECTOR_BIN=path[:path...]` measures exactly the binaries named instead.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sriov_api::nad::{NadSpec, NetworkAttachmentDefinition};
use sriov_testcluster::Cluster;

/// The binary built with this bench (with `cargo bench`: the release profile for the host,
/// glibc, dynamically linked). See [`binaries`] for what else is measured.
const BUILT_BIN: &str = env!("CARGO_BIN_EXE_network-resources-injector");
const NS: &str = "nri-bench";
const NADS: usize = 1000;
const REQUESTS: usize = 100_000;
const TARGET_PER_SECOND: u32 = 20_000;
const TARGET_MEAN_MS: f64 = 0.5;
const TARGET_RSS_MIB: f64 = 10.0;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sum of `apiserver_request_total` for the kinds the injector could read, WATCH excluded.
async fn api_calls(client: &kube::Client) -> u64 {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(req).await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            (l.contains("resource=\"network-attachment-definitions\"")
                || l.contains("resource=\"configmaps\""))
                && !l.contains("verb=\"WATCH\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn field<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .map(str::trim)
}

/// h2load's durations: `812us`, `1.55ms`, `2.01s`.
fn millis(text: &str) -> Option<f64> {
    if let Some(us) = text.strip_suffix("us") {
        return Some(us.parse::<f64>().ok()? / 1000.0);
    }
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().ok();
    }
    Some(text.strip_suffix('s')?.parse::<f64>().ok()? * 1000.0)
}

/// One reading of `/proc/PID/status`: sizes in KiB.
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    hwm: u64,
    threads: u64,
}

impl Memory {
    /// None before the child has exec'd the injector (a spawned child first shows the
    /// bench's own image) or once it is gone.
    fn read(pid: u32, comm: &str) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let value = |key: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        if status.lines().next()?.trim_start_matches("Name:").trim() != comm {
            return None;
        }
        Some(Memory {
            rss: value("VmRSS:")?,
            anon: value("RssAnon:")?,
            file: value("RssFile:")?,
            hwm: value("VmHWM:")?,
            threads: value("Threads:")?,
        })
    }

    fn show(&self) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        format!(
            "VmRSS {:.1} MiB (anon {:.1}, file {:.1}), {} threads",
            mib(self.rss),
            mib(self.anon),
            mib(self.file),
            self.threads
        )
    }
}

/// Resident KiB per mapping name in `/proc/PID/smaps` (the binary, libc, `[heap]`, `[stack]`,
/// anonymous mappings: thread stacks and mmap'd allocations), largest first.
fn resident_by_mapping(pid: u32) -> Vec<(String, u64)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            current = fields.get(5).map_or("[anon]", |n| n).to_string();
        } else if fields.first() == Some(&"Rss:") {
            *by_name.entry(current.clone()).or_default() += fields[1].parse::<u64>().unwrap_or(0);
        }
    }
    let mut v: Vec<(String, u64)> = by_name.into_iter().filter(|(_, kib)| *kib > 0).collect();
    v.sort_by_key(|(_, kib)| std::cmp::Reverse(*kib));
    v
}

/// What the injector was doing when a sample was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// From exec until it listens: the NAD list and the caches fill here.
    Starting,
    /// Listening (caches synced), before the warm-up.
    Synced,
    Warmup,
    Load,
    /// After the measured run, idle.
    After,
}

const PHASES: [Phase; 5] = [
    Phase::Starting,
    Phase::Synced,
    Phase::Warmup,
    Phase::Load,
    Phase::After,
];

/// Samples the child's `/proc/PID/status` every 10 ms from spawn to kill, tagged with the
/// phase the bench says it is in; the first and last sample and the highest VmRSS of each
/// phase are what the report prints.
struct Sampler {
    phase: std::sync::Arc<std::sync::Mutex<Option<Phase>>>,
    thread: std::thread::JoinHandle<Vec<(Phase, Memory)>>,
}

impl Sampler {
    fn start(pid: u32, comm: String) -> Sampler {
        let phase = std::sync::Arc::new(std::sync::Mutex::new(Some(Phase::Starting)));
        let shared = phase.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            loop {
                let Some(now) = *shared.lock().unwrap() else { break };
                if let Some(m) = Memory::read(pid, &comm) {
                    samples.push((now, m));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        });
        Sampler { phase, thread }
    }

    fn enter(&self, phase: Phase) {
        *self.phase.lock().unwrap() = Some(phase);
    }

    fn finish(self) -> Vec<(Phase, Memory)> {
        *self.phase.lock().unwrap() = None;
        self.thread.join().unwrap()
    }
}

fn main() {
    if Command::new("h2load").arg("--version").output().is_err() {
        let msg = "h2load missing (scripts/deps/50-h2load.sh installs nghttp2-client)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipping: {msg}");
        return;
    }
    let Some(cluster) = Cluster::shared() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async { cluster.client().unwrap() });

    rt.block_on(async {
        sriov_testcluster::crd::install(&client, &[sriov_api::crd::nad_crd()])
            .await
            .unwrap();
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let nads: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), NS);
        let started = Instant::now();
        let creates = (0..NADS).map(|i| {
            let nads = nads.clone();
            async move {
                let mut nad =
                    NetworkAttachmentDefinition::new(&format!("net-{i}"), NadSpec { config: "{}".into() });
                nad.metadata.annotations = Some(BTreeMap::from([(
                    "k8s.v1.cni.cncf.io/resourceName".to_string(),
                    format!("intel.com/sriov_{}", i % 8),
                )]));
                nads.create(&PostParams::default(), &nad).await.unwrap();
            }
        });
        futures::stream::iter(creates)
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        eprintln!("created {NADS} NADs in {:?}", started.elapsed());
    });

    let dir = tempfile::tempdir().unwrap();
    let cert = cluster.loopback_serving_cert().unwrap();
    std::fs::write(dir.path().join("ca.pem"), cluster.ca_pem()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &cert.key_pem).unwrap();
    // A pod asking for two of the 1,000 networks.
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench", "namespace": NS, "operation": "CREATE",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "object": {"metadata": {"name": "p", "namespace": NS, "labels": {"app": "bench"},
                                "annotations": {"k8s.v1.cni.cncf.io/networks": "net-17, net-998@net2"}},
                   "spec": {"containers": [{"name": "app", "image": "example.invalid/app"}]}}}});
    std::fs::write(dir.path().join("review.json"), review.to_string()).unwrap();

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let bins = binaries();
    let outcomes: Vec<Outcome> = bins
        .iter()
        .map(|bin| measure(cluster, &rt, &client, dir.path(), bin))
        .collect();

    println!(
        "comparison, same run, same apiserver and {NADS} NADs, one binary after the other (load average at the start: {}):",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!("  | binary | linked | size | req/s | mean | max | RSS load peak | VmHWM | API calls |");
    println!("  | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for o in &outcomes {
        println!(
            "  | {} | {} | {:.1} MiB | {:.0} | {:.3} ms | {:.2} ms | {:.1} MiB | {:.1} MiB | {} |",
            o.bin,
            if o.kind.contains("static") {
                "static"
            } else {
                "dynamic"
            },
            o.size as f64 / 1048576.0,
            o.per_second,
            o.mean_ms,
            o.max_ms,
            o.load_mib,
            o.hwm_mib,
            o.calls
        );
    }
    println!("  upstream v1.9.0, same bench: 5,137 req/s, mean 1.55 ms, max 21 ms, 40 MiB");
    for o in &outcomes {
        assert!(
            o.codes.contains(&format!("{REQUESTS} 2xx")),
            "{}: not all 2xx: {}",
            o.bin,
            o.codes
        );
    }
}

/// The binaries to measure: `INJECTOR_BIN` (one path, or several separated by `:`), else the
/// one built with this bench and, those that exist, the musl static builds: `release` and
/// `release-small` (what `scripts/images` ships: Cargo.toml), so they are compared on the same
/// cluster in the same run.
fn binaries() -> Vec<String> {
    if let Ok(list) = std::env::var("INJECTOR_BIN") {
        return list
            .split(':')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
    }
    let mut bins = vec![BUILT_BIN.to_string()];
    // BUILT_BIN is <target dir>/<profile>/network-resources-injector.
    let Some(target) = std::path::Path::new(BUILT_BIN)
        .parent()
        .and_then(std::path::Path::parent)
    else {
        return bins;
    };
    for profile in ["release", "release-small"] {
        let musl = target.join(format!(
            "x86_64-unknown-linux-musl/{profile}/network-resources-injector"
        ));
        if musl.exists() {
            bins.push(musl.display().to_string());
        }
    }
    bins
}

/// What one binary did under the load.
struct Outcome {
    bin: String,
    kind: String,
    size: u64,
    codes: String,
    per_second: f64,
    mean_ms: f64,
    max_ms: f64,
    load_mib: f64,
    hwm_mib: f64,
    calls: u64,
}

/// Starts `bin` against the cluster, checks one answer with curl, runs the warm-up and the
/// measured h2load run, prints its report and returns the figures.
fn measure(
    cluster: &Cluster,
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    dir: &std::path::Path,
    bin: &str,
) -> Outcome {
    let kind = Command::new("file")
        .args(["-b", "-L", bin])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("file(1) failed: {e}"));
    let meta = std::fs::metadata(bin).unwrap_or_else(|e| panic!("{bin}: {e}"));
    let size = meta.len();
    let age = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .map_or("unknown".to_string(), |a| format!("{} min", a.as_secs() / 60));
    // The kernel's comm: the file name cut to 15 bytes.
    let comm: String = std::path::Path::new(bin)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take(15)
        .collect();
    let port = free_port();
    let mut child = Command::new(bin)
        .args([
            format!("-port={port}"),
            "-bind-address=127.0.0.1".into(),
            format!("-health-check-port={}", free_port()),
            format!("-tls-cert-file={}", dir.join("cert.pem").display()),
            format!("-tls-private-key-file={}", dir.join("key.pem").display()),
            "-insecure".into(),
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("NAMESPACE", NS)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sampler = Sampler::start(child.id(), comm.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{bin}: injector not listening");
        std::thread::sleep(Duration::from_millis(10));
    }
    sampler.enter(Phase::Synced);
    std::thread::sleep(Duration::from_millis(500));

    let body = dir.join("review.json");
    let url = format!("https://127.0.0.1:{port}/mutate");

    // One answer checked with curl (verifying the certificate against the cluster CA).
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.join("ca.pem"))
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(&url)
        .output()
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(answer["response"]["patchType"], "JSONPatch", "{answer}");

    let h2load = |n: usize| {
        let out = Command::new("h2load")
            .args([
                "--h1",
                "-c",
                "8",
                "-t",
                "1",
                "-n",
                &n.to_string(),
                "-H",
                "Content-Type: application/json",
                "-d",
            ])
            .arg(&body)
            .arg(&url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    sampler.enter(Phase::Warmup);
    h2load(5_000);
    let before = rt.block_on(api_calls(client));
    sampler.enter(Phase::Load);
    let report = h2load(REQUESTS);
    sampler.enter(Phase::After);
    let after = rt.block_on(api_calls(client));
    std::thread::sleep(Duration::from_secs(2));
    let last = Memory::read(child.id(), &comm).expect("injector gone before the end");
    let mappings = resident_by_mapping(child.id());
    let samples = sampler.finish();
    let _ = child.kill();
    let _ = child.wait();

    println!("{report}");
    let finished = field(&report, "finished in").unwrap_or("no 'finished in' line");
    let requests = field(&report, "requests:").unwrap_or("no 'requests:' line");
    let codes = field(&report, "status codes:").unwrap_or("no 'status codes:' line");
    let latency = field(&report, "time for request:").unwrap_or("no 'time for request:' line");
    let per_second = finished
        .split(", ")
        .find_map(|p| p.strip_suffix(" req/s")?.parse::<f64>().ok())
        .unwrap_or(0.0);
    // "time for request:  min  max  mean  sd  +/-sd"
    let times: Vec<f64> = latency
        .trim_start_matches("time for request:")
        .split_whitespace()
        .take(4)
        .filter_map(millis)
        .collect();
    let (max_ms, mean_ms) = (
        times.get(1).copied().unwrap_or(f64::NAN),
        times.get(2).copied().unwrap_or(f64::NAN),
    );
    let calls = after - before;
    let in_phase = |p: Phase| samples.iter().filter(move |(q, _)| *q == p).map(|(_, m)| *m);
    let peak = |p: Phase| in_phase(p).max_by_key(|m| m.rss);
    let load_peak = peak(Phase::Load).expect("no memory sample during the load");
    let hwm_mib = last.hwm as f64 / 1024.0;
    let load_mib = load_peak.rss as f64 / 1024.0;
    let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
    println!("injector admission, {NADS} NADs cached, h2load --h1 -c 8 -t 1 -n {REQUESTS}:");
    println!("  binary: {bin} ({} KiB, built {age} ago; {kind})", size / 1024);
    println!("  {requests}");
    println!("  {codes}");
    println!(
        "  throughput: {per_second:.0} req/s   (target >= {TARGET_PER_SECOND}: {})",
        verdict(per_second >= TARGET_PER_SECOND as f64)
    );
    println!(
        "  latency: mean {mean_ms:.3} ms, max {max_ms:.2} ms   (target mean <= {TARGET_MEAN_MS} ms: {})",
        verdict(mean_ms <= TARGET_MEAN_MS)
    );
    println!(
        "  resident memory (/proc/PID/status, sampled every 10 ms; {} samples):",
        samples.len()
    );
    for p in PHASES {
        let mut seen = in_phase(p);
        if let Some(first) = seen.next() {
            let last = seen.next_back().unwrap_or(first);
            println!("    {p:?}: first {}", first.show());
            println!("    {p:?}: last  {}", last.show());
            println!("    {p:?}: peak  {}", peak(p).unwrap_or(first).show());
        }
    }
    println!("    2 s after the run: {}", last.show());
    let mappings: Vec<String> = mappings
        .iter()
        .take(8)
        .map(|(name, kib)| format!("{name} {kib} KiB"))
        .collect();
    println!("    resident by mapping then: {}", mappings.join(", "));
    println!(
        "  resident memory peak during the load {load_mib:.1} MiB, VmHWM (whole life) {hwm_mib:.1} MiB   (target <= {TARGET_RSS_MIB} MiB: {})",
        verdict(load_mib <= TARGET_RSS_MIB && hwm_mib <= TARGET_RSS_MIB)
    );
    println!(
        "  API calls during the run (apiserver_request_total, NADs+ConfigMaps, non-WATCH): {calls}   (target 0: {})",
        verdict(calls == 0)
    );
    println!();
    Outcome {
        bin: bin.to_string(),
        kind,
        size,
        codes: codes.to_string(),
        per_second,
        mean_ms,
        max_ms,
        load_mib,
        hwm_mib,
        calls,
    }
}
