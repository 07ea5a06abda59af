//! What discovery could not read, and why. Discovery never fails for one bad device: it skips or
//! degrades that device and records a [`Warning`] naming the path.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Broad class of a [`Warning`], for callers that react differently (e.g. a daemon retrying
/// after [`WarningKind::Vanished`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WarningKind {
    /// The device, netdev or link target disappeared between listing and reading (ENOENT): a
    /// device removed mid-scan, a VF destroyed, a netdev moved to another network namespace.
    Vanished,
    /// The file exists but could not be read (EIO, EISDIR, EACCES, ...).
    Unreadable,
    /// The file was read but its content makes no sense (garbage in `sriov_totalvfs`, ...).
    Invalid,
    /// The kernel's links disagree with each other (a VF whose `physfn` PF has no `virtfnN` for
    /// it, a vfio-pci function without `/dev/vfio/<group>`, ...).
    Inconsistent,
}

/// One problem found during discovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The sysfs (or dev) path the problem is about.
    pub path: PathBuf,
    pub kind: WarningKind,
    /// What was wrong and what discovery did about it, e.g.
    /// `invalid value "abc": device treated as not SR-IOV capable`.
    pub message: String,
}

impl Warning {
    pub(crate) fn new(path: impl Into<PathBuf>, kind: WarningKind, message: impl Into<String>) -> Self {
        Warning {
            path: path.into(),
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}
