//! `sriovdp-fake-kubelet --sriovdp PATH [--config FILE] [-- SRIOVDP ARGS...]`: plays the kubelet
//! for one `sriovdp` run and prints what the kubelet is told: each registration, each pool's
//! ListAndWatch, one Allocate per pool. For the lab demo and for trying a config by hand; the
//! kubelet side is the real v1beta1 protocol on a temporary `kubelet.sock`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sriov_device_plugin::fake_kubelet::{FakeKubelet, try_plugin};
use sriov_device_plugin::v1beta1 as api;
use tokio_stream::StreamExt;

#[derive(Parser, Debug)]
#[command(name = "sriovdp-fake-kubelet")]
struct Cli {
    /// The sriovdp binary.
    #[arg(long)]
    sriovdp: PathBuf,
    /// The device plugin config.
    #[arg(long, default_value = "/etc/pcidp/config.json")]
    config: PathBuf,
    /// Further sriovdp arguments.
    #[arg(last = true)]
    rest: Vec<String>,
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("sriovdp-fake-kubelet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let mut kubelet = FakeKubelet::try_start(&dir)?;
    let t0 = Instant::now();
    let mut child = Child(
        Command::new(&cli.sriovdp)
            .arg("--config-file")
            .arg(&cli.config)
            .arg("--device-plugin-dir")
            .arg(&dir)
            .args(["--plugins-registry-dir", "/nonexistent", "--device-info-dir", ""])
            .args(&cli.rest)
            .stderr(Stdio::from(std::fs::File::create(dir.join("sriovdp.log"))?))
            .spawn()
            .with_context(|| format!("cannot run {}", cli.sriovdp.display()))?,
    );
    let Some(first) = kubelet.next_within(Duration::from_secs(20)).await else {
        let log = std::fs::read_to_string(dir.join("sriovdp.log")).unwrap_or_default();
        bail!("sriovdp registered nothing within 20 s; its log:\n{log}");
    };
    let took = t0.elapsed();
    let mut regs = vec![first];
    while let Some(r) = kubelet.next_within(Duration::from_millis(700)).await {
        regs.push(r);
    }
    println!(
        "kubelet: {} Register call(s), the first {took:.1?} after exec",
        regs.len()
    );
    for r in &regs {
        let o = r.options.unwrap_or_default();
        println!(
            "kubelet: Register {{resource: {}, endpoint: {}, version: {}, preferredAllocation: {}}}",
            r.resource_name, r.endpoint, r.version, o.get_preferred_allocation_available
        );
    }
    for r in &regs {
        let mut c = try_plugin(&dir.join(&r.endpoint)).await?;
        let mut s = c.list_and_watch(api::Empty {}).await?.into_inner();
        let Some(m) = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await?
            .transpose()?
        else {
            bail!("{}: ListAndWatch ended without a message", r.resource_name);
        };
        println!(
            "kubelet: ListAndWatch {} -> {} device(s)",
            r.resource_name,
            m.devices.len()
        );
        for d in &m.devices {
            let numa = d
                .topology
                .as_ref()
                .and_then(|t| t.nodes.first())
                .map_or("-".to_string(), |n| n.id.to_string());
            println!("  {}  {}  numa {numa}", d.id, d.health);
        }
        let Some(d) = m.devices.first() else { continue };
        let req = api::AllocateRequest {
            container_requests: vec![api::ContainerAllocateRequest {
                devices_ids: vec![d.id.clone()],
            }],
        };
        let a = c.allocate(req).await?.into_inner();
        println!("kubelet: Allocate {} [{}] ->", r.resource_name, d.id);
        for cr in &a.container_responses {
            let mut envs: Vec<_> = cr.envs.iter().collect();
            envs.sort();
            for (k, v) in envs {
                println!("  env  {k}={v}");
            }
            for s in &cr.devices {
                println!(
                    "  dev  {} -> {} ({})",
                    s.host_path, s.container_path, s.permissions
                );
            }
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let status = child.0.wait()?;
    let left = std::fs::read_dir(&dir)?
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            n.to_string_lossy().ends_with(".sock") && n != "kubelet.sock"
        })
        .count();
    println!("sriovdp: exited ({status}) on SIGTERM; plugin sockets left behind: {left}");
    kubelet.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sriovdp-fake-kubelet: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
