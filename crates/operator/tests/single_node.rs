//! The operator's CNI contract on a real node: the config daemon DaemonSet's `sriov-cni` init
//! container, exactly as the operator renders it (upstream's shape: no command,
//! `args: [--no-sleep]`, the node's CNI bin dir mounted at `/host/opt/cni/bin`), run by the real
//! kubelet on Debian's containerd + runc from the sriov-cni image built by `scripts/images`,
//! copies the plugin into the node's CNI bin dir byte for byte.
//!
//! Needs root, scripts/deps/45-containerd.sh + 46-pause-image.sh and the component images
//! (`scripts/images sriov-cni`; `SRIOV_IMAGES_DIR` to point elsewhere). Under CI=true, missing
//! ones fail.
//!
//! The whole chart on a node (operator, config daemon, device plugin in pods that use the API
//! server) is crates/operator/tests/chart_cluster.rs.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use sriov_api::OperatorConfigSpec;
use sriov_operator::render::manifests::{CaBundles, DeploySettings, Images, render};
use sriov_testcluster::{Cluster, NodeCni, require};

const LIMIT: Duration = Duration::from_secs(90);

fn images_dir() -> PathBuf {
    std::env::var_os("SRIOV_IMAGES_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/images"))
}

/// The config daemon DaemonSet the operator renders for the default SriovOperatorConfig.
fn config_daemon(cni_image: &str, cni_bin: &Path) -> Value {
    let settings = DeploySettings {
        namespace: "default".into(),
        resource_prefix: "openshift.io".into(),
        images: Images {
            sriov_cni: cni_image.into(),
            // no infiniband CNI image: its init container is not rendered
            config_daemon: "unused".into(),
            device_plugin: "unused".into(),
            ..Default::default()
        },
        cni_bin_path: cni_bin.display().to_string(),
        cluster_type: "kubernetes".into(),
        ..Default::default()
    };
    let plan = render(&OperatorConfigSpec::default(), &settings, &CaBundles::default()).unwrap();
    plan.apply
        .into_iter()
        .map(|(_, o)| o)
        .find(|o| o["kind"] == "DaemonSet" && o["metadata"]["name"] == "sriov-network-config-daemon")
        .unwrap()
}

#[tokio::test]
async fn config_daemon_cni_init_container_installs_the_plugin_on_the_node() {
    sriov_test_support::require_root!();
    let tarball = images_dir().join("sriov-cni.tar");
    sriov_test_support::require!(
        tarball.is_file(),
        "{} (scripts/images sriov-cni)",
        tarball.display()
    );
    let Some(cluster) = Cluster::shared() else {
        return;
    };
    let Some(node) = require(cluster.start_containerd_node("tc-single-1", NodeCni::default_bridge())) else {
        return;
    };
    let c = node.containerd().unwrap();
    let t0 = Instant::now();
    let image = c.import_image(&tarball).unwrap();
    eprintln!("imported {image} in {:?}", t0.elapsed());
    let cni_bin = c.cni_bin_dir().to_path_buf();
    assert!(
        !cni_bin.join("sriov").exists(),
        "sriov already in {}",
        cni_bin.display()
    );

    let ds = config_daemon(&image, &cni_bin);
    let template = &ds["spec"]["template"]["spec"];
    let init: Vec<Value> = template["initContainers"].as_array().unwrap().clone();
    let names: Vec<&str> = init.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sriov-cni"], "the rendered init containers");
    assert_eq!(init[0]["args"], json!(["--no-sleep"]));
    assert!(
        init[0].get("command").is_none(),
        "upstream's contract: the image's entrypoint"
    );
    // The volumes its mounts name, as rendered (the node's CNI bin dir, /etc/os-release).
    let volumes: Vec<Value> = template["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["name"] == "cnibin" || v["name"] == "os-release")
        .cloned()
        .collect();
    assert_eq!(volumes.len(), 2, "{volumes:?}");

    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "single-cni-init"},
        "spec": {
            "nodeName": "tc-single-1",
            "terminationGracePeriodSeconds": 1,
            "initContainers": init,
            "containers": [{"name": "c", "image": c.sandbox_image(), "imagePullPolicy": "Never"}],
            "volumes": volumes,
        }
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client().unwrap(), "default");
    let t0 = Instant::now();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    loop {
        let status = pods
            .get("single-cni-init")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        if status.phase.as_deref() == Some("Running") {
            let init = &status.init_container_statuses.unwrap()[0];
            let done = init.state.as_ref().unwrap().terminated.as_ref().unwrap();
            assert_eq!(done.exit_code, 0, "{init:?}");
            break;
        }
        assert!(
            t0.elapsed() < LIMIT,
            "pod not Running after {LIMIT:?}: {status:?}\ncontainerd log: {}",
            c.log().display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("init container ran, pod Running in {:?}", t0.elapsed());

    // The plugin in the node's CNI bin dir is the image's binary, executable, and it is the CNI
    // plugin (VERSION answers), not a partial copy.
    let installed = cni_bin.join("sriov");
    let musl =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/x86_64-unknown-linux-musl/release/sriov");
    if musl.is_file() {
        assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&musl).unwrap());
    }
    let out = std::process::Command::new(&installed)
        .env("CNI_COMMAND", "VERSION")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let version: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(version["supportedVersions"].as_array().is_some(), "{version}");
    assert!(!cni_bin.join(".sriov.tmp").exists());

    pods.delete("single-cni-init", &DeleteParams::default())
        .await
        .unwrap();
    let t0 = Instant::now();
    while pods.get_opt("single-cni-init").await.unwrap().is_some() {
        assert!(t0.elapsed() < LIMIT, "pod still there after {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_file(&installed).unwrap();
}
