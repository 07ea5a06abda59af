//! A real Kubernetes control plane for the test suites, the way controller-runtime's envtest
//! works: etcd + kube-apiserver (v1.36.2, `scripts/deps/40-k8s.sh`) on random 127.0.0.1 ports
//! with a self-signed PKI, and on demand kubelets running on the kubelet's own fake CRI
//! (`fakecri`), each with its own `--root-dir` and its own mount namespace (where the
//! kubelet's fixed /var/lib/kubelet/device-plugins is the node's `<root>/device-plugins`), plus,
//! on demand, kube-controller-manager and kube-scheduler.
//!
//! Without the control loops no controller runs: a pod needs `spec.nodeName`, nothing creates
//! the `default` ServiceAccount (so the ServiceAccount admission plugin is off), namespaces are
//! not finalized on delete. A cluster whose pods must use the API server as in-cluster clients
//! (ServiceAccount tokens, the `kubernetes` Service's ClusterIP) is started with
//! `Cluster::start_with(ClusterOptions { in_cluster_api: true })`: see [`in_cluster`]. Pods on the fake runtime reach Running with their devices allocated,
//! but no container, network namespace or CNI call exists.
//!
//! ```no_run
//! # async fn example() {
//! use sriov_testcluster::{Cluster, require};
//!
//! // Started once per test binary (the first caller pays 3–5 s), shared by every test in it.
//! // `None` (with a message) when the binaries are missing, which fails the test under CI=true.
//! let Some(cluster) = Cluster::shared() else { return };
//! let client = cluster.client().expect("client"); // a kube::Client for the current runtime
//! let kubeconfig = cluster.kubeconfig(); // for kubectl --kubeconfig
//! let crds = vec![]; // e.g. sriov_api::crd::sriov_crds()
//! sriov_testcluster::crd::install(&client, &crds).await.expect("Established");
//!
//! // A kubelet (needs root). One node at a time per test binary: a second `start_node` waits
//! // until the first `Node` is dropped.
//! let Some(mut node) = require(cluster.start_node("worker-1")) else { return };
//! // Ready ≈ 1.1 s. The kubelet's registration socket, plugin watcher dir, PodResources socket:
//! let registration = node.device_plugin_dir().join("kubelet.sock");
//! let (registry, pod_resources) = (node.plugins_registry_dir(), node.pod_resources_socket());
//! node.restart().expect("kubelet back"); // the fake runtime (and its pods) survive
//! node.stop(); // kubelet gone, Node object stays (NotReady later)
//! node.start().expect("kubelet up again");
//! drop(node); // kubelet and fakecri stopped, root dir unmounted and removed, Node deleted
//!
//! // DaemonSets, Deployments, GC, scheduling: kube-controller-manager and kube-scheduler on
//! // the same cluster, started once (≈ 1 s), kept until the process ends.
//! cluster.start_control_loops().expect("control loops");
//! # }
//! ```
//!
//! A real node (root, Debian's containerd + runc, the pause image from `scripts/images`): the
//! same kubelet on containerd, real sandboxes and containers, a network namespace per pod, the
//! CNI configuration and plugins the caller chooses ([`NodeCni`]; default: Debian's `bridge` +
//! `host-local` in a private 198.18.X.0/24). See [`containerd`] and docs/testing.md.
//!
//! ```no_run
//! # fn example(cluster: &sriov_testcluster::Cluster) {
//! use sriov_testcluster::{NodeCni, require};
//! let Some(node) = require(cluster.start_containerd_node("worker-1", NodeCni::default_bridge())) else { return };
//! let c = node.containerd().expect("a containerd node");
//! let (image, leases) = (c.sandbox_image(), c.cni_state_dir().join("networks"));
//! # }
//! ```
//!
//! Everything the cluster starts is torn down however the test process ends (normal exit,
//! panic, abort, SIGKILL): see [`reaper`]. A [`Cluster::start`]ed (not shared) cluster is torn
//! down when dropped.
//!
//! Binaries are found through `$SRIOV_K8S_ASSETS`, `$KUBEBUILDER_ASSETS` or the repository's
//! `.tools/k8s/v1.36.2` ([`assets`]). Under `CI=true` a missing binary, or a node test without
//! root, fails; elsewhere it skips with a message on stderr ([`require`]).

pub mod assets;
pub mod containerd;
pub mod control_loops;
pub mod crd;
pub mod in_cluster;
pub mod metrics;
pub mod node;
pub mod pki;
pub mod process;
pub mod reaper;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

pub use assets::{Assets, K8S_VERSION};
pub use containerd::{CniContext, CniFile, NodeCni};
pub use in_cluster::{ClusterOptions, ServiceNetwork};
pub use node::Node;

use pki::Pki;
use process::{Server, free_port, log_tail};
use reaper::Reaper;

/// What can go wrong starting or driving the cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} not found at {} ({hint})", path.display())]
    MissingAsset {
        what: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("a kubelet needs root (mounts, cgroups); this test runs as uid {0}")]
    NeedsRoot(u32),
    #[error("cannot start {what}: {source}")]
    Spawn {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{what} exited ({status}); last lines of {}:\n{tail}", log.display())]
    Exited {
        what: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} not ready after {waited:?}: {last}; last lines of {}:\n{tail}", log.display())]
    NotReady {
        what: String,
        waited: Duration,
        last: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("path {0:?} has whitespace or is not UTF-8; the reaper cannot name it")]
    UnsupportedPath(PathBuf),
    #[error("the cluster was torn down already")]
    TornDown,
    #[error("certificate: {0}")]
    Pki(#[from] rcgen::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("CRD {name} not Established after {waited:?}: {conditions}")]
    CrdNotEstablished {
        name: String,
        waited: Duration,
        conditions: String,
    },
}

impl Error {
    /// A binary or privilege the environment lacks (as opposed to a broken start).
    pub fn is_missing_prerequisite(&self) -> bool {
        matches!(self, Error::MissingAsset { .. } | Error::NeedsRoot(_))
    }
}

/// The CI policy for a start-up result: a missing prerequisite fails under `CI=true` and skips
/// (`None`, with a message on stderr) elsewhere; any other error fails the test.
pub fn require<T>(result: Result<T, Error>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            judge(&e);
            None
        }
    }
}

fn judge(e: &Error) {
    if !e.is_missing_prerequisite() {
        panic!("sriov-testcluster: {e}");
    }
    // The project's one rule for missing prerequisites (crates/test-support): a failure under
    // CI=true, a skip with a message elsewhere.
    sriov_test_support::prerequisite(false, &format!("{e}"));
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(io(path))
}

/// Runs `fut` to completion on a fresh current-thread runtime in a scoped thread, so it works
/// from plain and from async tests alike (a runtime cannot be blocked on inside another).
pub(crate) fn block_on<F>(fut: F) -> Result<F::Output, Error>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(fut))
                .map_err(io(Path::new("tokio runtime")))
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A kubeconfig with file references (readable by kubectl, kube-rs and the kubelet).
pub(crate) fn kubeconfig_text(server: &str, ca: &Path, cert: &Path, key: &Path) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sriov-testcluster", "cluster": {
            "server": server, "certificate-authority": ca}}],
        "users": [{"name": "user", "user": {"client-certificate": cert, "client-key": key}}],
        "contexts": [{"name": "sriov-testcluster", "context": {
            "cluster": "sriov-testcluster", "user": "user", "namespace": "default"}}],
        "current-context": "sriov-testcluster",
    })
    .to_string()
}

/// Start-up durations, measured from the first spawn.
#[derive(Clone, Copy, Debug)]
pub struct StartupTimes {
    /// etcd and kube-apiserver spawned until `/readyz` answers `ok`.
    pub apiserver_ready: Duration,
}

/// etcd + kube-apiserver, with an admin kubeconfig.
pub struct Cluster {
    data_dir: PathBuf,
    server: String,
    kubeconfig: PathBuf,
    config: kube::Config,
    pub(crate) pki: Pki,
    pub(crate) assets: Assets,
    pub(crate) reaper: Reaper,
    servers: Mutex<Vec<Server>>,
    times: StartupTimes,
    /// `true` while a [`Node`] exists: one kubelet at a time per process.
    pub(crate) node_slot: (Mutex<bool>, Condvar),
    /// kube-controller-manager and kube-scheduler, once started.
    pub(crate) control_loops: Mutex<Vec<Server>>,
    /// The `kubernetes` Service's network ([`ClusterOptions::in_cluster_api`]).
    service: Option<in_cluster::ServiceLink>,
}

static SHARED: OnceLock<Result<Cluster, Error>> = OnceLock::new();

impl Cluster {
    /// The process-wide cluster, started by the first caller. `None` (after a message) when a
    /// prerequisite is missing outside CI; panics under `CI=true` or when the start failed.
    pub fn shared() -> Option<&'static Cluster> {
        match SHARED.get_or_init(Cluster::start) {
            Ok(c) => Some(c),
            Err(e) => {
                judge(e);
                None
            }
        }
    }

    /// Starts a new cluster of its own (torn down on drop). Prefer [`Cluster::shared`].
    pub fn start() -> Result<Cluster, Error> {
        Cluster::start_with(ClusterOptions::default())
    }

    /// Starts a new cluster of its own with `options` (torn down on drop): e.g. one whose pods
    /// use the API server as in-cluster clients ([`ClusterOptions::in_cluster_api`], needs root).
    pub fn start_with(options: ClusterOptions) -> Result<Cluster, Error> {
        let assets = Assets::control_plane()?;
        let reaper = Reaper::spawn()?;
        let data_dir = tempfile::Builder::new()
            .prefix("sriov-tc-")
            .tempdir()
            .map_err(io(Path::new("temporary directory")))?
            .keep();
        reaper.remove_at_exit(&data_dir)?;
        let cluster = Cluster::launch(assets, reaper, data_dir, &options)?;
        eprintln!(
            "sriov-testcluster: kube-apiserver {} ready in {} ms ({})",
            K8S_VERSION,
            cluster.times.apiserver_ready.as_millis(),
            cluster.data_dir.display()
        );
        Ok(cluster)
    }

    fn launch(
        assets: Assets,
        reaper: Reaper,
        data_dir: PathBuf,
        options: &ClusterOptions,
    ) -> Result<Cluster, Error> {
        let service = if options.in_cluster_api {
            Some(in_cluster::ServiceLink::create(&reaper, &data_dir)?)
        } else {
            None
        };
        let pki = Pki::new()?;
        let (pki_dir, logs) = (data_dir.join("pki"), data_dir.join("logs"));
        for d in [&pki_dir, &logs] {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        let ca = pki_dir.join("ca.crt");
        write(&ca, &pki.ca.cert_pem)?;
        write(&pki_dir.join("ca.key"), &pki.ca.key_pem)?;
        let cluster_ips: Vec<_> = service.iter().map(|s| s.network.cluster_ip).collect();
        let serving = pki.serving_for(&cluster_ips)?;
        let (tls_crt, tls_key) = (pki_dir.join("apiserver.crt"), pki_dir.join("apiserver.key"));
        write(&tls_crt, &serving.cert_pem)?;
        write(&tls_key, &serving.key_pem)?;
        let sa_key = pki_dir.join("sa.key");
        write(&sa_key, &pki.service_account_key_pem)?;
        let sa_pub = pki_dir.join("sa.pub");
        write(&sa_pub, &pki.service_account_public_pem)?;
        let admin = pki.client("admin", Some("system:masters"))?;
        let (admin_crt, admin_key) = (pki_dir.join("admin.crt"), pki_dir.join("admin.key"));
        write(&admin_crt, &admin.cert_pem)?;
        write(&admin_key, &admin.key_pem)?;
        // The API server's identity towards kubelets (logs, exec): their x509 authentication
        // trusts the cluster CA.
        let kubelet_client = pki.client("kube-apiserver-kubelet-client", Some("system:masters"))?;
        let (kc_crt, kc_key) = (
            pki_dir.join("apiserver-kubelet-client.crt"),
            pki_dir.join("apiserver-kubelet-client.key"),
        );
        write(&kc_crt, &kubelet_client.cert_pem)?;
        write(&kc_key, &kubelet_client.key_pem)?;

        let (etcd_port, peer_port, api_port) = (free_port()?, free_port()?, free_port()?);
        let started = Instant::now();
        let mut etcd = Command::new(&assets.etcd);
        let client_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        etcd.arg("--data-dir")
            .arg(data_dir.join("etcd"))
            .args(["--name", "default"])
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            .args(["--log-level", "warn", "--logger", "zap"]);
        let mut servers = vec![Server::spawn("etcd", etcd, logs.join("etcd.log"), &reaper)?];

        let server = format!("https://127.0.0.1:{api_port}");
        let mut api = Command::new(&assets.kube_apiserver);
        api.arg(format!("--etcd-servers={client_url}"))
            .args(["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1"])
            .arg(format!("--secure-port={api_port}"))
            .arg(format!("--cert-dir={}", data_dir.join("apiserver").display()))
            .arg(format!("--tls-cert-file={}", tls_crt.display()))
            .arg(format!("--tls-private-key-file={}", tls_key.display()))
            .arg(format!("--client-ca-file={}", ca.display()))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", sa_pub.display()))
            .arg(format!("--service-account-signing-key-file={}", sa_key.display()))
            .arg("--authorization-mode=Node,RBAC")
            .arg("--allow-privileged=true")
            // `kubectl logs/exec` on a containerd node reach its kubelet at the node IP (a veth
            // address), not at the node's name, which nothing resolves.
            .arg("--kubelet-preferred-address-types=InternalIP,Hostname")
            .arg(format!("--kubelet-client-certificate={}", kc_crt.display()))
            .arg(format!("--kubelet-client-key={}", kc_key.display()))
            .arg("--enable-priority-and-fairness=false")
            .arg("--profiling=false");
        match &service {
            Some(s) => {
                api.arg(format!("--service-cluster-ip-range={}", s.network.cidr));
            }
            None => {
                // A range nothing routes to here; no controller-manager may create the
                // `default` ServiceAccount, so pods go without one.
                api.arg("--service-cluster-ip-range=10.96.0.0/16")
                    .arg("--disable-admission-plugins=ServiceAccount");
            }
        }
        servers.push(Server::spawn(
            "kube-apiserver",
            api,
            logs.join("kube-apiserver.log"),
            &reaper,
        )?);

        let kubeconfig = data_dir.join("admin.kubeconfig");
        write(
            &kubeconfig,
            &kubeconfig_text(&server, &ca, &admin_crt, &admin_key),
        )?;
        let config = block_on(async {
            let kc = Kubeconfig::read_from(&kubeconfig)?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(Error::from)
        })??;
        let apiserver_ready = wait_ready(&config, &mut servers, started)?;
        if let Some(s) = &service {
            s.forward(api_port)?;
        }
        Ok(Cluster {
            data_dir,
            server,
            kubeconfig,
            config,
            pki,
            assets,
            reaper,
            servers: Mutex::new(servers),
            times: StartupTimes { apiserver_ready },
            node_slot: (Mutex::new(false), Condvar::new()),
            control_loops: Mutex::new(Vec::new()),
            service,
        })
    }

    /// A new client for the runtime this is called in (kube's client spawns a task on the
    /// current runtime, so a client must not outlive the runtime it was made in).
    pub fn client(&self) -> Result<kube::Client, Error> {
        Ok(kube::Client::try_from(self.config.clone())?)
    }

    /// The client configuration (admin: `system:masters`).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// The cluster's CA (PEM): a webhook's `caBundle`.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca.cert_pem
    }

    /// A fresh serving certificate for 127.0.0.1 / localhost signed by the cluster's CA: what a
    /// webhook the API server calls on 127.0.0.1 serves.
    pub fn loopback_serving_cert(&self) -> Result<pki::CertKey, Error> {
        self.pki.serving()
    }

    /// The admin kubeconfig (for `kubectl --kubeconfig`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The cluster's own directory (PKI, etcd data, logs, node root dirs).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The `kubernetes` Service's network, for a cluster started with
    /// [`ClusterOptions::in_cluster_api`].
    pub fn service_network(&self) -> Option<&ServiceNetwork> {
        self.service.as_ref().map(|s| &s.network)
    }

    pub fn startup_times(&self) -> StartupTimes {
        self.times
    }

    /// Pids of etcd, kube-apiserver and (once started) the control loops, for teardown tests.
    pub fn pids(&self) -> Vec<u32> {
        let servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
        let loops = self.control_loops.lock().unwrap_or_else(|e| e.into_inner());
        servers.iter().chain(loops.iter()).map(Server::pid).collect()
    }

    /// Writes a kubeconfig for a client cert `CN=user, O=group` signed by the cluster CA.
    pub fn kubeconfig_for(&self, user: &str, group: &str, path: &Path) -> Result<(), Error> {
        let cert = self.pki.client(user, Some(group))?;
        let (crt, key) = (path.with_extension("crt"), path.with_extension("key"));
        write(&crt, &cert.cert_pem)?;
        write(&key, &cert.key_pem)?;
        write(
            path,
            &kubeconfig_text(&self.server, &self.data_dir.join("pki/ca.crt"), &crt, &key),
        )
    }
}

impl Cluster {
    /// A self-contained kubeconfig (certificates embedded) for a client on another machine, e.g.
    /// a kubelet in the lab's QEMU guest, that reaches the API server at `server` through a
    /// forward: the server is verified under the name `localhost`, which its certificate holds.
    pub fn kubeconfig_for_remote(
        &self,
        user: &str,
        group: &str,
        server: &str,
        path: &Path,
    ) -> Result<(), Error> {
        use base64::Engine as _;
        let b64 = |b: &str| base64::engine::general_purpose::STANDARD.encode(b);
        let cert = self.pki.client(user, Some(group))?;
        let ca_path = self.data_dir.join("pki/ca.crt");
        let ca = std::fs::read_to_string(&ca_path).map_err(io(&ca_path))?;
        let text = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sriov-testcluster", "cluster": {
                "server": server, "tls-server-name": "localhost", "certificate-authority-data": b64(&ca)}}],
            "users": [{"name": user, "user": {
                "client-certificate-data": b64(&cert.cert_pem), "client-key-data": b64(&cert.key_pem)}}],
            "contexts": [{"name": "sriov-testcluster", "context": {
                "cluster": "sriov-testcluster", "user": user, "namespace": "default"}}],
            "current-context": "sriov-testcluster",
        })
        .to_string();
        write(path, &text)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.reaper.finish();
        if let Some(s) = &self.service {
            s.tear_down();
        }
    }
}

fn wait_ready(config: &kube::Config, servers: &mut [Server], started: Instant) -> Result<Duration, Error> {
    const LIMIT: Duration = Duration::from_secs(90);
    let mut last = String::from("no answer yet");
    while started.elapsed() < LIMIT {
        for s in servers.iter_mut() {
            s.check_running()?;
        }
        let answer = block_on(async {
            let client = kube::Client::try_from(config.clone())?;
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(kube::Error::HttpError)?;
            client.request_text(req).await
        })?;
        match answer {
            Ok(body) if body.trim() == "ok" => return Ok(started.elapsed()),
            Ok(body) => last = body,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = servers.last().map(|s| s.log.clone()).unwrap_or_default();
    Err(Error::NotReady {
        what: "kube-apiserver /readyz".into(),
        waited: LIMIT,
        last,
        tail: log_tail(&log),
        log,
    })
}
