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
#[cfg(feature = "test-hooks")]
pub mod fake_pf;
pub mod fault;
pub mod install;
pub mod ipam;
pub mod netns;
pub mod nl;
pub mod pci;
pub mod pf;
pub mod plan;
pub mod result;
pub mod state;
pub mod sysfs;

use std::time::Duration;

use serde_json::Value;

use crate::env::{CniEnv, Command};
use crate::error::Result;
use crate::fault::Fault;
use crate::nl::Netlink;
use crate::pf::{NetlinkPf, PfControl};
use crate::state::StateDir;
use crate::sysfs::Sysfs;

/// Where the plugin looks and writes; production defaults, test overrides from the environment.
pub struct Ctx {
    pub sysfs: Sysfs,
    pub state: StateDir,
    /// Test-only (feature `test-hooks`): a JSON file standing in for the PF (`SRIOV_CNI_FAKE_PF`).
    #[cfg(feature = "test-hooks")]
    pub fake_pf: Option<std::path::PathBuf>,
    pub fault: Fault,
    pub lock_timeout: Duration,
    /// The PF's ifindex once looked up (one `RTM_GETLINK` per run, not per VF attribute).
    pub pf_index: std::cell::RefCell<Option<(String, u32)>>,
}

impl Ctx {
    /// `SRIOV_SYSFS_ROOT` (every binary's sysfs root variable, `sriov_host::SYSFS_ROOT_ENV`;
    /// default `/sys`), `SRIOV_CNI_STATE_DIR` (default `/var/lib/cni/sriov`);
    /// with the `test-hooks` feature also `SRIOV_CNI_FAKE_PF` and `SRIOV_CNI_TEST_FAULT`.
    pub fn from_env() -> Ctx {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Ctx {
            sysfs: Sysfs::new(var(sriov_host::SYSFS_ROOT_ENV).unwrap_or_else(|| "/sys".into())),
            state: StateDir::new(var("SRIOV_CNI_STATE_DIR").unwrap_or_else(|| state::DEFAULT_DIR.into())),
            #[cfg(feature = "test-hooks")]
            fake_pf: var(fake_pf::ENV).map(std::path::PathBuf::from),
            fault: Fault::from_env(),
            lock_timeout: Duration::from_secs(60),
            pf_index: std::cell::RefCell::new(None),
        }
    }

    /// Runs `f` against the PF control in use.
    pub fn with_pf<T>(&self, nl: &mut Netlink, f: impl FnOnce(&mut dyn PfControl) -> T) -> T {
        #[cfg(feature = "test-hooks")]
        if let Some(p) = &self.fake_pf {
            return f(&mut fake_pf::FilePf { path: p.clone() });
        }
        f(&mut NetlinkPf {
            nl,
            index: &self.pf_index,
        })
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
