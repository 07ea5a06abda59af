use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, DEFAULT_PREFIX)
}

fn example(name: &str) -> String {
    let path = format!("{}/../../../shared/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .or_else(|_| std::fs::read_to_string(format!("/work/shared/examples/{name}")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_shared_example_is_accepted() {
    let all = parse(&example("dp-config-all-types.json")).expect("all-types");
    let names: Vec<_> = all.resources.iter().map(|r| r.full_name()).collect();
    assert_eq!(
        names,
        [
            "intel.com/intel_sriov_netdevice",
            "intel.com/intel_sriov_dpdk",
            "mellanox.com/mlnx_sriov_rdma",
            "intel.com/infiniband_rdma_netdevs",
            "intel.com/ct6dx_vdpa_vhost",
            "intel.com/intel_fpga",
            "nvidia.com/bf2_sf",
            "intel.com/intel_sriov_netdevice_additional_env",
            "broadcom.com/brcm_sriov_bnxt",
            "intel.com/old_selectors_syntax_example",
        ]
    );
    let dpdk = &all.resources[1];
    assert_eq!(dpdk.selectors[0].drivers, ["vfio-pci"]);
    assert!(dpdk.selectors[0].need_vhost_net);
    assert_eq!(
        dpdk.selectors[0]
            .pf_names
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["enp0s0f0", "enp2s2f1"]
    );
    assert!(all.resources[2].selectors[0].is_rdma);
    assert_eq!(all.resources[4].selectors[0].vdpa_type, Some(VdpaType::Vhost));
    assert_eq!(all.resources[5].device_type, DeviceType::Accelerator);
    let sf = &all.resources[6];
    assert_eq!(
        (sf.device_type, sf.selectors[0].aux_types.as_slice()),
        (DeviceType::AuxNetDevice, &["sf".to_string()][..])
    );
    assert_eq!(sf.selectors[0].pf_names[0].ranges, Some(vec![(1, 5)]));
    let extra = all.resources[7].additional_info.as_ref().expect("additionalInfo");
    assert_eq!(extra["*"]["token"], "3e49019f-412f-4f02-824e-4cd195944205");
    assert_eq!(all.resources[9].selectors.len(), 1, "single-object selectors");

    let vm = parse(&example("dp-config-vm-worker.json")).expect("vm-worker");
    assert_eq!(vm.resources.len(), 2);
    assert_eq!(vm.resources[1].selectors[0].pf_names[0].name, "ens8");

    let legacy = parse(&example("dp-config-legacy.json")).expect("legacy");
    let r = &legacy.resources[0];
    assert!(r.legacy);
    assert_eq!(r.device_type, DeviceType::NetDevice);
    assert_eq!(r.selectors[0].drivers, ["vfio-pci"]);
    assert_eq!(r.selectors[0].root_devices[0].name, "0000:02:00.0");
    assert!(legacy.warnings.iter().any(|w| w.contains("legacy form")));
}

#[test]
fn go_json_key_matching_and_nulls() {
    // What the sriov-network-operator writes: capitalised keys, a stray SelectorObj.
    let c = parse(
        r#"{"resourceList":[{"resourceName":"mlx","ResourcePrefix":"nvidia.com","selectors":
            {"Vendors":["15b3"],"IsRdma":true,"NeedVhostNet":true,"pfNames":null},"SelectorObj":null,"excludeTopology":true}]}"#,
    )
    .expect("accepted");
    let r = &c.resources[0];
    assert_eq!(r.full_name(), "nvidia.com/mlx");
    assert!(r.exclude_topology && r.selectors[0].is_rdma && r.selectors[0].need_vhost_net);
    assert_eq!(r.selectors[0].vendors, ["15b3"]);
    assert!(r.selectors[0].pf_names.is_empty());
    assert_eq!(r.additional_info, None);
    assert_eq!(r.socket_name(), "nvidia.com_mlx.sock");
}

#[test]
fn defaults_and_prefix_override() {
    let c = Config::parse(
        r#"{"resourceList":[{"resourceName":"a-b_C9","selectors":[{}]}]}"#,
        "example.org",
    )
    .expect("ok");
    let r = &c.resources[0];
    assert_eq!(
        (r.full_name().as_str(), r.device_type, r.exclude_topology),
        ("example.org/a-b_C9", DeviceType::NetDevice, false)
    );
    assert_eq!(
        r.selectors,
        vec![Selector::default()],
        "{{}} is a valid match-all selector"
    );
    // The same name under two prefixes is fine.
    parse(r#"{"resourceList":[{"resourceName":"x","selectors":{}},{"resourceName":"x","resourcePrefix":"b.io","selectors":{}}]}"#)
        .expect("different prefixes");
}

#[test]
fn legacy_forms() {
    let c = parse(
        r#"{"resourceList":[
        {"resourceName":"a","rootDevices":["0000:02:00.0"],"sriovMode":true,"deviceType":"netdevice"},
        {"resourceName":"b","rootDevices":["0000:02:00.1"],"sriovMode":false,"deviceType":"uio"},
        {"resourceName":"c","rootDevices":["0000:02:00.2"]},
        {"resourceName":"d","deviceType":"vfio","selectors":[{"vendors":["8086"]},{"drivers":["igb_uio"]}]}]}"#,
    )
    .expect("legacy accepted");
    let [a, b, c, d] = &c.resources[..] else {
        panic!("4 resources")
    };
    assert!(a.selectors[0].kernel_driver_only && a.selectors[0].root_devices[0].name == "0000:02:00.0");
    assert_eq!(b.selectors[0].pci_addresses, ["0000:02:00.1"]);
    assert_eq!(b.selectors[0].drivers, ["igb_uio", "uio_pci_generic", "uio"]);
    assert!(
        c.legacy && c.selectors[0].kernel_driver_only && c.selectors[0].pci_addresses == ["0000:02:00.2"]
    );
    assert_eq!(d.selectors[0].drivers, ["vfio-pci"]);
    assert_eq!(d.selectors[1].drivers, ["igb_uio"], "explicit drivers win");
}

#[test]
fn every_config_error_names_resource_and_field() {
    let table: &[(&str, &str)] = &[
        ("not json", "config is not valid JSON"),
        ("[]", "config: (top level): expected an object"),
        (r#"{"resourceList":{}}"#, "config: resourceList: expected a list"),
        (r#"{"resourceList":[]}"#, "resourceList is empty"),
        (r#"{}"#, "resourceList is empty"),
        (
            r#"{"resourceList":[7]}"#,
            "resource resourceList[0]: (entry): expected an object",
        ),
        (
            r#"{"resourceList":[{"selectors":{}}]}"#,
            "resource resourceList[0]: resourceName: missing or empty",
        ),
        (
            r#"{"resourceList":[{"resourceName":7,"selectors":{}}]}"#,
            "resource resourceList[0]: resourceName: expected a string",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a/b","selectors":{}}]}"#,
            r#"resource "a/b": resourceName: "a/b" contains invalid character '/'"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a.b","selectors":{}}]}"#,
            "invalid character '.'",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","resourcePrefix":"Intel.com","selectors":{}}]}"#,
            r#"resource "a": resourcePrefix: "Intel.com" is not a DNS subdomain"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","deviceType":"gpu","selectors":{}}]}"#,
            r#"resource "a": deviceType: unsupported deviceType "gpu""#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","deviceType":"NetDevice","selectors":{}}]}"#,
            "unsupported deviceType \"NetDevice\"",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a"}]}"#,
            r#"resource "a": selectors: missing"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":[]}]}"#,
            r#"resource "a": selectors: empty list"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":"x"}]}"#,
            "selectors: expected a selector object or a list",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":[{},3]}]}"#,
            "selectors[1]: expected a selector object",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{"vendors":"8086"}}]}"#,
            r#"resource "a": selectors.vendors: expected a list of strings, got "8086""#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":[{"drivers":[1]}]}]}"#,
            "selectors[0].drivers: expected a list of strings",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":[{"pfNames":["pf#7-2"]}]}]}"#,
            r#"resource "a": selectors[0].pfNames: "pf#7-2": range 7-2 ends before it starts"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":[{"rootDevices":["0000:01:00.0#x"]}]}]}"#,
            r#"selectors[0].rootDevices: "0000:01:00.0#x": "x" is not a decimal"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":[{"isRdma":"yes"}]}]}"#,
            "selectors[0].isRdma: expected true or false",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":[{"isRdma":true,"vdpaType":"vhost"}]}]}"#,
            r#"resource "a": selectors[0].isRdma/vdpaType: isRdma and vdpaType are mutually exclusive"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":[{"vdpaType":"vdpa"}]}]}"#,
            r#"selectors[0].vdpaType: "vdpa" is not "vhost" or "virtio""#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","deviceType":"auxNetDevice","selectors":[{}]}]}"#,
            r#"resource "a": selectors[0].auxTypes: missing"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","deviceType":"auxNetDevice","selectors":{"auxTypes":["sf","eth"]}}]}"#,
            r#"selectors.auxTypes: "eth": only "sf" is supported"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{},"excludeTopology":1}]}"#,
            "excludeTopology: expected true or false",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{},"additionalInfo":[]}]}"#,
            "additionalInfo: expected an object of objects",
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{},"additionalInfo":{"*":{"k":1}}}]}"#,
            r#"resource "a": additionalInfo["*"]["k"]: expected a string, got 1"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","selectors":{}},{"resourceName":"a","resourcePrefix":"intel.com","selectors":{}}]}"#,
            r#"resource "a": resourceName: "intel.com/a" already exists"#,
        ),
        (
            r#"{"resourceList":[{"resourceName":"a","rootDevices":["p#9-1"],"sriovMode":true}]}"#,
            r#"resource "a": rootDevices: "p#9-1""#,
        ),
    ];
    for (text, want) in table {
        let err = parse(text).expect_err(text).to_string();
        assert!(err.contains(want), "{text}\n  got:  {err}\n  want: {want}");
    }
}

#[test]
fn ignored_fields_are_reported_not_fatal() {
    let c = parse(r#"{"resourceList":[{"resourceName":"f","deviceType":"accelerator","selectors":{"pfNames":["p0"],"acpiIndexes":["1"]}}]}"#)
        .expect("accepted");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("acpiIndexes, pfNames ignored for deviceType accelerator")),
        "{:?}",
        c.warnings
    );
}
