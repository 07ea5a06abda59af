//! Device-info files for Multus / network-attachment-definition consumers
//! (`/var/run/k8s.cni.cncf.io/devinfo/dp/<prefix>-<name>-<deviceID>-device.json`), written at
//! Allocate for netDevice pools, as upstream: `{"type":"pci","version":"1.1.0","pci":{...}}` or the
//! `vdpa` form. Files are mode 0444; a pool's files are removed when its server starts and stops.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::config::VdpaType;
use crate::pool::PoolDevice;

/// `<full resource name with / → ->-`.
fn file_prefix(full_name: &str) -> String {
    format!("{}-", full_name.replace('/', "-"))
}

/// `<dir>/<prefix>-<name>-<id>-device.json`; refused (`InvalidInput`) when the file name would not
/// be a plain one (`sriov_host::paths`: a device id with `/` or `..` cannot leave `dir`).
pub fn path(dir: &Path, full_name: &str, id: &str) -> io::Result<PathBuf> {
    sriov_host::paths::file_in(dir, &format!("{}{id}-device.json", file_prefix(full_name)))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// The JSON document for one device.
pub fn document(pd: &PoolDevice) -> serde_json::Value {
    let d = &pd.device;
    match (&pd.vdpa, &d.vdpa) {
        (Some(t), Some(v)) => json!({
            "type": "vdpa",
            "version": "1.1.0",
            "vdpa": {
                "parent-device": v.name,
                "driver": if *t == VdpaType::Vhost { "vhost" } else { "virtio" },
                "path": v.path.clone().unwrap_or_default(),
                "pci-address": d.pci_address,
            }
        }),
        _ => {
            let mut pci = json!({ "pci-address": d.pci_address });
            if pd.rdma
                && let Some(r) = d.rdma_devices.first()
            {
                pci["rdma-device"] = json!(r);
            }
            json!({ "type": "pci", "version": "1.1.0", "pci": pci })
        }
    }
}

/// Deletes then writes the file (read-only, 0444).
pub fn write(dir: &Path, full_name: &str, pd: &PoolDevice) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir)?;
    let p = path(dir, full_name, &pd.device.id)?;
    match fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::write(&p, serde_json::to_vec(&document(pd)).unwrap_or_default())?;
    fs::set_permissions(&p, fs::Permissions::from_mode(0o444))
}

/// Removes every device-info file of one resource.
pub fn clean(dir: &Path, full_name: &str) {
    let prefix = file_prefix(full_name);
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with("-device.json") {
            let _ = fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{vf, with};

    #[test]
    fn documents_and_files() {
        let pd = |rdma| PoolDevice {
            device: with(vf("0000:3b:02.6", "p0", "0000:3b:00.0", 6), |d| {
                d.rdma_devices = vec!["mlx5_2".into()]
            }),
            selector: 0,
            rdma,
            vhost: false,
            vdpa: None,
        };
        assert_eq!(
            document(&pd(false)).to_string(),
            r#"{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:3b:02.6"}}"#
        );
        assert_eq!(
            document(&pd(true)).to_string(),
            r#"{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:3b:02.6","rdma-device":"mlx5_2"}}"#
        );
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "intel.com/sriov", &pd(false)).expect("write");
        write(dir.path(), "intel.com/sriov", &pd(false)).expect("rewrite a read-only file");
        let p = dir.path().join("intel.com-sriov-0000:3b:02.6-device.json");
        assert!(p.exists());
        fs::write(dir.path().join("intel.com-other-0000:3b:02.7-device.json"), "{}").expect("write");
        clean(dir.path(), "intel.com/sriov");
        assert!(!p.exists());
        assert!(
            dir.path()
                .join("intel.com-other-0000:3b:02.7-device.json")
                .exists()
        );
    }

    #[test]
    fn a_device_id_cannot_leave_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        for id in ["../../etc/x", "a/b", "x/../../y"] {
            let e = path(dir.path(), "intel.com/sriov", id).expect_err(id);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{id}: {e}");
        }
        let ok = path(dir.path(), "intel.com/sriov", "0000:3b:02.6").expect("plain");
        assert_eq!(ok.parent(), Some(dir.path()));
    }
}
