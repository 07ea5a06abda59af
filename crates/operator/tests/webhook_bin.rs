//! The `sriov-network-webhook` binary as upstream's DaemonSet runs it: upstream's arguments,
//! NAMESPACE from the environment, HTTPS answers, clean exit on SIGTERM, and a clear error
//! when the certificate cannot be read.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use webhook_support::{make_cert, request};

mod webhook_support;

const BIN: &str = env!("CARGO_BIN_EXE_sriov-network-webhook");

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn unreadable_certificate_fails_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("missing.crt");
    let out = Command::new(BIN)
        .args([
            "start",
            &format!("--port={}", free_port()),
            "--bind-address=127.0.0.1",
        ])
        .arg(format!("--tls-cert-file={}", cert.display()))
        .arg(format!(
            "--tls-private-key-file={}",
            dir.path().join("missing.key").display()
        ))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.crt"), "{err}");
}

#[test]
fn unreadable_kubeconfig_fails_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = make_cert("operator-webhook-service");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&crt, &cert.cert_pem).expect("cert");
    std::fs::write(&key, &cert.key_pem).expect("key");
    let out = Command::new(BIN)
        .args([
            "start",
            &format!("--port={}", free_port()),
            "--bind-address=127.0.0.1",
        ])
        .arg(format!("--tls-cert-file={}", crt.display()))
        .arg(format!("--tls-private-key-file={}", key.display()))
        .arg(format!(
            "--kubeconfig={}",
            dir.path().join("no-such-kubeconfig").display()
        ))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-kubeconfig"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_upstream_arguments_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = make_cert("operator-webhook-service");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&crt, &cert.cert_pem).expect("cert");
    std::fs::write(&key, &cert.key_pem).expect("key");
    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "start",
            &format!("--port={port}"),
            "--bind-address=127.0.0.1",
            "--zap-log-level=3",
        ])
        .arg(format!("--tls-private-key-file={}", key.display()))
        .arg(format!("--tls-cert-file={}", crt.display()))
        .arg("--tls-min-version=VersionTLS12")
        .env("NAMESPACE", "sriov-network-operator")
        // No cluster: the dynamic checks see an empty one.
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut child = Running(child);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let object = json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": "p", "namespace": "elsewhere"},
        "spec": {"resourceName": "r", "nodeSelector": {}, "numVfs": 2, "nicSelector": {"pfNames": ["eth1"]}},
    });
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "b1", "kind": {"group": "sriovnetwork.openshift.io", "version": "v1", "kind": "SriovNetworkNodePolicy"},
                    "namespace": "elsewhere", "operation": "CREATE", "userInfo": {}, "object": object}
    })
    .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        match request(
            addr,
            &cert,
            "POST",
            "/validating-custom-resource",
            "application/json",
            review.clone(),
        )
        .await
        {
            Ok((200, body, _)) => break body,
            Ok((status, body, _)) => panic!("unexpected {status}: {body}"),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("webhook binary never answered: {e}"),
        }
    };
    let out: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(out["response"]["uid"], "b1");
    assert_eq!(out["response"]["allowed"], true);
    assert_eq!(
        out["response"]["warnings"][0],
        "p is created or updated but not used. Only policy in sriov-network-operator namespace is respected."
    );

    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(status.success(), "exit after SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running 10 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `--cluster-objects FILE`: the dynamic checks read the file on every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_objects_file_feeds_the_dynamic_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = make_cert("operator-webhook-service");
    let (crt, key, objects) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("cluster.yaml"),
    );
    std::fs::write(&crt, &cert.cert_pem).expect("cert");
    std::fs::write(&key, &cert.key_pem).expect("key");
    let node = "apiVersion: v1\nkind: Node\nmetadata: {name: w1, labels: {sriov: \"true\"}}\n---\n\
        apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodeState\n\
        metadata: {name: w1, namespace: sriov-network-operator}\n\
        status: {interfaces: [{name: eth1, pciAddress: \"0000:01:00.0\", vendor: \"8086\", deviceID: \"10c9\", totalvfs: 8}]}\n";
    std::fs::write(&objects, node).expect("objects");
    let port = free_port();
    let child = Command::new(BIN)
        .args([&format!("--port={port}"), "--bind-address=127.0.0.1"])
        .arg(format!("--tls-private-key-file={}", key.display()))
        .arg(format!("--tls-cert-file={}", crt.display()))
        .arg(format!("--cluster-objects={}", objects.display()))
        .env("NAMESPACE", "sriov-network-operator")
        // No cluster: the dynamic checks see an empty one.
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let _child = Running(child);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "c1", "kind": {"group": "sriovnetwork.openshift.io", "version": "v1", "kind": "SriovNetworkNodePolicy"},
                    "namespace": "sriov-network-operator", "operation": "CREATE", "userInfo": {},
                    "object": {"metadata": {"name": "p2", "namespace": "sriov-network-operator"},
                               "spec": {"resourceName": "b", "nodeSelector": {"sriov": "true"}, "numVfs": 8,
                                        "nicSelector": {"pfNames": ["eth1#2-5"]}}}}
    })
    .to_string();
    let ask = || {
        request(
            addr,
            &cert,
            "POST",
            "/validating-custom-resource",
            "application/json",
            review.clone(),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let first: Value = loop {
        match ask().await {
            Ok((200, body, _)) => break serde_json::from_str(&body).expect("json"),
            Ok((status, body, _)) => panic!("unexpected {status}: {body}"),
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("webhook binary never answered: {e}"),
        }
    };
    assert_eq!(first["response"], json!({"uid": "c1", "allowed": true}));
    // Another policy takes VFs 0-3 of eth1: the same request now overlaps.
    let with_policy = format!(
        "{node}---\napiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodePolicy\n\
         metadata: {{name: p1, namespace: sriov-network-operator}}\n\
         spec: {{resourceName: a, nodeSelector: {{sriov: \"true\"}}, numVfs: 8, nicSelector: {{pfNames: [\"eth1#0-3\"]}}}}\n"
    );
    std::fs::write(&objects, with_policy).expect("objects");
    let (status, body, _) = ask().await.expect("answer");
    assert_eq!(status, 200);
    let second: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(second["response"]["allowed"], false);
    assert_eq!(
        second["response"]["status"]["reason"],
        "VF index range in eth1#2-5 is overlapped with existing policy p1"
    );
}
