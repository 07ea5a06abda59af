//! Where the Kubernetes binaries are, and what a missing one means.
//!
//! One directory holds them all, as envtest's `KUBEBUILDER_ASSETS` does: `$SRIOV_K8S_ASSETS`,
//! else `$KUBEBUILDER_ASSETS`, else this repository's `.tools/k8s/v1.36.2` (filled by
//! `scripts/deps/40-k8s.sh`). etcd may also come from `$PATH` or Debian's `/usr/bin/etcd`.

use std::path::{Path, PathBuf};

use crate::Error;

/// The Kubernetes version `scripts/deps/40-k8s.sh` unpacks.
pub const K8S_VERSION: &str = "v1.36.2";

const HINT: &str = "run scripts/deps/40-k8s.sh, or point SRIOV_K8S_ASSETS (or KUBEBUILDER_ASSETS) \
                    at a directory with etcd, kube-apiserver, kubelet and fakecri";

/// Paths of the binaries a cluster and its nodes run.
#[derive(Clone, Debug)]
pub struct Assets {
    pub dir: PathBuf,
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kubelet: PathBuf,
    pub fakecri: PathBuf,
}

/// The asset directory chosen by the environment (not checked).
pub fn asset_dir() -> PathBuf {
    for var in ["SRIOV_K8S_ASSETS", "KUBEBUILDER_ASSETS"] {
        if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return PathBuf::from(dir);
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/k8s")
        .join(K8S_VERSION)
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn in_dir(dir: &Path, name: &'static str) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    if executable(&path) {
        Ok(path)
    } else {
        Err(Error::MissingAsset {
            what: name,
            path,
            hint: HINT,
        })
    }
}

fn etcd(dir: &Path) -> Result<PathBuf, Error> {
    let mut candidates = vec![dir.join("etcd")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|p| p.join("etcd")));
    }
    candidates.push(PathBuf::from("/usr/bin/etcd"));
    candidates
        .into_iter()
        .find(|p| executable(p))
        .ok_or_else(|| Error::MissingAsset {
            what: "etcd",
            path: dir.join("etcd"),
            hint: HINT,
        })
}

impl Assets {
    /// Finds the control plane's binaries (etcd, kube-apiserver).
    pub fn control_plane() -> Result<Assets, Error> {
        let dir = asset_dir();
        Ok(Assets {
            etcd: etcd(&dir)?,
            kube_apiserver: in_dir(&dir, "kube-apiserver")?,
            kubelet: dir.join("kubelet"),
            fakecri: dir.join("fakecri"),
            dir,
        })
    }

    /// Checks the kubelet is there too.
    pub fn check_kubelet(&self) -> Result<(), Error> {
        in_dir(&self.dir, "kubelet").map(drop)
    }

    /// Checks the node's binaries (kubelet, fakecri) are there too.
    pub fn check_node(&self) -> Result<(), Error> {
        in_dir(&self.dir, "kubelet")?;
        in_dir(&self.dir, "fakecri")?;
        Ok(())
    }
}
