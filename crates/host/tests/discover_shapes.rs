//! Every fixture shape is discovered exactly.

mod common;

use common::{build, pf, pf_addrs, scan_clean, vf_summary};
use sriov_host::{LinkType, NetDevice};

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn igb_without_vfs() {
    let (_d, fx) = build(|h| h.igb_82576(0));
    let d = scan_clean(&fx);
    // The NVMe SR-IOV PF and the root ports are not network functions.
    assert_eq!(pf_addrs(&d), ["0000:01:00.0"]);
    assert!(d.devices.orphan_vfs.is_empty());
    let p = pf(&d, "0000:01:00.0");
    assert_eq!(
        (p.pci.vendor.as_str(), p.pci.device.as_str(), p.pci.class.as_str()),
        ("8086", "10c9", "020000")
    );
    assert_eq!(p.pci.driver.as_deref(), Some("igb"));
    assert_eq!(p.pci.numa_node, None);
    assert_eq!(p.pci.iommu_group, Some(5));
    assert_eq!(p.pci.vfio_dev, None);
    assert_eq!((p.total_vfs, p.num_vfs, p.vfs.len()), (7, 0, 0));
    assert!(p.sriov_capable());
    assert_eq!(p.eswitch_mode, None);
    assert_eq!(
        p.pci.netdevs,
        [NetDevice {
            name: "eth0".into(),
            mac: "52:54:00:5a:10:01".into(),
            mtu: 1500,
            speed_mbps: None,
            link_type: LinkType::Ether,
            admin_up: false,
            oper_state: "down".into(),
            phys_port_name: String::new(),
        }]
    );
}

#[test]
fn igb_with_vfs_indexes_from_virtfn_links() {
    let (_d, fx) = build(|h| h.igb_82576(4));
    let d = scan_clean(&fx);
    let p = pf(&d, "0000:01:00.0");
    assert_eq!((p.total_vfs, p.num_vfs), (7, 4));
    let want: Vec<_> = ["10.0", "10.2", "10.4", "10.6"]
        .iter()
        .enumerate()
        .map(|(i, a)| {
            (
                i as u32,
                format!("0000:01:{a}"),
                some("igbvf"),
                Some(format!("eth{}", i + 1)),
            )
        })
        .collect();
    assert_eq!(vf_summary(p), want);
    for (i, vf) in p.vfs.iter().enumerate() {
        assert_eq!((vf.pci.vendor.as_str(), vf.pci.device.as_str()), ("8086", "10ca"));
        assert_eq!(vf.pci.iommu_group, Some(7 + i as u32));
        assert_eq!(vf.pf_address.as_ref().map(|a| a.as_str()), Some("0000:01:00.0"));
        assert_eq!(vf.pci.vfio_dev, None);
    }
}

#[test]
fn igb_lifecycle_like_the_lab() {
    let (_d, mut fx) = build(|h| h.igb_82576(0));
    fx.set_num_vfs("0000:01:00.0", 4).expect("numvfs 4");
    let d = scan_clean(&fx);
    assert_eq!(pf(&d, "0000:01:00.0").vfs.len(), 4);

    fx.bind_driver("0000:01:10.6", "vfio-pci").expect("bind vfio-pci");
    let d = scan_clean(&fx);
    let vf3 = &pf(&d, "0000:01:00.0").vfs[3];
    assert_eq!(vf3.pci.driver.as_deref(), Some("vfio-pci"));
    assert!(vf3.pci.netdevs.is_empty());
    assert_eq!(vf3.pci.vfio_dev, Some(fx.dev().join("vfio/10")));

    fx.bind_driver("0000:01:10.6", "igbvf").expect("back to igbvf");
    let d = scan_clean(&fx);
    let vf3 = &pf(&d, "0000:01:00.0").vfs[3];
    assert_eq!(vf3.pci.netdev().map(|n| n.name.as_str()), Some("eth4"));
    assert_eq!(vf3.pci.vfio_dev, None);

    fx.set_num_vfs("0000:01:00.0", 0).expect("numvfs 0");
    let d = scan_clean(&fx);
    let p = pf(&d, "0000:01:00.0");
    assert_eq!((p.num_vfs, p.vfs.len()), (0, 0));
}

#[test]
fn e810_two_pfs_many_vfs_sorted_numerically() {
    let (_d, fx) = build(|h| h.e810_two_pfs(20));
    let d = scan_clean(&fx);
    assert_eq!(pf_addrs(&d), ["0000:3b:00.0", "0000:3b:00.1"]);
    for (f, bus) in [(0, "3c"), (1, "3d")] {
        let p = pf(&d, &format!("0000:3b:00.{f}"));
        assert_eq!(
            (p.pci.device.as_str(), p.pci.driver.as_deref()),
            ("1593", Some("ice"))
        );
        assert_eq!((p.total_vfs, p.num_vfs, p.vfs.len()), (256, 20, 20));
        assert_eq!(p.pci.numa_node, Some(0));
        let n = p.pci.netdev().expect("PF netdev");
        assert_eq!(
            (n.name.clone(), n.speed_mbps, n.admin_up, n.oper_state.as_str()),
            (format!("ens1f{f}"), Some(25000), true, "up")
        );
        let want: Vec<_> = (0..20u32)
            .map(|i| {
                let addr = format!("0000:{bus}:{:02x}.{}", i / 8, i % 8);
                (i, addr, some("iavf"), Some(format!("ens1f{f}v{i}")))
            })
            .collect();
        assert_eq!(vf_summary(p), want);
        assert!(
            p.vfs
                .iter()
                .all(|v| v.pci.device == "1889" && v.pci.numa_node == Some(0))
        );
    }
}

#[test]
fn mellanox_infiniband_pf() {
    let (_d, fx) = build(|h| h.mlx_ib_pf(2));
    let d = scan_clean(&fx);
    assert_eq!(pf_addrs(&d), ["0000:81:00.0"]);
    let p = pf(&d, "0000:81:00.0");
    assert_eq!(
        (p.pci.vendor.as_str(), p.pci.device.as_str(), p.pci.class.as_str()),
        ("15b3", "1017", "020700")
    );
    assert_eq!(p.pci.rdma_devices, ["mlx5_0"]);
    assert_eq!(p.pci.numa_node, Some(1));
    let n = p.pci.netdev().expect("ib0");
    assert_eq!(
        (n.name.as_str(), n.link_type, n.mtu, n.mac.len()),
        ("ib0", LinkType::Infiniband, 4092, 59)
    );
    assert_eq!((p.total_vfs, p.num_vfs), (8, 2));
    let want = vec![
        (0, "0000:81:00.2".to_string(), some("mlx5_core"), some("ib1")),
        (1, "0000:81:00.3".to_string(), some("mlx5_core"), some("ib2")),
    ];
    assert_eq!(vf_summary(p), want);
    assert_eq!(p.vfs[0].pci.rdma_devices, ["mlx5_1"]);
    assert_eq!(p.vfs[1].pci.rdma_devices, ["mlx5_2"]);
    assert!(
        p.vfs
            .iter()
            .all(|v| v.pci.netdevs[0].link_type == LinkType::Infiniband)
    );
}

#[test]
fn vm_with_vfs_only_reports_them_as_plain_nics() {
    let (_d, fx) = build(|h| h.vm_vfs_only());
    let d = scan_clean(&fx);
    assert_eq!(pf_addrs(&d), ["0000:00:03.0", "0000:00:04.0", "0000:00:05.0"]);
    assert!(d.devices.orphan_vfs.is_empty());
    let virtio = pf(&d, "0000:00:03.0");
    assert_eq!(virtio.pci.driver.as_deref(), Some("virtio-pci"));
    assert_eq!(virtio.pci.netdev().map(|n| n.name.as_str()), Some("ens3"));
    for (addr, name) in [("0000:00:04.0", "ens4"), ("0000:00:05.0", "ens5")] {
        let vf = pf(&d, addr);
        assert_eq!(
            (vf.pci.device.as_str(), vf.pci.driver.as_deref()),
            ("1889", Some("iavf"))
        );
        assert_eq!((vf.total_vfs, vf.num_vfs, vf.vfs.len()), (0, 0, 0));
        assert_eq!(vf.pci.netdev().map(|n| n.name.as_str()), Some(name));
        assert_eq!(vf.pci.iommu_group, None);
    }
}

#[test]
fn vfs_whose_pf_is_not_visible_are_orphans() {
    let (_d, fx) = build(|h| h.vfs_with_hidden_pf(3));
    let d = scan_clean(&fx);
    assert!(d.devices.pfs.is_empty());
    let got: Vec<_> = d
        .devices
        .orphan_vfs
        .iter()
        .map(|v| {
            (
                v.pci.address.to_string(),
                v.vf_index,
                v.pf_address.as_ref().map(|a| a.to_string()),
            )
        })
        .collect();
    let pf = some("0000:01:00.0");
    let want = vec![
        ("0000:01:10.0".to_string(), None, pf.clone()),
        ("0000:01:10.2".to_string(), None, pf.clone()),
        ("0000:01:10.4".to_string(), None, pf),
    ];
    assert_eq!(got, want);
    assert_eq!(
        d.devices.orphan_vfs[2].pci.netdev().map(|n| n.name.as_str()),
        Some("eth3")
    );
}

#[test]
fn sriov_disabled_and_non_sriov_nics() {
    let (_d, fx) = build(|h| h.sriov_disabled().non_sriov_nic());
    let d = scan_clean(&fx);
    assert_eq!(pf_addrs(&d), ["0000:05:00.0", "0000:06:00.0"]);
    let x710 = pf(&d, "0000:05:00.0");
    assert_eq!((x710.total_vfs, x710.num_vfs, x710.vfs.len()), (64, 0, 0));
    assert!(x710.sriov_capable());
    let rtl = pf(&d, "0000:06:00.0");
    assert_eq!(
        (rtl.pci.vendor.as_str(), rtl.pci.driver.as_deref()),
        ("10ec", Some("r8169"))
    );
    assert_eq!((rtl.total_vfs, rtl.num_vfs), (0, 0));
    assert!(!rtl.sriov_capable());
    assert_eq!(rtl.pci.netdev().and_then(|n| n.speed_mbps), Some(1000));
}

#[test]
fn shapes_compose_on_one_host() {
    let (_d, fx) = build(|h| {
        h.igb_82576(2)
            .e810_two_pfs(3)
            .mlx_ib_pf(1)
            .sriov_disabled()
            .non_sriov_nic()
            .vm_vfs_only()
    });
    let d = scan_clean(&fx);
    assert_eq!(d.devices.pfs.len(), 1 + 2 + 1 + 1 + 1 + 3);
    let vfs: usize = d.devices.pfs.iter().map(|p| p.vfs.len()).sum();
    assert_eq!(vfs, 2 + 6 + 1);
    let mut sorted = pf_addrs(&d);
    sorted.sort();
    assert_eq!(pf_addrs(&d), sorted, "PFs sorted by address");
}

#[test]
fn synthetic_host() {
    let (_d, fx) = build(|h| h.synthetic(3, 300));
    let d = scan_clean(&fx);
    assert_eq!(pf_addrs(&d), ["0000:10:00.0", "0000:14:00.0", "0000:18:00.0"]);
    for p in &d.devices.pfs {
        assert_eq!(p.vfs.len(), 300);
        assert!(
            p.vfs
                .iter()
                .enumerate()
                .all(|(i, v)| v.vf_index == Some(i as u32))
        );
    }
    assert_eq!(d.devices.pfs[1].vfs[299].pci.address.as_str(), "0000:16:05.3");
}

#[test]
fn eswitch_mode_from_mlx5_compat_sysfs() {
    use sriov_host::fixture::{NetdevSpec, PfSpec};
    let (_d, fx) = build(|h| {
        h.pf(PfSpec {
            address: "0000:82:00.0".into(),
            vendor: "15b3".into(),
            device: "101d".into(),
            driver: some("mlx5_core"),
            netdevs: vec![NetdevSpec {
                phys_port_name: "p0".into(),
                ..NetdevSpec::ether("enp130s0f0np0", "0c:42:a1:00:00:01")
            }],
            eswitch_mode: some("switchdev"),
            ..PfSpec::default()
        })
    });
    let d = scan_clean(&fx);
    let p = pf(&d, "0000:82:00.0");
    assert_eq!(p.eswitch_mode.as_deref(), Some("switchdev"));
    assert_eq!(p.pci.netdevs[0].phys_port_name, "p0");
}
