//! A real node: the kubelet on Debian's containerd + runc, with real pod sandboxes, network
//! namespaces and CNI calls (`Cluster::start_containerd_node`).
//!
//! containerd 1.6 hard-codes some host paths: shim sockets under `/run/containerd/s`, pod network
//! namespaces under `/var/run/netns`, libcni's result cache (and host-local's default lease dir)
//! under `/var/lib/cni`. So each node gets a mount namespace of its own, held by a small
//! "anchor" process, where those paths (and the kubelet's fixed
//! `/var/lib/kubelet/device-plugins`) are bind mounts of the node's directories. containerd, its
//! shims and the kubelet all run in it (the kubelet's volume mounts must be visible to
//! containerd), so nodes of parallel tests never see each other's state, and whatever a node
//! mounts goes away with its namespace. Only two things are shared with the host: the cgroups
//! containerd creates (`/sys/fs/cgroup/*/k8s.io/<id>`) and the links of the node's network (the
//! veth holding the node IP, the default network's bridge); the node's teardown script removes
//! exactly its own, after killing its containers (by cgroup) and its processes (by mount
//! namespace: the shims are no children of ours). The script runs from `Drop`, or from the
//! [reaper](crate::reaper) however the test process ends.
//!
//! The configuration follows ../shared/k8s/README.md: `restrict_oom_score_adj` (no
//! CAP_SYS_RESOURCE here), `SystemdCgroup = false` with the kubelet's `cgroupfs`, a sandbox image
//! built locally (`scripts/images pause`) and imported into the `k8s.io` namespace (pods use
//! `imagePullPolicy: Never`), a node IP on a veth for `kubectl logs/exec`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::node::{KubeletRuntime, Node, Runtime, require_root};
use crate::process::{Server, log_tail};
use crate::reaper::Reaper;
use crate::{Cluster, Error, io, write};

/// The default network's name (its host-local leases are under
/// `<cni state>/networks/sriov-tc-default`).
pub const DEFAULT_NETWORK: &str = "sriov-tc-default";

/// How long containerd gets to answer after a (re)start.
const CONTAINERD_LIMIT: Duration = Duration::from_secs(30);

/// One CNI network configuration file of the node's conf dir.
#[derive(Clone, Debug)]
pub struct CniFile {
    /// File name; containerd loads the first by name (`.conflist`, `.conf` or `.json`).
    pub name: String,
    pub text: String,
}

/// What a node's CNI configuration may refer to, known once the node's directories and
/// addresses are chosen.
pub struct CniContext<'a> {
    pub node_name: &'a str,
    /// The default network (Debian's `bridge` + `host-local` in the node's private subnet), a
    /// conflist: a meta plugin's `clusterNetwork`/`delegates`, or the node's network as it is.
    pub default_network: serde_json::Value,
    /// The pod subnet of the default network (`198.18.X.0/24`).
    pub pod_subnet: &'a str,
    /// The cluster's admin kubeconfig (a meta plugin may use `Cluster::kubeconfig_for` instead).
    pub kubeconfig: &'a Path,
    /// The kubelet's PodResources socket.
    pub pod_resources_socket: PathBuf,
    /// The node's `/var/lib/cni` as seen from the host (results cache, host-local leases).
    pub cni_state_dir: &'a Path,
    /// The node's own directory, for anything else a plugin wants to keep.
    pub node_dir: &'a Path,
}

type ConfFn = Box<dyn Fn(&CniContext<'_>) -> Vec<CniFile> + Send + Sync>;

/// The node's CNI: plugin directories (merged into one bin dir, first wins, as containerd 1.6
/// takes a single `bin_dir`) and the configuration files written into its conf dir.
pub struct NodeCni {
    bin_dirs: Vec<PathBuf>,
    conf: ConfFn,
}

impl NodeCni {
    /// Debian's reference plugins (`/usr/lib/cni`), the default network alone.
    pub fn default_bridge() -> NodeCni {
        NodeCni::new(vec![PathBuf::from("/usr/lib/cni")], |ctx| {
            vec![CniFile {
                name: "10-default.conflist".into(),
                text: ctx.default_network.to_string(),
            }]
        })
    }

    /// Plugins from `bin_dirs` (include `/usr/lib/cni`: containerd needs `loopback`, the default
    /// network `bridge` and `host-local`), configuration from `conf`.
    pub fn new(
        bin_dirs: Vec<PathBuf>,
        conf: impl Fn(&CniContext<'_>) -> Vec<CniFile> + Send + Sync + 'static,
    ) -> NodeCni {
        NodeCni {
            bin_dirs,
            conf: Box::new(conf),
        }
    }
}

/// The default network: a bridge with the host as gateway and host-local IPAM in `subnet`.
pub fn default_network(bridge: &str, subnet: &str) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": DEFAULT_NETWORK,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        }]
    })
}

/// The node's paths, as containerd's configuration names them.
#[derive(Clone, Debug)]
pub struct ContainerdPaths {
    pub root: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    pub cni_bin: PathBuf,
    pub cni_conf: PathBuf,
}

/// containerd's config.toml (version 2, as 1.6 reads it) for a test node.
pub fn containerd_config(p: &ContainerdPaths, sandbox_image: &str) -> String {
    let q = |p: &Path| serde_json::Value::from(p.display().to_string()).to_string();
    format!(
        r#"version = 2
root = {root}
state = {state}
# Plugins a test node never uses (opt writes to /opt/containerd; the rest are other snapshotters).
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = {socket}

[ttrpc]
  address = {ttrpc}

[plugins."io.containerd.grpc.v1.cri"]
  # Built by scripts/images and imported into k8s.io: no registry is reachable.
  sandbox_image = {image}
  # No CAP_SYS_RESOURCE here: without it runc fails "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # The kubelet's cgroupDriver is cgroupfs (no systemd here).
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = {cni_bin}
    conf_dir = {cni_conf}
    max_conf_num = 1
"#,
        root = q(&p.root),
        state = q(&p.state),
        socket = q(&p.socket),
        ttrpc = q(&p.socket.with_extension("sock.ttrpc")),
        image = serde_json::Value::from(sandbox_image),
        cni_bin = q(&p.cni_bin),
        cni_conf = q(&p.cni_conf),
    )
}

/// What the teardown script removes.
#[derive(Clone, Debug)]
pub struct TeardownPlan {
    /// The node's mount namespace (`mnt:[N]`), `None` before the anchor runs.
    pub mount_namespace: Option<String>,
    /// containerd's state dir: `io.containerd.runtime.v2.task/k8s.io/<id>` names the containers.
    pub state: PathBuf,
    /// Links in the host's network namespace to delete.
    pub links: Vec<String>,
}

/// The teardown script: containers killed through their cgroups, every process of the node's
/// mount namespace (kubelet, containerd, shims, anchor) killed, the containers' cgroups and the
/// node's links removed. Idempotent; it deletes itself so it runs once (a mount namespace's
/// number may be reused once it is gone).
pub fn teardown_script(plan: &TeardownPlan) -> String {
    let tasks = plan.state.join("io.containerd.runtime.v2.task/k8s.io");
    format!(
        r#"# Written by sriov-testcluster: tears down one containerd node.
mnt='{mnt}'
ids=$(ls '{tasks}' 2>/dev/null)
kill_containers() {{
  for id in $ids; do for c in /sys/fs/cgroup/*/k8s.io/$id; do
    [ -f "$c/cgroup.procs" ] && xargs -r kill -KILL < "$c/cgroup.procs" 2>/dev/null
  done; done
}}
in_node() {{
  [ -n "$mnt" ] || return 0
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$mnt" ] && echo "${{p#/proc/}}"
  done
}}
i=0
while [ $i -lt 100 ]; do
  kill_containers
  left=$(in_node)
  [ -z "$left" ] && break
  kill -KILL $left 2>/dev/null
  sleep 0.1; i=$((i+1))
done
for id in $ids; do for c in /sys/fs/cgroup/*/k8s.io/$id; do
  [ -d "$c" ] && {{ rmdir "$c" 2>/dev/null || {{ sleep 0.2; rmdir "$c" 2>/dev/null; }}; }}
done; done
# Empty now unless another node's containers are in it.
for c in /sys/fs/cgroup/*/k8s.io; do rmdir "$c" 2>/dev/null; done
for l in {links}; do ip link del "$l" 2>/dev/null; done
rm -f "$0"
"#,
        mnt = plan.mount_namespace.as_deref().unwrap_or(""),
        tasks = tasks.display(),
        links = plan.links.join(" "),
    )
}

/// The first `x` in `candidates` for which `198.18.x.0/24` (pods) and `198.19.x.1` (node IP)
/// appear nowhere in `ip addr`/`ip route`'s output `used`.
pub fn free_octet(used: &str, candidates: impl IntoIterator<Item = u8>) -> Option<u8> {
    candidates
        .into_iter()
        .find(|x| !used.contains(&format!("198.18.{x}.")) && !used.contains(&format!("198.19.{x}.")))
}

/// The order in which a process tries the octets 0..250: starting at a place its pid and node
/// count pick, so nodes of parallel test processes rarely race for the same one.
pub fn candidates(pid: u32, node: u32) -> impl Iterator<Item = u8> {
    let start = pid.wrapping_mul(7).wrapping_add(node.wrapping_mul(13)) % 250;
    (0..250u32).map(move |i| ((start + i) % 250) as u8)
}

/// containerd, its mount namespace's anchor, and the node's network.
pub struct Containerd {
    dir: PathBuf,
    paths: ContainerdPaths,
    config: PathBuf,
    netns: PathBuf,
    cni_state: PathBuf,
    sandbox_image: String,
    node_ip: String,
    pod_subnet: String,
    teardown: PathBuf,
    plan: TeardownPlan,
    anchor: Option<Server>,
    containerd: Option<Server>,
}

/// Distinguishes the links of nodes started by one process.
static NODE_COUNT: AtomicU32 = AtomicU32::new(0);

fn missing(what: &'static str, path: PathBuf, hint: &'static str) -> Error {
    Error::MissingAsset { what, path, hint }
}

const DEPS_HINT: &str = "run scripts/deps/45-containerd.sh";

/// The pause image tarball: `$SRIOV_PAUSE_IMAGE`, else the repository's `target/images/pause.tar`.
pub fn pause_image() -> Result<PathBuf, Error> {
    let path = std::env::var_os("SRIOV_PAUSE_IMAGE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/images/pause.tar"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(missing(
            "the pause image",
            path,
            "run scripts/deps/46-pause-image.sh (scripts/images pause) or set SRIOV_PAUSE_IMAGE",
        ))
    }
}

/// The image reference a docker-archive tarball carries (`RepoTags[0]` of its manifest.json).
pub fn archive_reference(tarball: &Path) -> Result<String, Error> {
    let out = run(Command::new("tar").arg("-xOf").arg(tarball).arg("manifest.json"))?;
    let manifest: serde_json::Value = serde_json::from_str(&out).map_err(|e| Error::Io {
        path: tarball.to_path_buf(),
        source: std::io::Error::other(format!("manifest.json: {e}")),
    })?;
    manifest[0]["RepoTags"][0]
        .as_str()
        .map(String::from)
        .ok_or_else(|| Error::Io {
            path: tarball.to_path_buf(),
            source: std::io::Error::other("manifest.json has no RepoTags"),
        })
}

/// Runs `cmd` to completion: its stdout, or an error with its stderr.
fn run(cmd: &mut Command) -> Result<String, Error> {
    let what = format!("{cmd:?}");
    let out = cmd.output().map_err(|source| Error::Io {
        path: what.clone().into(),
        source,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Io {
            path: what.into(),
            source: std::io::Error::other(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        })
    }
}

/// What a containerd node needs besides the cluster: root, Debian's containerd + runc and
/// util-linux/iproute2 tools, the kubelet, the pause image (its tarball).
pub fn prerequisites(assets: &crate::Assets) -> Result<PathBuf, Error> {
    assets.check_kubelet()?;
    for bin in [
        "containerd",
        "containerd-shim-runc-v2",
        "runc",
        "ctr",
        "nsenter",
        "unshare",
        "ip",
    ] {
        if sriov_test_support::which(bin).is_none() {
            return Err(missing(
                "a containerd node's binaries",
                PathBuf::from(bin),
                DEPS_HINT,
            ));
        }
    }
    let pause = pause_image()?;
    require_root()?;
    Ok(pause)
}

impl Cluster {
    /// Starts containerd (own root, state, socket and mount namespace under the node's dir) with
    /// the pause image as its sandbox image, and the kubelet on it, and waits until the Node is
    /// Ready (which needs the CNI configuration loaded). Needs root, Debian's containerd + runc
    /// (`scripts/deps/45-containerd.sh`) and the pause image (`scripts/deps/46-pause-image.sh`).
    /// Blocks while another [`Node`] of this process exists.
    pub fn start_containerd_node(&self, name: &str, cni: NodeCni) -> Result<Node<'_>, Error> {
        let pause = prerequisites(&self.assets)?;
        let sandbox_image = archive_reference(&pause)?;
        let mut node = self.claim_node(name, Runtime::Fake(None));
        let dir = node.dir.join("containerd");
        let n = NODE_COUNT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("sct{:05x}{n}", std::process::id() & 0xfffff);
        let (veth, veth_peer, bridge) = (format!("{tag}n"), format!("{tag}p"), format!("{tag}b"));
        let used = run(Command::new("ip").args(["-o", "-4", "addr", "show"]))?
            + &run(Command::new("ip").args(["-4", "route", "show", "table", "all"]))?;
        let octet = free_octet(&used, candidates(std::process::id(), n)).ok_or_else(|| Error::Io {
            path: "ip route".into(),
            source: std::io::Error::other("every 198.18.X.0/24 is in use"),
        })?;
        let paths = ContainerdPaths {
            root: dir.join("root"),
            state: dir.join("state"),
            socket: dir.join("containerd.sock"),
            cni_bin: dir.join("cni-bin"),
            cni_conf: dir.join("cni-conf"),
        };
        let c = Containerd {
            config: dir.join("config.toml"),
            netns: dir.join("netns"),
            cni_state: dir.join("cni-state"),
            teardown: dir.join("teardown.sh"),
            plan: TeardownPlan {
                mount_namespace: None,
                state: paths.state.clone(),
                links: vec![veth.clone(), bridge.clone()],
            },
            paths,
            sandbox_image,
            node_ip: format!("198.19.{octet}.1"),
            pod_subnet: format!("198.18.{octet}.0/24"),
            anchor: None,
            containerd: None,
            dir,
        };
        node.runtime = Runtime::Containerd(Box::new(c));
        node.start_containerd_runtime(&veth, &veth_peer, &bridge, &cni, &pause)?;
        let Runtime::Containerd(c) = &node.runtime else {
            unreachable!("set above")
        };
        let endpoint = format!("unix://{}", c.paths.socket.display());
        let node_ip = Some(c.node_ip.clone());
        node.prepare_kubelet(&KubeletRuntime { endpoint, node_ip })?;
        node.start()?;
        Ok(node)
    }
}

impl Node<'_> {
    /// The containerd runtime of a node from [`Cluster::start_containerd_node`].
    pub fn containerd(&self) -> Option<&Containerd> {
        match &self.runtime {
            Runtime::Containerd(c) => Some(c),
            Runtime::Fake(_) => None,
        }
    }

    /// Stops containerd (SIGTERM: its shims and containers keep running) and starts it again.
    pub fn restart_containerd(&mut self) -> Result<(), Error> {
        let reaper = &self.cluster.reaper;
        match &mut self.runtime {
            Runtime::Containerd(c) => {
                if let Some(mut old) = c.containerd.take() {
                    old.stop(Duration::from_secs(10), reaper);
                }
                c.spawn_containerd(reaper)
            }
            Runtime::Fake(_) => Err(Error::Io {
                path: self.dir.clone(),
                source: std::io::Error::other("not a containerd node"),
            }),
        }
    }

    fn start_containerd_runtime(
        &mut self,
        veth: &str,
        veth_peer: &str,
        bridge: &str,
        cni: &NodeCni,
        pause: &Path,
    ) -> Result<(), Error> {
        let (cluster, name, node_dir) = (self.cluster, self.name.clone(), self.dir.clone());
        let pod_resources_socket = self.pod_resources_socket();
        let device_plugins = self.device_plugin_dir();
        let Runtime::Containerd(c) = &mut self.runtime else {
            unreachable!("called on a containerd node")
        };
        let reaper = &cluster.reaper;
        for d in [
            &c.paths.root,
            &c.paths.state,
            &c.paths.cni_bin,
            &c.paths.cni_conf,
            &c.netns,
            &c.cni_state,
            &c.dir.join("run"),
            &device_plugins,
        ] {
            std::fs::create_dir_all(d).map_err(io(d))?;
        }
        // Registered before anything exists to tear down, so that a start failing half-way is
        // torn down by the reaper too.
        write(&c.teardown, &teardown_script(&c.plan))?;
        reaper.run_at_exit(&c.teardown)?;

        // The node IP, on a veth (kubectl logs/exec reach the kubelet there).
        run(Command::new("ip").args(["link", "add", veth, "type", "veth", "peer", "name", veth_peer]))?;
        run(Command::new("ip").args(["addr", "add", &format!("{}/32", c.node_ip), "dev", veth]))?;
        for l in [veth, veth_peer] {
            run(Command::new("ip").args(["link", "set", l, "up"]))?;
        }

        // The mount namespace and its anchor.
        let mut anchor = Command::new("unshare");
        anchor
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(concat!(
                "set -e; mkdir -p /var/lib/kubelet/device-plugins /run/containerd /var/run/netns /var/lib/cni; ",
                "mount --bind \"$1\" /var/lib/kubelet/device-plugins; mount --bind \"$2\" /run/containerd; ",
                "mount --bind \"$3\" /var/run/netns; mount --bind \"$4\" /var/lib/cni; ",
                "echo anchored; exec sleep infinity"
            ))
            .arg("anchor")
            .arg(&device_plugins)
            .arg(c.dir.join("run"))
            .arg(&c.netns)
            .arg(&c.cni_state);
        let mut server = Server::spawn("mount namespace anchor", anchor, c.dir.join("anchor.log"), reaper)?;
        let started = Instant::now();
        loop {
            server.check_running()?;
            if std::fs::read_to_string(&server.log).is_ok_and(|l| l.contains("anchored")) {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(Error::NotReady {
                    what: "the node's mount namespace".into(),
                    waited: started.elapsed(),
                    last: "no \"anchored\"".into(),
                    tail: log_tail(&server.log),
                    log: server.log.clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let ns_link = PathBuf::from(format!("/proc/{}/ns/mnt", server.pid()));
        let ns = std::fs::read_link(&ns_link).map_err(io(&ns_link))?;
        c.anchor = Some(server);
        c.plan.mount_namespace = Some(ns.display().to_string());
        write(&c.teardown, &teardown_script(&c.plan))?;

        // CNI: one bin dir of links (first directory wins), the caller's configuration.
        for src in &cni.bin_dirs {
            let entries = std::fs::read_dir(src).map_err(io(src))?;
            for e in entries.flatten() {
                let link = c.paths.cni_bin.join(e.file_name());
                if !link.exists() {
                    std::os::unix::fs::symlink(e.path(), &link).map_err(io(&link))?;
                }
            }
        }
        let ctx = CniContext {
            node_name: &name,
            default_network: default_network(bridge, &c.pod_subnet),
            pod_subnet: &c.pod_subnet,
            kubeconfig: cluster.kubeconfig(),
            pod_resources_socket,
            cni_state_dir: &c.cni_state,
            node_dir: &node_dir,
        };
        for f in (cni.conf)(&ctx) {
            write(&c.paths.cni_conf.join(&f.name), &f.text)?;
        }

        write(&c.config, &containerd_config(&c.paths, &c.sandbox_image))?;
        c.spawn_containerd(reaper)?;
        c.import_image(pause)?;
        Ok(())
    }
}

impl Containerd {
    /// `nsenter` into the node's mount namespace with working directory `wd` (setns would
    /// otherwise leave the command in `/`), ready for the program and its arguments.
    pub(crate) fn in_node_namespace(&self, wd: &Path) -> Command {
        let anchor = self.anchor.as_ref().map(Server::pid).unwrap_or(0);
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--mount=/proc/{anchor}/ns/mnt"))
            .arg(format!("--wd={}", wd.display()))
            .arg("--")
            .current_dir(wd);
        cmd
    }

    fn spawn_containerd(&mut self, reaper: &Reaper) -> Result<(), Error> {
        let mut cmd = self.in_node_namespace(&self.dir);
        cmd.arg("containerd").arg("--config").arg(&self.config);
        let mut server = Server::spawn("containerd", cmd, self.log(), reaper)?;
        let started = Instant::now();
        let mut last = String::from("not started");
        while started.elapsed() < CONTAINERD_LIMIT {
            server.check_running()?;
            if self.paths.socket.exists() {
                match self.ctr(&["version"]) {
                    Ok(_) => {
                        self.containerd = Some(server);
                        return Ok(());
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::NotReady {
            what: "containerd".into(),
            waited: CONTAINERD_LIMIT,
            last,
            tail: log_tail(&server.log),
            log: server.log.clone(),
        })
    }

    /// `ctr --address <socket> -n k8s.io ARGS`: its stdout.
    pub fn ctr(&self, args: &[&str]) -> Result<String, Error> {
        run(Command::new("ctr")
            .arg("--address")
            .arg(&self.paths.socket)
            .args(["-n", "k8s.io"])
            .args(args))
    }

    /// Imports a docker-archive/OCI tarball into the `k8s.io` namespace (where the kubelet's
    /// images live); returns its reference.
    pub fn import_image(&self, tarball: &Path) -> Result<String, Error> {
        let path = tarball
            .to_str()
            .ok_or_else(|| Error::UnsupportedPath(tarball.into()))?;
        self.ctr(&["images", "import", path])?;
        archive_reference(tarball)
    }

    /// The sandbox image's reference (the pause image, e.g. for a pod's container).
    pub fn sandbox_image(&self) -> &str {
        &self.sandbox_image
    }

    /// containerd's CRI socket.
    pub fn socket(&self) -> &Path {
        &self.paths.socket
    }

    /// The CNI configuration directory containerd reads.
    pub fn cni_conf_dir(&self) -> &Path {
        &self.paths.cni_conf
    }

    /// The CNI plugin directory containerd runs plugins from.
    pub fn cni_bin_dir(&self) -> &Path {
        &self.paths.cni_bin
    }

    /// The node's `/var/lib/cni` as the host sees it: `results/` (libcni's cache) and
    /// `networks/<name>/` (host-local's leases, one file per leased IP).
    pub fn cni_state_dir(&self) -> &Path {
        &self.cni_state
    }

    /// The node's `/var/run/netns` as the host sees it: one (empty) file per pod network
    /// namespace; the namespaces themselves are mounted only inside the node's mount namespace.
    pub fn netns_dir(&self) -> &Path {
        &self.netns
    }

    /// The node IP (on a veth in the host's network namespace).
    pub fn node_ip(&self) -> &str {
        &self.node_ip
    }

    /// The default network's pod subnet.
    pub fn pod_subnet(&self) -> &str {
        &self.pod_subnet
    }

    /// containerd's log (all of its starts).
    pub fn log(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// The node's mount namespace (`mnt:[N]`).
    pub fn mount_namespace(&self) -> Option<&str> {
        self.plan.mount_namespace.as_deref()
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.containerd
            .iter()
            .chain(self.anchor.iter())
            .map(Server::pid)
            .collect()
    }

    /// Kills containers, shims, containerd and the anchor, removes cgroups and links (the
    /// teardown script), then reaps our own children.
    pub(crate) fn tear_down(&mut self, reaper: &Reaper) {
        if self.teardown.exists() {
            let _ = Command::new("sh").arg(&self.teardown).status();
        }
        for s in [self.containerd.take(), self.anchor.take()].into_iter().flatten() {
            let mut s = s;
            s.stop(Duration::from_secs(1), reaper);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn paths() -> ContainerdPaths {
        ContainerdPaths {
            root: "/t/root".into(),
            state: "/t/state".into(),
            socket: "/t/containerd.sock".into(),
            cni_bin: "/t/cni-bin".into(),
            cni_conf: "/t/cni-conf".into(),
        }
    }

    #[test]
    fn config_carries_the_facts_this_machine_needs() {
        let text = containerd_config(&paths(), "localhost/sriov-rs/pause:0.1.0");
        for line in [
            "root = \"/t/root\"",
            "state = \"/t/state\"",
            "address = \"/t/containerd.sock\"",
            "address = \"/t/containerd.sock.ttrpc\"",
            "sandbox_image = \"localhost/sriov-rs/pause:0.1.0\"",
            "restrict_oom_score_adj = true",
            "SystemdCgroup = false",
            "bin_dir = \"/t/cni-bin\"",
            "conf_dir = \"/t/cni-conf\"",
            "max_conf_num = 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn default_network_is_bridge_with_host_local_in_the_subnet() {
        let net = default_network("sct1b", "198.18.7.0/24");
        assert_eq!(net["name"], DEFAULT_NETWORK);
        let bridge = &net["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "sct1b");
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "198.18.7.0/24");
    }

    #[test]
    fn free_octet_skips_subnets_and_node_ips_in_use() {
        let used = "3: eth0 inet 198.19.0.1/32\n198.18.1.0/24 dev cni0\n";
        assert_eq!(free_octet(used, [0, 1, 2]), Some(2));
        assert_eq!(free_octet(used, [0, 1]), None);
    }

    #[test]
    fn candidates_cover_every_octet_once_from_any_start() {
        for (pid, node) in [(0, 0), (u32::MAX, u32::MAX), (4_000_000, 3)] {
            let mut all: Vec<u8> = candidates(pid, node).collect();
            all.sort();
            assert_eq!(all, (0..250u8).collect::<Vec<_>>());
        }
        assert_ne!(candidates(100, 0).next(), candidates(101, 0).next());
    }

    #[test]
    fn teardown_script_names_its_namespace_links_and_tasks() {
        let plan = TeardownPlan {
            mount_namespace: Some("mnt:[4026532174]".into()),
            state: "/t/state".into(),
            links: vec!["sct1n".into(), "sct1b".into()],
        };
        let s = teardown_script(&plan);
        assert!(s.contains("mnt='mnt:[4026532174]'"));
        assert!(s.contains("ls '/t/state/io.containerd.runtime.v2.task/k8s.io'"));
        assert!(s.contains("for l in sct1n sct1b;"));
        assert!(s.ends_with("rm -f \"$0\"\n"));
        // Before the anchor runs, no process may match an empty namespace name.
        let early = teardown_script(&TeardownPlan {
            mount_namespace: None,
            ..plan
        });
        assert!(early.contains("mnt=''"));
        assert!(early.contains("[ -n \"$mnt\" ] || return 0"));
    }
}
