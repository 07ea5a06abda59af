//! The one rule for tests that need something this machine may not have (root, a binary, a
//! kernel feature): under `CI=true` a missing prerequisite FAILS the test; elsewhere the test is
//! skipped with a message on stderr. A test never passes by returning early in CI, where every
//! prerequisite is installed by `scripts/deps/*.sh` and the tests run as root.
//!
//! ```ignore
//! #[test]
//! fn needs_a_netns() {
//!     sriov_test_support::require_root!();
//!     sriov_test_support::require!(which("ip").is_some(), "iproute2's ip");
//!     ...
//! }
//! ```

use std::path::{Path, PathBuf};

/// True when running under CI (`CI=true`, as GitHub Actions, GitLab and our `.ci/run` set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether a test may go on: `true` when `present`; when not, panics under CI naming `what`,
/// else prints `skipping: needs <what>` and returns `false` (the caller returns).
pub fn prerequisite(present: bool, what: &str) -> bool {
    decide(present, in_ci(), what).unwrap_or_else(|msg| panic!("{msg}"))
}

/// The rule as a plain function: `Ok(go_on)`, or `Err(message)` when the test must fail.
pub fn decide(present: bool, ci: bool, what: &str) -> Result<bool, String> {
    match (present, ci) {
        (true, _) => Ok(true),
        (false, true) => Err(format!(
            "this test needs {what}, which is missing; under CI=true that is a failure, not a skip \
             (scripts/install-test-deps installs the test prerequisites)"
        )),
        (false, false) => {
            eprintln!("skipping: needs {what} (under CI=true this fails)");
            Ok(false)
        }
    }
}

/// True when the effective user is root.
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// `name` found in `$PATH` (or `name` itself when it contains a `/` and is a file).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The workspace root (this crate is `crates/test-support`).
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A tool the project installs into the ignored `.tools/bin` (with `scripts/deps/<script>`), or
/// the file `$var` names when set: its path, or `None` after [`prerequisite`] said it is missing
/// (a failure under CI).
pub fn repo_tool(var: &str, name: &str, script: &str) -> Option<PathBuf> {
    let candidate = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join(".tools/bin").join(name));
    if candidate.is_file() {
        return Some(candidate);
    }
    prerequisite(
        false,
        &format!("{name} at {} (run {script} or set {var})", candidate.display()),
    );
    None
}

/// Returns from the calling test (skip) or panics under CI unless `$present`; `$what` is a
/// `format!` message naming the prerequisite.
#[macro_export]
macro_rules! require {
    ($present:expr, $($what:tt)+) => {
        if !$crate::prerequisite($present, &format!($($what)+)) {
            return;
        }
    };
}

/// [`require!`] root.
#[macro_export]
macro_rules! require_root {
    () => {
        $crate::require!($crate::is_root(), "root")
    };
}

/// Yields the path of binary `$name` (see [`which`]) or returns/panics as [`require!`].
#[macro_export]
macro_rules! require_binary {
    ($name:expr) => {
        match $crate::which($name) {
            Some(p) => p,
            None => {
                $crate::require!(false, "the {} binary", $name);
                unreachable!()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fails_in_ci_and_skips_elsewhere() {
        assert_eq!(decide(true, true, "x"), Ok(true));
        assert_eq!(decide(true, false, "x"), Ok(true));
        assert_eq!(decide(false, false, "x"), Ok(false));
        let e = decide(false, true, "root").expect_err("CI must fail");
        assert!(e.contains("needs root") && e.contains("CI=true"), "{e}");
    }

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("no-such-binary-sriov-rs").is_none());
        assert!(which("/no/such/file").is_none());
    }
}
