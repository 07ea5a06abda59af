//! Network namespaces. `setns(2)` changes the *calling thread's* namespace, so it is only ever
//! called on a short-lived dedicated thread: that thread opens a netlink socket (which stays
//! bound to the pod netns) or writes the pod's `/proc/sys/net` knobs, and exits.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use nix::sched::{CloneFlags, setns};
use nix::sys::statfs::{NSFS_MAGIC, PROC_SUPER_MAGIC, fstatfs};

use crate::error::{CniError, Result, code};
use crate::nl::Netlink;

/// An open network namespace.
#[derive(Debug)]
pub struct NetNs {
    pub file: File,
    pub path: String,
}

/// Why a netns path could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum NsOpenError {
    /// Nothing there (the pod is gone).
    Gone,
    /// There is something, but it is not a network namespace.
    NotNetns(String),
    Other(String),
}

impl NetNs {
    /// Opens `path` and checks it is an nsfs (or /proc) file of type net.
    pub fn open(path: &str) -> std::result::Result<NetNs, NsOpenError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NsOpenError::Gone),
            Err(e) => return Err(NsOpenError::Other(format!("opening {path:?}: {e}"))),
        };
        let st = fstatfs(&file).map_err(|e| NsOpenError::Other(format!("statfs {path:?}: {e}")))?;
        let t = st.filesystem_type();
        if t != NSFS_MAGIC && t != PROC_SUPER_MAGIC {
            return Err(NsOpenError::NotNetns(format!(
                "{path:?} is not a network namespace (not an nsfs file)"
            )));
        }
        // Whether it is a *network* namespace shows when a thread enters it (`netlink`), which
        // every user does before changing anything.
        Ok(NetNs {
            file,
            path: path.to_string(),
        })
    }

    /// Opens `path` for ADD/CHECK: every failure is a CNI error naming CNI_NETNS.
    pub fn open_for_cni(path: &str) -> Result<NetNs> {
        NetNs::open(path).map_err(|e| match e {
            NsOpenError::Gone => CniError::new(
                code::UNKNOWN_CONTAINER,
                format!("CNI_NETNS: {path:?} does not exist"),
            ),
            NsOpenError::NotNetns(m) => CniError::env(format!("CNI_NETNS: {m}")),
            NsOpenError::Other(m) => CniError::new(code::IO, format!("CNI_NETNS: {m}")),
        })
    }

    /// The calling process's own network namespace.
    pub fn current() -> io::Result<NetNs> {
        Ok(NetNs {
            file: File::open("/proc/thread-self/ns/net")?,
            path: "/proc/thread-self/ns/net".into(),
        })
    }

    /// Runs `f` on a new thread that entered this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let fd = self.file.as_fd();
        std::thread::scope(|s| {
            s.spawn(move || -> io::Result<T> {
                setns(fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                Ok(f())
            })
            .join()
            .map_err(|_| io::Error::other("netns thread panicked"))?
        })
    }

    /// A netlink socket bound to this namespace.
    pub fn netlink(&self) -> Result<Netlink> {
        match self.run(Netlink::open) {
            Ok(Ok(nl)) => Ok(nl),
            Err(e) if e.raw_os_error() == Some(22) => Err(CniError::env(format!(
                "CNI_NETNS: {:?} is not a network namespace",
                self.path
            ))),
            Ok(Err(e)) | Err(e) => Err(CniError::internal(format!(
                "netlink socket in netns {:?}: {e}",
                self.path
            ))),
        }
    }

    /// Writes `1` to `arp_notify` / `ndisc_notify` of `ifname` in this netns (errors ignored, as upstream).
    pub fn set_notify_sysctls(&self, ifname: &str) {
        let _ = self.run(|| {
            for p in [
                format!("/proc/sys/net/ipv4/conf/{ifname}/arp_notify"),
                format!("/proc/sys/net/ipv6/conf/{ifname}/ndisc_notify"),
            ] {
                let _ = std::fs::write(Path::new(&p), b"1");
            }
        });
    }
}
