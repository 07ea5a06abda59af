//! What the meta plugin's tests share: network namespaces and links the test creates (and
//! removes), running the built `multus` binary exactly as a container runtime does (CNI_*
//! environment, config on stdin), host-local's lease files, and the API objects (the NAD CRD,
//! Multus' ClusterRole for the plugin's own user, namespaces, pods, NADs).
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use sriov_api::NetworkAttachmentDefinition;
use sriov_testcluster::Cluster;

/// The reference plugins (Debian's containernetworking-plugins, scripts/deps/30-cni.sh).
pub const REFERENCE_PLUGINS: &str = "/usr/lib/cni";

/// A short tag unique to this test process, for kernel names (15 chars max).
pub fn tag() -> String {
    format!("{:04x}", std::process::id() % 0xffff)
}

fn ip(args: &[&str]) -> (bool, String) {
    let o = Command::new("ip").args(args).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// A network namespace (`ip netns add`), deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = ip(&["netns", "del", name]);
        let (ok, out) = ip(&["netns", "add", name]);
        assert!(ok, "ip netns add {name}: {out}");
        ip(&["-n", name, "link", "set", "lo", "up"]);
        Netns { name: name.into() }
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Every link in the namespace: (name, kind, mac).
    pub fn links(&self) -> Vec<(String, String, String)> {
        let (_, out) = ip(&["-j", "-d", "-n", &self.name, "link", "show"]);
        let v: Value = serde_json::from_str(&out).unwrap_or(json!([]));
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["ifname"].as_str().unwrap_or_default().to_string(),
                    l["linkinfo"]["info_kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    l["address"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// IPv4 addresses (`a.b.c.d/len`) of one link.
    pub fn addrs(&self, ifname: &str) -> Vec<String> {
        let (_, out) = ip(&["-j", "-4", "-n", &self.name, "addr", "show", "dev", ifname]);
        let v: Value = serde_json::from_str(&out).unwrap_or(json!([]));
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect()
    }

    /// Deletes it now (a pod's netns gone before DEL).
    pub fn delete(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        self.name.clear();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = ip(&["netns", "del", &self.name]);
        }
    }
}

/// Host links the test created (a veth pair for macvlan, the bridges the bridge plugin
/// creates), deleted on drop.
pub struct HostLinks(pub Vec<String>);

impl HostLinks {
    /// A veth pair, both ends up; `a` is the macvlan master.
    pub fn veth(a: &str, b: &str) -> HostLinks {
        let _ = ip(&["link", "del", a]);
        let (ok, out) = ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        assert!(ok, "ip link add {a}: {out}");
        ip(&["link", "set", a, "up"]);
        ip(&["link", "set", b, "up"]);
        HostLinks(vec![a.into()])
    }

    pub fn also(mut self, name: &str) -> HostLinks {
        self.0.push(name.into());
        self
    }

    pub fn exists(name: &str) -> bool {
        ip(&["link", "show", name]).0
    }
}

impl Drop for HostLinks {
    fn drop(&mut self) {
        for l in &self.0 {
            let _ = ip(&["link", "del", l]);
        }
    }
}

/// One run of the plugin binary.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or(Value::Null)
    }
}

/// The pod's identity in `CNI_ARGS`, as containerd sends it.
pub fn containerd_args(namespace: &str, name: &str, sandbox: &str, uid: &str) -> String {
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={sandbox};K8S_POD_UID={uid}"
    )
}

/// Runs the built `multus` binary as a runtime does: `CNI_*` environment, config on stdin.
pub fn multus(command: &str, conf: &Value, container_id: &str, netns: &str, args: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_multus"))
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_ARGS", args)
        .env("CNI_PATH", REFERENCE_PLUGINS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Run {
        ok: o.status.success(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// host-local's leases under `data_dir` (one file per leased address).
pub fn leases(data_dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for net in std::fs::read_dir(data_dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(net.path()).into_iter().flatten().flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            if n != "lock" && !n.starts_with("last_reserved_ip") {
                v.push(n);
            }
        }
    }
    v.sort();
    v
}

/// A host-local IPAM section with its own data dir.
pub fn host_local(subnet: &str, data_dir: &Path) -> Value {
    json!({"type": "host-local", "subnet": subnet, "dataDir": data_dir})
}

/// The user the plugin runs as, bound to Multus' ClusterRole (pods and pods/status: get and
/// update; NADs): the RBAC users grant Multus.
pub const PLUGIN_USER: &str = "sriov-meta-plugin";

/// The NAD CRD, Multus' ClusterRole for [`PLUGIN_USER`], a kubeconfig for that user at `path`.
pub async fn prepare_api(cluster: &Cluster, client: &kube::Client, path: &Path) {
    sriov_testcluster::crd::install(client, &[sriov_api::crd::nad_crd()])
        .await
        .unwrap();
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "multus"},
        "rules": [
            {"apiGroups": ["k8s.cni.cncf.io"], "resources": ["*"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["pods", "pods/status"], "verbs": ["get", "update"]},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]},
        ]
    }))
    .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "multus"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "multus"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": PLUGIN_USER}],
    }))
    .unwrap();
    let pp = PostParams::default();
    let _ = Api::<ClusterRole>::all(client.clone()).create(&pp, &role).await;
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .create(&pp, &binding)
        .await;
    cluster
        .kubeconfig_for(PLUGIN_USER, "sriov-meta-plugin", path)
        .unwrap();
}

pub async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;
}

pub async fn nad(client: &kube::Client, namespace: &str, name: &str, config: &Value, resource: Option<&str>) {
    let mut meta = json!({"name": name, "namespace": namespace});
    if let Some(r) = resource {
        meta["annotations"] = json!({"k8s.v1.cni.cncf.io/resourceName": r});
    }
    let nad: NetworkAttachmentDefinition = serde_json::from_value(json!({
        "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
        "metadata": meta, "spec": {"config": config.to_string()}}))
    .unwrap();
    Api::<NetworkAttachmentDefinition>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &nad)
        .await
        .unwrap();
}

/// Creates a pod with the network selection annotation; returns its UID.
pub async fn pod(client: &kube::Client, namespace: &str, name: &str, networks: &str, extra: Value) -> String {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
            "annotations": {"k8s.v1.cni.cncf.io/networks": networks}},
        "spec": {"automountServiceAccountToken": false, "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": "example.invalid/pause:1"}]},
    });
    if let (Some(spec), Some(extra)) = (p["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let p: Pod = serde_json::from_value(p).unwrap();
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &p)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap()
}

/// The pod's annotation `key` as stored.
pub async fn annotation(client: &kube::Client, namespace: &str, name: &str, key: &str) -> Option<String> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap()
        .metadata
        .annotations?
        .get(key)
        .cloned()
}

pub fn scratch_dir(base: &Path) -> PathBuf {
    base.join("cni")
}

/// What a test of the meta plugin against the API server starts from: a client, the `multus`
/// user's kubeconfig (Multus' ClusterRole, `prepare_api`), a scratch dir, and its namespace.
pub struct World {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub dir: tempfile::TempDir,
}

pub async fn world(cluster: &Cluster, namespace: &str) -> World {
    let client = cluster.client().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("multus.kubeconfig");
    prepare_api(cluster, &client, &kubeconfig).await;
    self::namespace(&client, namespace).await;
    World {
        client,
        kubeconfig,
        dir,
    }
}

/// Root and the reference plugins `plugins` in `REFERENCE_PLUGINS` (scripts/deps/30-cni.sh):
/// false (a skip, with a message) when one is missing, a failure under `CI=true`.
pub fn reference_plugins_and_root(plugins: &[&str]) -> bool {
    if !sriov_test_support::prerequisite(sriov_test_support::is_root(), "root") {
        return false;
    }
    plugins.iter().all(|p| {
        let path = Path::new(REFERENCE_PLUGINS).join(p);
        sriov_test_support::prerequisite(
            path.exists(),
            &format!("{} (scripts/deps/30-cni.sh)", path.display()),
        )
    })
}
