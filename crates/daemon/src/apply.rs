//! Apply: runs a [`Plan`] on a [`Host`]. PFs are independent and configured in parallel; within a
//! PF the plan's order holds. Every wait is bounded; a failure names the step and the device.
//! Verification (re-discover and re-plan) is the caller's ([`crate::engine`]).

use std::thread;
use std::time::{Duration, Instant};

use sriov_host::PciAddress;

use crate::host::{Host, HostError};
use crate::plan::{Action, Plan};
use crate::spec_error::VfDriver;

/// Bounds of the waits.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// For the `virtfnN` links after writing `sriov_numvfs` (upstream waits up to 120 s).
    pub vf_timeout: Duration,
    /// For a driver to bind after `drivers_probe`.
    pub driver_timeout: Duration,
    /// For a VF netdev to appear (igbvf probes asynchronously, ~1.4 s in the lab).
    pub netdev_timeout: Duration,
    /// Poll interval.
    pub poll: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            vf_timeout: Duration::from_secs(60),
            driver_timeout: Duration::from_secs(15),
            netdev_timeout: Duration::from_secs(15),
            poll: Duration::from_millis(20),
        }
    }
}

/// A step that failed: which action, on which device, why.
#[derive(Debug, thiserror::Error)]
#[error("step \"{step}\" failed on {device}: {reason}")]
pub struct ApplyError {
    pub pf: PciAddress,
    /// The action, as `sriovctl plan` prints it.
    pub step: String,
    /// The PF, VF or netdev the failing write or wait was on.
    pub device: String,
    pub reason: String,
}

/// Runs `plan` on `host`: one thread per PF. Returns every PF's first error (the other PFs finish).
pub fn apply(host: &dyn Host, plan: &Plan, opts: &ApplyOptions) -> Result<(), Vec<ApplyError>> {
    let by_pf = plan.by_pf();
    let mut errors = Vec::new();
    if by_pf.len() == 1 {
        for (_, actions) in by_pf {
            errors.extend(run_pf(host, &actions, opts).err());
        }
    } else {
        thread::scope(|s| {
            let handles: Vec<_> = by_pf
                .values()
                .map(|actions| s.spawn(|| run_pf(host, actions, opts)))
                .collect();
            for h in handles {
                match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errors.push(e),
                    Err(_) => errors.push(ApplyError {
                        pf: plan.actions[0].pf().clone(),
                        step: "apply".into(),
                        device: "?".into(),
                        reason: "a PF worker panicked".into(),
                    }),
                }
            }
        });
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn run_pf(host: &dyn Host, actions: &[Action], opts: &ApplyOptions) -> Result<(), ApplyError> {
    for a in actions {
        let fail = |device: &dyn std::fmt::Display, reason: String| ApplyError {
            pf: a.pf().clone(),
            step: a.to_string(),
            device: device.to_string(),
            reason,
        };
        let herr = |device: &dyn std::fmt::Display, e: HostError| fail(device, e.to_string());
        tracing::info!(step = %a, "apply");
        match a {
            Action::SetNumVfs { pf, to, .. } => {
                // From the live count, not the planned one: a crash may have left it at 0 already.
                if host.vf_count(pf) > 0 && *to > 0 {
                    host.write_num_vfs(pf, 0).map_err(|e| herr(pf, e))?;
                    wait(opts.vf_timeout, opts.poll, || host.vf_count(pf) == 0)
                        .map_err(|t| fail(pf, format!("VFs still present {t:?} after writing 0")))?;
                }
                host.write_num_vfs(pf, *to).map_err(|e| herr(pf, e))?;
                wait(opts.vf_timeout, opts.poll, || host.vf_count(pf) == *to).map_err(|t| {
                    fail(
                        pf,
                        format!("{} of {to} VFs appeared within {t:?}", host.vf_count(pf)),
                    )
                })?;
                if *to > 0 && host.autoprobe(pf) {
                    // Let the kernel finish probing the new VFs (igbvf is asynchronous, ~1.4 s),
                    // so later steps never race the autoprobe.
                    let bound = || {
                        (0..*to).all(|i| host.vf_address(pf, i).is_some_and(|a| host.driver(&a).is_some()))
                    };
                    if let Err(t) = wait(opts.driver_timeout, opts.poll, bound) {
                        // Not fatal: the verify round binds what is still unbound.
                        tracing::warn!(%pf, waited = ?t, "the new VFs did not all get a driver by themselves");
                    }
                }
            }
            Action::SetEswitchMode { pf, to, .. } => {
                host.set_eswitch_mode(pf, to).map_err(|e| herr(pf, e))?
            }
            Action::SetPfMtu { pf, netdev, to, .. } => {
                let nd = host.netdev(pf).unwrap_or_else(|| netdev.clone());
                host.set_mtu(&nd, *to).map_err(|e| herr(&nd, e))?
            }
            Action::BindVf { pf, vf, to, .. } => {
                let addr = vf_addr(host, pf, *vf, opts).map_err(|r| fail(pf, r))?;
                bind(host, &addr, *to, opts).map_err(|r| fail(&addr, r))?;
            }
            Action::SetVfMtu { pf, vf, to, .. } => {
                let addr = vf_addr(host, pf, *vf, opts).map_err(|r| fail(pf, r))?;
                let mut nd = None;
                wait(opts.netdev_timeout, opts.poll, || {
                    nd = host.netdev(&addr);
                    nd.is_some()
                })
                .map_err(|t| fail(&addr, format!("no netdev appeared within {t:?}")))?;
                let nd = nd.unwrap_or_default();
                host.set_mtu(&nd, *to).map_err(|e| herr(&nd, e))?;
            }
        }
    }
    Ok(())
}

fn vf_addr(host: &dyn Host, pf: &PciAddress, vf: u32, opts: &ApplyOptions) -> Result<PciAddress, String> {
    let mut addr = None;
    wait(opts.vf_timeout, opts.poll, || {
        addr = host.vf_address(pf, vf);
        addr.is_some()
    })
    .map_err(|t| format!("VF {vf} (virtfn{vf}) did not appear within {t:?}"))?;
    addr.ok_or_else(|| format!("VF {vf} vanished"))
}

/// driver_override + unbind + drivers_probe, then waits for the right driver.
fn bind(host: &dyn Host, dev: &PciAddress, to: VfDriver, opts: &ApplyOptions) -> Result<(), String> {
    let over = match to {
        VfDriver::VfioPci => {
            host.ensure_driver("vfio-pci");
            Some("vfio-pci")
        }
        VfDriver::Netdevice => None,
    };
    host.set_driver_override(dev, over).map_err(|e| e.to_string())?;
    if let Some(cur) = host.driver(dev) {
        host.unbind(dev, &cur).map_err(|e| e.to_string())?;
    }
    host.probe(dev).map_err(|e| e.to_string())?;
    let ok = |d: Option<String>| match to {
        VfDriver::VfioPci => d.as_deref() == Some("vfio-pci"),
        VfDriver::Netdevice => d.is_some_and(|d| d != "vfio-pci"),
    };
    wait(opts.driver_timeout, opts.poll, || ok(host.driver(dev))).map_err(|t| {
        format!(
            "driver is {} {t:?} after probing, wanted {to}",
            host.driver(dev).as_deref().unwrap_or("none")
        )
    })
}

/// Polls `f` until true; `Err(elapsed)` after `timeout`.
fn wait(timeout: Duration, poll: Duration, mut f: impl FnMut() -> bool) -> Result<(), Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(start.elapsed());
        }
        thread::sleep(poll);
    }
}
