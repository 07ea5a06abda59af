//! The last applied spec, persisted on the node (generation + SHA-256 of the spec's JSON), so a
//! restarted daemon with an unchanged spec neither re-applies nor flips the status, and a daemon
//! killed mid-apply knows it must resume.
//!
//! Written atomically (temporary file in the same directory, fsync, rename).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sriov_api::NodeStateSpec;
use sriov_host::HostDevices;

/// One spec's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecId {
    pub generation: i64,
    pub spec_hash: String,
}

impl SpecId {
    pub fn of(spec: &NodeStateSpec, generation: i64) -> Self {
        SpecId {
            generation,
            spec_hash: spec_hash(spec),
        }
    }
}

/// What is on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistedState {
    /// The spec the host last matched after a verified apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<SpecId>,
    /// Set before the first host write of an apply, cleared once it is verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<SpecId>,
    /// PFs this daemon gave VFs (the ones Kubernetes mode may reset when they leave the spec).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub managed_pfs: BTreeSet<String>,
}

/// SHA-256 (hex) of the spec's canonical JSON.
pub fn spec_hash(spec: &NodeStateSpec) -> String {
    let json = serde_json::to_vec(spec).unwrap_or_default();
    let digest = Sha256::digest(&json);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The state file of a daemon.
#[derive(Clone, Debug)]
pub struct StateStore {
    path: PathBuf,
}

impl StateStore {
    /// `<dir>/last-applied.json`.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        StateStore {
            path: dir.as_ref().join("last-applied.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored state; a missing or unreadable file is "nothing applied yet" (logged).
    pub fn load(&self) -> PersistedState {
        match fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), error = %e, "state file unreadable, starting afresh");
                PersistedState::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => PersistedState::default(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "state file unreadable, starting afresh");
                PersistedState::default()
            }
        }
    }

    /// Replaces the stored state atomically.
    pub fn save(&self, state: &PersistedState) -> io::Result<()> {
        write_atomic(
            &self.path,
            &serde_json::to_vec_pretty(state).map_err(io::Error::other)?,
        )
    }
}

/// The last full discovery, kept so a restarted daemon can skip re-discovering (after the quick
/// check confirms nothing it depends on changed).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SavedDiscovery {
    /// Seconds since the Unix epoch.
    discovered_at: u64,
    devices: HostDevices,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl StateStore {
    fn discovery_path(&self) -> PathBuf {
        self.path.with_file_name("last-discovery.json")
    }

    /// Saves a full discovery (best effort: a failure only costs a discovery after a restart).
    pub fn save_discovery(&self, devices: &HostDevices) {
        let saved = SavedDiscovery {
            discovered_at: now_secs(),
            devices: devices.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec(&saved)
            && let Err(e) = write_atomic(&self.discovery_path(), &bytes)
        {
            tracing::debug!(error = %e, "cannot save the discovery");
        }
    }

    /// The saved discovery when it is at most `max_age` old, with the instant it was made.
    pub fn load_discovery(&self, max_age: std::time::Duration) -> Option<(HostDevices, std::time::Instant)> {
        let bytes = fs::read(self.discovery_path()).ok()?;
        let saved: SavedDiscovery = serde_json::from_slice(&bytes).ok()?;
        let age = std::time::Duration::from_secs(now_secs().checked_sub(saved.discovered_at)?);
        if age > max_age {
            return None;
        }
        Some((saved.devices, std::time::Instant::now().checked_sub(age)?))
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename (readers see old or new).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
