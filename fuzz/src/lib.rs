//! What the fuzz targets share: the fixture trees and pools they run against, and checks.

pub mod pool;
pub mod sysfs_tree;

/// The spec version CNI errors are rendered for in the targets.
pub const CNI_VERSION: &str = "1.0.0";

/// Panics unless `text` is one JSON value: what a CNI runtime reads on stdout must parse.
pub fn assert_json(text: &str) {
    if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        panic!("not JSON ({e}): {text:?}");
    }
}

/// A scratch directory for this process's trees: `$SRIOV_FUZZ_SCRATCH` (set by `scripts/fuzz`,
/// which removes it afterwards) or tmpfs (`sriov_host::fixture::scratch_base`), per process id.
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    let base = std::env::var_os("SRIOV_FUZZ_SCRATCH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(sriov_host::fixture::scratch_base);
    let dir = base.join(format!("sriov-fuzz-{what}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove a stale scratch directory");
    }
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}
