//! Test-only (feature `test-hooks`): a JSON file standing in for a PF in tests on veth
//! stand-ins (`SRIOV_CNI_FAKE_PF`), which can also refuse attributes as igb does. Release
//! binaries are built without the feature, so they contain neither this code nor the variable's
//! name (scripts/check-release-binaries).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::config::Mac;
use crate::error::{CniError, Result};
use crate::pf::PfControl;
use crate::plan::{VfChange, VfState};

/// The variable naming the fake PF file.
pub const ENV: &str = "SRIOV_CNI_FAKE_PF";

/// One VF in the fake PF file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FakeVf {
    pub mac: String,
    pub vlan: u16,
    pub qos: u8,
    pub vlan_proto: u16,
    pub spoofchk: bool,
    pub trust: bool,
    pub link_state: u32,
    pub min_tx_rate: u32,
    pub max_tx_rate: u32,
}

/// The fake PF file: `{"vfs": {"<pf>/<vf>": FakeVf}, "refuse": ["link_state", ...]}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FakePfFile {
    pub vfs: BTreeMap<String, FakeVf>,
    /// Attributes (`VfChange::field`) this "driver" refuses with EOPNOTSUPP.
    pub refuse: Vec<String>,
}

impl FakeVf {
    pub fn state(&self) -> VfState {
        VfState {
            admin_mac: self.mac.parse().unwrap_or(Mac::ZERO),
            vlan: self.vlan,
            qos: self.qos,
            vlan_proto: self.vlan_proto,
            spoofchk: self.spoofchk,
            trust: self.trust,
            link_state: self.link_state,
            min_tx_rate: self.min_tx_rate,
            max_tx_rate: self.max_tx_rate,
        }
    }
    fn set(&mut self, s: &VfState) {
        *self = FakeVf {
            mac: s.admin_mac.to_string(),
            vlan: s.vlan,
            qos: s.qos,
            vlan_proto: s.vlan_proto,
            spoofchk: s.spoofchk,
            trust: s.trust,
            link_state: s.link_state,
            min_tx_rate: s.min_tx_rate,
            max_tx_rate: s.max_tx_rate,
        };
    }
}

/// A PF emulated by a JSON file (locked while read-modify-written, so concurrent plugins are safe).
pub struct FilePf {
    pub path: PathBuf,
}

impl FilePf {
    fn with<T>(&self, f: impl FnOnce(&mut FakePfFile) -> Result<T>) -> Result<T> {
        let err =
            |e: &dyn std::fmt::Display| CniError::internal(format!("fake PF {}: {e}", self.path.display()));
        // Lock a side file, so the lock never depends on how the data file is written.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("lock"))
            .map_err(|e| err(&e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| err(&e))?;
        let mut data: FakePfFile =
            serde_json::from_slice(&fs::read(&self.path).map_err(|e| err(&e))?).map_err(|e| err(&e))?;
        let before = data.clone();
        let out = f(&mut data)?;
        if data != before {
            // In place (every reader holds the lock): replacing it by rename makes ext4 flush it
            // each time, which would bill disk latency to the plugin in the benchmark.
            fs::write(&self.path, serde_json::to_vec_pretty(&data).unwrap_or_default())
                .map_err(|e| err(&e))?;
        }
        drop(lock);
        Ok(out)
    }
}

impl PfControl for FilePf {
    fn vf_state(&mut self, pf: &str, vf: u32) -> Result<VfState> {
        self.with(|d| {
            d.vfs
                .get(&format!("{pf}/{vf}"))
                .map(FakeVf::state)
                .ok_or_else(|| CniError::internal(format!("PF {pf:?} reports no VF {vf}")))
        })
    }
    fn set_vf(&mut self, pf: &str, vf: u32, ch: &VfChange) -> Result<()> {
        self.with(|d| {
            if d.refuse.iter().any(|r| r == ch.field()) {
                return Err(CniError::internal(format!(
                    "PF {pf:?}: setting VF {vf} {ch}: Operation not supported (os error 95)"
                )));
            }
            let v = d
                .vfs
                .get_mut(&format!("{pf}/{vf}"))
                .ok_or_else(|| CniError::internal(format!("PF {pf:?} reports no VF {vf}")))?;
            let mut s = v.state();
            ch.apply_to(&mut s);
            v.set(&s);
            Ok(())
        })
    }
}
