//! One sync: desired spec → plan → (drain) → apply → verify → status, with the persisted state
//! making it idempotent across restarts and crashes. Both daemon modes drive this through
//! [`Backend`].

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sriov_api::{NodeStateSpec, NodeStateStatus};
use sriov_host::{HostDevices, PciAddress};

use crate::apply::{ApplyOptions, apply};
use crate::host::Host;
use crate::plan::{Plan, PlanContext, Verdict, plan};
use crate::state::{SpecId, StateStore};

/// `syncStatus` values.
pub const SUCCEEDED: &str = "Succeeded";
pub const IN_PROGRESS: &str = "InProgress";
pub const FAILED: &str = "Failed";

/// The desired spec of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub spec: NodeStateSpec,
    /// `metadata.generation` (0 when the source has none).
    pub generation: i64,
}

/// Answer of a backend asked to make room for a disruptive change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrainAnswer {
    /// Workloads are gone (or there is nobody to drain them): apply now.
    Proceed,
    /// Not yet; the next sync asks again.
    Wait(String),
}

/// Where the desired spec comes from and where status goes: the Kubernetes API or a local file.
pub trait Backend {
    /// Publishes the node's status (interfaces, syncStatus, lastSyncError).
    fn publish(&mut self, status: &NodeStateStatus);
    /// Asks for the workloads on the PFs the plan disrupts to be drained.
    fn request_drain(&mut self, plan: &Plan) -> DrainAnswer;
    /// The disruptive apply is over (successfully or not): release the drain.
    fn release_drain(&mut self);
}

/// What one sync did.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncReport {
    pub status: NodeStateStatus,
    /// The first plan of this sync (what was found to differ).
    pub plan: Option<Plan>,
    /// Host writes this sync made.
    pub writes: u64,
}

/// The engine: a host, the persisted state, apply bounds.
pub struct Engine<'h> {
    pub host: &'h dyn Host,
    pub store: StateStore,
    pub opts: ApplyOptions,
    /// Re-plan-and-apply rounds before giving up on convergence (autoprobe off needs a second).
    pub max_rounds: usize,
    /// A full discovery is reused (after the cheap [`crate::quick`] check) for at most this long.
    pub cache_max_age: Duration,
    /// Reset only the PFs this daemon configured when they leave the spec (Kubernetes mode);
    /// `false`: every PF absent from the spec (file mode's contract).
    pub managed_only: bool,
    cache: Mutex<Option<(HostDevices, Instant)>>,
    reset_only: Mutex<Option<BTreeSet<PciAddress>>>,
}

impl<'h> Engine<'h> {
    pub fn new(host: &'h dyn Host, store: StateStore) -> Self {
        Engine {
            host,
            store,
            opts: ApplyOptions::default(),
            max_rounds: 3,
            cache_max_age: Duration::from_secs(300),
            managed_only: false,
            cache: Mutex::new(None),
            reset_only: Mutex::new(None),
        }
    }

    /// Brings the host to `desired` and publishes status through `backend`.
    pub fn sync(&self, desired: &Desired, backend: &mut dyn Backend) -> SyncReport {
        let writes0 = self.host.writes();
        let id = SpecId::of(&desired.spec, desired.generation);
        let mut state = self.store.load();
        let (status, plan) = self.run(desired, &id, &mut state, backend);
        backend.publish(&status);
        SyncReport {
            status,
            plan,
            writes: self.host.writes() - writes0,
        }
    }

    fn run(
        &self,
        desired: &Desired,
        id: &SpecId,
        state: &mut crate::state::PersistedState,
        backend: &mut dyn Backend,
    ) -> (NodeStateStatus, Option<Plan>) {
        if let Ok(mut r) = self.reset_only.lock() {
            *r = self
                .managed_only
                .then(|| state.managed_pfs.iter().filter_map(|a| a.parse().ok()).collect());
        }
        let (devices, first) = match self.discover_and_plan(&desired.spec, true) {
            Ok(x) => x,
            Err(status) => return (*status, None),
        };
        if first.actions.is_empty() && !matches!(first.verdict, Verdict::Reboot { .. }) {
            // Nothing differs (a restart with the same spec lands here): no host write, no flip.
            if state.applied.as_ref() != Some(id) || state.in_progress.is_some() {
                state.applied = Some(id.clone());
                state.in_progress = None;
                self.save(state);
            }
            return (status(&devices, SUCCEEDED, ""), Some(first));
        }
        if let (true, Verdict::Reboot { reasons }) = (first.actions.is_empty(), &first.verdict) {
            // Only the reboot is missing: say so without an InProgress flip at every resync.
            let msg = format!(
                "reboot needed: {}; everything else is applied",
                reasons.join("; ")
            );
            return (status(&devices, FAILED, &msg), Some(first));
        }
        let disruptive = matches!(first.verdict, Verdict::Drain { .. });
        if disruptive {
            tracing::warn!(verdict = %first.verdict, "disruptive change");
            if let DrainAnswer::Wait(why) = backend.request_drain(&first) {
                let mut s = status(&devices, IN_PROGRESS, "");
                s.last_sync_error = format!("waiting for drain: {why}");
                return (s, Some(first));
            }
        }
        state.in_progress = Some(id.clone());
        // Recorded before the first write: a crash must not forget that these PFs are ours.
        state.managed_pfs.extend(with_vfs(&desired.spec));
        self.save(state);
        backend.publish(&status(&devices, IN_PROGRESS, ""));
        let result = self.converge(&desired.spec, first.clone());
        if disruptive {
            backend.release_drain();
        }
        match result {
            Ok((devices, last)) => {
                if let Verdict::Reboot { reasons } = &last.verdict {
                    let msg = format!(
                        "reboot needed: {}; everything else is applied",
                        reasons.join("; ")
                    );
                    return (status(&devices, FAILED, &msg), Some(first));
                }
                state.applied = Some(id.clone());
                state.in_progress = None;
                let still: BTreeSet<String> = devices
                    .pfs
                    .iter()
                    .filter(|p| p.num_vfs > 0)
                    .map(|p| p.pci.address.to_string())
                    .collect();
                state.managed_pfs.retain(|a| still.contains(a));
                state.managed_pfs.extend(with_vfs(&desired.spec));
                self.save(state);
                (status(&devices, SUCCEEDED, ""), Some(first))
            }
            Err(msg) => {
                let devices = self.host.discover().unwrap_or_default();
                (status(&devices, FAILED, &msg), Some(first))
            }
        }
    }

    /// Applies, re-discovers and re-plans until nothing is left (verification), bounded.
    fn converge(&self, spec: &NodeStateSpec, mut current: Plan) -> Result<(HostDevices, Plan), String> {
        for round in 0..self.max_rounds {
            if let Err(errs) = apply(self.host, &current, &self.opts) {
                let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                return Err(format!(
                    "{}; the node is left part-way (VFs as discovered in status), the next sync retries",
                    msgs.join("; ")
                ));
            }
            let (devices, next) = self
                .discover_and_plan(spec, false)
                .map_err(|s| s.last_sync_error)?;
            if next.actions.is_empty() {
                return Ok((devices, next));
            }
            tracing::info!(
                round,
                left = next.actions.len(),
                "host still differs after apply, another round"
            );
            current = next;
        }
        let left: Vec<String> = current.actions.iter().map(|a| a.to_string()).collect();
        Err(format!(
            "verify: after {} rounds the host still differs: {}",
            self.max_rounds,
            left.join("; ")
        ))
    }

    /// Discovery (or the cached one when the quick check finds nothing changed) and the plan.
    /// The usage context (a /proc scan) is computed only when there is something to do.
    fn discover_and_plan(
        &self,
        spec: &NodeStateSpec,
        allow_cache: bool,
    ) -> Result<(HostDevices, Plan), Box<NodeStateStatus>> {
        let cached = if allow_cache {
            self.cached_if_unchanged(spec)
        } else {
            None
        };
        let devices = match cached {
            Some(d) => d,
            None => {
                let d = self
                    .host
                    .discover()
                    .map_err(|e| Box::new(status(&HostDevices::default(), FAILED, &e.to_string())))?;
                if let Ok(mut c) = self.cache.lock() {
                    if c.as_ref().is_none_or(|(old, _)| old != &d) {
                        self.store.save_discovery(&d);
                    }
                    *c = Some((d.clone(), Instant::now()));
                }
                d
            }
        };
        let optimistic = PlanContext {
            iommu_enabled: true,
            ..PlanContext::default()
        };
        let planned = plan(spec, &devices, &optimistic).and_then(|p| {
            // No action with no VF in use and the IOMMU on means none with the real facts either.
            if p.actions.is_empty() {
                Ok(p)
            } else {
                let mut ctx = self.host.context(&devices);
                ctx.reset_only = self.reset_only.lock().ok().and_then(|r| r.clone());
                plan(spec, &devices, &ctx)
            }
        });
        match planned {
            Ok(p) => Ok((devices, p)),
            Err(errs) => {
                let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                let msg = format!("invalid spec, nothing applied: {}", msgs.join("; "));
                Err(Box::new(status(&devices, FAILED, &msg)))
            }
        }
    }

    fn cached_if_unchanged(&self, spec: &NodeStateSpec) -> Option<HostDevices> {
        let devices = {
            let mut c = self.cache.lock().ok()?;
            if c.is_none() {
                // A restarted daemon: the discovery its predecessor saved, if recent enough.
                *c = self.store.load_discovery(self.cache_max_age);
            }
            let (d, at) = c.as_ref()?;
            if at.elapsed() > self.cache_max_age {
                return None;
            }
            d.clone()
        };
        // A PF the spec names that the cache does not know (hot-plugged, netdevsim created) → rediscover.
        let known = spec.interfaces.iter().all(|i| {
            devices
                .pfs
                .iter()
                .any(|p| p.pci.address.as_str().eq_ignore_ascii_case(i.pci_address.trim()))
        });
        (known && crate::quick::unchanged(self.host, spec, &devices)).then_some(devices)
    }

    fn save(&self, state: &crate::state::PersistedState) {
        if let Err(e) = self.store.save(state) {
            tracing::error!(path = %self.store.path().display(), error = %e, "cannot persist the applied state");
        }
    }
}

/// PCI addresses of the spec's PFs that get VFs.
fn with_vfs(spec: &NodeStateSpec) -> impl Iterator<Item = String> + '_ {
    spec.interfaces
        .iter()
        .filter(|i| i.num_vfs > 0)
        .map(|i| i.pci_address.trim().to_ascii_lowercase())
}

/// The status for `devices` with a sync state.
pub fn status(devices: &HostDevices, sync: &str, error: &str) -> NodeStateStatus {
    NodeStateStatus {
        interfaces: crate::status::interfaces(devices),
        sync_status: sync.to_string(),
        last_sync_error: error.to_string(),
        ..NodeStateStatus::default()
    }
}
