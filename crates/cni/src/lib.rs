//! The `sriov` CNI plugin, a drop-in for upstream sriov-cni: same network config, results and
//! cache files; every change to a VF is saved first and undone on failure or DEL.
//!
//! Layout: pure functions (`config`, `env`, `plan`, `result`, cache shape in `state`) and thin
//! edges (`sysfs` under an injectable root, `nl` sync rtnetlink, `netns`, `pf`, `ipam`).

pub mod add;
pub mod check;
pub mod config;
pub mod del;
pub mod env;
pub mod error;
pub mod fault;
pub mod ipam;
pub mod netns;
pub mod nl;
pub mod pci;
pub mod pf;
pub mod plan;
pub mod result;
pub mod state;
pub mod sysfs;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::env::{CniEnv, Command};
use crate::error::Result;
use crate::fault::Fault;
use crate::nl::Netlink;
use crate::pf::{FilePf, NetlinkPf, PfControl};
use crate::state::StateDir;
use crate::sysfs::Sysfs;

/// Where the plugin looks and writes; production defaults, test overrides from the environment.
pub struct Ctx {
    pub sysfs: Sysfs,
    pub state: StateDir,
    /// Test-only: a JSON file standing in for the PF (`SRIOV_CNI_FAKE_PF`).
    pub fake_pf: Option<PathBuf>,
    pub fault: Fault,
    pub lock_timeout: Duration,
    /// The PF's ifindex once looked up (one `RTM_GETLINK` per run, not per VF attribute).
    pub pf_index: std::cell::RefCell<Option<(String, u32)>>,
}

impl Ctx {
    /// `SRIOV_SYSFS_ROOT` (`sriov_host::SYSFS_ROOT_ENV`, default `/sys`), `SRIOV_CNI_STATE_DIR` (default `/var/lib/cni/sriov`),
    /// `SRIOV_CNI_FAKE_PF`, `SRIOV_CNI_TEST_FAULT`.
    pub fn from_env() -> Ctx {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Ctx {
            sysfs: Sysfs::new(var(sriov_host::SYSFS_ROOT_ENV).unwrap_or_else(|| "/sys".into())),
            state: StateDir::new(var("SRIOV_CNI_STATE_DIR").unwrap_or_else(|| state::DEFAULT_DIR.into())),
            fake_pf: var("SRIOV_CNI_FAKE_PF").map(PathBuf::from),
            fault: Fault::from_env(),
            lock_timeout: Duration::from_secs(60),
            pf_index: std::cell::RefCell::new(None),
        }
    }

    /// Runs `f` against the PF control in use.
    pub fn with_pf<T>(&self, nl: &mut Netlink, f: impl FnOnce(&mut dyn PfControl) -> T) -> T {
        match &self.fake_pf {
            Some(p) => f(&mut FilePf { path: p.clone() }),
            None => f(&mut NetlinkPf {
                nl,
                index: &self.pf_index,
            }),
        }
    }
}

/// Runs one command; `Ok(Some(json))` is printed on stdout.
pub fn run(ctx: &Ctx, env: &CniEnv, stdin: &[u8]) -> Result<Option<Value>> {
    match env.command {
        Command::Version => Ok(Some(result::version_json())),
        Command::Add => add::add(ctx, env, stdin).map(Some),
        Command::Del => del::del(ctx, env, stdin).map(|()| None),
        Command::Check => check::check(ctx, env, stdin).map(|()| None),
        Command::Gc => check::gc(ctx, env, stdin).map(|()| None),
        Command::Status => check::status(env, stdin).map(|()| None),
    }
}
