//! The sandbox image scripts/images builds (target/images/pause.tar, or $SRIOV_PAUSE_IMAGE), as
//! an image tool we did not write (Debian's skopeo) reads it: one layer holding a static
//! `/pause`, run as a non-root user, with the standard OCI labels. (That containerd imports and
//! runs it is tests/containerd_node.rs.)
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn pause_image_is_one_static_binary_non_root_and_labelled() {
    let skopeo = sriov_test_support::require_binary!("skopeo");
    let Some(tarball) = sriov_testcluster::require(sriov_testcluster::containerd::pause_image()) else {
        return;
    };
    let reference = sriov_testcluster::containerd::archive_reference(&tarball).unwrap();
    assert!(reference.contains("/pause:"), "{reference}");
    let out = Command::new(&skopeo)
        .args(["inspect", "--config"])
        .arg(format!("docker-archive:{}", tarball.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["config"]["User"], "65535");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/pause"]));
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let labels = &config["config"]["Labels"];
    for key in [
        "title",
        "description",
        "version",
        "revision",
        "created",
        "licenses",
        "vendor",
    ] {
        let value = labels[format!("org.opencontainers.image.{key}")]
            .as_str()
            .unwrap_or_default();
        assert!(
            !value.is_empty(),
            "label org.opencontainers.image.{key} missing: {labels}"
        );
    }
    assert_eq!(labels["org.opencontainers.image.title"], "pause");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);

    // The layer holds exactly /pause, a static executable.
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let layer = dir.path().join(manifest[0]["Layers"][0].as_str().unwrap());
    let list = Command::new("tar").arg("-tf").arg(&layer).output().unwrap();
    let entries: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(entries, vec!["pause".to_string()], "{entries:?}");
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&layer)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let file = Command::new("file")
        .arg("-b")
        .arg(dir.path().join("pause"))
        .output();
    if let Ok(file) = file {
        let what = String::from_utf8_lossy(&file.stdout);
        assert!(what.contains("statically linked"), "{what}");
    }
    let version = Command::new(dir.path().join("pause")).arg("-v").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "sriov-rs pause 1"
    );
}
