//! The SR-IOV node config engine and `sriov-network-config-daemon`.
//!
//! * [`plan`]: pure — desired spec + discovered host → ordered actions + a drain verdict.
//! * [`apply`]: the shell — runs a plan on a [`Host`] (real sysfs or the in-memory [`fake`]).
//! * [`engine`]: one sync (plan, drain handshake, apply, verify, status) with the persisted
//!   last-applied state ([`state`]) that makes restarts and crashes idempotent.
//! * [`file_mode`]: the `--node-state-file` daemon.

pub mod apply;
pub mod engine;
/// The in-memory [`Host`] of the tests (feature `test-hooks`; not in release builds).
#[cfg(feature = "test-hooks")]
pub mod fake;
pub mod file_mode;
pub mod from_status;
pub mod host;
pub mod kube_mode;
/// netdevsim devices as PFs, for the lab (feature `netdevsim`; not in release builds).
#[cfg(feature = "netdevsim")]
pub mod netdevsim;
pub mod node_host;
pub mod plan;
pub mod quick;
pub mod signals;
pub mod spec_error;
pub mod state;
pub mod status;
pub mod sysfs_host;
pub mod usage;

pub use engine::{Backend, Desired, DrainAnswer, Engine, SyncReport};
pub use host::{Host, HostError};
pub use node_host::{NodeHost, node_host};
pub use plan::{Action, Plan, PlanContext, Verdict, plan};
pub use spec_error::{SpecError, VfDriver};
