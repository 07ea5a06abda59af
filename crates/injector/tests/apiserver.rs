//! The injector binary behind a real kube-apiserver (v1.36.2, sriov-testcluster): a
//! MutatingWebhookConfiguration points the apiserver at it over HTTPS on 127.0.0.1 with a
//! certificate from the cluster's CA, and the apiserver is the judge of the patch (it applies
//! it and stores the pod).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sriov_api::nad::{NadSpec, NetworkAttachmentDefinition};
use sriov_testcluster::Cluster;

const BIN: &str = env!("CARGO_BIN_EXE_network-resources-injector");
const NS: &str = "nri-e2e";

struct Injector {
    child: Child,
    log: std::path::PathBuf,
    health_port: u16,
}

impl Drop for Injector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_injector(cluster: &Cluster, dir: &Path, port: u16) -> Injector {
    let cert = cluster.loopback_serving_cert().unwrap();
    std::fs::write(dir.join("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key_pem).unwrap();
    let health = free_port();
    let log = dir.join("injector.log");
    let child = Command::new(BIN)
        .args([
            format!("-port={port}"),
            "-bind-address=127.0.0.1".into(),
            format!("-health-check-port={health}"),
            format!("-tls-cert-file={}", dir.join("cert.pem").display()),
            format!("-tls-private-key-file={}", dir.join("key.pem").display()),
            // the apiserver presents no client certificate to webhooks unless configured to
            "-insecure".into(),
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("NAMESPACE", NS)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut inj = Injector {
        child,
        log,
        health_port: health,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = inj.child.try_wait().unwrap() {
            panic!(
                "injector exited {status}: {}",
                std::fs::read_to_string(&inj.log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "injector not listening: {}",
            std::fs::read_to_string(&inj.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    inj
}

fn pod(name: &str, labels: serde_json::Value, annotations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS, "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/app"}]}
    }))
    .unwrap()
}

fn requested(p: &Pod, resource: &str) -> Option<String> {
    let c = &p.spec.as_ref()?.containers[0];
    Some(c.resources.as_ref()?.requests.as_ref()?.get(resource)?.0.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_stores_the_injected_pod_refuses_a_missing_nad_and_follows_the_configmap() {
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &[sriov_api::crd::nad_crd()])
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();

    let nads: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), NS);
    let mut nad = NetworkAttachmentDefinition::new("sriov-net", NadSpec { config: "{}".into() });
    nad.metadata.annotations = Some(BTreeMap::from([(
        "k8s.v1.cni.cncf.io/resourceName".to_string(),
        "intel.com/sriov_vf".to_string(),
    )]));
    nads.create(&PostParams::default(), &nad).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let injector = start_injector(cluster, dir.path(), port);

    // -health-check-port: plain HTTP /healthz and /readyz, as upstream.
    for path in ["/healthz", "/readyz"] {
        let reply = http_get(injector.health_port, path);
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
        assert!(reply.ends_with("ok"), "{path}: {reply}");
    }

    let hooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let hook: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": "network-resources-injector-config"},
        "webhooks": [{
            "name": "network-resources-injector-config.k8s.io",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "clientConfig": {
                "url": format!("https://127.0.0.1:{port}/mutate"),
                "caBundle": base64_encode(cluster.ca_pem().as_bytes()),
            },
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NS}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]
        }]
    }))
    .unwrap();
    hooks.create(&PostParams::default(), &hook).await.unwrap();

    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    // The apiserver picks the new webhook configuration up asynchronously: create probe pods
    // until one comes back mutated.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut probe = 0;
    let stored = loop {
        probe += 1;
        let name = format!("probe-{probe}");
        let p = pods
            .create(
                &PostParams::default(),
                &pod(
                    &name,
                    json!({"app": "x"}),
                    json!({"k8s.v1.cni.cncf.io/networks": "sriov-net"}),
                ),
            )
            .await
            .unwrap();
        if requested(&p, "intel.com/sriov_vf").is_some() {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "webhook never applied; injector log:\n{}",
            std::fs::read_to_string(&injector.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let c = &stored.spec.as_ref().unwrap().containers[0];
    let res = c.resources.as_ref().unwrap();
    assert_eq!(res.requests.as_ref().unwrap()["intel.com/sriov_vf"].0, "1");
    assert_eq!(res.limits.as_ref().unwrap()["intel.com/sriov_vf"].0, "1");
    let mount = c
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == "podnetinfo")
        .unwrap();
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        ("/etc/podnetinfo", Some(true))
    );
    let vol = stored
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "podnetinfo")
        .unwrap();
    let paths: Vec<_> = vol
        .downward_api
        .as_ref()
        .unwrap()
        .items
        .as_ref()
        .unwrap()
        .iter()
        .map(|i| i.path.clone())
        .collect();
    assert_eq!(paths, ["labels", "annotations"]);

    // A pod without networks is stored as written: no resources, no volume.
    let plain = pods
        .create(
            &PostParams::default(),
            &pod("plain", json!({"app": "x"}), json!({})),
        )
        .await
        .unwrap();
    let spec = plain.spec.as_ref().unwrap();
    assert!(
        spec.containers[0]
            .resources
            .as_ref()
            .is_none_or(|r| r.requests.is_none())
    );
    assert!(spec.containers[0].volume_mounts.is_none());
    assert!(
        spec.volumes
            .as_ref()
            .is_none_or(|v| v.iter().all(|v| v.name != "podnetinfo"))
    );

    // The pod names the container that gets the VF (sriov-rs annotation): the sidecar first
    // in the list stays untouched, the VF is requested once, on "app".
    let mut two: Pod = serde_json::from_value(json!({
        "metadata": {"name": "named", "namespace": NS, "annotations": {
            "k8s.v1.cni.cncf.io/networks": "sriov-net",
            "sriov-rs.io/network-resources-container": "app"}},
        "spec": {"containers": [{"name": "sidecar", "image": "example.invalid/proxy"},
                                {"name": "app", "image": "example.invalid/app"}]}
    }))
    .unwrap();
    two = pods.create(&PostParams::default(), &two).await.unwrap();
    let containers = &two.spec.as_ref().unwrap().containers;
    let vf = |i: usize| {
        containers[i]
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("intel.com/sriov_vf"))
            .map(|q| q.0.clone())
    };
    assert_eq!((vf(0), vf(1)), (None, Some("1".to_string())));

    // A NAD that does not exist: the apiserver refuses the pod with the injector's message.
    let err = pods
        .create(
            &PostParams::default(),
            &pod(
                "ghost",
                json!({}),
                json!({"k8s.v1.cni.cncf.io/networks": "missing-net"}),
            ),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "could not find network attachment definition '{NS}/missing-net'"
        )),
        "{text}"
    );
    assert!(pods.get_opt("ghost").await.unwrap().is_none());

    // The ConfigMap, created while the injector runs: a labelled pod gets the user-defined
    // injection (and so the network and its VF) without a restart.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "nri-control-switches"},
        "data": {"config.json": json!({
            "features": {"enableHugePageDownApi": false},
            "user-defined-injections": {"want-sriov": {"op": "add", "path": "/metadata/annotations",
                "value": {"k8s.v1.cni.cncf.io/networks": "sriov-net"}}}
        }).to_string()}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    let injected = loop {
        n += 1;
        let p = pods
            .create(
                &PostParams::default(),
                &pod(&format!("labelled-{n}"), json!({"want-sriov": "true"}), json!({})),
            )
            .await
            .unwrap();
        if requested(&p, "intel.com/sriov_vf").is_some() {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "ConfigMap change not honoured within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        injected.metadata.annotations.as_ref().unwrap()["k8s.v1.cni.cncf.io/networks"],
        "sriov-net"
    );

    // The ConfigMap changed: the injection now names another NAD; new pods follow, no restart.
    let mut nad_b = NetworkAttachmentDefinition::new("sriov-net-b", NadSpec { config: "{}".into() });
    nad_b.metadata.annotations = Some(BTreeMap::from([(
        "k8s.v1.cni.cncf.io/resourceName".to_string(),
        "intel.com/sriov_b".to_string(),
    )]));
    nads.create(&PostParams::default(), &nad_b).await.unwrap();
    let mut cm = cms.get("nri-control-switches").await.unwrap();
    cm.data.as_mut().unwrap().insert(
        "config.json".into(),
        json!({"user-defined-injections": {"want-sriov": {"op": "add", "path": "/metadata/annotations",
            "value": {"k8s.v1.cni.cncf.io/networks": "sriov-net-b"}}}})
        .to_string(),
    );
    cms.replace("nri-control-switches", &PostParams::default(), &cm)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        n += 1;
        let p = pods
            .create(
                &PostParams::default(),
                &pod(&format!("labelled-{n}"), json!({"want-sriov": "true"}), json!({})),
            )
            .await
            .unwrap();
        if requested(&p, "intel.com/sriov_b").is_some() {
            assert_eq!(requested(&p, "intel.com/sriov_vf"), None);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ConfigMap update not honoured within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deleted: back to the flags, no injection.
    cms.delete("nri-control-switches", &Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        n += 1;
        let p = pods
            .create(
                &PostParams::default(),
                &pod(&format!("labelled-{n}"), json!({"want-sriov": "true"}), json!({})),
            )
            .await
            .unwrap();
        if requested(&p, "intel.com/sriov_b").is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ConfigMap deletion not honoured within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(injector);

    hooks
        .delete("network-resources-injector-config", &Default::default())
        .await
        .unwrap();
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
