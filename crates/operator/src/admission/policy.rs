//! Static validation of one `SriovNetworkNodePolicy` (upstream `staticValidateSriovNetworkNodePolicy`),
//! preceded by the CRD schema checks the API server makes before any webhook runs (so that
//! `sriovctl validate` refuses what a cluster would refuse).

use super::Settings;
use super::nics::SupportedNics;
use super::objects::{Policy, policy_name};
use super::pfnames;

const RESOURCE_NAME_MAX: usize = 63;

/// The API server's view: `SriovNetworkNodePolicy.sriovnetwork.openshift.io "<name>" is invalid: <field>: ...`.
fn schema_error(policy: &Policy, field: &str, value: impl std::fmt::Display, rule: &str) -> String {
    format!(
        "SriovNetworkNodePolicy.sriovnetwork.openshift.io {:?} is invalid: {field}: Invalid value: {value}: {rule}",
        policy_name(policy)
    )
}

fn check_enum(policy: &Policy, field: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if value.is_empty() || allowed.contains(&value) {
        return Ok(());
    }
    let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    Err(format!(
        "SriovNetworkNodePolicy.sriovnetwork.openshift.io {:?} is invalid: {field}: Unsupported value: {value:?}: supported values: {}",
        policy_name(policy),
        list.join(", ")
    ))
}

/// The CRD rule the typed spec cannot see: an explicit `mtu: 0` (0 means "absent" once decoded).
pub fn raw_schema_check(policy: &Policy, raw: &serde_json::Value) -> Result<(), String> {
    match raw.pointer("/spec/mtu").and_then(serde_json::Value::as_i64) {
        Some(mtu) if mtu < 1 => Err(schema_error(
            policy,
            "spec.mtu",
            mtu,
            "spec.mtu in body should be greater than or equal to 1",
        )),
        _ => Ok(()),
    }
}

/// The CRD's OpenAPI rules (minimums, maximums, enums) on the decoded spec.
pub fn schema_check(policy: &Policy) -> Result<(), String> {
    let s = &policy.spec;
    if s.num_vfs < 0 {
        return Err(schema_error(
            policy,
            "spec.numVfs",
            s.num_vfs,
            "spec.numVfs in body should be greater than or equal to 0",
        ));
    }
    if s.priority < 0 {
        return Err(schema_error(
            policy,
            "spec.priority",
            s.priority,
            "spec.priority in body should be greater than or equal to 0",
        ));
    }
    if s.priority > 99 {
        return Err(schema_error(
            policy,
            "spec.priority",
            s.priority,
            "spec.priority in body should be less than or equal to 99",
        ));
    }
    // 0 is "absent" in the typed spec; an explicit 0 is `raw_schema_check`'s.
    if s.mtu < 0 {
        return Err(schema_error(
            policy,
            "spec.mtu",
            s.mtu,
            "spec.mtu in body should be greater than or equal to 1",
        ));
    }
    check_enum(
        policy,
        "spec.deviceType",
        &s.device_type,
        &["netdevice", "vfio-pci"],
    )?;
    check_enum(policy, "spec.linkType", &s.link_type, &["eth", "ETH", "ib", "IB"])?;
    check_enum(
        policy,
        "spec.eSwitchMode",
        &s.e_switch_mode,
        &["legacy", "switchdev"],
    )?;
    check_enum(policy, "spec.vdpaType", &s.vdpa_type, &["virtio", "vhost"])?;
    Ok(())
}

/// Upstream `validateResourceName`.
pub fn check_resource_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("resource name must not be empty".to_string());
    }
    if name.len() > RESOURCE_NAME_MAX {
        return Err(format!(
            "resource name {name:?} must be no more than {RESOURCE_NAME_MAX} characters"
        ));
    }
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    let inner_ok = b.iter().all(|c| alnum(c) || *c == b'-' || *c == b'_');
    let ends_ok = b.first().is_some_and(alnum) && b.last().is_some_and(alnum);
    if !(inner_ok && ends_ok) {
        return Err(format!(
            "resource name {name:?} is invalid: must consist of alphanumeric characters or hyphens, \
             and must start and end with an alphanumeric character (e.g. 'myresource', 'net-device-1'), \
             see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#names"
        ));
    }
    Ok(())
}

/// The rules that need nothing but the policy (and the supported-NIC list); `Ok(warnings)`
/// when allowed.
pub fn static_check(
    policy: &Policy,
    settings: &Settings,
    nics: &SupportedNics,
) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let name = policy_name(policy);
    let s = &policy.spec;
    let sel = &s.nic_selector;
    check_resource_name(&s.resource_name)?;
    if sel.is_empty() {
        return Err(format!(
            "at least one of these parameters (vendor, deviceID, pfNames, rootDevices or netFilter) has to be defined in nicSelector in CR {name}"
        ));
    }
    if !sel.net_filter.is_empty() {
        if !sel.vendor.is_empty()
            || !sel.device_id.is_empty()
            || !sel.pf_names.is_empty()
            || !sel.root_devices.is_empty()
        {
            return Err(
                "nicSelector fields vendor, deviceID, pfNames, and rootDevices are not allowed when netFilter is specified"
                    .to_string(),
            );
        }
        if !s.e_switch_mode.is_empty() {
            return Err("eSwitchMode is not supported when netFilter is specified".to_string());
        }
        if !s.bridge.is_empty() {
            return Err("bridge configuration is not supported when netFilter is specified".to_string());
        }
        if !s.link_type.is_empty() && !s.link_type.eq_ignore_ascii_case("eth") {
            return Err(format!(
                "linkType {:?} is not allowed when netFilter is specified, only 'eth' or 'ETH' are supported",
                s.link_type
            ));
        }
    }
    if !settings.dev_mode {
        if !sel.vendor.is_empty() {
            if !nics.is_supported_vendor(&sel.vendor) {
                return Err(format!("vendor {} is not supported", sel.vendor));
            }
            if !sel.device_id.is_empty() && !nics.is_supported_model(&sel.vendor, &sel.device_id) {
                return Err(format!(
                    "vendor/device {}/{} is not supported",
                    sel.vendor, sel.device_id
                ));
            }
        } else if !sel.device_id.is_empty() && !nics.is_supported_device(&sel.device_id) {
            return Err(format!("device {} is not supported", sel.device_id));
        }
    }
    for pf in &sel.pf_names {
        warnings.extend(pfnames::check(pf, i64::from(s.num_vfs))?);
    }
    if s.device_type == "vfio-pci" && s.is_rdma {
        return Err("'deviceType: vfio-pci' conflicts with 'isRdma: true'; Set 'deviceType' to (string)'netdevice' Or Set 'isRdma' to (bool)'false'".to_string());
    }
    let switchdev = s.e_switch_mode == "switchdev";
    if !s.link_type.is_empty() && !s.link_type.eq_ignore_ascii_case("eth") && switchdev {
        return Err("'eSwitchMode: switchdev' can be used only with ethernet links".to_string());
    }
    let vdpa = s.vdpa_type == "virtio" || s.vdpa_type == "vhost";
    if vdpa && s.device_type != "netdevice" {
        return Err(format!(
            "'deviceType: {}' conflicts with '{}'; Set 'deviceType' to (string)'netdevice' Or Remove 'vdpaType'",
            s.device_type, s.vdpa_type
        ));
    }
    if vdpa && !switchdev {
        return Err("vdpa requires the device to be configured in switchdev mode".to_string());
    }
    if !s.bridge.is_empty() && !switchdev {
        return Err(
            "software bridge management requires the device to be configured in switchdev mode".to_string(),
        );
    }
    if !s.bridge.is_empty() && s.externally_managed {
        return Err(
            "software bridge management can't be used when the device externally managed".to_string(),
        );
    }
    Ok(warnings)
}
