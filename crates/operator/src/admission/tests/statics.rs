use serde_json::{Value, json};

use super::fixtures::{NS, policy, settings};
use crate::admission::policy::{raw_schema_check, schema_check, static_check};
use crate::admission::{Settings, SupportedNics};

/// `Ok(())` when allowed without warnings, `Err` with the denial or the warnings.
fn check(spec: Value) -> Result<(), String> {
    let p = policy("p1", spec.clone());
    let raw = serde_json::json!({ "spec": spec });
    match raw_schema_check(&p, &raw)
        .and_then(|()| schema_check(&p))
        .and_then(|()| static_check(&p, &settings(), &SupportedNics::builtin()))
    {
        Ok(w) if w.is_empty() => Ok(()),
        Ok(w) => Err(format!("warnings: {w:?}")),
        Err(e) => Err(e),
    }
}

fn err(spec: Value) -> String {
    check(spec.clone()).expect_err(&format!("{spec} must be refused"))
}

#[test]
fn the_fixture_is_valid() {
    assert_eq!(check(json!({})), Ok(()));
}

#[test]
fn resource_name_rules() {
    assert_eq!(
        err(json!({"resourceName": ""})),
        "resource name must not be empty"
    );
    let long = "a".repeat(64);
    assert_eq!(
        err(json!({"resourceName": long})),
        format!("resource name \"{long}\" must be no more than 63 characters")
    );
    for bad in ["-x", "x-", "a.b", "x_", "a b"] {
        assert!(
            err(json!({"resourceName": bad}))
                .starts_with(&format!("resource name \"{bad}\" is invalid: must consist"))
        );
    }
    for good in ["intelnics", "net-device-1", "legacy_name", "A9"] {
        assert_eq!(check(json!({"resourceName": good})), Ok(()), "{good}");
    }
}

#[test]
fn empty_nic_selector() {
    assert_eq!(
        err(json!({"nicSelector": {}})),
        "at least one of these parameters (vendor, deviceID, pfNames, rootDevices or netFilter) has to be defined in nicSelector in CR p1"
    );
}

#[test]
fn net_filter_rules() {
    let nf = "openstack/NetworkID:ada9ec67-0d46-44a4-8e08-a34b3f76b3b1";
    assert_eq!(
        err(json!({"nicSelector": {"netFilter": nf, "vendor": "8086"}})),
        "nicSelector fields vendor, deviceID, pfNames, and rootDevices are not allowed when netFilter is specified"
    );
    assert_eq!(
        err(json!({"nicSelector": {"netFilter": nf}, "eSwitchMode": "legacy"})),
        "eSwitchMode is not supported when netFilter is specified"
    );
    assert_eq!(
        err(json!({"nicSelector": {"netFilter": nf}, "bridge": {"ovs": {}}})),
        "bridge configuration is not supported when netFilter is specified"
    );
    assert_eq!(
        err(json!({"nicSelector": {"netFilter": nf}, "linkType": "IB"})),
        "linkType \"IB\" is not allowed when netFilter is specified, only 'eth' or 'ETH' are supported"
    );
    assert_eq!(
        check(json!({"nicSelector": {"netFilter": nf}, "linkType": "ETH", "bridge": {}})),
        Ok(())
    );
}

#[test]
fn unsupported_nics_unless_dev_mode() {
    assert_eq!(
        err(json!({"nicSelector": {"vendor": "1234"}})),
        "vendor 1234 is not supported"
    );
    assert_eq!(
        err(json!({"nicSelector": {"vendor": "8086", "deviceID": "ffff"}})),
        "vendor/device 8086/ffff is not supported"
    );
    assert_eq!(
        err(json!({"nicSelector": {"deviceID": "ffff"}})),
        "device ffff is not supported"
    );
    let dev = Settings {
        namespace: NS.to_string(),
        dev_mode: true,
    };
    let p = policy(
        "p1",
        json!({"nicSelector": {"vendor": "1234", "deviceID": "ffff"}}),
    );
    assert_eq!(static_check(&p, &dev, &SupportedNics::builtin()), Ok(vec![]));
    assert_eq!(
        check(json!({"nicSelector": {"vendor": "8086", "deviceID": "10c9"}})),
        Ok(())
    );
}

#[test]
fn pf_names_range_syntax() {
    let cases = [
        (
            "eth1#1#2",
            "failed to parse eth1#1#2 PF name in nicSelector, probably incorrect separator character usage",
        ),
        (
            "eth1#1",
            "failed to parse eth1#1 PF name nicSelector, probably incorrect range character usage",
        ),
        (
            "eth1#1-2-3",
            "failed to parse eth1#1-2-3 PF name nicSelector, probably incorrect range character usage",
        ),
        (
            "eth1#a-2",
            "failed to parse eth1#a-2 PF name nicSelector, start range is incorrect",
        ),
        (
            "eth1#1-b",
            "failed to parse eth1#1-b PF name nicSelector, end range is incorrect",
        ),
        (
            "eth1#3-1",
            "failed to parse eth1#3-1 PF name nicSelector, end range shall not be smaller than start range",
        ),
    ];
    for (pf, msg) in cases {
        assert_eq!(err(json!({"numVfs": 4, "nicSelector": {"pfNames": [pf]}})), msg);
    }
    assert_eq!(
        check(json!({"numVfs": 4, "nicSelector": {"pfNames": ["eth1#0-3", "eth2#2-2"]}})),
        Ok(())
    );
}

#[test]
fn a_range_past_num_vfs_is_allowed_with_upstreams_text_as_warning() {
    let p = policy(
        "p1",
        json!({"numVfs": 8, "nicSelector": {"pfNames": ["eth1v#1-8"]}}),
    );
    let warnings = static_check(&p, &settings(), &SupportedNics::builtin()).expect("allowed");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with(
            "failed to parse eth1v#1-8 PF name nicSelector, end range exceeds the maximum VF index 7"
        ),
        "{warnings:?}"
    );
}

#[test]
fn device_type_and_mode_conflicts() {
    assert_eq!(
        err(json!({"deviceType": "vfio-pci", "isRdma": true})),
        "'deviceType: vfio-pci' conflicts with 'isRdma: true'; Set 'deviceType' to (string)'netdevice' Or Set 'isRdma' to (bool)'false'"
    );
    assert_eq!(
        err(json!({"linkType": "ib", "eSwitchMode": "switchdev"})),
        "'eSwitchMode: switchdev' can be used only with ethernet links"
    );
    assert_eq!(
        err(json!({"deviceType": "vfio-pci", "vdpaType": "virtio", "eSwitchMode": "switchdev"})),
        "'deviceType: vfio-pci' conflicts with 'virtio'; Set 'deviceType' to (string)'netdevice' Or Remove 'vdpaType'"
    );
    assert_eq!(
        err(json!({"vdpaType": "vhost"})),
        "vdpa requires the device to be configured in switchdev mode"
    );
    assert_eq!(
        err(json!({"bridge": {"ovs": {}}})),
        "software bridge management requires the device to be configured in switchdev mode"
    );
    assert_eq!(
        err(json!({"bridge": {"ovs": {}}, "eSwitchMode": "switchdev", "externallyManaged": true})),
        "software bridge management can't be used when the device externally managed"
    );
    assert_eq!(check(json!({"deviceType": "vfio-pci", "isRdma": false})), Ok(()));
}

#[test]
fn crd_schema_rules_name_object_and_field() {
    let prefix = "SriovNetworkNodePolicy.sriovnetwork.openshift.io \"p1\" is invalid: ";
    assert_eq!(
        err(json!({"numVfs": -1})),
        format!(
            "{prefix}spec.numVfs: Invalid value: -1: spec.numVfs in body should be greater than or equal to 0"
        )
    );
    assert_eq!(
        err(json!({"mtu": -5})),
        format!("{prefix}spec.mtu: Invalid value: -5: spec.mtu in body should be greater than or equal to 1")
    );
    assert_eq!(
        err(json!({"mtu": 0})),
        format!("{prefix}spec.mtu: Invalid value: 0: spec.mtu in body should be greater than or equal to 1")
    );
    assert_eq!(
        err(json!({"priority": 100})),
        format!(
            "{prefix}spec.priority: Invalid value: 100: spec.priority in body should be less than or equal to 99"
        )
    );
    assert_eq!(
        err(json!({"deviceType": "vfio"})),
        format!(
            "{prefix}spec.deviceType: Unsupported value: \"vfio\": supported values: \"netdevice\", \"vfio-pci\""
        )
    );
    assert!(
        err(json!({"linkType": "ethernet"}))
            .starts_with(&format!("{prefix}spec.linkType: Unsupported value"))
    );
}
