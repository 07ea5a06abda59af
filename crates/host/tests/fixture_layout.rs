//! The fixture lays trees out the way the kernel does (links as `lab/NOTES.md` records them) and
//! changes them the way the kernel would.

mod common;

use std::fs;
use std::io;
use std::path::Path;

use common::{build, pf, scan_clean};
use sriov_host::fixture::describe_device;

fn readlink(p: impl AsRef<Path>) -> String {
    fs::read_link(p.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
        .display()
        .to_string()
}

/// Every symlink under `root` resolves.
fn assert_no_dangling_links(root: &Path) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("read_dir").flatten() {
            let ft = e.file_type().expect("type");
            if ft.is_symlink() {
                assert!(
                    fs::metadata(e.path()).is_ok(),
                    "dangling: {} -> {}",
                    e.path().display(),
                    readlink(e.path())
                );
            } else if ft.is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn igb_links_are_the_kernels() {
    let (_d, fx) = build(|h| h.igb_82576(4));
    let s = fx.sys();
    let pf_dir = s.join("devices/pci0000:00/0000:00:01.0/0000:01:00.0");
    assert_eq!(
        readlink(s.join("bus/pci/devices/0000:01:00.0")),
        "../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0"
    );
    assert_eq!(readlink(pf_dir.join("driver")), "../../../../bus/pci/drivers/igb");
    assert_eq!(
        readlink(pf_dir.join("iommu_group")),
        "../../../../kernel/iommu_groups/5"
    );
    assert_eq!(readlink(pf_dir.join("subsystem")), "../../../../bus/pci");
    for (i, vf) in ["0000:01:10.0", "0000:01:10.2", "0000:01:10.4", "0000:01:10.6"]
        .iter()
        .enumerate()
    {
        assert_eq!(readlink(pf_dir.join(format!("virtfn{i}"))), format!("../{vf}"));
        let vf_dir = s.join("devices/pci0000:00/0000:00:01.0").join(vf);
        assert_eq!(readlink(vf_dir.join("physfn")), "../0000:01:00.0");
        assert_eq!(
            readlink(vf_dir.join("driver")),
            "../../../../bus/pci/drivers/igbvf"
        );
        assert_eq!(
            readlink(vf_dir.join("iommu_group")),
            format!("../../../../kernel/iommu_groups/{}", 7 + i)
        );
        let ifname = format!("eth{}", i + 1);
        assert_eq!(
            readlink(s.join("class/net").join(&ifname).join("device")),
            format!("../../../{vf}")
        );
        assert_eq!(
            readlink(
                s.join("kernel/iommu_groups")
                    .join((7 + i).to_string())
                    .join("devices")
                    .join(vf)
            ),
            format!("../../../../devices/pci0000:00/0000:00:01.0/{vf}")
        );
    }
    assert_eq!(
        readlink(s.join("class/net/eth0")),
        "../../devices/pci0000:00/0000:00:01.0/0000:01:00.0/net/eth0"
    );
    assert_eq!(
        readlink(pf_dir.join("net/eth0/subsystem")),
        "../../../../../../class/net"
    );
    assert_eq!(
        readlink(s.join("bus/pci/drivers/igb/0000:01:00.0")),
        "../../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0"
    );
    assert_eq!(
        fs::read_to_string(pf_dir.join("sriov_vf_device")).expect("vf dev"),
        "10ca\n"
    );
    assert_eq!(
        fs::read_to_string(pf_dir.join("class")).expect("class"),
        "0x020000\n"
    );
    // Through the netdev, as the kernel allows.
    assert_eq!(
        fs::read_to_string(s.join("class/net/eth0/device/sriov_totalvfs")).expect("total"),
        "7\n"
    );
    assert_no_dangling_links(s);
}

#[test]
fn every_shape_has_no_dangling_links() {
    let (_d, fx) = build(|h| {
        h.igb_82576(7)
            .e810_two_pfs(4)
            .mlx_ib_pf(3)
            .sriov_disabled()
            .non_sriov_nic()
            .vm_vfs_only()
    });
    assert_no_dangling_links(fx.sys());
    let (_d, fx) = build(|h| h.synthetic(2, 10));
    assert_no_dangling_links(fx.sys());
}

#[test]
fn describe_igb_pf_and_vf() {
    let (_d, fx) = build(|h| h.igb_82576(1));
    let lines = |addr: &str| -> Vec<String> {
        describe_device(&fx.device_path(addr))
            .expect("describe")
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    let pf_want = [
        "class = 0x020000",
        "device = 0x10c9",
        "driver -> ../../../../bus/pci/drivers/igb",
        "driver_override",
        "iommu_group -> ../../../../kernel/iommu_groups/5",
        "net/",
        "net/eth0/",
        "net/eth0/address",
        "net/eth0/carrier",
        "net/eth0/device -> ../../../0000:01:00.0",
        "net/eth0/flags",
        "net/eth0/ifindex",
        "net/eth0/mtu",
        "net/eth0/operstate",
        "net/eth0/phys_port_name",
        "net/eth0/phys_switch_id",
        "net/eth0/speed",
        "net/eth0/subsystem -> ../../../../../../class/net",
        "net/eth0/type = 1",
        "numa_node = -1",
        "remove",
        "sriov_drivers_autoprobe",
        "sriov_numvfs = 1",
        "sriov_offset = 128",
        "sriov_stride = 2",
        "sriov_totalvfs = 7",
        "sriov_vf_device = 10ca",
        "subsystem -> ../../../../bus/pci",
        "subsystem_device = 0x1100",
        "subsystem_vendor = 0x1af4",
        // The kernel's pci_uevent: class with %04X (no leading zero), ids upper-case.
        "uevent = DRIVER=igb\nPCI_CLASS=20000\nPCI_ID=8086:10C9\nPCI_SUBSYS_ID=1AF4:1100\n\
         PCI_SLOT_NAME=0000:01:00.0\nMODALIAS=pci:v00008086d000010C9sv00001AF4sd00001100bc02sc00i00",
        "vendor = 0x8086",
        "virtfn0 -> ../0000:01:10.0",
    ];
    let mut got = lines("0000:01:00.0");
    got.sort_by_key(|a| a.replace('/', "\u{0}"));
    let mut want: Vec<String> = pf_want.iter().map(|s| s.to_string()).collect();
    want.sort_by_key(|a| a.replace('/', "\u{0}"));
    assert_eq!(got, want);
    let vf = lines("0000:01:10.0");
    for l in [
        "physfn -> ../0000:01:00.0",
        "driver -> ../../../../bus/pci/drivers/igbvf",
        "iommu_group -> ../../../../kernel/iommu_groups/7",
        "device = 0x10ca",
        "net/eth1/device -> ../../../0000:01:10.0",
        "uevent = DRIVER=igbvf\nPCI_CLASS=20000\nPCI_ID=8086:10CA\nPCI_SUBSYS_ID=1AF4:1100\n\
         PCI_SLOT_NAME=0000:01:10.0\nMODALIAS=pci:v00008086d000010CAsv00001AF4sd00001100bc02sc00i00",
    ] {
        assert!(vf.iter().any(|v| v == l), "missing {l:?} in {vf:#?}");
    }
    assert!(
        !vf.iter()
            .any(|l| l.starts_with("sriov_") || l.starts_with("virtfn")),
        "{vf:#?}"
    );
}

#[test]
fn set_num_vfs_behaves_like_the_kernel() {
    let (_d, mut fx) = build(|h| h.igb_82576(0));
    let err = fx.set_num_vfs("0000:01:00.0", 8).expect_err("more than totalvfs");
    assert_eq!(err.raw_os_error(), Some(34), "ERANGE");
    fx.set_num_vfs("0000:01:00.0", 4).expect("4");
    fx.set_num_vfs("0000:01:00.0", 4).expect("same value: no-op");
    let err = fx.set_num_vfs("0000:01:00.0", 2).expect_err("busy");
    assert_eq!(err.raw_os_error(), Some(16), "EBUSY");
    fx.set_num_vfs("0000:01:00.0", 0).expect("0");
    assert!(!fx.sys().join("class/net/eth1").exists());
    assert!(!fx.sys().join("kernel/iommu_groups/7").exists());
    fx.set_num_vfs("0000:01:00.0", 7).expect("7");
    let d = scan_clean(&fx);
    let names: Vec<_> = pf(&d, "0000:01:00.0")
        .vfs
        .iter()
        .filter_map(|v| v.pci.netdev())
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(names, ["eth1", "eth2", "eth3", "eth4", "eth5", "eth6", "eth7"]);
    assert_no_dangling_links(fx.sys());
    assert_eq!(
        fx.set_num_vfs("0000:06:00.0", 1).map_err(|e| e.kind()),
        Err(io::ErrorKind::NotFound)
    );
}

#[test]
fn bind_unbind_and_netdev_state() {
    let (_d, mut fx) = build(|h| h.igb_82576(2));
    fx.bind_driver("0000:01:10.2", "vfio-pci").expect("vfio");
    assert!(fx.dev().join("vfio/8").exists());
    assert!(
        !fx.device_dir("0000:01:10.2").expect("dir").join("net").exists(),
        "netdev gone with its glue dir"
    );
    fx.unbind_driver("0000:01:10.2").expect("unbind");
    assert!(!fx.dev().join("vfio/8").exists());
    let d = scan_clean(&fx);
    assert_eq!(pf(&d, "0000:01:00.0").vfs[1].pci.driver, None);
    fx.bind_driver("0000:01:10.2", "igbvf").expect("igbvf");

    fx.set_admin_up("eth0", true).expect("up");
    fx.set_oper_state("eth0", "up").expect("oper");
    fx.set_speed("eth0", Some(1000)).expect("speed");
    fx.set_mtu("eth2", 9000).expect("mtu");
    fx.set_mac("eth2", "02:11:22:33:44:55").expect("mac");
    let d = scan_clean(&fx);
    let p = pf(&d, "0000:01:00.0");
    let n = p.pci.netdev().expect("eth0");
    assert_eq!(
        (n.admin_up, n.oper_state.as_str(), n.speed_mbps),
        (true, "up", Some(1000))
    );
    let n = p.vfs[1].pci.netdev().expect("eth2 is back");
    assert_eq!(
        (n.name.as_str(), n.mtu, n.mac.as_str()),
        ("eth2", 9000, "02:11:22:33:44:55")
    );
    fx.set_admin_up("eth0", false).expect("down");
    assert!(!pf(&scan_clean(&fx), "0000:01:00.0").pci.netdevs[0].admin_up);

    let vf_no_iommu = fx.bind_driver("0000:00:04.0", "vfio-pci");
    assert!(vf_no_iommu.is_err(), "no such device");
}

#[test]
fn netdev_moved_away_and_back() {
    let (_d, mut fx) = build(|h| h.igb_82576(1));
    let spec = fx.remove_netdev("eth1").expect("away");
    assert_eq!(spec.name, "eth1");
    assert!(!fx.sys().join("class/net/eth1").exists());
    fx.add_netdev("0000:01:10.0", &spec).expect("back");
    let d = scan_clean(&fx);
    assert_eq!(pf(&d, "0000:01:00.0").vfs[0].pci.netdevs[0].mac, spec.mac);
}

#[test]
fn remove_device_leaves_nothing_behind() {
    let (_d, mut fx) = build(|h| h.igb_82576(3).non_sriov_nic());
    fx.remove_device("0000:01:10.2").expect("remove VF");
    assert!(
        !fx.device_dir("0000:01:00.0")
            .expect("pf")
            .join("virtfn1")
            .exists()
    );
    assert_no_dangling_links(fx.sys());
    let d = scan_clean(&fx);
    let idx: Vec<_> = pf(&d, "0000:01:00.0").vfs.iter().map(|v| v.vf_index).collect();
    assert_eq!(idx, [Some(0), Some(2)]);
    fx.remove_device("0000:01:00.0").expect("remove PF with its VFs");
    fx.remove_device("0000:06:00.0").expect("remove NIC");
    assert_no_dangling_links(fx.sys());
    assert!(scan_clean(&fx).devices.pfs.is_empty());
    assert!(
        fs::read_dir(fx.sys().join("class/net"))
            .expect("class/net")
            .next()
            .is_none()
    );
}

#[test]
fn sriov_vf_device_is_printed_like_the_kernel() {
    // NOTES.md: the lab's NVMe shows `sriov_vf_device 10` for device 0x0010 (`%x`).
    let (_d, fx) = build(|h| h.igb_82576(0));
    let nvme = fx.device_dir("0000:02:00.0").expect("nvme");
    assert_eq!(
        fs::read_to_string(nvme.join("sriov_vf_device")).expect("read"),
        "10\n"
    );
    assert_eq!(
        fs::read_to_string(nvme.join("sriov_offset")).expect("read"),
        "1\n"
    );
}
