//! The one rule for putting a name that came from outside (a config value, an environment
//! variable, a resource name) into a directory: it must be a plain file name, so that
//! `dir.join(name)` stays in `dir`. `Path::join` with an absolute name replaces the directory and
//! `..` walks out of it; a `/` inside nests into places nobody meant.
//!
//! Used by the CNI plugin (IPAM plugin names in `CNI_PATH`, cache files in its state directory)
//! and the device plugin (its socket and device-info file names), so every entry point refuses
//! the same names.

use std::path::{Path, PathBuf};

/// A name that is not a plain file name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?} is not a plain file name (empty, `.`, or containing `/`, `..` or NUL): it would leave {dir}"
)]
pub struct NotAFileName {
    pub name: String,
    pub dir: String,
}

/// True for a plain file name: not empty, not `.`, and no `/`, `..` or NUL anywhere (`..` inside
/// a name is harmless to `join` but never needed, and refusing it keeps the rule obvious).
pub fn is_plain_file_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name.contains('/') || name.contains("..") || name.contains('\0'))
}

/// `dir/name`, or the error naming both when `name` is not [a plain file name](is_plain_file_name).
pub fn file_in(dir: &Path, name: &str) -> Result<PathBuf, NotAFileName> {
    if is_plain_file_name(name) {
        Ok(dir.join(name))
    } else {
        Err(NotAFileName {
            name: name.to_string(),
            dir: dir.display().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_stay_in_their_directory() {
        let dir = Path::new("/var/lib/cni/sriov");
        for ok in [
            "host-local",
            "a.b",
            "c1-net1",
            "intel.com_igb.sock",
            ".hidden",
            "0000:3b:02.3",
        ] {
            let p = file_in(dir, ok).expect(ok);
            assert_eq!(p.parent(), Some(dir), "{ok}");
        }
        for bad in ["", ".", "..", "/tmp/x", "../x", "a/b", "x/", "a..b", "nul\0", "/"] {
            let e = file_in(dir, bad).expect_err(bad);
            assert!(e.to_string().contains("/var/lib/cni/sriov"), "{e}");
        }
    }
}
