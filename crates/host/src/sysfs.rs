//! Where sysfs is, and the few reading primitives discovery needs.
//!
//! Every read distinguishes "absent" (`Ok(None)`: the kernel does not expose it here) from a
//! real failure (`Err`), so callers can decide what deserves a warning.
//!
//! Two flavours: path-based functions (std::fs; the fixture and the rare paths use them), and
//! [`DirFd`], a directory read relative to a descriptor. Discovery reads ~10 entries of each of
//! thousands of VF directories: relative to a descriptor each entry costs a one- or two-component
//! lookup instead of a walk of the whole `<sys>/devices/pci.../<addr>/...` path.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

// rustix rather than nix (a workspace dependency) for the descriptor-relative reads, because of
// what the hot path costs (measured on the 2-vCPU build VM): nix 0.31's `readlinkat` issues an
// `fstatat` before every `readlinkat` for a size hint, and `nix::dir::Dir` goes through libc's
// `fdopendir` (a 32 KiB heap buffer per listing); rustix reads links and directory entries into
// caller-provided stack buffers, one syscall each. Both are safe wrappers (no `unsafe` here).
use rustix::fs::{AtFlags, Mode, OFlags, RawDir};

/// The roots discovery reads: sysfs (normally `/sys`) and the device-node root (normally `/dev`,
/// used for `/dev/vfio/<group>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SysfsRoot {
    sys: PathBuf,
    dev: PathBuf,
}

impl Default for SysfsRoot {
    fn default() -> Self {
        SysfsRoot {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
        }
    }
}

/// The environment variable every binary takes the sysfs root from when it is not given as
/// `--sysfs-root DIR` (the CNI plugin, which takes no flags, reads only this). Default `/sys`.
pub const SYSFS_ROOT_ENV: &str = "SRIOV_SYSFS_ROOT";

/// `statfs(2)` magic of sysfs (`SYSFS_MAGIC` in linux/magic.h).
const SYSFS_MAGIC: u64 = 0x6265_6572;

impl SysfsRoot {
    /// The roots for a `--sysfs-root DIR` / [`SYSFS_ROOT_ENV`] value: the device-node root is
    /// `/dev`, except for a tree that is not the kernel's sysfs (a fixture `<base>/sys`) with a
    /// `<base>/dev` beside it, whose device nodes are then the fixture's.
    pub fn from_arg(sys: impl Into<PathBuf>) -> Self {
        let sys = sys.into();
        let mut root = SysfsRoot::new(sys);
        if !root.is_kernel_sysfs()
            && let Some(sibling) = root.sys.parent().map(|p| p.join("dev"))
            && sibling.is_dir()
        {
            root.dev = sibling;
        }
        root
    }

    /// True when the sysfs root is a mounted sysfs (the kernel's view of real devices), whatever
    /// its path (`/sys`, or a host's `/sys` mounted at `/host/sys` in a container); false for a
    /// fixture tree on another file system. Real devices answer netlink and devlink; a fixture's
    /// netdevs exist in no network namespace, so callers read those from files instead.
    pub fn is_kernel_sysfs(&self) -> bool {
        rustix::fs::statfs(&self.sys).is_ok_and(|s| s.f_type as u64 == SYSFS_MAGIC)
    }

    /// The driver bound to PCI device `addr` (the last component of its `driver` link); `None`
    /// when unbound or absent.
    pub fn driver(&self, addr: &str) -> Option<String> {
        link_name(&self.pci_device(addr).join("driver")).ok().flatten()
    }

    /// The first (by name) netdev of PCI device `addr` that this network namespace's sysfs lists
    /// under `net/`; `None` when it has none here.
    pub fn first_netdev(&self, addr: &str) -> Option<String> {
        dir_names(&self.pci_device(addr).join("net"))
            .ok()
            .flatten()
            .and_then(|n| n.into_iter().next())
    }

    /// A sysfs root with the device-node root `/dev`.
    pub fn new(sys: impl Into<PathBuf>) -> Self {
        SysfsRoot {
            sys: sys.into(),
            dev: PathBuf::from("/dev"),
        }
    }

    /// A sysfs root with its own device-node root (fixtures: `<dir>/sys` and `<dir>/dev`).
    pub fn with_dev(sys: impl Into<PathBuf>, dev: impl Into<PathBuf>) -> Self {
        SysfsRoot {
            sys: sys.into(),
            dev: dev.into(),
        }
    }

    /// The sysfs root, e.g. `/sys`.
    pub fn sys(&self) -> &Path {
        &self.sys
    }

    /// The device-node root, e.g. `/dev`.
    pub fn dev(&self) -> &Path {
        &self.dev
    }

    /// `<sys>/bus/pci/devices`.
    pub fn pci_devices(&self) -> PathBuf {
        self.sys.join("bus/pci/devices")
    }

    /// `<sys>/bus/pci/devices/<addr>` (a link to the real directory under `<sys>/devices`).
    pub fn pci_device(&self, addr: &str) -> PathBuf {
        self.sys.join("bus/pci/devices").join(addr)
    }

    /// `<sys>/class/net/<ifname>`.
    pub fn class_net(&self, ifname: &str) -> PathBuf {
        self.sys.join("class/net").join(ifname)
    }

    /// `<dev>/vfio/<group>`.
    pub fn vfio_node(&self, group: u32) -> PathBuf {
        self.dev.join("vfio").join(group.to_string())
    }
}

/// True for the errors that mean "not there" (absent file, vanished device, dangling link).
pub(crate) fn is_absent(e: &io::Error) -> bool {
    // ENOTDIR: a path component that should be a directory is not one (or has vanished into a file).
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20)
}

/// Reads a small attribute file, trimmed of surrounding whitespace. `Ok(None)` when absent.
///
/// One `open` and one `read`: sysfs attributes are at most a page and the kernel hands over the
/// whole value in the first read (no `fstat` for a size hint and no final empty read, unlike
/// `fs::read`).
pub(crate) fn read_attr(path: &Path) -> io::Result<Option<String>> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = [0u8; 512];
    let n = loop {
        match file.read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    // A short read is the end: kernfs hands over the whole attribute at once, and a regular file
    // (fixtures) reads short only at its end. Saves the extra `read` returning 0.
    if n < buf.len() {
        return Ok(Some(String::from_utf8_lossy(&buf[..n]).trim().to_string()));
    }
    let mut big = buf.to_vec();
    file.read_to_end(&mut big)?;
    Ok(Some(String::from_utf8_lossy(&big).trim().to_string()))
}

/// The last component of a symlink's target (`driver -> ../../../../bus/pci/drivers/igb` gives
/// `igb`). `Ok(None)` when there is no such link.
pub fn link_name(path: &Path) -> io::Result<Option<String>> {
    match fs::read_link(path) {
        Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads an attribute from `fd` with one `read`: sysfs attributes are at most a page and kernfs
/// hands over the whole value in the first read; a regular file (fixtures) reads short only at its
/// end. Only a full page needs more reads. (The buffer is left uninitialised: zeroing a page per
/// attribute showed up in profiles.)
fn read_fd(fd: &OwnedFd) -> io::Result<String> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let (first, rest) = loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(r) => break r,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if !rest.is_empty() {
        return Ok(String::from_utf8_lossy(first).trim().to_string());
    }
    let mut big = first.to_vec();
    let mut more = [0u8; 4096];
    loop {
        match rustix::io::read(fd, &mut more) {
            Ok(0) => break,
            Ok(n) => big.extend_from_slice(&more[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(String::from_utf8_lossy(&big).trim().to_string())
}

/// `Ok(None)` for the errors that mean "not there", else the error.
fn absent_to_none<T>(r: rustix::io::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let e = io::Error::from(e);
            if is_absent(&e) { Ok(None) } else { Err(e) }
        }
    }
}

/// A directory of sysfs whose entries are read relative to a descriptor, so that each entry
/// costs a one- or two-component lookup instead of a walk of the whole `<sys>/devices/...` path.
///
/// Either a directory opened itself (`O_PATH`: no read permission needed, nothing allocated for
/// reading), or a subdirectory of one reached by name ([`Self::sub`]): the thousands of VF
/// directories of a PF are siblings, so they share one descriptor of their parent instead of an
/// `open` + `close` each (on the build VM an `open` + `close` costs as much as reading two
/// attributes). It keeps its path for the warnings, which name the full path of what was read.
#[derive(Clone)]
pub(crate) struct DirFd {
    fd: Arc<OwnedFd>,
    /// `""` for the directory of `fd` itself, else `"<name>/"` (or deeper) below it.
    prefix: String,
    path: PathBuf,
}

impl DirFd {
    /// Opens `path` (symlinks followed). `Ok(None)` when absent or not a directory.
    pub(crate) fn open(path: &Path) -> io::Result<Option<DirFd>> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(
            absent_to_none(rustix::fs::open(path, flags, Mode::empty()))?.map(|fd| DirFd {
                fd: Arc::new(fd),
                prefix: String::new(),
                path: path.to_path_buf(),
            }),
        )
    }

    /// The subdirectory `name`, read through this directory's descriptor: no syscall here, and
    /// an absent `name` shows up as absent entries when they are read.
    pub(crate) fn sub(&self, name: &str) -> DirFd {
        DirFd {
            fd: Arc::clone(&self.fd),
            prefix: format!("{}{name}/", self.prefix),
            path: self.path.join(name),
        }
    }

    /// The directory's path, as opened.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The full path of the entry `name`, for warnings.
    pub(crate) fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// `name` relative to the descriptor (`"."`: this directory).
    fn rel(&self, name: &str) -> String {
        match (self.prefix.is_empty(), name) {
            (true, _) => name.to_string(),
            (false, ".") => self.prefix.trim_end_matches('/').to_string(),
            (false, _) => format!("{}{name}", self.prefix),
        }
    }

    /// Like [`read_attr`]: `openat` + one `read` + `close`, trimmed. `Ok(None)` when absent.
    pub(crate) fn read_attr(&self, name: &str) -> io::Result<Option<String>> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let Some(fd) = absent_to_none(rustix::fs::openat(
            &*self.fd,
            self.rel(name),
            flags,
            Mode::empty(),
        ))?
        else {
            return Ok(None);
        };
        read_fd(&fd).map(Some)
    }

    /// [`Self::read_attr`] for an attribute that is usually absent (`acpi_index` of a VF): a
    /// failed `open` costs half again as much as a failed `stat`, so `stat` first. Any other
    /// outcome of the `stat` (present, or a real error) goes on to the `open`, which reports it.
    pub(crate) fn read_rare_attr(&self, name: &str) -> io::Result<Option<String>> {
        if self.surely_absent(name) {
            return Ok(None);
        }
        self.read_attr(name)
    }

    /// [`Self::list`] for a subdirectory that is usually absent (`infiniband`), `stat` first.
    pub(crate) fn list_rare(&self, name: &str) -> io::Result<Option<(DirFd, Vec<String>)>> {
        if self.surely_absent(name) {
            return Ok(None);
        }
        self.list(name)
    }

    /// True when a `stat` of `name` says it is not there.
    fn surely_absent(&self, name: &str) -> bool {
        rustix::fs::statat(&*self.fd, self.rel(name), AtFlags::SYMLINK_NOFOLLOW)
            .is_err_and(|e| is_absent(&io::Error::from(e)))
    }

    /// Like [`link_name`]: the last component of the link `name`'s target. `Ok(None)` when absent.
    pub(crate) fn link_name(&self, name: &str) -> io::Result<Option<String>> {
        match self.link_target(name) {
            Ok(t) => Ok(t.file_name().map(|n| n.to_string_lossy().into_owned())),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The target of the link `name`, as written (like `fs::read_link`, errors as they come).
    pub(crate) fn link_target(&self, name: &str) -> io::Result<PathBuf> {
        let rel = self.rel(name);
        let mut buf = [MaybeUninit::<u8>::uninit(); 512];
        let (target, rest) = rustix::fs::readlinkat_raw(&*self.fd, rel.as_str(), &mut buf)?;
        if !rest.is_empty() {
            return Ok(PathBuf::from(OsStr::from_bytes(target)));
        }
        // Filled the buffer: maybe truncated; rustix grows its own buffer until it fits.
        let long = rustix::fs::readlinkat(&*self.fd, rel.as_str(), Vec::new())?;
        Ok(PathBuf::from(OsStr::from_bytes(long.as_bytes())))
    }

    /// Names of the entries of the subdirectory `name` (`"."`: this one), sorted, and that
    /// subdirectory, opened. `Ok(None)` when absent or not a directory.
    pub(crate) fn list(&self, name: &str) -> io::Result<Option<(DirFd, Vec<String>)>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let Some(fd) = absent_to_none(rustix::fs::openat(
            &*self.fd,
            self.rel(name),
            flags,
            Mode::empty(),
        ))?
        else {
            return Ok(None);
        };
        let mut names = Vec::new();
        {
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut iter = RawDir::new(&fd, &mut buf);
            while let Some(entry) = iter.next() {
                let entry = entry.map_err(io::Error::from)?;
                let n = entry.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(String::from_utf8_lossy(n).into_owned());
                }
            }
        }
        names.sort();
        let path = if name == "." {
            self.path.clone()
        } else {
            self.path.join(name)
        };
        Ok(Some((
            DirFd {
                fd: Arc::new(fd),
                prefix: String::new(),
                path,
            },
            names,
        )))
    }
}

/// Resolves `..` lexically. Exact inside sysfs, whose directories under `devices/` are real
/// directories (only the links discovery follows are symlinks); leading `..` that cannot be
/// resolved are kept.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

/// The directory a link such as `bus/pci/devices/<addr>` points to, `..` resolved, so later
/// reads walk no symlink.
pub(crate) fn resolve_link(link: &Path) -> io::Result<PathBuf> {
    let target = fs::read_link(link)?;
    let base = link.parent().unwrap_or(Path::new(""));
    Ok(normalize(&base.join(target)))
}

/// Names of the entries of a directory, sorted. `Ok(None)` when the directory is absent.
pub fn dir_names(path: &Path) -> io::Result<Option<Vec<String>>> {
    let entries = match fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(Some(names))
}

/// `0x8086` → `8086`: strips `0x`, lower-cases, and checks for exactly `digits` hex digits.
pub(crate) fn parse_hex_id(raw: &str, digits: usize) -> Option<String> {
    let s = raw
        .strip_prefix("0x")
        .or_else(|| raw.strip_prefix("0X"))
        .unwrap_or(raw);
    (s.len() == digits && s.bytes().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Parses a netdev `flags` value (`0x1003`) or any integer the kernel prints in hex or decimal.
pub(crate) fn parse_flags(raw: &str) -> Option<u32> {
    match raw.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => raw.parse().ok(),
    }
}

/// Sorts `virtfn10, virtfn2, ...` style names by their numeric suffix.
pub(crate) fn numeric_suffix(name: &str, prefix: &str) -> Option<u32> {
    let n = name.strip_prefix(prefix)?;
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids() {
        assert_eq!(parse_hex_id("0x8086", 4).as_deref(), Some("8086"));
        assert_eq!(parse_hex_id("0x10CA", 4).as_deref(), Some("10ca"));
        assert_eq!(parse_hex_id("0x020000", 6).as_deref(), Some("020000"));
        assert_eq!(parse_hex_id("0x0200", 6), None);
        assert_eq!(parse_hex_id("0xzz86", 4), None);
        assert_eq!(parse_hex_id("", 4), None);
    }

    #[test]
    fn normalizes_like_the_kernels_links() {
        let p = normalize(Path::new(
            "/sys/bus/pci/devices/../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0",
        ));
        assert_eq!(p, Path::new("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"));
        assert_eq!(normalize(Path::new("fx/sys/a/../b")), Path::new("fx/sys/b"));
        assert_eq!(normalize(Path::new("../a/./b/..")), Path::new("../a"));
        assert_eq!(normalize(Path::new("/../a")), Path::new("/a"));
    }

    #[test]
    fn flags_and_suffixes() {
        assert_eq!(parse_flags("0x1003"), Some(0x1003));
        assert_eq!(parse_flags("4099"), Some(4099));
        assert_eq!(parse_flags("0xg"), None);
        assert_eq!(numeric_suffix("virtfn12", "virtfn"), Some(12));
        assert_eq!(numeric_suffix("virtfn", "virtfn"), None);
        assert_eq!(numeric_suffix("virtfnx", "virtfn"), None);
        assert_eq!(numeric_suffix("physfn", "virtfn"), None);
    }
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn kernel_sysfs_is_told_by_file_system_not_path() {
        assert!(
            SysfsRoot::new("/sys").is_kernel_sysfs(),
            "/sys is a mounted sysfs"
        );
        let tmp = tempfile::tempdir().expect("tmp");
        let fake = tmp.path().join("sys");
        fs::create_dir_all(fake.join("bus/pci/devices")).expect("tree");
        assert!(!SysfsRoot::new(&fake).is_kernel_sysfs());
        // A path that merely ends in /sys is no sysfs either; a missing one neither.
        assert!(!SysfsRoot::new(tmp.path().join("nowhere")).is_kernel_sysfs());
    }

    #[test]
    fn from_arg_takes_a_fixture_dev_beside_it() {
        let tmp = tempfile::tempdir().expect("tmp");
        let sys = tmp.path().join("sys");
        fs::create_dir_all(&sys).expect("sys");
        assert_eq!(
            SysfsRoot::from_arg(&sys).dev(),
            Path::new("/dev"),
            "no sibling dev"
        );
        fs::create_dir_all(tmp.path().join("dev")).expect("dev");
        assert_eq!(SysfsRoot::from_arg(&sys).dev(), tmp.path().join("dev"));
        assert_eq!(SysfsRoot::from_arg("/sys").dev(), Path::new("/dev"));
    }

    #[test]
    fn driver_and_first_netdev() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = SysfsRoot::new(tmp.path());
        let dev = root.pci_device("0000:01:10.0");
        fs::create_dir_all(dev.join("net/eth9")).expect("net");
        fs::create_dir_all(dev.join("net/eth3")).expect("net");
        std::os::unix::fs::symlink("../../bus/pci/drivers/igbvf", dev.join("driver")).expect("link");
        assert_eq!(root.driver("0000:01:10.0").as_deref(), Some("igbvf"));
        assert_eq!(root.first_netdev("0000:01:10.0").as_deref(), Some("eth3"));
        assert_eq!(root.driver("0000:01:10.1"), None);
        assert_eq!(root.first_netdev("0000:01:10.1"), None);
    }
}
