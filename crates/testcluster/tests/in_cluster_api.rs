//! A cluster started with `ClusterOptions { in_cluster_api: true }`: a pod on a containerd node
//! gets a projected ServiceAccount token and `KUBERNETES_SERVICE_HOST` = the `kubernetes`
//! Service's ClusterIP, and from its own network namespace reaches the real API server there
//! over TLS verified with the pod's `ca.crt` (the ClusterIP is in the serving certificate),
//! authenticated as its ServiceAccount. A host-network client reaches it too. Dropping the
//! cluster removes the Service's link. Needs root, curl and the containerd node's prerequisites
//! (under CI=true, missing ones fail).
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, PostParams};
use sriov_testcluster::{Cluster, ClusterOptions, NodeCni, require};

const LIMIT: Duration = Duration::from_secs(90);

fn curl_api(netns_of: Option<u32>, ca: &str, token: &str, url: &str) -> (String, String) {
    let mut cmd = match netns_of {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net")).arg("--").arg("curl");
            c
        }
        None => Command::new("curl"),
    };
    let out = cmd
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}", "--cacert", ca])
        .arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {url}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_string(), code.to_string())
}

#[test]
fn pods_reach_the_api_server_at_the_kubernetes_service_with_their_token() {
    sriov_test_support::require_root!();
    sriov_test_support::require!(sriov_test_support::which("curl").is_some(), "curl");
    let Some(cluster) = require(Cluster::start_with(ClusterOptions { in_cluster_api: true })) else {
        return;
    };
    let net = cluster.service_network().unwrap().clone();
    require(cluster.start_control_loops()).unwrap();
    let Some(node) = require(cluster.start_containerd_node("tc-incluster", NodeCni::default_bridge())) else {
        return;
    };
    let c = node.containerd().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let image = c.sandbox_image().to_string();
    let token_path = rt.block_on(async {
        let client = cluster.client().unwrap();
        // The API server creates the `kubernetes` Service shortly after it reports ready, and a
        // pod the kubelet starts before its Service lister has it gets no KUBERNETES_SERVICE_*
        // variables (CI saw exactly that once): wait for the Service first.
        let services: Api<Service> = Api::namespaced(client.clone(), "default");
        let t0 = Instant::now();
        while services.get_opt("kubernetes").await.unwrap().is_none() {
            assert!(t0.elapsed() < LIMIT, "no Service default/kubernetes");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let pods: Api<Pod> = Api::namespaced(client, "default");
        // The `default` ServiceAccount comes from kube-controller-manager; the admission plugin
        // refuses the pod until it exists.
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "in-cluster"},
            "spec": {"nodeName": "tc-incluster", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": image, "imagePullPolicy": "Never"}]}
        }))
        .unwrap();
        let t0 = Instant::now();
        loop {
            match pods.create(&PostParams::default(), &pod).await {
                Ok(_) => break,
                Err(e) => assert!(t0.elapsed() < LIMIT, "pod not admitted: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let p = loop {
            let p = pods.get("in-cluster").await.unwrap();
            if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                break p;
            }
            assert!(t0.elapsed() < LIMIT, "not Running: {:?}", p.status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let spec = p.spec.unwrap();
        assert_eq!(spec.service_account_name.as_deref(), Some("default"));
        let mounts = spec.containers[0].volume_mounts.clone().unwrap_or_default();
        mounts
            .iter()
            .find(|m| m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount")
            .unwrap_or_else(|| panic!("no projected token mount: {mounts:?}"))
            .mount_path
            .clone()
    });

    // The pause container's process: its environment (what the kubelet gave it), its token
    // files (through /proc/<pid>/root) and its network namespace.
    let out = c.ctr(&["tasks", "ls"]).unwrap();
    let pids: Vec<u32> = out
        .lines()
        .skip(1)
        .filter(|l| l.contains("RUNNING"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    let container = pids
        .iter()
        .copied()
        .find(|p| std::fs::read(format!("/proc/{p}/root{token_path}/token")).is_ok())
        .unwrap_or_else(|| panic!("no task of {pids:?} has the token mount"));
    let environ = std::fs::read(format!("/proc/{container}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    let var = |k: &str| {
        environ
            .split('\0')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .map(String::from)
    };
    assert_eq!(var("KUBERNETES_SERVICE_HOST"), Some(net.cluster_ip.to_string()));
    assert_eq!(var("KUBERNETES_SERVICE_PORT"), Some("443".into()));
    let root = format!("/proc/{container}/root{token_path}");
    let token = std::fs::read_to_string(format!("{root}/token")).unwrap();
    let ca = format!("{root}/ca.crt");
    assert_eq!(std::fs::read_to_string(&ca).unwrap(), cluster.ca_pem());

    let url = format!("https://{}:443/api/v1/namespaces/default/pods", net.cluster_ip);
    // From the pod's network namespace: TLS verified against the ClusterIP, the token
    // authenticates the ServiceAccount, which RBAC gives nothing (403 naming it).
    let (body, code) = curl_api(Some(container), &ca, &token, &url);
    assert_eq!(code, "403", "{body}");
    assert!(body.contains("system:serviceaccount:default:default"), "{body}");
    // A wrong token is refused (401): the answer is the API server's authentication.
    let (body, code) = curl_api(Some(container), &ca, "not-a-token", &url);
    assert_eq!(code, "401", "{body}");
    // Host-network clients (the config daemon, the device plugin) reach it the same way.
    let (body, code) = curl_api(None, &ca, &token, &url);
    assert_eq!(code, "403", "{body}");

    drop(node);
    drop(cluster);
    let links = Command::new("ip").args(["-o", "link", "show"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains(&net.link), "{} left behind", net.link);
}
