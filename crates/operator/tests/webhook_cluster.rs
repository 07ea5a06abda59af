//! `sriov-network-webhook` in cluster mode behind a real kube-apiserver (v1.36.2,
//! sriov-testcluster): it watches nodes, node states, policies and the supported-NIC ConfigMap
//! through `--kubeconfig`, a ValidatingWebhookConfiguration points the apiserver at it over HTTPS
//! (a certificate from the cluster's CA, `caBundle` set), and the apiserver is the one asking.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use http_body_util::BodyExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sriov_testcluster::Cluster;

const BIN: &str = env!("CARGO_BIN_EXE_sriov-network-webhook");
const OP_NS: &str = "sriov-network-operator";
const LIMIT: Duration = Duration::from_secs(30);

/// The two tests count the apiserver's requests: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Webhook {
    child: Child,
    log: std::path::PathBuf,
    hooks: Api<ValidatingWebhookConfiguration>,
    name: String,
}

impl Webhook {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let hooks = self.hooks.clone();
        let name = self.name.clone();
        // The configuration would make every later policy write fail (failurePolicy Fail).
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move { hooks.delete(&name, &Default::default()).await })
        })
        .join();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn setup(cluster: &Cluster) -> Client {
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": OP_NS}})).unwrap();
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("{e}"),
    }
    client
}

/// Starts the binary in cluster mode and registers it for policies labelled `webhook-test=<tag>`.
async fn start_webhook(cluster: &Cluster, client: &Client, dir: &Path, tag: &str) -> Webhook {
    let cert = cluster.loopback_serving_cert().unwrap();
    std::fs::write(dir.join("tls.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &cert.key_pem).unwrap();
    let port = free_port();
    let log = dir.join("webhook.log");
    let child = Command::new(BIN)
        .args([
            "start".to_string(),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--tls-cert-file={}", dir.join("tls.crt").display()),
            format!("--tls-private-key-file={}", dir.join("tls.key").display()),
            format!("--kubeconfig={}", cluster.kubeconfig().display()),
        ])
        .env("NAMESPACE", OP_NS)
        .env_remove("KUBECONFIG")
        .env_remove("DEV_MODE")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let hooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let name = format!("sriov-operator-webhook-{tag}");
    let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": name},
        "webhooks": [{
            "name": "operator-webhook.sriovnetwork.openshift.io",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1", "v1beta1"],
            "failurePolicy": "Fail",
            "clientConfig": {
                "url": format!("https://127.0.0.1:{port}/validating-custom-resource"),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(cluster.ca_pem()),
            },
            "objectSelector": {"matchLabels": {"webhook-test": tag}},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["sriovnetwork.openshift.io"],
                       "apiVersions": ["v1"], "resources": ["sriovnetworknodepolicies"]}]
        }]
    }))
    .unwrap();
    hooks.create(&PostParams::default(), &config).await.unwrap();
    let hook = Webhook {
        child,
        log,
        hooks,
        name,
    };
    // Wait until the apiserver calls it: a statically invalid policy gets refused.
    let probe = policy("probe", tag, json!({"probe": "yes"}), json!({}), 1);
    let deadline = Instant::now() + LIMIT;
    loop {
        let (code, body, _) = admit(client, &probe).await;
        if code == 400 && body.contains("has to be defined in nicSelector") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "webhook never answered ({code} {body}); log:\n{}",
            hook.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    hook
}

fn policy(name: &str, tag: &str, node_selector: Value, nic_selector: Value, num_vfs: i32) -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": name, "namespace": OP_NS, "labels": {"webhook-test": tag}},
        "spec": {"resourceName": "intelnics", "nodeSelector": node_selector, "numVfs": num_vfs,
                 "nicSelector": nic_selector, "priority": 99, "isRdma": false}
    })
}

/// A server-side dry-run create of `object`: the status code, the body and the warnings the
/// apiserver passed on from the webhook (`Warning:` headers, which the typed client drops).
async fn admit(client: &Client, object: &Value) -> (u16, String, Vec<String>) {
    let url =
        format!("/apis/sriovnetwork.openshift.io/v1/namespaces/{OP_NS}/sriovnetworknodepolicies?dryRun=All");
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(object).unwrap()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_string())
        .collect();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (code, String::from_utf8_lossy(&body).into_owned(), warnings)
}

/// Creates a Node labelled `labels` and its node state reporting one Intel X710 PF `ens1f0`
/// with 64 VFs, as a config daemon would.
async fn node_with_nic(client: &Client, name: &str, labels: BTreeMap<&str, &str>) {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    let states: Api<sriov_api::SriovNetworkNodeState> = Api::namespaced(client.clone(), OP_NS);
    let state: sriov_api::SriovNetworkNodeState = serde_json::from_value(json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": name, "namespace": OP_NS}, "spec": {}
    }))
    .unwrap();
    states.create(&PostParams::default(), &state).await.unwrap();
    let status = json!({
        "apiVersion": "sriovnetwork.openshift.io/v1", "kind": "SriovNetworkNodeState",
        "metadata": {"name": name, "namespace": OP_NS},
        "status": {"syncStatus": "Succeeded", "interfaces": [{
            "name": "ens1f0", "vendor": "8086", "deviceID": "1572", "pciAddress": "0000:3b:00.0",
            "driver": "i40e", "totalvfs": 64, "numVfs": 0, "mtu": 1500, "linkType": "ETH"
        }]}
    });
    states
        .patch_status(name, &PatchParams::apply("test-daemon"), &Patch::Apply(&status))
        .await
        .unwrap();
}

/// Polls `admit(object)` until `accept` holds for the answer.
async fn admit_until(
    client: &Client,
    object: &Value,
    hook: &Webhook,
    what: &str,
    accept: impl Fn(u16, &str, &[String]) -> bool,
) -> (u16, String, Vec<String>) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let (code, body, warnings) = admit(client, object).await;
        if accept(code, &body, &warnings) {
            return (code, body, warnings);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last answer {code} {body} {warnings:?}; log:\n{}",
            hook.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_judges_a_policy_by_the_nodes_and_nics_the_cluster_has_now() {
    let Some(cluster) = Cluster::shared() else { return };
    let _serial = SERIAL.lock().await;
    let client = setup(cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let hook = start_webhook(cluster, &client, dir.path(), "nodes").await;
    let selector = json!({"feature.node.kubernetes.io/sriov-capable": "nodes-test"});
    let x710 = policy(
        "x710",
        "nodes",
        selector.clone(),
        json!({"pfNames": ["ens1f0"]}),
        8,
    );

    // No node matches: accepted, with upstream's text as a warning (docs/webhook.md: sriov-rs
    // does not refuse a policy for nodes that have not joined yet).
    let (code, _, warnings) = admit(&client, &x710).await;
    assert_eq!(code, 201, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("no matched node is selected by the nodeSelector in CR x710")),
        "{warnings:?}"
    );

    // A matching node joins and its daemon reports an X710 with 64 VFs.
    node_with_nic(
        &client,
        "nodes-test-worker",
        BTreeMap::from([("feature.node.kubernetes.io/sriov-capable", "nodes-test")]),
    )
    .await;
    // Now the same checks refuse what that NIC cannot do…
    let too_many = policy(
        "x710",
        "nodes",
        selector.clone(),
        json!({"pfNames": ["ens1f0"]}),
        100,
    );
    let (_, body, _) = admit_until(&client, &too_many, &hook, "numVfs refused", |c, _, _| c == 400).await;
    assert!(
        body.contains("numVfs(100) in CR x710 exceed the maximum allowed value(64) interface(ens1f0)"),
        "{body}"
    );
    let absent = policy("x710", "nodes", selector.clone(), json!({"pfNames": ["ens9"]}), 8);
    let (code, body, _) = admit(&client, &absent).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("no supported NIC is selected by the nicSelector in CR x710"),
        "{body}"
    );
    // …and accept the right policy without any warning…
    let (code, body, warnings) = admit(&client, &x710).await;
    assert_eq!((code, warnings.len()), (201, 0), "{body} {warnings:?}");
    // …unless the supported-nic-ids ConfigMap (watched too) no longer lists the X710.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), OP_NS);
    let mellanox_only: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "supported-nic-ids", "namespace": OP_NS},
        "data": {"Nvidia_mlx5_ConnectX-5": "15b3 1017 1018"}
    }))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &mellanox_only)
        .await
        .unwrap();
    let (_, body, _) = admit_until(&client, &x710, &hook, "X710 unsupported", |c, _, _| c == 400).await;
    assert!(
        body.contains("no supported NIC is selected by the nicSelector in CR x710"),
        "{body}"
    );
    config_maps
        .delete("supported-nic-ids", &Default::default())
        .await
        .unwrap();
    admit_until(&client, &x710, &hook, "built-in list again", |c, _, w| {
        c == 201 && w.is_empty()
    })
    .await;
    // For real this time.
    let stored = Api::<sriov_api::SriovNetworkNodePolicy>::namespaced(client.clone(), OP_NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(x710.clone()).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stored.spec.num_vfs, 8);
    // The stored policy is watched too: another policy on the same VFs is refused.
    let overlap = policy("x710-b", "nodes", selector, json!({"pfNames": ["ens1f0"]}), 8);
    let (_, body, _) = admit_until(&client, &overlap, &hook, "overlap refused", |c, _, _| c == 400).await;
    assert!(
        body.contains("VF index range in ens1f0 is overlapped with existing policy x710"),
        "{body}"
    );
}

/// `apiserver_request_total` summed over the kinds the webhook reads, for GET and LIST.
async fn reads(client: &Client) -> u64 {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let resources = [
        "nodes",
        "sriovnetworknodestates",
        "sriovnetworknodepolicies",
        "sriovoperatorconfigs",
        "configmaps",
    ];
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| l.contains("verb=\"GET\"") || l.contains("verb=\"LIST\""))
        .filter(|l| resources.iter().any(|r| l.contains(&format!("resource=\"{r}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admissions_read_the_caches_not_the_apiserver() {
    let Some(cluster) = Cluster::shared() else { return };
    let _serial = SERIAL.lock().await;
    let client = setup(cluster).await;
    let dir = tempfile::tempdir().unwrap();
    node_with_nic(
        &client,
        "reads-test-worker",
        BTreeMap::from([("feature.node.kubernetes.io/sriov-capable", "reads-test")]),
    )
    .await;
    let hook = start_webhook(cluster, &client, dir.path(), "reads").await;
    let too_many = policy(
        "reads",
        "reads",
        json!({"feature.node.kubernetes.io/sriov-capable": "reads-test"}),
        json!({"pfNames": ["ens1f0"]}),
        100,
    );
    // Each refusal needs the node, its node state and the other policies.
    admit_until(&client, &too_many, &hook, "refused", |c, _, _| c == 400).await;

    const ADMISSIONS: usize = 50;
    let before = reads(&client).await;
    let started = Instant::now();
    for _ in 0..ADMISSIONS {
        let (code, body, _) = admit(&client, &too_many).await;
        assert_eq!(code, 400, "{body}");
        assert!(body.contains("exceed the maximum allowed value(64)"), "{body}");
    }
    let took = started.elapsed();
    let after = reads(&client).await;
    println!(
        "{ADMISSIONS} admissions through the apiserver in {took:?} ({:?} each); GET+LIST of nodes, node states, policies, configs, ConfigMaps: {before} before, {after} after",
        took / ADMISSIONS as u32
    );
    assert_eq!(after - before, 0, "admissions made API reads");

    // The counter does count: one GET of a node by the test shows up.
    Api::<Node>::all(client.clone())
        .get("reads-test-worker")
        .await
        .unwrap();
    assert_eq!(reads(&client).await - after, 1);
}
