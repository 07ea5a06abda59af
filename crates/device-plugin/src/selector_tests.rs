//! Table tests: every selector, range form and the first-match rule.

use crate::config::{Config, DeviceType, Selector};
use crate::device::{Device, DeviceClass, Vdpa};
use crate::pool::{HostFacts, assign, build_pools, candidate};
use crate::selector::evaluate;
use crate::testutil::{pf, vf, with};

fn sel(json: &str) -> Selector {
    let text = format!(r#"{{"resourceList":[{{"resourceName":"r","selectors":{json}}}]}}"#);
    Config::parse(&text, "intel.com")
        .expect("valid selector")
        .resources
        .remove(0)
        .selectors
        .remove(0)
}

fn check(t: DeviceType, json: &str, d: &Device) -> Result<(), String> {
    evaluate(t, &sel(json), d).map_err(|r| r.to_string())
}

#[test]
fn every_net_selector() {
    let d = with(vf("0000:01:10.4", "eth0", "0000:01:00.0", 2), |d| {
        d.acpi_index = Some("3\n".into());
        d.ddp_profile = Some("ICE COMMS Package".into());
        d.pkey = Some("0x8001".into());
    });
    let n = DeviceType::NetDevice;
    let table: &[(&str, Result<(), &str>)] = &[
        ("{}", Ok(())),
        (r#"{"vendors":["8086"]}"#, Ok(())),
        (r#"{"vendors":["15b3"]}"#, Err("vendors: 8086 not in [15b3]")),
        (r#"{"vendors":["0x8086"]}"#, Err("vendors: 8086 not in [0x8086]")),
        (r#"{"devices":["10ca","154c"]}"#, Ok(())),
        (r#"{"devices":["10CA"]}"#, Err("devices: 10ca not in [10CA]")),
        (
            r#"{"drivers":["vfio-pci"]}"#,
            Err("drivers: igbvf not in [vfio-pci]"),
        ),
        (r#"{"drivers":["igbvf"]}"#, Ok(())),
        (r#"{"pciAddresses":["0000:01:10.4"]}"#, Ok(())),
        (
            r#"{"pciAddresses":["01:10.4"]}"#,
            Err("pciAddresses: 0000:01:10.4 not in [01:10.4]"),
        ),
        (r#"{"acpiIndexes":["3"]}"#, Ok(())),
        (r#"{"acpiIndexes":["4"]}"#, Err("acpiIndexes: 3 not in [4]")),
        (r#"{"pfNames":["eth0"]}"#, Ok(())),
        (r#"{"pfNames":["ETH0#2"]}"#, Ok(())),
        (r#"{"pfNames":["eth0#0,2-7,9"]}"#, Ok(())),
        (
            r#"{"pfNames":["eth0#0-1,3"]}"#,
            Err("pfNames: eth0 function 2 not in \"eth0#0-1,3\""),
        ),
        (
            r#"{"pfNames":["eth0#0-1","eth0#2"]}"#,
            Err("pfNames: eth0 function 2 not in \"eth0#0-1\" (only the first entry"),
        ),
        (r#"{"pfNames":["eth1"]}"#, Err("pfNames: eth0 not in [eth1]")),
        (r#"{"rootDevices":["0000:01:00.0"]}"#, Ok(())),
        (r#"{"rootDevices":["0000:01:00.0#2-3"]}"#, Ok(())),
        (
            r#"{"rootDevices":["0000:01:00.0#3"]}"#,
            Err("rootDevices: 0000:01:00.0 function 2 not in"),
        ),
        (
            r#"{"rootDevices":["0000:02:00.0"]}"#,
            Err("rootDevices: 0000:01:00.0 not in [0000:02:00.0]"),
        ),
        (r#"{"linkTypes":["ether"]}"#, Ok(())),
        (
            r#"{"linkTypes":["infiniband"]}"#,
            Err("linkTypes: ether not in [infiniband]"),
        ),
        (r#"{"ddpProfiles":["ICE COMMS Package"]}"#, Ok(())),
        (
            r#"{"ddpProfiles":["GTP"]}"#,
            Err("ddpProfiles: ICE COMMS Package not in [GTP]"),
        ),
        (r#"{"pKeys":["0x8001"]}"#, Ok(())),
        (r#"{"pKeys":["0x1"]}"#, Err("pKeys: 0x8001 not in [0x1]")),
        (r#"{"isRdma":true}"#, Err("isRdma: device has no RDMA resources")),
        (r#"{"isRdma":false}"#, Ok(())),
        (r#"{"needVhostNet":true}"#, Ok(())),
        (
            r#"{"vdpaType":"vhost"}"#,
            Err("vdpaType: device has no vDPA device, want vhost"),
        ),
        (r#"{"auxTypes":["sf"]}"#, Ok(())),
        // AND across fields: the first failing one (in upstream's order) is reported.
        (
            r#"{"linkTypes":["infiniband"],"vendors":["15b3"]}"#,
            Err("vendors: 8086 not in [15b3]"),
        ),
        (
            r#"{"vendors":["8086"],"drivers":["vfio-pci"],"pfNames":["x"]}"#,
            Err("drivers:"),
        ),
    ];
    for (json, want) in table {
        let got = check(n, json, &d);
        match (want, &got) {
            (Ok(()), Ok(())) => {}
            (Err(w), Err(g)) if g.contains(w) => {}
            _ => panic!("{json}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn selectors_needing_device_facts() {
    let n = DeviceType::NetDevice;
    let plain = vf("0000:01:10.0", "eth0", "0000:01:00.0", 0);
    assert!(check(n, r#"{"ddpProfiles":["x"]}"#, &plain).is_err_and(|e| e.contains("device has none")));
    assert!(check(n, r#"{"pKeys":["0x1"]}"#, &plain).is_err_and(|e| e.contains("device has none")));
    let rdma = with(plain.clone(), |d| d.rdma_devices = vec!["mlx5_2".into()]);
    assert_eq!(check(n, r#"{"isRdma":true}"#, &rdma), Ok(()));
    let vhost = with(plain.clone(), |d| {
        d.vdpa = Some(Vdpa {
            driver: "vhost_vdpa".into(),
            name: "vdpa0".into(),
            path: None,
        })
    });
    assert_eq!(check(n, r#"{"vdpaType":"vhost"}"#, &vhost), Ok(()));
    assert!(
        check(n, r#"{"vdpaType":"virtio"}"#, &vhost)
            .is_err_and(|e| e.contains("bound to vhost_vdpa, want virtio_vdpa"))
    );
    // A function without a PF (a PF itself, a VF passed into a VM) never matches pfNames/rootDevices.
    let vm_vf = with(plain.clone(), |d| {
        d.pf_name = None;
        d.pf_address = None;
        d.index = None;
    });
    assert!(
        check(n, r#"{"pfNames":["eth0"]}"#, &vm_vf).is_err_and(|e| e.contains("not a VF/SF of a visible PF"))
    );
    assert!(check(n, r#"{"rootDevices":["0000:01:00.0"]}"#, &vm_vf).is_err());
    // Legacy netdevice: kernel drivers only.
    let c = Config::parse(r#"{"resourceList":[{"resourceName":"l","deviceType":"netdevice","rootDevices":["0000:01:00.0"],"sriovMode":true}]}"#, "intel.com")
        .expect("legacy");
    let s = &c.resources[0].selectors[0];
    assert_eq!(evaluate(n, s, &plain), Ok(()));
    let vfio = with(plain, |d| d.driver = Some("vfio-pci".into()));
    assert!(evaluate(n, s, &vfio).is_err_and(|r| r.field == "deviceType"));
}

#[test]
fn accelerator_and_aux_use_their_own_fields() {
    let accel = Device {
        id: "0000:af:00.1".into(),
        class: Some(DeviceClass::Accelerator),
        pci_address: "0000:af:00.1".into(),
        vendor: "8086".into(),
        device: "0d90".into(),
        driver: Some("vfio-pci".into()),
        ..Device::default()
    };
    let a = DeviceType::Accelerator;
    assert_eq!(
        check(
            a,
            r#"{"vendors":["8086"],"devices":["0d90"],"pfNames":["nope"],"acpiIndexes":["9"]}"#,
            &accel
        ),
        Ok(())
    );
    assert!(check(a, r#"{"pciAddresses":["0000:af:00.0"]}"#, &accel).is_err());

    let sf = Device {
        id: "mlx5_core.sf.4".into(),
        class: Some(DeviceClass::Aux),
        pci_address: "0000:03:00.0".into(),
        vendor: "15b3".into(),
        device: "a2d6".into(),
        driver: Some("mlx5_core".into()),
        pf_name: Some("p0".into()),
        pf_address: Some("0000:03:00.0".into()),
        index: Some(4),
        aux_type: Some("sf".into()),
        link_type: Some("ether".into()),
        ..Device::default()
    };
    let x = DeviceType::AuxNetDevice;
    assert_eq!(
        check(x, r#"{"auxTypes":["sf"],"pfNames":["p0#1-5"]}"#, &sf),
        Ok(())
    );
    assert!(
        check(x, r#"{"auxTypes":["sf"],"pfNames":["p0#5-9"]}"#, &sf).is_err_and(|e| e.contains("function 4"))
    );
    // pciAddresses is not an aux selector (ignored, as upstream).
    assert_eq!(
        check(x, r#"{"auxTypes":["sf"],"pciAddresses":["nope"]}"#, &sf),
        Ok(())
    );
}

#[test]
fn candidates_per_device_type() {
    let n = DeviceType::NetDevice;
    assert!(
        candidate(n, &pf("0000:01:00.0", "eth0", true)).is_err_and(|r| r.reason.contains("PF that has VFs"))
    );
    assert_eq!(candidate(n, &pf("0000:02:00.0", "eth9", false)), Ok(()));
    let unbound = with(vf("0000:01:10.0", "eth0", "0000:01:00.0", 0), |d| d.driver = None);
    assert!(candidate(n, &unbound).is_err_and(|r| r.field == "driver"));
    assert!(
        candidate(DeviceType::Accelerator, &unbound).is_err_and(|r| r.reason.contains("network function"))
    );
}

#[test]
fn first_match_wins_across_resources_and_selectors() {
    let devices = vec![
        pf("0000:01:00.0", "eth0", true),
        vf("0000:01:10.0", "eth0", "0000:01:00.0", 0),
        vf("0000:01:10.2", "eth0", "0000:01:00.0", 1),
        with(vf("0000:01:10.4", "eth0", "0000:01:00.0", 2), |d| {
            d.driver = Some("vfio-pci".into())
        }),
        pf("0000:02:00.0", "eth9", false),
    ];
    let c = Config::parse(
        r#"{"resourceList":[
          {"resourceName":"dpdk","selectors":[{"drivers":["vfio-pci"]}]},
          {"resourceName":"first2","selectors":[{"pfNames":["eth0#0"]},{"pfNames":["eth0#0-1"],"isRdma":false}]},
          {"resourceName":"all","selectors":{}},
          {"resourceName":"never","selectors":{}}]}"#,
        "intel.com",
    )
    .expect("valid");
    assert_eq!(
        assign(&c, &devices),
        vec![None, Some((1, 0)), Some((1, 1)), Some((0, 0)), Some((2, 0))]
    );
    let pools = build_pools(&c, &devices, HostFacts::default());
    let ids = |i: usize| {
        pools[i]
            .devices
            .iter()
            .map(|d| d.device.id.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(0), ["0000:01:10.4"]);
    assert_eq!(ids(1), ["0000:01:10.0", "0000:01:10.2"]);
    assert_eq!(
        ids(2),
        ["0000:02:00.0"],
        "the PF without VFs is a candidate, the PF with VFs is not"
    );
    assert!(ids(3).is_empty());
}

#[test]
fn providers_follow_the_selector_that_took_the_device() {
    let devices = vec![
        with(vf("0000:01:10.0", "eth0", "0000:01:00.0", 0), |d| {
            d.rdma_devices = vec!["mlx5_0".into()]
        }),
        with(vf("0000:01:10.2", "eth0", "0000:01:00.0", 1), |d| {
            d.rdma_devices = vec!["mlx5_1".into()]
        }),
    ];
    let c = Config::parse(
        r#"{"resourceList":[{"resourceName":"r","selectors":[{"pfNames":["eth0#0"],"isRdma":true,"needVhostNet":true},{}]}]}"#,
        "intel.com",
    )
    .expect("valid");
    let p = &build_pools(&c, &devices, HostFacts { vhost_net: true })[0];
    assert_eq!((p.devices[0].rdma, p.devices[0].vhost), (true, true));
    assert_eq!((p.devices[1].rdma, p.devices[1].vhost), (false, false));
    let p = &build_pools(&c, &devices, HostFacts { vhost_net: false })[0];
    assert!(
        !p.devices[0].vhost,
        "no /dev/vhost-net at discovery: no vhost provider"
    );
}
