//! `to_status` gives upstream's `SriovNetworkNodeState.status.interfaces`, field names included.

mod common;

use common::{build, scan_clean};
use serde_json::json;
use sriov_host::{InterfaceExt, to_status, to_status_virtual};

fn status_json(
    shape: impl FnOnce(sriov_host::fixture::FixtureHost) -> sriov_host::fixture::FixtureHost,
) -> serde_json::Value {
    let (_d, fx) = build(shape);
    serde_json::to_value(to_status(&scan_clean(&fx).devices)).expect("serialize")
}

#[test]
fn igb_with_vfs_exact_json() {
    let got = status_json(|h| h.igb_82576(2));
    let vf = |i: u32, addr: &str, mac: &str| {
        json!({"name": format!("eth{}", i + 1), "mac": mac, "driver": "igbvf", "pciAddress": addr,
               "vendor": "8086", "deviceID": "10ca", "mtu": 1500, "vfID": i})
    };
    let want = json!([{
        "name": "eth0",
        "mac": "52:54:00:5a:10:01",
        "driver": "igb",
        "pciAddress": "0000:01:00.0",
        "vendor": "8086",
        "deviceID": "10c9",
        "mtu": 1500,
        "numVfs": 2,
        "linkType": "ETH",
        "linkAdminState": "down",
        "totalvfs": 7,
        "Vfs": [vf(0, "0000:01:10.0", "02:00:00:01:10:00"), vf(1, "0000:01:10.2", "02:00:00:01:10:22")],
    }]);
    assert_eq!(
        got,
        want,
        "{}",
        serde_json::to_string_pretty(&got).unwrap_or_default()
    );
}

#[test]
fn vf_id_zero_is_always_serialized_and_round_trips() {
    let got = status_json(|h| h.igb_82576(1));
    assert_eq!(got[0]["Vfs"][0]["vfID"], json!(0));
    let back: Vec<InterfaceExt> = serde_json::from_value(got.clone()).expect("deserialize");
    assert_eq!(serde_json::to_value(&back).expect("ser"), got);
}

#[test]
fn link_speed_type_and_admin_state() {
    let got = status_json(|h| h.e810_two_pfs(1).mlx_ib_pf(0).non_sriov_nic());
    let addrs: Vec<_> = got
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["pciAddress"].clone())
        .collect();
    assert_eq!(
        addrs,
        [
            json!("0000:06:00.0"),
            json!("0000:3b:00.0"),
            json!("0000:3b:00.1"),
            json!("0000:81:00.0")
        ]
    );
    let rtl = &got[0];
    assert_eq!(
        (&rtl["linkSpeed"], &rtl["linkAdminState"]),
        (&json!("1000 Mb/s"), &json!("up"))
    );
    assert!(
        rtl.get("totalvfs").is_none() && rtl.get("numVfs").is_none() && rtl.get("Vfs").is_none(),
        "{rtl}"
    );
    let e810 = &got[1];
    assert_eq!(
        (&e810["linkSpeed"], &e810["linkType"]),
        (&json!("25000 Mb/s"), &json!("ETH"))
    );
    assert_eq!((&e810["totalvfs"], &e810["numVfs"]), (&json!(256), &json!(1)));
    assert_eq!(e810["Vfs"][0]["name"], json!("ens1f0v0"));
    let ib = &got[3];
    assert_eq!(
        (&ib["linkType"], &ib["mtu"], &ib["name"]),
        (&json!("IB"), &json!(4092), &json!("ib0"))
    );
}

#[test]
fn netdev_less_pf_left_out_as_upstream_does() {
    let (_d, mut fx) = build(|h| h.igb_82576(0).non_sriov_nic());
    fx.bind_driver("0000:06:00.0", "vfio-pci").expect("bind");
    let status = to_status(&scan_clean(&fx).devices);
    let addrs: Vec<_> = status.iter().map(|i| i.pci_address.as_str()).collect();
    assert_eq!(addrs, ["0000:01:00.0"]);
}

#[test]
fn vm_and_orphan_vfs() {
    // In a VM the passed-through VFs are plain NICs on bare-metal semantics...
    let (_d, fx) = build(|h| h.vm_vfs_only());
    let devices = scan_clean(&fx).devices;
    let plain = serde_json::to_value(to_status(&devices)).expect("ser");
    assert_eq!(plain.as_array().map(Vec::len), Some(3));
    assert!(plain[1].get("Vfs").is_none());
    // ... and one-VF interfaces on virtual-platform semantics (upstream's OpenStack/AWS mode).
    let virt = serde_json::to_value(to_status_virtual(&devices)).expect("ser");
    assert_eq!(virt[1]["numVfs"], json!(1));
    assert_eq!(virt[1]["totalvfs"], json!(1));
    assert_eq!(
        virt[1]["Vfs"],
        json!([{"mac": "fa:16:3e:00:00:04", "driver": "iavf", "pciAddress": "0000:00:04.0",
                "vendor": "8086", "deviceID": "1889", "mtu": 1500, "vfID": 0}])
    );
    // Orphan VFs (physfn to an invisible PF) are always reported the virtual way.
    let got = status_json(|h| h.vfs_with_hidden_pf(1));
    assert_eq!(got[0]["pciAddress"], json!("0000:01:10.0"));
    assert_eq!(
        (&got[0]["numVfs"], &got[0]["Vfs"][0]["vfID"]),
        (&json!(1), &json!(0))
    );
}
