//! The webhook over real HTTPS: rcgen certificates, rustls on both ends, hyper as the client,
//! AdmissionReview JSON as the API server sends it. Also: certificates replaced on disk are
//! served to new connections without a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use sriov_operator::admission::{Cluster, Settings, parse_objects};
use sriov_operator::webhook::{self, TlsFiles, Webhook};
use webhook_support::{Cert, make_cert, request};

mod webhook_support;

const NS: &str = "sriov-network-operator";

const CLUSTER: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: w1
  labels: {feature.node.kubernetes.io/network-sriov.capable: "true"}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodeState
metadata: {name: w1, namespace: sriov-network-operator}
status:
  syncStatus: Succeeded
  interfaces:
  - {name: eth1, pciAddress: "0000:01:00.0", vendor: "8086", deviceID: "10c9", totalvfs: 8, mtu: 1500, linkType: ETH}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: existing, namespace: sriov-network-operator}
spec:
  resourceName: first
  nodeSelector: {feature.node.kubernetes.io/network-sriov.capable: "true"}
  numVfs: 8
  priority: 10
  nicSelector: {pfNames: ["eth1#0-1"]}
"#;

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

struct Server {
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn start(cert: &Cert) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = TlsFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    std::fs::write(&tls.cert, &cert.cert_pem).expect("write cert");
    std::fs::write(&tls.key, &cert.key_pem).expect("write key");
    let objects = parse_objects(CLUSTER).expect("cluster yaml");
    let cluster = Cluster::from_objects(&objects, NS).expect("cluster objects");
    let settings = Settings {
        namespace: NS.to_string(),
        dev_mode: false,
    };
    let hook = Arc::new(Webhook {
        settings,
        cluster: Box::new(cluster),
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        if let Err(e) = webhook::serve(listener, tls, hook, h, webhook::ServeOptions::default()).await {
            panic!("webhook server failed: {e:#}");
        }
    });
    Server { addr, handle, dir }
}

/// An AdmissionReview as kube-apiserver sends it for a policy.
fn review(uid: &str, operation: &str, object: &Value, old: Option<&Value>) -> String {
    let name = object["metadata"]["name"].clone();
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": {"group": "sriovnetwork.openshift.io", "version": "v1", "kind": "SriovNetworkNodePolicy"},
            "resource": {"group": "sriovnetwork.openshift.io", "version": "v1", "resource": "sriovnetworknodepolicies"},
            "requestKind": {"group": "sriovnetwork.openshift.io", "version": "v1", "kind": "SriovNetworkNodePolicy"},
            "requestResource": {"group": "sriovnetwork.openshift.io", "version": "v1", "resource": "sriovnetworknodepolicies"},
            "name": name,
            "namespace": NS,
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"kind": if operation == "CREATE" { "CreateOptions" } else { "UpdateOptions" }, "apiVersion": "meta.k8s.io/v1"}
        }
    })
    .to_string()
}

fn policy(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": name, "namespace": NS, "uid": "6b1c1f7e-0000-4000-8000-000000000001", "generation": 1},
        "spec": spec,
    })
}

async fn admit(server: &Server, cert: &Cert, path: &str, body: String) -> Value {
    let (status, text, _) = request(server.addr, cert, "POST", path, "application/json", body)
        .await
        .expect("https request");
    assert_eq!(status, 200, "{text}");
    let out: Value = serde_json::from_str(&text).expect("json response");
    assert_eq!(out["kind"], "AdmissionReview");
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_patch_yields_the_defaulted_policy() {
    let cert = make_cert("webhook-a");
    let server = start(&cert).await;
    // As the API server sends it: CRD default deviceType already applied.
    let object = policy(
        "p-new",
        json!({"resourceName": "second", "nodeSelector": {"feature.node.kubernetes.io/network-sriov.capable": "true"},
               "numVfs": 8, "deviceType": "netdevice", "nicSelector": {"pfNames": ["eth1#2-7"]}}),
    );
    let out = admit(
        &server,
        &cert,
        "/mutating-custom-resource",
        review("uid-m1", "CREATE", &object, None),
    )
    .await;
    let resp = &out["response"];
    assert_eq!(resp["uid"], "uid-m1");
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch");
    let patch_bytes = base64::engine::general_purpose::STANDARD
        .decode(resp["patch"].as_str().expect("patch is a base64 string"))
        .expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch_bytes).expect("JSONPatch");
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).expect("patch applies");
    let mut expected = object.clone();
    expected["spec"]["priority"] = json!(99);
    expected["spec"]["isRdma"] = json!(false);
    assert_eq!(patched, expected);

    // Update of an InfiniBand policy: isRdma forced on, priority kept.
    let ib = policy(
        "p-ib",
        json!({"resourceName": "ib", "priority": 5, "linkType": "IB", "deviceType": "netdevice", "isRdma": false,
               "numVfs": 2, "nicSelector": {"pfNames": ["ib0"]}, "nodeSelector": {}}),
    );
    let out = admit(
        &server,
        &cert,
        "/mutating-custom-resource",
        review("uid-m2", "UPDATE", &ib, Some(&ib)),
    )
    .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(out["response"]["patch"].as_str().expect("patch"))
        .expect("b64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("JSONPatch");
    let mut patched = ib.clone();
    json_patch::patch(&mut patched, &patch).expect("applies");
    assert_eq!(patched["spec"]["isRdma"], true);
    assert_eq!(patched["spec"]["priority"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_allows_denies_and_warns() {
    let cert = make_cert("webhook-a");
    let server = start(&cert).await;
    let sel = json!({"feature.node.kubernetes.io/network-sriov.capable": "true"});
    let validate = |uid: &str, op: &str, obj: Value| {
        let body = review(uid, op, &obj, if op == "UPDATE" { Some(&obj) } else { None });
        admit(&server, &cert, "/validating-custom-resource", body)
    };

    let ok = policy(
        "p-ok",
        json!({"resourceName": "second", "nodeSelector": sel, "numVfs": 8, "priority": 99,
        "isRdma": false, "deviceType": "netdevice", "nicSelector": {"pfNames": ["eth1#2-7"]}}),
    );
    let out = validate("u1", "CREATE", ok).await;
    assert_eq!(out["response"], json!({"uid": "u1", "allowed": true}));

    let rdma = policy(
        "p-rdma",
        json!({"resourceName": "vm", "nodeSelector": sel, "numVfs": 4, "isRdma": true,
        "deviceType": "vfio-pci", "nicSelector": {"pfNames": ["eth1#2-3"]}}),
    );
    let out = validate("u2", "CREATE", rdma).await;
    assert_eq!(out["response"]["uid"], "u2");
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(
        out["response"]["status"]["reason"],
        "'deviceType: vfio-pci' conflicts with 'isRdma: true'; Set 'deviceType' to (string)'netdevice' Or Set 'isRdma' to (bool)'false'"
    );

    let overlap = policy(
        "p-overlap",
        json!({"resourceName": "other", "nodeSelector": sel, "numVfs": 8,
        "deviceType": "netdevice", "nicSelector": {"pfNames": ["eth1#1-4"]}}),
    );
    let out = validate("u3", "UPDATE", overlap).await;
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(
        out["response"]["status"]["reason"],
        "VF index range in eth1#1-4 is overlapped with existing policy existing"
    );

    let too_many = policy(
        "p-many",
        json!({"resourceName": "x", "nodeSelector": sel, "numVfs": 16,
        "deviceType": "netdevice", "nicSelector": {"vendor": "8086", "deviceID": "10c9"}}),
    );
    let out = validate("u4", "CREATE", too_many).await;
    assert_eq!(
        out["response"]["status"]["reason"],
        "numVfs(16) in CR p-many exceed the maximum allowed value(8) interface(eth1)"
    );

    let later = policy(
        "p-later",
        json!({"resourceName": "later", "nodeSelector": {"rack": "r9"}, "numVfs": 2,
        "deviceType": "netdevice", "nicSelector": {"pfNames": ["ens1f0"]}}),
    );
    let out = validate("u5", "CREATE", later).await;
    assert_eq!(out["response"]["allowed"], true);
    let warning = out["response"]["warnings"][0].as_str().expect("a warning");
    assert!(
        warning.starts_with("no matched node is selected by the nodeSelector in CR p-later"),
        "{warning}"
    );

    let bad_type = policy(
        "p-bad",
        json!({"resourceName": "x", "nodeSelector": sel, "numVfs": "four",
        "nicSelector": {"pfNames": ["eth1"]}}),
    );
    let out = validate("u6", "CREATE", bad_type).await;
    assert_eq!(out["response"]["allowed"], false);
    let reason = out["response"]["status"]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("SriovNetworkNodePolicy sriov-network-operator/p-bad")
            && reason.contains("spec.numVfs"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_readiness() {
    let cert = make_cert("webhook-a");
    let server = start(&cert).await;
    let (status, body, _) = request(server.addr, &cert, "GET", "/readyz", "text/plain", String::new())
        .await
        .expect("readyz");
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, _) = request(
        server.addr,
        &cert,
        "POST",
        "/validating-custom-resource",
        "text/plain",
        "{}".into(),
    )
    .await
    .expect("request");
    assert_eq!(status, 415);
    let (status, body, _) = request(
        server.addr,
        &cert,
        "POST",
        "/validating-custom-resource",
        "application/json",
        "{not json".into(),
    )
    .await
    .expect("request");
    assert_eq!(status, 400);
    assert!(body.starts_with("Request could not be decoded"), "{body}");
    let (status, body, _) = request(
        server.addr,
        &cert,
        "POST",
        "/mutating-custom-resource",
        "application/json",
        json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}).to_string(),
    )
    .await
    .expect("request");
    assert_eq!(
        (status, body.as_str()),
        (400, "AdmissionReview: field request: missing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_certificate_is_served_without_restart() {
    let old = make_cert("webhook-old");
    let new = make_cert("webhook-new");
    let server = start(&old).await;
    let (_, _, presented) = request(server.addr, &old, "GET", "/readyz", "text/plain", String::new())
        .await
        .expect("old cert works");
    assert_eq!(presented, old.der);
    assert!(
        request(server.addr, &new, "GET", "/readyz", "text/plain", String::new())
            .await
            .is_err(),
        "a client trusting only the new certificate must fail before the reload"
    );

    write_atomically(&server.dir.path().join("tls.key"), &new.key_pem);
    write_atomically(&server.dir.path().join("tls.crt"), &new.cert_pem);

    let mut last_err = String::new();
    for _ in 0..100 {
        match request(server.addr, &new, "GET", "/readyz", "text/plain", String::new()).await {
            Ok((status, _, presented)) => {
                assert_eq!(status, 200);
                assert_eq!(presented, new.der);
                return;
            }
            Err(e) => last_err = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("new certificate not served within 10 s: {last_err}");
}

/// `sriovctl validate` / `mutate` call `admission::review`; the server must answer exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_answer_is_the_shared_review_output() {
    use sriov_operator::admission::{Hook, review as shared_review};
    let cert = make_cert("webhook-a");
    let server = start(&cert).await;
    let cluster = Cluster::from_objects(&parse_objects(CLUSTER).expect("yaml"), NS).expect("cluster");
    let settings = Settings {
        namespace: NS.to_string(),
        dev_mode: false,
    };
    let object = policy(
        "p-x",
        json!({"resourceName": "x", "nodeSelector": {}, "numVfs": 3, "nicSelector": {"pfNames": ["eth1#0-2"]}}),
    );
    for (hook, path) in [
        (Hook::Mutate, "/mutating-custom-resource"),
        (Hook::Validate, "/validating-custom-resource"),
    ] {
        let body = review("u-same", "CREATE", &object, None);
        let expected = shared_review(
            hook,
            &serde_json::from_str(&body).expect("json"),
            &settings,
            &cluster,
        )
        .expect("review");
        let (status, text, _) = request(server.addr, &cert, "POST", path, "application/json", body)
            .await
            .expect("https");
        assert_eq!(status, 200);
        assert_eq!(text, expected.to_string(), "{path}");
    }
}
