//! Broken, racing and garbage trees: discovery never panics, skips or degrades the device, and
//! says which path was wrong.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::{build, pf, scan};
use sriov_host::{DiscoverError, Discovery, SysfsRoot, Warning, WarningKind, discover};

const IGB: &str = "0000:01:00.0";

/// The only warning, which must be of `kind` and about `path`.
fn only_warning<'a>(d: &'a Discovery, kind: WarningKind, path: &Path) -> &'a Warning {
    assert_eq!(d.warnings.len(), 1, "expected one warning, got {:#?}", d.warnings);
    let w = &d.warnings[0];
    assert_eq!((w.kind, w.path.as_path()), (kind, path), "{w}");
    assert!(
        w.to_string().starts_with(&path.display().to_string()),
        "display names the path: {w}"
    );
    w
}

/// The real directory of a function: what warnings name (the listing's own warnings aside).
fn real(fx: &sriov_host::fixture::Fixture, addr: &str) -> std::path::PathBuf {
    fx.device_dir(addr).expect("device dir")
}

/// Replaces a file with a directory: unreadable even for root (EISDIR).
fn make_unreadable(path: &Path) {
    fs::remove_file(path).expect("remove file");
    fs::create_dir(path).expect("dir in its place");
}

#[test]
fn garbage_in_sriov_totalvfs() {
    let (_d, fx) = build(|h| h.igb_82576(3));
    fx.write_attr(IGB, "sriov_totalvfs", "seven\n").expect("write");
    let d = scan(&fx);
    let path = real(&fx, IGB).join("sriov_totalvfs");
    let w = only_warning(&d, WarningKind::Invalid, &path);
    assert!(
        w.message.contains("\"seven\"") && w.message.contains("not SR-IOV capable"),
        "{w}"
    );
    assert!(w.message.contains("its 3 VFs ignored"), "{w}");
    let p = pf(&d, IGB);
    assert_eq!((p.total_vfs, p.num_vfs, p.vfs.len()), (0, 0, 0));
    assert!(
        d.devices.orphan_vfs.is_empty(),
        "the ignored PF's VFs are not orphans"
    );
}

#[test]
fn garbage_in_sriov_numvfs_falls_back_to_the_links() {
    let (_d, fx) = build(|h| h.igb_82576(2));
    fx.write_attr(IGB, "sriov_numvfs", "\u{1}\u{2}").expect("write");
    let d = scan(&fx);
    only_warning(&d, WarningKind::Invalid, &real(&fx, IGB).join("sriov_numvfs"));
    let p = pf(&d, IGB);
    assert_eq!((p.total_vfs, p.num_vfs, p.vfs.len()), (7, 2, 2));
}

#[test]
fn unreadable_sriov_totalvfs() {
    let (_d, fx) = build(|h| h.igb_82576(0));
    make_unreadable(&fx.device_dir(IGB).expect("dir").join("sriov_totalvfs"));
    let d = scan(&fx);
    let w = only_warning(
        &d,
        WarningKind::Unreadable,
        &real(&fx, IGB).join("sriov_totalvfs"),
    );
    assert!(w.message.contains("cannot read"), "{w}");
    assert_eq!(pf(&d, IGB).total_vfs, 0);
}

/// Replaces the `key=` line of a function's `uevent` (where discovery reads class and ids).
fn set_uevent_line(fx: &sriov_host::fixture::Fixture, addr: &str, key: &str, value: &str) {
    let path = fx.device_dir(addr).expect("dir").join("uevent");
    let old = fs::read_to_string(&path).expect("uevent");
    assert!(old.contains(&format!("{key}=")), "{key} in {old:?}");
    let new: Vec<String> = old
        .lines()
        .map(|l| match l.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
            Some(_) => format!("{key}={value}"),
            None => l.to_string(),
        })
        .collect();
    fs::write(&path, new.join("\n") + "\n").expect("write uevent");
}

#[test]
fn unreadable_uevent_skips_the_vf_only() {
    let (_d, fx) = build(|h| h.igb_82576(3));
    make_unreadable(&fx.device_dir("0000:01:10.2").expect("dir").join("uevent"));
    let d = scan(&fx);
    only_warning(
        &d,
        WarningKind::Unreadable,
        &real(&fx, "0000:01:10.2").join("uevent"),
    );
    let idx: Vec<_> = pf(&d, IGB).vfs.iter().map(|v| v.vf_index).collect();
    assert_eq!(idx, [Some(0), Some(2)]);
}

#[test]
fn unreadable_netdev_attribute_degrades_the_netdev() {
    let (_d, fx) = build(|h| h.igb_82576(0));
    let mtu = fx.netdev_dir("eth0").expect("eth0").join("mtu");
    make_unreadable(&mtu);
    let d = scan(&fx);
    assert_eq!(d.warnings.len(), 1, "{:#?}", d.warnings);
    assert_eq!(d.warnings[0].kind, WarningKind::Unreadable);
    assert!(
        d.warnings[0].path.ends_with("0000:01:00.0/net/eth0/mtu"),
        "{}",
        d.warnings[0]
    );
    let n = pf(&d, IGB).pci.netdev().cloned().expect("netdev kept");
    assert_eq!((n.name.as_str(), n.mtu), ("eth0", 0));
}

#[test]
fn dangling_bus_link_is_skipped() {
    let (_d, fx) = build(|h| h.igb_82576(0));
    let link = fx.device_path("0000:09:00.0");
    symlink("../../../devices/pci0000:00/0000:00:09.0/0000:09:00.0", &link).expect("link");
    let d = scan(&fx);
    let w = only_warning(&d, WarningKind::Vanished, &link);
    assert!(w.message.contains("dangling"), "{w}");
    assert_eq!(d.devices.pfs.len(), 1);
}

#[test]
fn vf_vanishing_between_listing_and_reading() {
    // The VF's directory is gone but every link to it is still there (removal in progress).
    let (_d, mut fx) = build(|h| h.igb_82576(4));
    fx.vanish_device("0000:01:10.4").expect("vanish");
    let d = scan(&fx);
    only_warning(&d, WarningKind::Vanished, &real(&fx, "0000:01:10.4"));
    let idx: Vec<_> = pf(&d, IGB).vfs.iter().map(|v| v.vf_index).collect();
    assert_eq!(idx, [Some(0), Some(1), Some(3)]);
}

#[test]
fn virtfn_link_to_a_missing_vf() {
    // Not listed at all (gone before the listing), but the PF still links to it.
    let (_d, mut fx) = build(|h| h.igb_82576(4));
    fx.vanish_device("0000:01:10.6").expect("vanish");
    fs::remove_file(fx.device_path("0000:01:10.6")).expect("unlist");
    let d = scan(&fx);
    let w = only_warning(&d, WarningKind::Vanished, &real(&fx, IGB).join("virtfn3"));
    assert!(w.message.contains("skipped"), "{w}");
    assert_eq!(pf(&d, IGB).vfs.len(), 3);
}

#[test]
fn vf_whose_pf_lacks_the_virtfn_link() {
    let (_d, fx) = build(|h| h.igb_82576(2));
    fs::remove_file(fx.device_dir(IGB).expect("dir").join("virtfn1")).expect("rm virtfn1");
    let d = scan(&fx);
    only_warning(&d, WarningKind::Inconsistent, &real(&fx, "0000:01:10.2"));
    assert_eq!(pf(&d, IGB).vfs.len(), 1);
    let orphan = &d.devices.orphan_vfs[0];
    assert_eq!(
        (orphan.pci.address.as_str(), orphan.vf_index),
        ("0000:01:10.2", None)
    );
    assert_eq!(orphan.pf_address.as_ref().map(|a| a.as_str()), Some(IGB));
}

#[test]
fn vfio_node_missing() {
    let (_d, mut fx) = build(|h| h.igb_82576(1));
    fx.bind_driver("0000:01:10.0", "vfio-pci").expect("bind");
    fs::remove_file(fx.dev().join("vfio/7")).expect("rm node");
    let d = scan(&fx);
    let w = only_warning(&d, WarningKind::Inconsistent, &fx.dev().join("vfio/7"));
    assert!(w.message.contains("0000:01:10.0"), "{w}");
    let vf = &pf(&d, IGB).vfs[0];
    assert_eq!(
        (vf.pci.driver.as_deref(), vf.pci.vfio_dev.as_ref()),
        (Some("vfio-pci"), None)
    );
}

#[test]
fn garbage_ids_class_numa_and_names() {
    let (_d, fx) = build(|h| h.igb_82576(0).non_sriov_nic().sriov_disabled());
    set_uevent_line(&fx, "0000:06:00.0", "PCI_CLASS", "network");
    fx.write_attr("0000:05:00.0", "numa_node", "zero\n")
        .expect("numa");
    set_uevent_line(&fx, IGB, "PCI_ID", "80861:10C9");
    fs::create_dir(fx.sys().join("bus/pci/devices/not-an-address")).expect("junk");
    let d = scan(&fx);
    let mut got: Vec<_> = d.warnings.iter().map(|w| (w.kind, w.path.clone())).collect();
    got.sort();
    let mut want = vec![
        (
            WarningKind::Invalid,
            fx.device_path("0000:06:00.0").join("uevent"),
        ),
        (WarningKind::Invalid, real(&fx, "0000:05:00.0").join("numa_node")),
        (WarningKind::Invalid, fx.device_path(IGB).join("uevent")),
        (
            WarningKind::Invalid,
            fx.sys().join("bus/pci/devices/not-an-address"),
        ),
    ];
    want.sort();
    assert_eq!(got, want);
    let addrs: Vec<_> = d.devices.pfs.iter().map(|p| p.pci.address.as_str()).collect();
    assert_eq!(addrs, ["0000:05:00.0"]);
    assert_eq!(d.devices.pfs[0].pci.numa_node, None);
}

#[test]
fn netdev_moved_away_is_simply_absent() {
    let (_d, mut fx) = build(|h| h.igb_82576(2));
    fx.remove_netdev("eth2").expect("move to a pod");
    let d = common::scan_clean(&fx);
    assert!(pf(&d, IGB).vfs[1].pci.netdevs.is_empty());
}

#[test]
fn not_a_sysfs_root() {
    let dir = tempfile::tempdir_in(sriov_host::fixture::scratch_base()).expect("tempdir");
    let err = discover(&SysfsRoot::new(dir.path())).expect_err("no bus/pci");
    let DiscoverError::NoPciBus { path, .. } = &err;
    assert_eq!(path, &dir.path().join("bus/pci/devices"));
    assert!(err.to_string().contains("bus/pci/devices"), "{err}");
}

#[test]
fn random_damage_never_panics() {
    // Replace, in turn, every file and link of a rich tree with garbage, a directory or nothing.
    let (_d, fx) = build(|h| h.igb_82576(2).mlx_ib_pf(1).vm_vfs_only());
    let mut paths = Vec::new();
    let mut stack = vec![fx.sys().join("devices")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("read_dir").flatten() {
            let ft = e.file_type().expect("type");
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                paths.push(e.path());
            }
        }
    }
    paths.sort();
    for (i, p) in paths.iter().enumerate() {
        let saved = fs::read_link(p)
            .map(Err)
            .or_else(|_| fs::read(p).map(Ok))
            .expect("save");
        fs::remove_file(p).expect("rm");
        match i % 3 {
            0 => fs::write(p, "\u{0}garbage\u{ff}").expect("garbage"),
            1 => fs::create_dir(p).expect("dir"),
            _ => {}
        }
        let d = scan(&fx);
        if i % 3 == 1 {
            fs::remove_dir(p).expect("rm dir");
        } else if i % 3 == 0 {
            fs::remove_file(p).expect("rm garbage");
        }
        match saved {
            Ok(bytes) => fs::write(p, bytes).expect("restore"),
            Err(target) => symlink(target, p).expect("restore link"),
        }
        assert!(d.devices.pfs.len() <= 5, "{}", p.display());
        let mut all: Vec<_> = d.devices.pfs.iter().map(|p| &p.pci.address).collect();
        all.extend(
            d.devices
                .pfs
                .iter()
                .flat_map(|p| p.vfs.iter().map(|v| &v.pci.address)),
        );
        all.extend(d.devices.orphan_vfs.iter().map(|v| &v.pci.address));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            n,
            "a function reported twice after damaging {}",
            p.display()
        );
    }
    common::scan_clean(&fx);
}

#[test]
fn many_vfs_read_in_parallel_keep_scan_order() {
    // 300 VFs: above the threshold for reader threads (on a machine with 2+ CPUs).
    let (_d, mut fx) = build(|h| h.synthetic(1, 300));
    let gone = ["0000:11:00.3", "0000:11:07.1", "0000:11:1f.7"];
    for a in gone {
        fx.vanish_device(a).expect("vanish");
    }
    let d = scan(&fx);
    let paths: Vec<_> = d.warnings.iter().map(|w| w.path.clone()).collect();
    let want: Vec<_> = gone.iter().map(|a| real(&fx, a)).collect();
    assert_eq!(paths, want);
    let p = &d.devices.pfs[0];
    assert_eq!(p.vfs.len(), 297);
    let idx: Vec<u32> = p.vfs.iter().filter_map(|v| v.vf_index).collect();
    let mut sorted = idx.clone();
    sorted.sort();
    assert_eq!(idx, sorted);
    assert!(!idx.contains(&3) && !idx.contains(&57) && !idx.contains(&255));
}
