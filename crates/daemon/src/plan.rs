//! The plan: desired `SriovNetworkNodeState.spec` + discovered host → ordered actions + a verdict.
//!
//! A plain function over values ([`plan`]); nothing here touches the host. The shell
//! ([`crate::apply`]) executes the actions; `sriovctl plan` prints them.
//!
//! Rules (see `docs/daemon.md`):
//! * numVfs is written only when it differs (0 → N, N → 0, or N → 0 → M: the kernel refuses N → M).
//! * VFs of a group get their driver: `netdevice` = the VF's default driver (driver_override
//!   cleared), `vfio-pci` through driver_override. VFs outside every group are left alone.
//! * PF MTU is set to the spec's MTU when they differ (raised and lowered: no endless
//!   reconcile); a group's MTU goes on its VF netdevs that are visible on the host.
//! * A PF absent from the spec that has VFs is reset to 0 VFs (unless externally managed).
//! * Verdict: drain only when a PF's VFs that are **in use** would be destroyed or rebound
//!   (numVfs change, reset, e-switch change, driver change). Creating VFs from 0, changes to
//!   PFs whose VFs are unused, and MTU changes never drain. vfio-pci without an IOMMU needs a
//!   reboot (kernel arguments), which sriov-rs reports and never performs on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use sriov_api::{NodeStateInterface, NodeStateSpec};
use sriov_host::{HostDevices, LinkType, PciAddress, PfDevice};

pub use crate::spec_error::SpecError;
use crate::spec_error::{VfDriver, validate};

/// Facts about the host beyond discovery, gathered by the shell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanContext {
    /// VFs a workload holds (netdev moved out of the host namespace, /dev/vfio group open).
    pub vfs_in_use: BTreeSet<PciAddress>,
    /// IOMMU groups exist (vfio-pci can work without a reboot).
    pub iommu_enabled: bool,
    /// PFs absent from the spec that may be reset: `None` = every one (file mode's contract),
    /// `Some(set)` = only those this daemon configured (Kubernetes mode, as upstream: VFs
    /// somebody else created are left alone).
    pub reset_only: Option<BTreeSet<PciAddress>>,
}

/// One step on the host. VFs are named by PF and index: they may not exist yet when planned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Write `sriov_numvfs` (0 first when both are non-zero), then wait for the VFs.
    #[serde(rename_all = "camelCase")]
    SetNumVfs { pf: PciAddress, from: u32, to: u32 },
    /// Set the e-switch mode through devlink.
    #[serde(rename_all = "camelCase")]
    SetEswitchMode {
        pf: PciAddress,
        from: Option<String>,
        to: String,
    },
    /// Set the PF netdev's MTU.
    #[serde(rename_all = "camelCase")]
    SetPfMtu {
        pf: PciAddress,
        netdev: String,
        from: u32,
        to: u32,
    },
    /// Bind VF `vf` to a driver (driver_override + unbind + drivers_probe).
    #[serde(rename_all = "camelCase")]
    BindVf {
        pf: PciAddress,
        vf: u32,
        from: Option<String>,
        to: VfDriver,
    },
    /// Set a VF netdev's MTU (waits for the netdev when the VF is new).
    #[serde(rename_all = "camelCase")]
    SetVfMtu {
        pf: PciAddress,
        vf: u32,
        from: Option<u32>,
        to: u32,
    },
}

impl Action {
    /// The PF this action is on.
    pub fn pf(&self) -> &PciAddress {
        match self {
            Action::SetNumVfs { pf, .. }
            | Action::SetEswitchMode { pf, .. }
            | Action::SetPfMtu { pf, .. }
            | Action::BindVf { pf, .. }
            | Action::SetVfMtu { pf, .. } => pf,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::SetNumVfs { pf, from, to } if *from > 0 && *to > 0 => {
                write!(f, "{pf}: numVfs {from} -> 0 -> {to} (re-create VFs)")
            }
            Action::SetNumVfs { pf, from, to } => write!(f, "{pf}: numVfs {from} -> {to}"),
            Action::SetEswitchMode { pf, from, to } => {
                write!(
                    f,
                    "{pf}: eSwitchMode {} -> {to}",
                    from.as_deref().unwrap_or("unknown")
                )
            }
            Action::SetPfMtu { pf, netdev, from, to } => write!(f, "{pf}: PF {netdev} mtu {from} -> {to}"),
            Action::BindVf { pf, vf, from, to } => {
                write!(
                    f,
                    "{pf}: VF {vf} driver {} -> {to}",
                    from.as_deref().unwrap_or("none")
                )
            }
            Action::SetVfMtu { pf, vf, from, to } => match from {
                Some(m) => write!(f, "{pf}: VF {vf} mtu {m} -> {to}"),
                None => write!(f, "{pf}: VF {vf} mtu -> {to}"),
            },
        }
    }
}

/// Why a PF needs its workloads drained first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DrainReason {
    pub pf: PciAddress,
    pub reason: String,
}

/// What applying the plan means for the node's workloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum Verdict {
    /// The host already matches the spec.
    NothingToDo,
    /// Changes, none disruptive to a workload.
    Apply,
    /// Workloads holding VFs of these PFs must be moved away first.
    Drain { pfs: Vec<DrainReason> },
    /// The spec cannot be met without a reboot (and whatever drain the reboot implies).
    Reboot { reasons: Vec<String> },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::NothingToDo => f.write_str("nothing to do"),
            Verdict::Apply => f.write_str("apply without drain"),
            Verdict::Drain { pfs } => {
                f.write_str("drain first:")?;
                for d in pfs {
                    write!(f, " [{}: {}]", d.pf, d.reason)?;
                }
                Ok(())
            }
            Verdict::Reboot { reasons } => write!(f, "reboot needed: {}", reasons.join("; ")),
        }
    }
}

/// The outcome of [`plan`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Ordered: per PF numVfs, e-switch, PF MTU, VF drivers, VF MTUs. PFs are independent.
    pub actions: Vec<Action>,
    pub verdict: Verdict,
    /// Things the plan deliberately leaves alone (e.g. MTU of a VF a pod holds).
    pub notes: Vec<String>,
}

impl Plan {
    /// Actions grouped by PF (in plan order), for parallel apply.
    pub fn by_pf(&self) -> BTreeMap<PciAddress, Vec<Action>> {
        let mut m: BTreeMap<PciAddress, Vec<Action>> = BTreeMap::new();
        for a in &self.actions {
            m.entry(a.pf().clone()).or_default().push(a.clone());
        }
        m
    }
}

/// Plans `spec` against `host`. Errors: every problem of the spec (nothing is planned then).
pub fn plan(spec: &NodeStateSpec, host: &HostDevices, ctx: &PlanContext) -> Result<Plan, Vec<SpecError>> {
    let checked = validate(spec, host)?;
    let mut p = Planner {
        ctx,
        actions: Vec::new(),
        drains: Vec::new(),
        reboots: Vec::new(),
        notes: Vec::new(),
    };
    let in_spec: BTreeSet<&PciAddress> = checked.iter().map(|(_, pf)| &pf.pci.address).collect();
    for (iface, pf) in &checked {
        p.pf_in_spec(iface, pf);
    }
    for pf in &host.pfs {
        let ours = ctx
            .reset_only
            .as_ref()
            .is_none_or(|set| set.contains(&pf.pci.address));
        if !in_spec.contains(&pf.pci.address) && pf.num_vfs > 0 && ours {
            p.reset(pf);
        }
    }
    let verdict = if !p.reboots.is_empty() {
        Verdict::Reboot { reasons: p.reboots }
    } else if !p.drains.is_empty() {
        Verdict::Drain { pfs: p.drains }
    } else if p.actions.is_empty() {
        Verdict::NothingToDo
    } else {
        Verdict::Apply
    };
    Ok(Plan {
        actions: p.actions,
        verdict,
        notes: p.notes,
    })
}

struct Planner<'a> {
    ctx: &'a PlanContext,
    actions: Vec<Action>,
    drains: Vec<DrainReason>,
    reboots: Vec<String>,
    notes: Vec<String>,
}

impl Planner<'_> {
    fn in_use<'p>(&self, pf: &'p PfDevice) -> Vec<&'p str> {
        pf.vfs
            .iter()
            .filter(|v| self.ctx.vfs_in_use.contains(&v.pci.address))
            .map(|v| v.pci.address.as_str())
            .collect()
    }

    fn drain(&mut self, pf: &PfDevice, why: String) {
        let used = self.in_use(pf);
        if used.is_empty() {
            return;
        }
        let reason = format!("{why} while VFs {} are in use", used.join(", "));
        let addr = pf.pci.address.clone();
        self.add_drain(&addr, reason);
    }

    fn add_drain(&mut self, pf: &PciAddress, reason: String) {
        match self.drains.iter_mut().find(|d| &d.pf == pf) {
            Some(d) => {
                d.reason.push_str("; ");
                d.reason.push_str(&reason);
            }
            None => self.drains.push(DrainReason {
                pf: pf.clone(),
                reason,
            }),
        }
    }

    fn reset(&mut self, pf: &PfDevice) {
        let addr = pf.pci.address.clone();
        self.drain(
            pf,
            format!("PF left the spec: its {} VFs are destroyed", pf.num_vfs),
        );
        self.actions.push(Action::SetNumVfs {
            pf: addr,
            from: pf.num_vfs,
            to: 0,
        });
    }

    fn pf_in_spec(&mut self, iface: &NodeStateInterface, pf: &PfDevice) {
        let addr = &pf.pci.address;
        let want = u32::try_from(iface.num_vfs).unwrap_or(0);
        // Existing VFs survive unless numVfs changes.
        let recreate = !iface.externally_managed && want != pf.num_vfs;
        if recreate {
            if pf.num_vfs > 0 {
                self.drain(pf, format!("numVfs {} -> {want} destroys its VFs", pf.num_vfs));
            }
            self.actions.push(Action::SetNumVfs {
                pf: addr.clone(),
                from: pf.num_vfs,
                to: want,
            });
        }
        let eswitch_differs = match pf.eswitch_mode.as_deref() {
            None => iface.e_switch_mode == "switchdev",
            Some(cur) => !iface.e_switch_mode.is_empty() && cur != iface.e_switch_mode,
        };
        if eswitch_differs {
            if !recreate {
                self.drain(pf, format!("eSwitchMode change to {}", iface.e_switch_mode));
            }
            self.actions.push(Action::SetEswitchMode {
                pf: addr.clone(),
                from: pf.eswitch_mode.clone(),
                to: iface.e_switch_mode.clone(),
            });
        }
        if iface.mtu > 0 {
            let to = iface.mtu as u32;
            match pf.pci.netdev() {
                Some(nd) if nd.mtu != to => self.actions.push(Action::SetPfMtu {
                    pf: addr.clone(),
                    netdev: nd.name.clone(),
                    from: nd.mtu,
                    to,
                }),
                Some(_) => {}
                None => self
                    .notes
                    .push(format!("{addr}: PF has no netdev, mtu {to} not applied")),
            }
        }
        let groups = crate::spec_error::groups(iface);
        let mut binds = Vec::new();
        let mut mtus = Vec::new();
        for vf in 0..want {
            let Some(g) = groups.iter().find(|g| g.range.contains(&vf)) else {
                continue;
            };
            // After a (re-)creation every VF starts on its default driver with a fresh netdev.
            let existing = if recreate {
                None
            } else {
                pf.vfs.iter().find(|v| v.vf_index == Some(vf))
            };
            let cur_driver = existing.and_then(|v| v.pci.driver.clone());
            let on_default = match existing {
                None => recreate,
                Some(v) => v.pci.driver.as_deref().is_some_and(|d| d != "vfio-pci"),
            };
            let needs_bind = match g.driver {
                VfDriver::Netdevice => !on_default,
                VfDriver::VfioPci => cur_driver.as_deref() != Some("vfio-pci"),
            };
            if needs_bind {
                if g.driver == VfDriver::VfioPci && !self.ctx.iommu_enabled {
                    let r = format!(
                        "{addr}: VF {vf} wants vfio-pci but the IOMMU is off (kernel arguments intel_iommu=on iommu=pt, or amd_iommu=on, missing)"
                    );
                    if !self.reboots.contains(&r) {
                        self.reboots.push(r);
                    }
                    continue;
                }
                if let Some(v) = existing.filter(|v| self.ctx.vfs_in_use.contains(&v.pci.address)) {
                    let why = format!(
                        "VF {vf} ({}) in use changes driver {} -> {}",
                        v.pci.address,
                        cur_driver.as_deref().unwrap_or("none"),
                        g.driver
                    );
                    self.add_drain(addr, why);
                }
                binds.push(Action::BindVf {
                    pf: addr.clone(),
                    vf,
                    from: cur_driver.clone(),
                    to: g.driver,
                });
            }
            if g.driver == VfDriver::Netdevice && g.mtu > 0 {
                let to = g.mtu as u32;
                match existing {
                    None => mtus.push(Action::SetVfMtu {
                        pf: addr.clone(),
                        vf,
                        from: None,
                        to,
                    }),
                    Some(v) => match v.pci.netdev() {
                        Some(nd) if nd.mtu != to => mtus.push(Action::SetVfMtu {
                            pf: addr.clone(),
                            vf,
                            from: Some(nd.mtu),
                            to,
                        }),
                        Some(_) => {}
                        None if self.ctx.vfs_in_use.contains(&v.pci.address) => self.notes.push(format!(
                            "{addr}: VF {vf} is in use, its mtu is left to the workload (wanted {to})"
                        )),
                        None => mtus.push(Action::SetVfMtu {
                            pf: addr.clone(),
                            vf,
                            from: None,
                            to,
                        }),
                    },
                }
            }
        }
        self.actions.extend(binds);
        self.actions.extend(mtus);
        if !iface.link_type.is_empty() {
            self.check_link_type(iface, pf);
        }
    }

    fn check_link_type(&mut self, iface: &NodeStateInterface, pf: &PfDevice) {
        let cur = pf.pci.netdev().map(|n| n.link_type);
        let want_ib = iface.link_type.eq_ignore_ascii_case("ib");
        let matches = match cur {
            Some(LinkType::Infiniband) => want_ib,
            Some(LinkType::Ether) => !want_ib,
            _ => true,
        };
        if !matches {
            self.notes.push(format!(
                "{}: linkType {} differs from the PF's; changing it needs vendor firmware tools, not applied",
                pf.pci.address, iface.link_type
            ));
        }
    }
}

#[cfg(test)]
mod errors_tests;
#[cfg(test)]
mod tests;
