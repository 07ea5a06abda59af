//! Step tracing (`SRIOV_CNI_TRACE=1`: each step's time on stderr) and, only in builds with the
//! `test-hooks` feature (tests; never the release binary), fault injection:
//! `SRIOV_CNI_TEST_FAULT=abort:<step>` kills the process at a step (no clean-up runs, like
//! `kill -9`); `fail:<step>` makes that step return an error.
//! Steps: `cached`, `pf:<field>`, `moved`, `mac`, `up`, `ipam`, `addresses`, `result`.

use crate::error::{CniError, Result};

/// The configured fault, if any; with `SRIOV_CNI_TRACE=1` each step's time goes to stderr.
#[derive(Clone, Debug, Default)]
pub struct Fault(pub Option<(bool, String)>, pub Option<std::time::Instant>);

impl Fault {
    pub fn from_env() -> Fault {
        Fault(
            injected(),
            std::env::var_os("SRIOV_CNI_TRACE").map(|_| std::time::Instant::now()),
        )
    }

    /// With `SRIOV_CNI_TRACE`: prints the time since start-up of `step`.
    pub fn trace(&self, step: &str) {
        if let Some(t0) = self.1 {
            eprintln!("sriov: step {step} at {:.3} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
    }

    /// Called after `step` completed.
    pub fn at(&self, step: &str) -> Result<()> {
        self.trace(step);
        match &self.0 {
            Some((true, s)) if s == step => std::process::abort(),
            Some((false, s)) if s == step => {
                Err(CniError::internal(format!("injected failure after step {step}")))
            }
            _ => Ok(()),
        }
    }
}

/// The fault named by `SRIOV_CNI_TEST_FAULT` (`abort:<step>` or `fail:<step>`).
#[cfg(feature = "test-hooks")]
fn injected() -> Option<(bool, String)> {
    let v = std::env::var("SRIOV_CNI_TEST_FAULT").ok()?;
    let (kind, step) = v.split_once(':')?;
    Some((kind == "abort", step.to_string()))
}

/// Release builds: no fault injection, whatever the environment says.
#[cfg(not(feature = "test-hooks"))]
fn injected() -> Option<(bool, String)> {
    None
}
