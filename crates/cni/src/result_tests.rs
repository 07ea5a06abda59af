use super::*;

fn ipam_v1() -> IpamResult {
    parse_ipam(
        br#"{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"address":"fd00::5/64"}],
            "routes":[{"dst":"0.0.0.0/0"},{"dst":"fd00:1::/64","gw":"fd00::1"}],"dns":{"nameservers":["10.1.0.2"]}}"#,
    )
    .unwrap()
}

fn iface() -> Iface {
    Iface {
        name: "net1".into(),
        mac: Some("02:00:00:00:00:01".into()),
        mtu: Some(1500),
        sandbox: "/run/netns/p".into(),
    }
}

#[test]
fn renders_1_x_with_mtu() {
    let v = render("1.1.0", &iface(), &ipam_v1());
    assert_eq!(
        v,
        json!({"cniVersion":"1.1.0",
               "interfaces":[{"name":"net1","mac":"02:00:00:00:00:01","mtu":1500,"sandbox":"/run/netns/p"}],
               "ips":[{"interface":0,"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"interface":0,"address":"fd00::5/64"}],
               "routes":[{"dst":"0.0.0.0/0"},{"dst":"fd00:1::/64","gw":"fd00::1"}],
               "dns":{"nameservers":["10.1.0.2"]}})
    );
}

#[test]
fn renders_0_3_and_0_4_with_versions_no_mtu() {
    for ver in ["0.3.0", "0.3.1", "0.4.0"] {
        let v = render(ver, &iface(), &ipam_v1());
        assert_eq!(v["interfaces"][0].get("mtu"), None);
        assert_eq!(v["ips"][0]["version"], "4");
        assert_eq!(v["ips"][1]["version"], "6");
        assert_eq!(v["cniVersion"], ver);
    }
}

#[test]
fn renders_0_2_as_ip4_ip6() {
    let v = render("0.2.0", &iface(), &ipam_v1());
    assert_eq!(
        v["ip4"],
        json!({"ip":"10.1.0.5/24","gateway":"10.1.0.1","routes":[{"dst":"0.0.0.0/0"}]})
    );
    assert_eq!(v["ip6"]["ip"], "fd00::5/64");
    assert!(v.get("interfaces").is_none());
}

#[test]
fn no_ipam_and_old_results() {
    let v = render("1.0.0", &iface(), &IpamResult::default());
    assert!(v.get("ips").is_none() && v.get("routes").is_none() && v.get("dns").is_none());
    // A 0.2.0 result from IPAM converts too.
    let r = parse_ipam(br#"{"cniVersion":"0.2.0","ip4":{"ip":"10.2.0.3/16","gateway":"10.2.0.1"}}"#).unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.2.0.3/16");
    // 0.4.0 with version fields.
    let r = parse_ipam(br#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.3.0.3/24"}]}"#).unwrap();
    assert_eq!(r.ips.len(), 1);
    assert!(parse_ipam(br#"{"ips":[{"address":"nonsense"}]}"#).is_err());
}

#[test]
fn version_answer() {
    assert_eq!(
        version_json().to_string(),
        r#"{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#
    );
}
