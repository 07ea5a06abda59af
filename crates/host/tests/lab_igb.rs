//! Issue 2 on real hardware drivers: discovery, the igb fixture and `sriovctl discover` against
//! the SR-IOV lab's emulated Intel 82576 (QEMU `-device igb`: PF on `igb`, VFs on `igbvf`,
//! `vfio-pci` behind an emulated IOMMU; docs/lab.md).
//!
//! Ignored in a normal `cargo test`: they write the real `/sys` as root. `lab/run-tests` runs them
//! in the guest (lab/tests/10-host.sh, `--ignored --test-threads=1`). Each test creates the VFs
//! it needs and sets `sriov_numvfs` back to 0 when it ends, panics included ([`Vfs`]).

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use sriov_host::fixture::{FixtureHost, describe_device};
use sriov_host::sysfs::SysfsRoot;
use sriov_host::{
    DiscoverOptions, Discovery, NetDevice, NetdevSource, PfDevice, discover, discover_with, to_status,
};

const PCI: &str = "/sys/bus/pci/devices";
/// igb creates VF netdevs asynchronously (1.4 s for 4 VFs in the lab, more on a loaded host).
const SETTLE: Duration = Duration::from_secs(20);

fn write(path: impl AsRef<Path>, value: &str) {
    let path = path.as_ref();
    fs::write(path, value).unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Last component of a symlink's target (`driver`, `iommu_group`), `None` when absent.
fn link_name(path: impl AsRef<Path>) -> Option<String> {
    let target = fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < SETTLE, "{what}: not after {SETTLE:?}");
        sleep(Duration::from_millis(100));
    }
}

/// Discovery of the real `/sys` and `/dev`; the lab's tree must give no warnings.
fn scan() -> Discovery {
    let d = discover(&SysfsRoot::default()).expect("discovery of /sys runs");
    assert!(
        d.warnings.is_empty(),
        "warnings on the real lab sysfs: {:#?}",
        d.warnings
    );
    d
}

/// The lab's igb PF (8086:10c9), found by id, not by address.
fn igb(d: &Discovery) -> &PfDevice {
    let mut found = d
        .devices
        .pfs
        .iter()
        .filter(|p| p.pci.vendor == "8086" && p.pci.device == "10c9");
    let pf = found
        .next()
        .expect("discovery reports an 8086:10c9 PF (the lab's igb)");
    assert!(found.next().is_none(), "one igb PF expected (LAB_IGB_COUNT=1)");
    pf
}

/// `sriov_numvfs` = n on the PF for the guard's lifetime; 0 again on drop.
struct Vfs {
    pf: PathBuf,
}

impl Vfs {
    /// Creates `n` VFs and waits until each has its igbvf netdev.
    fn create(pf_addr: &str, n: u32) -> Vfs {
        let pf = Path::new(PCI).join(pf_addr);
        assert_eq!(
            read(pf.join("sriov_numvfs")),
            "0",
            "{}: VFs left by an earlier test",
            pf.display()
        );
        write(pf.join("sriov_numvfs"), &n.to_string());
        let guard = Vfs { pf };
        wait_until(&format!("{n} VF netdevs of {pf_addr}"), || {
            guard.vf_netdev_count() == n as usize
        });
        guard
    }

    fn vf_netdev_count(&self) -> usize {
        (0..64)
            .map(|i| self.pf.join(format!("virtfn{i}/net")))
            .filter_map(|net| fs::read_dir(net).ok())
            .map(|entries| entries.count())
            .sum()
    }

    /// PCI address of VF `i`, from the kernel's `virtfn<i>` link.
    fn vf_addr(&self, i: u32) -> String {
        link_name(self.pf.join(format!("virtfn{i}"))).unwrap_or_else(|| panic!("no virtfn{i} link"))
    }
}

impl Drop for Vfs {
    fn drop(&mut self) {
        // runs during a panic too: no second panic, just say so
        if let Err(e) = fs::write(self.pf.join("sriov_numvfs"), "0") {
            eprintln!("cannot reset {}/sriov_numvfs: {e}", self.pf.display());
        }
    }
}

/// driver_override + unbind + drivers_probe, as the daemon and users do; "" = default driver.
fn bind(addr: &str, driver: &str) {
    let dev = Path::new(PCI).join(addr);
    if !driver.is_empty() {
        // an override does not load the module; the lab's /init has no udev to do it
        let st = Command::new("modprobe")
            .arg(driver)
            .status()
            .expect("run modprobe");
        assert!(st.success(), "modprobe {driver}: {st}");
    }
    write(dev.join("driver_override"), &format!("{driver}\n"));
    if dev.join("driver").exists() {
        write(dev.join("driver/unbind"), addr);
    }
    write("/sys/bus/pci/drivers_probe", addr);
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_pf_at_boot_has_seven_possible_vfs_and_none() {
    let d = scan();
    let pf = igb(&d);
    assert_eq!(
        (pf.total_vfs, pf.num_vfs),
        (7, 0),
        "totalvfs / numvfs of {}",
        pf.pci.address
    );
    assert!(pf.vfs.is_empty(), "VFs at boot: {:#?}", pf.vfs);
    assert_eq!(pf.pci.driver.as_deref(), Some("igb"));
    assert_eq!(pf.pci.class, "020000");
    let net = pf.pci.netdev().expect("the igb PF has a netdev");
    assert!(
        Path::new("/sys/class/net").join(&net.name).exists(),
        "netdev {} not in /sys/class/net",
        net.name
    );
    assert_eq!(net.mac, read(format!("/sys/class/net/{}/address", net.name)));
    let group = link_name(Path::new(PCI).join(pf.pci.address.as_str()).join("iommu_group"));
    assert_eq!(
        pf.pci.iommu_group.map(|g| g.to_string()),
        group,
        "IOMMU group of the PF"
    );
    // the lab's NVMe is SR-IOV capable but no network device: not reported
    assert!(
        d.devices.pfs.iter().all(|p| p.pci.class.starts_with("02")),
        "non-network PF reported"
    );
    assert!(
        d.devices.orphan_vfs.is_empty(),
        "orphan VFs: {:#?}",
        d.devices.orphan_vfs
    );
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn four_vfs_on_igbvf_with_netdevs_and_iommu_groups_then_none() {
    let pf_addr = igb(&scan()).pci.address.to_string();
    let vfs = Vfs::create(&pf_addr, 4);
    let d = scan();
    let pf = igb(&d);
    assert_eq!(pf.num_vfs, 4);
    assert_eq!(pf.vfs.len(), 4, "VFs: {:#?}", pf.vfs);
    let mut groups = Vec::new();
    for (i, vf) in pf.vfs.iter().enumerate() {
        let i = i as u32;
        let addr = vfs.vf_addr(i);
        assert_eq!(vf.vf_index, Some(i), "VF index of {addr}");
        assert_eq!(vf.pci.address.as_str(), addr, "virtfn{i}");
        assert_eq!(
            vf.pf_address.as_ref().map(|a| a.to_string()),
            Some(pf_addr.clone())
        );
        assert_eq!(
            (vf.pci.vendor.as_str(), vf.pci.device.as_str()),
            ("8086", "10ca"),
            "ids of {addr}"
        );
        assert_eq!(vf.pci.driver.as_deref(), Some("igbvf"), "driver of {addr}");
        assert_eq!(vf.pci.vfio_dev, None, "{addr} is not on vfio-pci");
        let net = vf
            .pci
            .netdev()
            .unwrap_or_else(|| panic!("{addr} has no netdev in discovery"));
        let dev =
            fs::canonicalize(format!("/sys/class/net/{}/device", net.name)).expect("netdev's device link");
        assert_eq!(
            dev,
            fs::canonicalize(Path::new(PCI).join(&addr)).expect("VF dir"),
            "netdev {}",
            net.name
        );
        let group = vf
            .pci
            .iommu_group
            .unwrap_or_else(|| panic!("{addr} has no IOMMU group"));
        assert_eq!(
            Some(group.to_string()),
            link_name(Path::new(PCI).join(&addr).join("iommu_group"))
        );
        groups.push(group);
    }
    groups.sort_unstable();
    groups.dedup();
    assert_eq!(
        groups.len(),
        4,
        "one IOMMU group per VF (root port in front of igb)"
    );

    // The same netdevs from the link dump (the default on /sys) and from sysfs files, and the
    // kernel names each VF netdev's parent: the PCI address the dump is checked against.
    let with = |netdevs| {
        let options = DiscoverOptions {
            reader_threads: 1,
            netdevs,
        };
        discover_with(&SysfsRoot::default(), &options).expect("discovery")
    };
    let netdevs_of = |d: &Discovery| -> Vec<NetDevice> {
        let pf = igb(d);
        std::iter::once(&pf.pci)
            .chain(pf.vfs.iter().map(|v| &v.pci))
            .flat_map(|p| p.netdevs.clone())
            .collect()
    };
    let from_dump = netdevs_of(&with(NetdevSource::Netlink));
    assert_eq!(from_dump.len(), 5, "{from_dump:#?}");
    assert_eq!(from_dump, netdevs_of(&with(NetdevSource::Sysfs)));
    let links = sriov_host::netlink::dump_links().expect("link dump");
    for (i, vf) in pf.vfs.iter().enumerate() {
        let name = &vf.pci.netdev().expect("VF netdev").name;
        assert_eq!(
            links.get(name).and_then(|l| l.parent_dev.clone()),
            Some(vfs.vf_addr(i as u32)),
            "IFLA_PARENT_DEV_NAME of {name}"
        );
    }

    drop(vfs);
    let d = scan();
    let pf = igb(&d);
    assert_eq!(
        (pf.num_vfs, pf.vfs.len()),
        (0, 0),
        "after sriov_numvfs = 0: {:#?}",
        pf.vfs
    );
    assert!(d.devices.orphan_vfs.is_empty());
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn vf_on_vfio_pci_reports_its_dev_vfio_node_and_comes_back() {
    let pf_addr = igb(&scan()).pci.address.to_string();
    let vfs = Vfs::create(&pf_addr, 4);
    let addr = vfs.vf_addr(3);
    bind(&addr, "vfio-pci");
    let dev = Path::new(PCI).join(&addr);
    wait_until("VF 3 on vfio-pci", || {
        link_name(dev.join("driver")).as_deref() == Some("vfio-pci")
    });

    let d = scan();
    let vf = &igb(&d).vfs[3];
    assert_eq!(vf.pci.address.as_str(), addr);
    assert_eq!(vf.pci.driver.as_deref(), Some("vfio-pci"));
    assert!(
        vf.pci.netdevs.is_empty(),
        "a vfio-pci VF has no netdev: {:?}",
        vf.pci.netdevs
    );
    let group = vf.pci.iommu_group.expect("IOMMU group of the vfio VF");
    let node = PathBuf::from(format!("/dev/vfio/{group}"));
    assert_eq!(vf.pci.vfio_dev.as_deref(), Some(node.as_path()));
    let ft = fs::metadata(&node)
        .unwrap_or_else(|e| panic!("{}: {e}", node.display()))
        .file_type();
    assert!(ft.is_char_device(), "{} is not a char device", node.display());
    for other in &igb(&d).vfs[..3] {
        assert_eq!(
            other.pci.driver.as_deref(),
            Some("igbvf"),
            "{}",
            other.pci.address
        );
    }

    bind(&addr, "");
    wait_until("VF 3 back on igbvf with a netdev", || dev.join("net").exists());
    let d = scan();
    let vf = &igb(&d).vfs[3];
    assert_eq!(vf.pci.driver.as_deref(), Some("igbvf"));
    assert_eq!(vf.pci.vfio_dev, None);
    assert_eq!(vf.pci.netdevs.len(), 1);
}

/// `describe_device` lines of a real device dir, of a fixture one, and their differences.
///
/// IOMMU group *numbers* are left out of the comparison (the link and its target's form are
/// kept): the kernel numbers groups in probe order over the whole machine, so they move with
/// every PCI device QEMU adds (`LAB_SHARE`'s second virtio-9p moves the igb PF from group 5
/// to 6); discovery reads the number, it never assumes one. VF groups are checked distinct above.
/// Netdev *names* are left out the same way: the kernel hands out `ethN` in probe order, so the
/// VFs' names move with every NIC the guest has (the lab's apiserver NIC, a virtio-net, takes
/// `eth1` when `50-pods` runs); discovery reads the name from `net/`, it never derives one.
fn tree_diff(addr: &str, real: &Path, fake: &Path) -> Option<String> {
    let lines = |p: &Path| -> Vec<String> {
        let entries = describe_device(p).unwrap_or_else(|e| panic!("describe {}: {e}", p.display()));
        entries
            .iter()
            .map(|e| normalise_netdev(&normalise_group(&e.to_string())))
            .collect()
    };
    let (k, f) = (lines(real), lines(fake));
    let only_k: Vec<_> = k.iter().filter(|l| !f.contains(l)).collect();
    let only_f: Vec<_> = f.iter().filter(|l| !k.contains(l)).collect();
    (!only_k.is_empty() || !only_f.is_empty())
        .then(|| format!("{addr}:\n  only in the kernel: {only_k:?}\n  only in the fixture: {only_f:?}"))
}

fn normalise_group(line: &str) -> String {
    match line.split_once("kernel/iommu_groups/") {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => {
            format!("{head}kernel/iommu_groups/<n>")
        }
        _ => line.to_string(),
    }
}

/// `net/eth2/mtu` → `net/<netdev>/mtu`: a device dir of these NICs holds one netdev at most.
fn normalise_netdev(line: &str) -> String {
    match line.strip_prefix("net/").and_then(|rest| rest.split_once('/')) {
        Some((_name, tail)) => format!("net/<netdev>/{tail}"),
        None => line.to_string(),
    }
}

/// Compares every address and reports all differences at once.
fn assert_same_trees(fx: &sriov_host::fixture::Fixture, addrs: &[String]) {
    let diffs: Vec<String> = addrs
        .iter()
        .filter_map(|a| tree_diff(a, &Path::new(PCI).join(a), &fx.device_path(a)))
        .collect();
    assert!(
        diffs.is_empty(),
        "fixture igb_82576 differs from the kernel:\n{}",
        diffs.join("\n")
    );
}

fn fixture_matches_kernel(num_vfs: u32) {
    let pf_addr = igb(&scan()).pci.address.to_string();
    let vfs = (num_vfs > 0).then(|| Vfs::create(&pf_addr, num_vfs));
    let dir = tempfile::tempdir_in(sriov_host::fixture::scratch_base()).expect("tempdir");
    let fx = FixtureHost::new(dir.path())
        .igb_82576(num_vfs)
        .build()
        .expect("igb fixture builds");
    let mut addrs = vec![pf_addr];
    if let Some(v) = &vfs {
        addrs.extend((0..num_vfs).map(|i| v.vf_addr(i)));
    }
    assert_same_trees(&fx, &addrs);
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_fixture_tree_matches_the_kernel_without_vfs() {
    fixture_matches_kernel(0);
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_fixture_tree_matches_the_kernel_with_four_vfs() {
    fixture_matches_kernel(4);
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn igb_fixture_root_ports_and_nvme_match_the_kernel() {
    let dir = tempfile::tempdir_in(sriov_host::fixture::scratch_base()).expect("tempdir");
    let fx = FixtureHost::new(dir.path())
        .igb_82576(0)
        .build()
        .expect("igb fixture builds");
    let addrs = ["0000:00:01.0", "0000:00:02.0", "0000:02:00.0"].map(String::from);
    assert_same_trees(&fx, &addrs);
}

/// `target/debug/sriovctl` next to this test binary (`target/debug/deps/`), or `$SRIOVCTL`.
fn sriovctl() -> PathBuf {
    if let Some(p) = std::env::var_os("SRIOVCTL") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let debug = exe.parent().and_then(Path::parent).expect("target/debug");
    let bin = debug.join("sriovctl");
    assert!(
        bin.exists(),
        "{} missing: cargo build -p sriovctl first",
        bin.display()
    );
    bin
}

fn run_sriovctl(args: &[&str]) -> String {
    let out = Command::new(sriovctl())
        .args(args)
        .output()
        .expect("run sriovctl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sriovctl {args:?}: {}\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("sriovctl prints UTF-8")
}

#[test]
#[ignore = "needs the SR-IOV lab (lab/run-tests)"]
fn sriovctl_discover_json_and_table_on_the_real_sys() {
    let pf_addr = igb(&scan()).pci.address.to_string();
    let vfs = Vfs::create(&pf_addr, 4);
    let expected = serde_json::to_value(to_status(&scan().devices)).expect("status to JSON");

    let json: serde_json::Value =
        serde_json::from_str(&run_sriovctl(&["discover", "-o", "json"])).expect("valid JSON");
    // the contract allows a bare list or {"interfaces": [...]}
    let list = json.get("interfaces").cloned().unwrap_or(json);
    assert_eq!(
        list, expected,
        "sriovctl -o json is the status shape of discovery"
    );
    let igb = list
        .as_array()
        .and_then(|l| l.iter().find(|i| i["pciAddress"] == pf_addr.as_str()))
        .expect("igb PF in sriovctl's JSON");
    assert_eq!(
        (igb["totalvfs"].as_i64(), igb["numVfs"].as_i64()),
        (Some(7), Some(4))
    );
    assert_eq!(
        (igb["driver"].as_str(), igb["deviceID"].as_str()),
        (Some("igb"), Some("10c9"))
    );
    let vf_list = igb["Vfs"].as_array().expect("Vfs list");
    let ids: Vec<_> = vf_list.iter().map(|v| v["vfID"].as_i64()).collect();
    assert_eq!(ids, [Some(0), Some(1), Some(2), Some(3)]);
    assert!(
        vf_list
            .iter()
            .all(|v| v["driver"] == "igbvf" && v["deviceID"] == "10ca"),
        "{vf_list:#?}"
    );

    let table = run_sriovctl(&["discover"]);
    let mut needles = vec![pf_addr.clone(), "igb".into(), "igbvf".into()];
    needles.extend((0..4).map(|i| vfs.vf_addr(i)));
    for needle in &needles {
        assert!(table.contains(needle.as_str()), "table lacks {needle}:\n{table}");
    }
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "table line over 80 columns: {line:?}");
    }
    assert_eq!(
        run_sriovctl(&["discover", "--sysfs-root", "/sys"]),
        table,
        "--sysfs-root /sys is the default"
    );
}
