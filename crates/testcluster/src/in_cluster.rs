//! What in-cluster clients (a pod using its ServiceAccount token and `KUBERNETES_SERVICE_HOST`)
//! need from the test cluster, on demand ([`ClusterOptions::in_cluster_api`]).
//!
//! A real cluster gives pods the `kubernetes` Service's ClusterIP, served by kube-proxy, and a
//! projected ServiceAccount token. `../shared/k8s` has no kube-proxy, and the API server listens
//! on the host's 127.0.0.1 only, which a pod's network namespace cannot reach. So a cluster
//! started with this option gets:
//!
//! - a service CIDR of its own, `198.19.S.0/24` (benchmark range, RFC 2544; `S` unused on this
//!   machine, like a node's octet), whose first address, the `kubernetes` Service's ClusterIP,
//!   is a local address of the host on a veth the cluster creates (`sct…s`);
//! - on that address, port 443, a plain TCP forward to the API server's 127.0.0.1 port (the part
//!   of kube-proxy the `kubernetes` Service needs; TLS passes through untouched), a thread of the
//!   test process. Pods on a node's bridge reach it through their gateway (the host); host-network
//!   pods reach it locally. No iptables rule, no `route_localnet`: nothing outside the links the
//!   cluster created changes;
//! - that address in the API server's serving certificate (clients verify it);
//! - the ServiceAccount admission plugin on (pods get a projected token, and a pod whose
//!   ServiceAccount is missing is refused, as in a real cluster). Namespaces get their `default`
//!   ServiceAccount and `kube-root-ca.crt` from kube-controller-manager: call
//!   [`Cluster::start_control_loops`](crate::Cluster::start_control_loops).
//!
//! The veth is deleted when the cluster is torn down, however the test process ends (reaper).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::containerd::free_octet;
use crate::reaper::Reaper;
use crate::{Error, io, write};

/// How a cluster is started.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Pods can use the API server as in-cluster clients do (see the module documentation).
    pub in_cluster_api: bool,
}

/// The `kubernetes` Service's network: its CIDR, the ClusterIP and the link holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceNetwork {
    /// `198.19.S.0/24`, the API server's `--service-cluster-ip-range`.
    pub cidr: String,
    /// `198.19.S.1`: the `kubernetes` Service's ClusterIP (the first address of the range).
    pub cluster_ip: Ipv4Addr,
    /// The veth holding `cluster_ip/32` in the host's network namespace, and its peer.
    pub link: String,
    pub peer: String,
}

impl ServiceNetwork {
    /// The network for octet `s`, links named after `tag` (unique per process).
    pub fn for_octet(s: u8, tag: &str) -> ServiceNetwork {
        ServiceNetwork {
            cidr: format!("198.19.{s}.0/24"),
            cluster_ip: Ipv4Addr::new(198, 19, s, 1),
            link: format!("{tag}s"),
            peer: format!("{tag}t"),
        }
    }

    /// The teardown script: deletes the link (its peer goes with it). Idempotent, runs once.
    pub fn teardown_script(&self) -> String {
        format!(
            "# Written by sriov-testcluster: the kubernetes Service's link.\nip link del '{}' 2>/dev/null\nrm -f \"$0\"\n",
            self.link
        )
    }
}

/// The ServiceNetwork of a starting cluster, its link created and its teardown registered.
pub(crate) struct ServiceLink {
    pub(crate) network: ServiceNetwork,
    pub(crate) teardown: PathBuf,
}

fn ip(args: &[&str]) -> Result<String, Error> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(io(Path::new("ip")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Io {
            path: format!("ip {}", args.join(" ")).into(),
            source: std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        })
    }
}

impl ServiceLink {
    /// Needs root (a link in the host's network namespace).
    pub(crate) fn create(reaper: &Reaper, data_dir: &Path) -> Result<ServiceLink, Error> {
        crate::node::require_root()?;
        let used = ip(&["-o", "-4", "addr", "show"])? + &ip(&["-4", "route", "show", "table", "all"])?;
        let pid = std::process::id();
        let tag = format!("sct{:05x}c", pid & 0xfffff);
        // Nodes start at pid*7 + n*13; the cluster starts elsewhere to avoid a needless retry.
        let start = pid.wrapping_mul(11).wrapping_add(125) % 250;
        let candidates = (0..250u32).map(move |i| ((start + i) % 250) as u8);
        let s = free_octet(&used, candidates).ok_or_else(|| Error::Io {
            path: "ip route".into(),
            source: std::io::Error::other("every 198.19.X.0/24 is in use"),
        })?;
        let network = ServiceNetwork::for_octet(s, &tag);
        let teardown = data_dir.join("service-link-teardown.sh");
        write(&teardown, &network.teardown_script())?;
        reaper.run_at_exit(&teardown)?;
        ip(&[
            "link",
            "add",
            &network.link,
            "type",
            "veth",
            "peer",
            "name",
            &network.peer,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/32", network.cluster_ip),
            "dev",
            &network.link,
        ])?;
        for l in [&network.link, &network.peer] {
            ip(&["link", "set", l, "up"])?;
        }
        Ok(ServiceLink { network, teardown })
    }

    /// Forwards `cluster_ip:443` to the API server on `127.0.0.1:api_port`, from a thread that
    /// lives as long as the process (the listener goes when the link does).
    pub(crate) fn forward(&self, api_port: u16) -> Result<(), Error> {
        let listen = SocketAddr::from((self.network.cluster_ip, 443));
        let listener = TcpListener::bind(listen).map_err(io(Path::new("kubernetes Service :443")))?;
        let upstream = SocketAddr::from((Ipv4Addr::LOCALHOST, api_port));
        std::thread::Builder::new()
            .name("kubernetes-service".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(client) = conn else { break };
                    std::thread::spawn(move || {
                        if let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) {
                            splice(client, server);
                        }
                    });
                }
            })
            .map_err(|source| Error::Spawn {
                what: "the kubernetes Service forward",
                source,
            })?;
        Ok(())
    }

    /// Deletes the link now (a cluster dropped before the process ends).
    pub(crate) fn tear_down(&self) {
        if self.teardown.exists() {
            let _ = Command::new("sh").arg(&self.teardown).status();
        }
    }
}

/// Copies both ways until either side closes, then closes the other.
fn splice(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || copy_then_shutdown(a, b));
    copy_then_shutdown(b2, a2);
    let _ = up.join();
}

fn copy_then_shutdown(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_network_is_the_octets_range_with_the_first_address_as_cluster_ip() {
        let n = ServiceNetwork::for_octet(42, "sct0abcdc");
        assert_eq!(n.cidr, "198.19.42.0/24");
        assert_eq!(n.cluster_ip, Ipv4Addr::new(198, 19, 42, 1));
        assert_eq!((n.link.as_str(), n.peer.as_str()), ("sct0abcdcs", "sct0abcdct"));
        // Link names fit IFNAMSIZ (15 characters).
        assert!(n.link.len() <= 15 && n.peer.len() <= 15);
    }

    #[test]
    fn teardown_deletes_exactly_its_link_and_itself() {
        let s = ServiceNetwork::for_octet(1, "sct12345c").teardown_script();
        assert!(s.contains("ip link del 'sct12345cs'"), "{s}");
        assert!(s.ends_with("rm -f \"$0\"\n"));
    }
}
