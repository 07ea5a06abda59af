//! Local mode (`--node-state-file PATH`): PATH holds one `SriovNetworkNodeState` (YAML or JSON).
//! The daemon applies it, keeps running, and applies again when the file changes (also when it
//! is replaced by a rename) and every resync period (drift; zero writes when nothing drifted).
//! Status goes to a file as the whole object with its `status`. SIGTERM/SIGINT stop it between
//! syncs (an apply in progress finishes first).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use serde::{Deserialize, Serialize};
use sriov_api::{NodeStateSpec, NodeStateStatus};

use crate::engine::{Backend, Desired, DrainAnswer, Engine, FAILED, status};
use crate::plan::Plan;
use crate::state::write_atomic;

/// The file's object: only what the daemon reads; other fields are kept for the status file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStateDoc {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub spec: NodeStateSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStateStatus>,
}

/// A node-state file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not a SriovNetworkNodeState: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

/// Reads and parses the node-state file.
pub fn read_doc(path: &Path) -> Result<NodeStateDoc, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.into(),
        source,
    })?;
    let doc: NodeStateDoc = serde_saphyr::from_str(&text).map_err(|e| FileError::Parse {
        path: path.into(),
        message: e.to_string(),
    })?;
    if !doc.kind.is_empty() && doc.kind != "SriovNetworkNodeState" {
        let message = format!("kind {:?}, expected SriovNetworkNodeState", doc.kind);
        return Err(FileError::Parse {
            path: path.into(),
            message,
        });
    }
    Ok(doc)
}

impl NodeStateDoc {
    /// The spec and `metadata.generation`.
    pub fn desired(&self) -> Desired {
        let generation = self
            .metadata
            .get("generation")
            .and_then(|g| g.as_i64())
            .unwrap_or(0);
        Desired {
            spec: self.spec.clone(),
            generation,
        }
    }
}

/// File-mode backend: status to `status_path`, drains granted at once (nobody to drain for a
/// standalone node; the verdict is logged with the PFs and reasons).
pub struct FileBackend {
    pub status_path: PathBuf,
    pub doc: NodeStateDoc,
    last: Option<NodeStateStatus>,
}

impl FileBackend {
    pub fn new(status_path: PathBuf) -> Self {
        FileBackend {
            status_path,
            doc: NodeStateDoc::default(),
            last: None,
        }
    }
}

impl Backend for FileBackend {
    fn publish(&mut self, status: &NodeStateStatus) {
        if self.last.as_ref() == Some(status) {
            return;
        }
        let mut doc = self.doc.clone();
        if doc.api_version.is_empty() {
            doc.api_version = "sriovnetwork.openshift.io/v1".into();
        }
        doc.kind = "SriovNetworkNodeState".into();
        doc.status = Some(status.clone());
        let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        match write_atomic(&self.status_path, &bytes) {
            Ok(()) => self.last = Some(status.clone()),
            Err(e) => tracing::error!(path = %self.status_path.display(), error = %e, "cannot write status"),
        }
        tracing::info!(sync_status = %status.sync_status, error = %status.last_sync_error, "status");
    }

    fn request_drain(&mut self, plan: &Plan) -> DrainAnswer {
        tracing::warn!(verdict = %plan.verdict, "file mode: no drainer, applying the disruptive change now");
        DrainAnswer::Proceed
    }

    fn release_drain(&mut self) {}
}

enum Event {
    FileChanged,
    Stop,
}

/// Runs the local mode until SIGTERM/SIGINT.
pub fn run(engine: &Engine<'_>, path: &Path, status_path: PathBuf, resync: Duration) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<Event>();
    crate::signals::on_terminate({
        let tx = tx.clone();
        move || {
            let _ = tx.send(Event::Stop);
        }
    })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher({
        let tx = tx.clone();
        move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev
                && ev
                    .paths
                    .iter()
                    .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
                && !ev.kind.is_access()
            {
                let _ = tx.send(Event::FileChanged);
            }
        }
    })?;
    // The directory, not the file: a rename over the file replaces the inode a file watch holds.
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;

    let mut backend = FileBackend::new(status_path);
    let mut last_text: Option<Vec<u8>> = None;
    loop {
        let text = std::fs::read(path).ok();
        if text.is_some() || last_text.is_none() {
            sync_file(engine, path, &mut backend);
        }
        last_text = text;
        // Wait for a change, a stop, or the resync period.
        match rx.recv_timeout(resync) {
            Ok(Event::Stop) => break,
            Ok(Event::FileChanged) => {
                // Editors and `mv` produce bursts: let them settle, drain the queue.
                std::thread::sleep(Duration::from_millis(100));
                let mut stop = false;
                while let Ok(ev) = rx.try_recv() {
                    stop |= matches!(ev, Event::Stop);
                }
                if stop {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => tracing::debug!("periodic resync"),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    tracing::info!("stopping");
    Ok(())
}

fn sync_file(engine: &Engine<'_>, path: &Path, backend: &mut FileBackend) {
    match read_doc(path) {
        Ok(doc) => {
            let desired = doc.desired();
            backend.doc = doc;
            let report = engine.sync(&desired, backend);
            let actions = report.plan.as_ref().map_or(0, |p| p.actions.len());
            tracing::info!(
                writes = report.writes,
                actions,
                sync_status = %report.status.sync_status,
                "sync done"
            );
            // A plain line for scripts (lab tests count host writes with it).
            eprintln!(
                "sync: {} writes={} actions={}",
                report.status.sync_status, report.writes, actions
            );
        }
        Err(e) => {
            let devices = engine.host.discover().unwrap_or_default();
            backend.publish(&status(&devices, FAILED, &e.to_string()));
            eprintln!("sync: {FAILED} writes=0 actions=0 ({e})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_yaml_with_unquoted_addresses_and_json() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("n.yaml");
        std::fs::write(
            &p,
            "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodeState\nmetadata:\n  name: w1\n  generation: 4\nspec:\n  interfaces:\n  - pciAddress: 0000:01:00.0\n    numVfs: 4\n    vfGroups:\n    - deviceType: vfio-pci\n      vfRange: 0-3\n",
        )
        .expect("write");
        let d = read_doc(&p).expect("yaml").desired();
        assert_eq!(d.generation, 4);
        assert_eq!(d.spec.interfaces[0].pci_address, "0000:01:00.0");
        assert_eq!(d.spec.interfaces[0].vf_groups[0].vf_range, "0-3");
        std::fs::write(&p, r#"{"kind":"SriovNetworkNodeState","spec":{"interfaces":[{"pciAddress":"0000:01:00.0","numVfs":2}]}}"#)
            .expect("write");
        assert_eq!(
            read_doc(&p).expect("json").desired().spec.interfaces[0].num_vfs,
            2
        );
        std::fs::write(
            &p,
            "kind: SriovNetworkNodeState\nspec:\n  interfaces:\n  - numVfs: 2\n",
        )
        .expect("write");
        let e = read_doc(&p).expect_err("pciAddress is required").to_string();
        assert!(e.contains("pciAddress"), "{e}");
    }
}
