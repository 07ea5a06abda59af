//! Allocate responses, byte for byte as upstream's (plus the README's alias keys).

use crate::allocate::{AllocError, DevNodes, Spec, allocate, env_name, go_json};
use crate::config::Config;
use crate::device::Vdpa;
use crate::pool::{HostFacts, Pool, build_pools};
use crate::preferred::preferred;
use crate::testutil::{vf, with};

fn pool(json: &str, devices: Vec<crate::device::Device>, facts: HostFacts) -> Pool {
    let c = Config::parse(&format!(r#"{{"resourceList":[{json}]}}"#), "intel.com").expect("valid");
    build_pools(&c, &devices, facts).remove(0)
}

fn spec(c: &str, h: &str) -> Spec {
    Spec {
        container_path: c.into(),
        host_path: h.into(),
        permissions: "rw".into(),
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn env_names_as_upstream() {
    let p = pool(
        r#"{"resourceName":"intel_sriov_netdevice","selectors":{}}"#,
        vec![],
        HostFacts::default(),
    );
    assert_eq!(env_name(&p.resource), "PCIDEVICE_INTEL_COM_INTEL_SRIOV_NETDEVICE");
    let p = pool(
        r#"{"resourceName":"dpdk-nic_1","resourcePrefix":"my-co.example.com","selectors":{}}"#,
        vec![],
        HostFacts::default(),
    );
    assert_eq!(
        env_name(&p.resource),
        "PCIDEVICE_MY-CO_EXAMPLE_COM_DPDK-NIC_1",
        "'-' stays, as upstream"
    );
}

#[test]
fn netdevice_allocation() {
    let devs = vec![
        vf("0000:01:10.0", "eth0", "0000:01:00.0", 0),
        vf("0000:01:10.2", "eth0", "0000:01:00.0", 1),
    ];
    let p = pool(
        r#"{"resourceName":"igbvf","selectors":{"drivers":["igbvf"]}}"#,
        devs,
        HostFacts::default(),
    );
    let a = allocate(&p, &ids(&["0000:01:10.2", "0000:01:10.0"]), DevNodes::default()).expect("allocates");
    assert_eq!(a.envs.len(), 2);
    assert_eq!(
        a.envs["PCIDEVICE_INTEL_COM_IGBVF"], "0000:01:10.2,0000:01:10.0",
        "kubelet's order"
    );
    assert_eq!(
        a.envs["PCIDEVICE_INTEL_COM_IGBVF_INFO"],
        r#"{"0000:01:10.0":{"generic":{"deviceID":"0000:01:10.0"}},"0000:01:10.2":{"generic":{"deviceID":"0000:01:10.2"}}}"#
    );
    assert!(a.specs.is_empty(), "kernel-driver VFs get no device specs");
    assert_eq!(
        allocate(&p, &ids(&["0000:09:00.0"]), DevNodes::default()),
        Err(AllocError::UnknownDevice {
            resource: "intel.com/igbvf".into(),
            id: "0000:09:00.0".into()
        })
    );
}

#[test]
fn vfio_allocation_with_vhost_and_additional_info_override() {
    let devs = vec![
        with(vf("0000:3b:02.6", "ens1", "0000:3b:00.0", 6), |d| {
            d.driver = Some("vfio-pci".into());
            d.iommu_group = Some(169);
        }),
        with(vf("0000:3b:02.7", "ens1", "0000:3b:00.0", 7), |d| {
            d.driver = Some("vfio-pci".into());
            d.iommu_group = Some(170);
            d.vfio_noiommu = true;
        }),
    ];
    let p = pool(
        r#"{"resourceName":"dpdk","selectors":{"drivers":["vfio-pci"],"needVhostNet":true},
           "additionalInfo":{"*":{"token":"original","a":"<&>"},"0000:3b:02.7":{"token":"specific"}}}"#,
        devs,
        HostFacts { vhost_net: true },
    );
    let a = allocate(
        &p,
        &ids(&["0000:3b:02.6", "0000:3b:02.7"]),
        DevNodes {
            vhost_net: true,
            tun: true,
        },
    )
    .expect("ok");
    let vfio = |g: u32| {
        format!(
            r#""vfio":{{"dev-mount":"/dev/vfio/{g}","mount":"/dev/vfio/vfio","vfio-dev-mount":"/dev/vfio/{g}","vfio-mount":"/dev/vfio/vfio"}}"#
        )
    };
    let vhost = r#""vhost":{"net-mount":"/dev/vhost-net","tun-mount":"/dev/net/tun"}"#;
    let extra = |t: &str| format!(r#"{{"a":"\u003c\u0026\u003e","token":"{t}"}}"#);
    let want = format!(
        r#"{{"0000:3b:02.6":{{"extra":{e1},"extraInfo":{e1},"generic":{{"deviceID":"0000:3b:02.6"}},{v1},{vhost}}},"0000:3b:02.7":{{"extra":{e2},"extraInfo":{e2},"generic":{{"deviceID":"0000:3b:02.7"}},{v2},{vhost}}}}}"#,
        e1 = extra("original"),
        e2 = extra("specific"),
        v1 = vfio(169),
        v2 = vfio(170),
    );
    assert_eq!(a.envs["PCIDEVICE_INTEL_COM_DPDK_INFO"], want);
    assert_eq!(a.envs["PCIDEVICE_INTEL_COM_DPDK"], "0000:3b:02.6,0000:3b:02.7");
    assert_eq!(
        a.specs,
        vec![
            spec("/dev/vfio/vfio", "/dev/vfio/vfio"),
            spec("/dev/vfio/169", "/dev/vfio/169"),
            spec("/dev/vhost-net", "/dev/vhost-net"),
            spec("/dev/net/tun", "/dev/net/tun"),
            spec("/dev/vfio/170", "/dev/vfio/noiommu-170"),
        ],
        "de-duplicated by host path; no-IOMMU group node mapped"
    );
    let a = allocate(
        &p,
        &ids(&["0000:3b:02.6"]),
        DevNodes {
            vhost_net: true,
            tun: false,
        },
    )
    .expect("ok");
    assert_eq!(
        a.specs.len(),
        2,
        "vhost-net and tun are given together or not at all"
    );
}

#[test]
fn rdma_uio_vdpa_providers() {
    let rdma = with(vf("0000:03:00.2", "p0", "0000:03:00.0", 0), |d| {
        d.driver = Some("mlx5_core".into());
        d.rdma_devices = vec!["mlx5_2".into()];
        d.rdma_char_devices = ["issm2", "umad2", "uverbs2", "rdma_cm"]
            .iter()
            .map(|n| format!("/dev/infiniband/{n}"))
            .collect();
    });
    let p = pool(
        r#"{"resourceName":"rdma","selectors":{"isRdma":true}}"#,
        vec![rdma],
        HostFacts::default(),
    );
    let a = allocate(&p, &ids(&["0000:03:00.2"]), DevNodes::default()).expect("ok");
    assert_eq!(
        a.envs["PCIDEVICE_INTEL_COM_RDMA_INFO"],
        r#"{"0000:03:00.2":{"generic":{"deviceID":"0000:03:00.2"},"rdma":{"issm":"/dev/infiniband/issm2","rdma_cm":"/dev/infiniband/rdma_cm","rdma_dev":"mlx5_2","umad":"/dev/infiniband/umad2","uverbs":"/dev/infiniband/uverbs2"}}}"#
    );
    assert_eq!(a.specs.len(), 4);

    let uio = with(vf("0000:01:10.0", "eth0", "0000:01:00.0", 0), |d| {
        d.driver = Some("igb_uio".into());
        d.uio_dev = Some("/dev/uio0".into());
    });
    let p = pool(
        r#"{"resourceName":"uio","selectors":{}}"#,
        vec![uio],
        HostFacts::default(),
    );
    let a = allocate(&p, &ids(&["0000:01:10.0"]), DevNodes::default()).expect("ok");
    assert!(
        a.envs["PCIDEVICE_INTEL_COM_UIO_INFO"].contains(r#""uio":{"mount":"/dev/uio0"}"#),
        "filled on the first Allocate"
    );
    assert_eq!(a.specs, vec![spec("/dev/uio0", "/dev/uio0")]);

    let vd = with(vf("0000:65:00.2", "p0", "0000:65:00.0", 0), |d| {
        d.driver = Some("mlx5_core".into());
        d.vdpa = Some(Vdpa {
            driver: "vhost_vdpa".into(),
            name: "vdpa2".into(),
            path: Some("/dev/vhost-vdpa-2".into()),
        });
    });
    let p = pool(
        r#"{"resourceName":"vdpa","selectors":{"vdpaType":"vhost"}}"#,
        vec![vd],
        HostFacts::default(),
    );
    let a = allocate(&p, &ids(&["0000:65:00.2"]), DevNodes::default()).expect("ok");
    assert!(a.envs["PCIDEVICE_INTEL_COM_VDPA_INFO"].contains(r#""vdpa":{"mount":"/dev/vhost-vdpa-2"}"#));
    assert_eq!(a.specs, vec![spec("/dev/vhost-vdpa-2", "/dev/vhost-vdpa-2")]);
}

#[test]
fn go_json_escapes_like_go() {
    assert_eq!(go_json(&"a<b>&\u{2028}"), r#""a\u003cb\u003e\u0026\u2028""#);
    assert_eq!(go_json(&"plain"), r#""plain""#);
}

#[test]
fn preferred_allocation_policy() {
    // Two PFs on NUMA 0 (3 VFs each), one PF on NUMA 1 (4 VFs).
    let mut devs = Vec::new();
    for (pf_addr, pf, numa, n) in [
        ("0000:01:00.0", "a", 0, 3),
        ("0000:02:00.0", "b", 0, 3),
        ("0000:81:00.0", "c", 1, 4),
    ] {
        for i in 0..n {
            let bus = &pf_addr[5..7];
            devs.push(with(vf(&format!("0000:{bus}:10.{i}"), pf, pf_addr, i), |d| {
                d.numa_node = Some(numa)
            }));
        }
    }
    let p = pool(
        r#"{"resourceName":"r","selectors":{}}"#,
        devs.clone(),
        HostFacts::default(),
    );
    let all: Vec<String> = devs.iter().map(|d| d.id.clone()).collect();
    // Most devices on NUMA 0 → there; spread a, b, a, b.
    assert_eq!(
        preferred(&p, &all, &[], 4),
        ids(&["0000:01:10.0", "0000:02:10.0", "0000:01:10.1", "0000:02:10.1"])
    );
    // A required device on NUMA 1 pulls the rest to NUMA 1.
    assert_eq!(
        preferred(&p, &all, &ids(&["0000:81:10.3"]), 3),
        ids(&["0000:81:10.3", "0000:81:10.0", "0000:81:10.1"])
    );
    // Not enough on the node: the remainder comes from elsewhere, never more than asked.
    let got = preferred(&p, &all, &ids(&["0000:81:10.0"]), 6);
    assert_eq!(got.len(), 6);
    assert_eq!(got.iter().filter(|id| id.starts_with("0000:81")).count(), 4);
    assert_eq!(preferred(&p, &all[..2], &[], 5).len(), 2);
}
