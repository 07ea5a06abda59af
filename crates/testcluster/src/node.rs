//! A kubelet on the kubelet's own fake container runtime (`fakecri`): a real node that
//! registers, reports Ready, runs the device-plugin manager, the plugin watcher and the
//! pod-resources API, and "runs" pods (Allocate is called) without containers. Or, with
//! [`Cluster::start_containerd_node`](crate::containerd), the same kubelet on Debian's
//! containerd + runc: real containers, network namespaces and CNI calls.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::api::{Api, DeleteParams};

use crate::process::{Server, free_port, log_tail};
use crate::{Cluster, Error, block_on, io, kubeconfig_text, write};

/// How long a kubelet gets to register Ready (observed here: ≈ 1.2 s).
const READY_LIMIT: Duration = Duration::from_secs(60);

/// One kubelet + its container runtime (fakecri or containerd), with its own directory under the
/// cluster's data dir. Dropping it stops both, unmounts and removes the root dir, and deletes the
/// Node object.
pub struct Node<'c> {
    pub(crate) cluster: &'c Cluster,
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) root_dir: PathBuf,
    kubelet_cmd: Vec<String>,
    healthz_port: u16,
    kubelet: Option<Server>,
    pub(crate) runtime: Runtime,
    ready_after: Duration,
}

/// The container runtime under a node's kubelet.
pub(crate) enum Runtime {
    /// The kubelet's in-memory fake CRI (`None` until started).
    Fake(Option<Server>),
    /// Debian's containerd + runc in the node's own mount namespace.
    Containerd(Box<crate::containerd::Containerd>),
}

/// Where the kubelet finds its runtime and how the API server reaches it.
pub(crate) struct KubeletRuntime {
    /// `unix://…` CRI endpoint.
    pub endpoint: String,
    /// The kubelet's serving address and `--node-ip` (`None`: 127.0.0.1, no node IP).
    pub node_ip: Option<String>,
}

/// The KubeletConfiguration for these machines (cgroup v1, no systemd, no swap policy, tiny
/// disks): the deltas from ../shared/k8s/README.md, random ports, everything under `dir`.
pub(crate) fn kubelet_config(
    dir: &Path,
    root: &Path,
    port: u16,
    healthz_port: u16,
    runtime: &KubeletRuntime,
) -> serde_json::Value {
    serde_json::json!({
        "kind": "KubeletConfiguration",
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "address": runtime.node_ip.as_deref().unwrap_or("127.0.0.1"),
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "containerRuntimeEndpoint": runtime.endpoint,
        // A real runtime's images are imported, never pulled: image GC must not remove them
        // when the test machine's disk is fuller than the default 85 %.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "failCgroupV1": false,
        "cgroupsPerQOS": false,
        "enforceNodeAllocatable": [],
        "failSwapOn": false,
        "cgroupDriver": "cgroupfs",
        "localStorageCapacityIsolation": false,
        "resolvConf": "",
        "evictionHard": {
            "memory.available": "1%", "nodefs.available": "1%",
            "nodefs.inodesFree": "1%", "imagefs.available": "1%"
        },
        "authentication": {
            "webhook": {"enabled": false},
            "anonymous": {"enabled": false},
            "x509": {"clientCAFile": dir.join("ca.crt")}
        },
        "authorization": {"mode": "AlwaysAllow"},
        "podLogsDir": root.join("pod-logs"),
        "rotateCertificates": false,
        "serializeImagePulls": false,
    })
}

/// A kubelet needs root: `Err(NeedsRoot)` otherwise (see [`crate::require`]).
pub fn require_root() -> Result<(), Error> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        Ok(())
    } else {
        Err(Error::NeedsRoot(uid.as_raw()))
    }
}

impl Cluster {
    /// Starts a kubelet named `name` and waits until its Node is Ready and its device-plugin
    /// registration socket exists. Needs root and the kubelet/fakecri assets. Blocks while
    /// another [`Node`] of this process exists.
    pub fn start_node(&self, name: &str) -> Result<Node<'_>, Error> {
        self.assets.check_node()?;
        require_root()?;
        let mut node = self.claim_node(name, Runtime::Fake(None));
        node.prepare()?;
        node.start()?;
        Ok(node)
    }

    /// Waits until no other [`Node`] of this process exists, then takes the slot (the returned
    /// Node's Drop gives it back and cleans up whatever was started).
    pub(crate) fn claim_node(&self, name: &str, runtime: Runtime) -> Node<'_> {
        {
            let (slot, freed) = &self.node_slot;
            let mut taken = slot.lock().unwrap_or_else(|e| e.into_inner());
            while *taken {
                taken = freed.wait(taken).unwrap_or_else(|e| e.into_inner());
            }
            *taken = true;
        }
        let dir = self.data_dir().join("nodes").join(name);
        Node {
            cluster: self,
            name: name.to_string(),
            root_dir: dir.join("root"),
            dir,
            kubelet_cmd: Vec::new(),
            healthz_port: 0,
            kubelet: None,
            runtime,
            ready_after: Duration::ZERO,
        }
    }
}

impl Node<'_> {
    /// The kubelet's identity, kubeconfig, configuration and command line for `runtime`.
    pub(crate) fn prepare_kubelet(&mut self, runtime: &KubeletRuntime) -> Result<(), Error> {
        let (dir, root) = (&self.dir, &self.root_dir);
        let plugins = root.join("device-plugins");
        std::fs::create_dir_all(&plugins).map_err(io(&plugins))?;
        self.cluster.reaper.unmount_at_exit(root)?;
        let cert = self
            .cluster
            .pki
            .client(&format!("system:node:{}", self.name), Some("system:nodes"))?;
        let (ca, crt, key) = (dir.join("ca.crt"), dir.join("node.crt"), dir.join("node.key"));
        write(&ca, &self.cluster.pki.ca.cert_pem)?;
        write(&crt, &cert.cert_pem)?;
        write(&key, &cert.key_pem)?;
        let kubeconfig = dir.join("kubelet.kubeconfig");
        write(
            &kubeconfig,
            &kubeconfig_text(self.cluster.server(), &ca, &crt, &key),
        )?;
        self.healthz_port = free_port()?;
        let config = dir.join("kubelet-config.json");
        let body = kubelet_config(dir, root, free_port()?, self.healthz_port, runtime);
        write(&config, &body.to_string())?;
        self.kubelet_cmd = vec![
            format!("--config={}", config.display()),
            format!("--kubeconfig={}", kubeconfig.display()),
            format!("--root-dir={}", root.display()),
            format!("--cert-dir={}", dir.join("kubelet-pki").display()),
            format!("--hostname-override={}", self.name),
            "--v=2".to_string(),
        ];
        if let Some(ip) = &runtime.node_ip {
            self.kubelet_cmd.push(format!("--node-ip={ip}"));
        }
        Ok(())
    }

    fn prepare(&mut self) -> Result<(), Error> {
        let dir = self.dir.clone();
        let sock = dir.join("fakecri.sock");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        self.prepare_kubelet(&KubeletRuntime {
            endpoint: format!("unix://{}", sock.display()),
            node_ip: None,
        })?;

        let mut fakecri = Command::new(&self.cluster.assets.fakecri);
        fakecri.arg("-listen").arg(format!("unix://{}", sock.display()));
        let mut server = Server::spawn("fakecri", fakecri, dir.join("fakecri.log"), &self.cluster.reaper)?;
        let started = Instant::now();
        while !sock.exists() {
            server.check_running()?;
            if started.elapsed() > Duration::from_secs(10) {
                return Err(Error::NotReady {
                    what: format!("fakecri socket {}", sock.display()),
                    waited: started.elapsed(),
                    last: "no socket".into(),
                    tail: log_tail(&server.log),
                    log: server.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.runtime = Runtime::Fake(Some(server));
        Ok(())
    }

    /// The node's name (also the Node object's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kubelet's `--root-dir`.
    pub fn root_dir(&self) -> &Path {
        &self.root_dir
    }

    /// `<root>/device-plugins/`: the registration socket `kubelet.sock` and plugin sockets (the
    /// kubelet sees it as /var/lib/kubelet/device-plugins in its own mount namespace, so a
    /// plugin's `endpoint` is a file name in this directory).
    pub fn device_plugin_dir(&self) -> PathBuf {
        self.root_dir.join("device-plugins")
    }

    /// `<root>/plugins_registry/`: the plugin watcher's directory.
    pub fn plugins_registry_dir(&self) -> PathBuf {
        self.root_dir.join("plugins_registry")
    }

    /// `<root>/pod-resources/kubelet.sock`: the PodResources API.
    pub fn pod_resources_socket(&self) -> PathBuf {
        self.root_dir.join("pod-resources/kubelet.sock")
    }

    /// The kubelet's log (all of its starts).
    pub fn kubelet_log(&self) -> PathBuf {
        self.dir.join("kubelet.log")
    }

    /// Pids of the kubelet (while running) and its runtime (fakecri, or containerd and the
    /// process holding the node's mount namespace).
    pub fn pids(&self) -> Vec<u32> {
        let runtime = match &self.runtime {
            Runtime::Fake(fakecri) => fakecri.iter().map(Server::pid).collect(),
            Runtime::Containerd(c) => c.pids(),
        };
        self.kubelet.iter().map(Server::pid).chain(runtime).collect()
    }

    /// From spawning the kubelet to Ready, for the last start.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    pub fn is_running(&self) -> bool {
        self.kubelet.is_some()
    }

    /// Starts the kubelet (a no-op when it runs) and waits until it serves: `/healthz` ok, the
    /// device-plugin registration socket re-created, the Node Ready.
    pub fn start(&mut self) -> Result<(), Error> {
        if self.kubelet.is_some() {
            return Ok(());
        }
        let registration = self.device_plugin_dir().join("kubelet.sock");
        let _ = std::fs::remove_file(&registration);
        // The kubelet's device-plugin manager ignores --root-dir: its socket directory is the
        // constant /var/lib/kubelet/device-plugins. So the kubelet runs in a mount namespace of
        // its own where that path is <root>/device-plugins, bind-mounted; the namespace (and the
        // kubelet's self-bind-mount of its root dir) goes away with the kubelet, and kubelets of
        // other tests or worktrees on this machine never see each other's sockets. Unix sockets
        // work across the bind mount (same inodes), so plugins use <root>/device-plugins.
        //
        // A containerd node's kubelet joins the node's mount namespace instead (where that bind
        // mount is made once): containerd must see the kubelet's volume mounts (tmpfs of
        // secrets and projected tokens) to bind them into containers.
        let mut cmd = match &self.runtime {
            Runtime::Containerd(c) => c.in_node_namespace(&self.device_plugin_dir()),
            Runtime::Fake(_) => {
                let mut cmd = Command::new("unshare");
                cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                    .arg(concat!(
                        "mkdir -p /var/lib/kubelet/device-plugins && ",
                        "mount --bind \"$0\" /var/lib/kubelet/device-plugins && exec \"$@\""
                    ))
                    .arg(self.device_plugin_dir());
                cmd
            }
        };
        cmd.arg(&self.cluster.assets.kubelet)
            .args(&self.kubelet_cmd)
            // Seen with v1.36.2: after a restart the kubelet's device manager empties its socket
            // directory by names relative to its working directory (unlinkat(AT_FDCWD,
            // "Cargo.toml") in strace: it deleted the test crate's manifest). Its working
            // directory is therefore the device-plugins dir, the one it means to empty.
            .current_dir(self.device_plugin_dir());
        let started = Instant::now();
        let mut kubelet = Server::spawn("kubelet", cmd, self.kubelet_log(), &self.cluster.reaper)?;
        let mut last = String::from("not started");
        let result = loop {
            if let Err(e) = kubelet.check_running() {
                break Err(e);
            }
            if started.elapsed() > READY_LIMIT {
                break Err(Error::NotReady {
                    what: format!("kubelet {}", self.name),
                    waited: READY_LIMIT,
                    last,
                    tail: log_tail(&kubelet.log),
                    log: kubelet.log.clone(),
                });
            }
            match self.serving(&registration) {
                Ok(()) => break Ok(()),
                Err(why) => last = why,
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        self.ready_after = started.elapsed();
        self.kubelet = Some(kubelet);
        result
    }

    /// `Ok` when the kubelet serves; else what is still missing.
    fn serving(&self, registration: &Path) -> Result<(), String> {
        let health = healthz(self.healthz_port)?;
        if health != "ok" {
            return Err(format!("/healthz says {health:?}"));
        }
        if !registration.exists() {
            return Err(format!("no {}", registration.display()));
        }
        let config = self.cluster.config().clone();
        let name = self.name.clone();
        let node = block_on(async move {
            let api: Api<NodeObject> = Api::all(kube::Client::try_from(config)?);
            api.get_opt(&name).await
        })
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
        .ok_or("no Node object yet")?;
        let ready = node
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        match ready {
            Some(c) if c.status == "True" => Ok(()),
            Some(c) => Err(format!("Ready={} ({})", c.status, c.message.unwrap_or_default())),
            None => Err("no Ready condition yet".into()),
        }
    }

    /// Stops the kubelet (SIGTERM, SIGKILL after 10 s). The runtime keeps running, as a container
    /// runtime outlives a kubelet restart; the Node object stays.
    pub fn stop(&mut self) {
        if let Some(mut kubelet) = self.kubelet.take() {
            kubelet.stop(Duration::from_secs(10), &self.cluster.reaper);
        }
    }

    /// [`stop`](Self::stop) then [`start`](Self::start).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop();
        self.start()
    }
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        self.stop();
        match &mut self.runtime {
            Runtime::Fake(fakecri) => {
                if let Some(mut fakecri) = fakecri.take() {
                    fakecri.stop(Duration::from_secs(5), &self.cluster.reaper);
                }
            }
            Runtime::Containerd(c) => c.tear_down(&self.cluster.reaper),
        }
        let config = self.cluster.config().clone();
        let name = self.name.clone();
        let _ = block_on(async move {
            if let Ok(client) = kube::Client::try_from(config) {
                let api: Api<NodeObject> = Api::all(client);
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
        });
        unmount_under(&self.root_dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        let (slot, freed) = &self.cluster.node_slot;
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = false;
        freed.notify_one();
    }
}

/// `GET /healthz` on the kubelet's plain-HTTP health port.
fn healthz(port: u16) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("healthz: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| format!("healthz: {e}"))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| format!("healthz: {e}"))?;
    Ok(answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort();
    found.reverse();
    found
}

/// Unmounts (lazily, so a busy mount cannot block the teardown) everything at or under `dir`.
fn unmount_under(dir: &Path) {
    for m in mounts_under(dir) {
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
    }
}
