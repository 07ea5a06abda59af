use super::*;

fn conf(extra: &str) -> Result<NetConf> {
    let s =
        format!(r#"{{"cniVersion":"1.0.0","name":"net","type":"sriov","deviceID":"0000:01:10.0"{extra}}}"#);
    NetConf::parse(s.as_bytes(), true)
}

fn err(extra: &str) -> CniError {
    conf(extra).expect_err(extra)
}

#[test]
fn full_config_parses() {
    let c = conf(
        r#","vlan":100,"vlanQoS":3,"vlanProto":"802.1Q","mac":"02:AA:bb:cc:dd:01","spoofchk":"off","trust":"on",
           "link_state":"enable","min_tx_rate":10,"max_tx_rate":100,"ipam":{"type":"host-local","subnet":"10.1.0.0/24"},
           "runtimeConfig":{"mac":"02:00:00:00:00:09"},"logLevel":"debug""#,
    )
    .unwrap();
    assert_eq!(c.device_id.as_ref().unwrap().as_str(), "0000:01:10.0");
    assert_eq!(c.request.vlan, Some((100, 3, VlanProto::Dot1Q)));
    assert_eq!(c.request.mac.unwrap().to_string(), "02:aa:bb:cc:dd:01");
    assert_eq!((c.request.spoofchk, c.request.trust), (Some(false), Some(true)));
    assert_eq!(c.request.link_state, Some(LinkState::Enable));
    assert_eq!(c.request.rate, Some((10, 100)));
    assert_eq!(c.ipam_type, "host-local");
    // runtimeConfig.mac > CNI_ARGS MAC > mac
    let args = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=p;MAC=02:00:00:00:00:08").unwrap();
    assert_eq!(c.effective_mac(args).unwrap().to_string(), "02:00:00:00:00:09");
}

#[test]
fn keys_bind_case_insensitively_like_go() {
    let c = conf(r#","VLAN":7,"vlanqos":1,"MAC":"02:00:00:00:00:01""#).unwrap();
    assert_eq!(c.request.vlan, Some((7, 1, VlanProto::Dot1Q)));
    assert!(c.request.mac.is_some());
}

#[test]
fn device_id_from_runtime_config_and_absent() {
    let s =
        br#"{"cniVersion":"1.1.0","name":"n","type":"sriov","runtimeConfig":{"deviceID":"0000:01:10.2"}}"#;
    assert_eq!(
        NetConf::parse(s, true).unwrap().device_id.unwrap().as_str(),
        "0000:01:10.2"
    );
    let s = br#"{"cniVersion":"1.1.0","name":"n","type":"sriov"}"#;
    let e = NetConf::parse(s, true).unwrap_err();
    assert!(e.code == 7 && e.msg.contains("deviceID"), "{e}");
    assert!(NetConf::parse(s, false).unwrap().device_id.is_none());
}

#[test]
fn every_bad_value_names_its_field() {
    let cases: &[(&str, &str, &str)] = &[
        (r#","vlan":4095"#, "\"vlan\"", "4095"),
        (r#","vlan":-1"#, "\"vlan\"", "-1"),
        (r#","vlanQoS":3"#, "\"vlanQoS\"", "3"),
        (r#","vlan":10,"vlanQoS":8"#, "\"vlanQoS\"", "8"),
        (r#","vlan":0,"vlanQoS":2"#, "\"vlanQoS\"", "2"),
        (r#","vlanProto":"802.1ad""#, "\"vlanProto\"", "802.1ad"),
        (r#","vlan":5,"vlanProto":"802.1x""#, "\"vlanProto\"", "802.1x"),
        (r#","vlan":0,"vlanProto":"802.1ad""#, "\"vlanProto\"", "802.1ad"),
        (r#","vlan":"100""#, "\"vlan\"", "\"100\""),
        (r#","mac":"02:00:00:00:00""#, "\"mac\"", "02:00:00:00:00"),
        (r#","mac":"zz:00:00:00:00:01""#, "\"mac\"", "zz:00"),
        (r#","mac":"01:00:5e:00:00:01""#, "\"mac\"", "multicast"),
        (r#","runtimeConfig":{"mac":"nope"}"#, "runtimeConfig.mac", "nope"),
        (r#","spoofchk":"true""#, "\"spoofchk\"", "true"),
        (r#","trust":"yes""#, "\"trust\"", "yes"),
        (r#","link_state":"up""#, "\"link_state\"", "up"),
        (
            r#","min_tx_rate":200,"max_tx_rate":100"#,
            "\"min_tx_rate\"",
            "200",
        ),
        (r#","max_tx_rate":-5"#, "\"max_tx_rate\"", "-5"),
        (r#","ipam":{"type":"../evil"}"#, "ipam.type", "../evil"),
    ];
    for (extra, field, value) in cases {
        let e = err(extra);
        assert_eq!(e.code, 7, "{extra}: {e}");
        assert!(e.msg.contains(field) && e.msg.contains(value), "{extra}: {e}");
    }
}

#[test]
fn bad_device_ids_are_rejected_before_any_io() {
    for id in ["../../x", "0000:01:10.0/../../../x", "01:10.0", "0000:01:10.9"] {
        let s = format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"sriov","deviceID":"{id}"}}"#);
        let e = NetConf::parse(s.as_bytes(), true).unwrap_err();
        assert!(
            e.code == 7 && e.msg.contains("deviceID") && e.msg.contains(id),
            "{e}"
        );
    }
}

#[test]
fn versions_names_types_and_json() {
    let e = NetConf::parse(
        br#"{"cniVersion":"2.0.0","name":"n","deviceID":"0000:01:10.0"}"#,
        true,
    )
    .unwrap_err();
    assert_eq!(e.code, 1);
    let e = NetConf::parse(
        br#"{"cniVersion":"1.0.0","name":"-n","deviceID":"0000:01:10.0"}"#,
        true,
    )
    .unwrap_err();
    assert!(e.code == 7 && e.msg.contains("name"));
    let e = NetConf::parse(
        br#"{"cniVersion":"1.0.0","name":"n","type":"macvlan","deviceID":"0000:01:10.0"}"#,
        true,
    )
    .unwrap_err();
    assert!(e.msg.contains("macvlan"));
    assert_eq!(NetConf::parse(b"{not json", true).unwrap_err().code, 6);
    assert_eq!(NetConf::parse(b"[]", true).unwrap_err().code, 6);
    // 0.2.0 results need IPs: refused up front rather than after the VF was configured.
    let e = NetConf::parse(
        br#"{"cniVersion":"0.2.0","name":"n","deviceID":"0000:01:10.0"}"#,
        true,
    )
    .unwrap_err();
    assert!(e.msg.contains("ipam"), "{e}");
    for v in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let s = format!(r#"{{"cniVersion":"{v}","name":"n","deviceID":"0000:01:10.0"}}"#);
        assert!(NetConf::parse(s.as_bytes(), true).is_ok(), "{v}");
    }
}

#[test]
fn cni_args_rules() {
    assert_eq!(parse_cni_args("").unwrap(), None);
    assert!(
        parse_cni_args("K8S_POD_NAME=x")
            .unwrap_err()
            .msg
            .contains("unknown args")
    );
    assert!(parse_cni_args("IgnoreUnknown=true;K8S_POD_NAME=x").is_ok());
    assert!(parse_cni_args("MAC").unwrap_err().msg.contains("invalid pair"));
    assert!(
        parse_cni_args("MAC=bad")
            .unwrap_err()
            .msg
            .contains("CNI_ARGS MAC")
    );
}

#[test]
fn mac_forms() {
    assert_eq!(
        "02-AA-00-00-00-01".parse::<Mac>().unwrap().to_string(),
        "02:aa:00:00:00:01"
    );
    assert!("02:aa:00:00:00:01:02".parse::<Mac>().is_err());
    assert!("0202.0000.0001".parse::<Mac>().is_err());
}

mod props {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-10i64..5000).prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
            "[0-9a-fA-F:.-]{0,20}".prop_map(Value::from),
            Just(json!({"type": "host-local"})),
            Just(json!([1, "x"])),
        ]
    }

    const KEYS: &[&str] = &[
        "cniVersion",
        "name",
        "type",
        "deviceID",
        "vlan",
        "vlanQoS",
        "vlanProto",
        "mac",
        "spoofchk",
        "trust",
        "link_state",
        "min_tx_rate",
        "max_tx_rate",
        "ipam",
        "runtimeConfig",
        "VLAN",
        "MAC",
        "logLevel",
    ];

    proptest! {
        /// Any object made of the known keys with arbitrary values: parsing never panics, and an
        /// accepted config always satisfies the rules.
        #[test]
        fn parse_never_panics_and_accepted_configs_are_valid(
            entries in proptest::collection::vec((0..KEYS.len(), value()), 0..12)
        ) {
            let mut m = serde_json::Map::new();
            m.insert("cniVersion".into(), "1.0.0".into());
            m.insert("name".into(), "n".into());
            m.insert("deviceID".into(), "0000:01:10.0".into());
            for (k, v) in entries {
                m.insert(KEYS[k].into(), v);
            }
            let bytes = serde_json::to_vec(&Value::Object(m)).unwrap();
            if let Ok(c) = NetConf::parse(&bytes, true) {
                if let Some((vlan, qos, proto)) = c.request.vlan {
                    prop_assert!(vlan <= 4094 && qos <= 7);
                    prop_assert!(vlan != 0 || (qos == 0 && proto == VlanProto::Dot1Q));
                }
                if let Some((min, max)) = c.request.rate {
                    prop_assert!(max == 0 || min <= max);
                }
                if let Some(m) = c.request.mac {
                    prop_assert!(!m.is_zero() && m.0[0] & 1 == 0);
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = NetConf::parse(&b, true);
            let _ = parse_cni_args(&String::from_utf8_lossy(&b));
            let _ = String::from_utf8_lossy(&b).parse::<crate::pci::PciAddress>();
        }
    }
}
