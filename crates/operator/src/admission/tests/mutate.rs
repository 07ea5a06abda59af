use json_patch::patch;
use serde_json::{Value, json};

use super::fixtures::policy_json;
use crate::admission::mutate::mutate_policy;

fn mutated(object: &Value) -> Value {
    let verdict = mutate_policy(object);
    assert!(verdict.allowed());
    let mut out = object.clone();
    if let Some(p) = &verdict.patch {
        patch(&mut out, p).expect("patch applies");
    }
    out
}

#[test]
fn absent_fields_get_upstream_defaults() {
    let out = mutated(&policy_json("p", json!({})));
    assert_eq!(out["spec"]["priority"], 99);
    assert_eq!(out["spec"]["isRdma"], false);
    assert_eq!(out["spec"]["deviceType"], "netdevice");
}

#[test]
fn present_fields_are_kept() {
    let out = mutated(&policy_json(
        "p",
        json!({"priority": 10, "isRdma": true, "deviceType": "vfio-pci"}),
    ));
    assert_eq!(out["spec"]["priority"], 10);
    assert_eq!(out["spec"]["isRdma"], true);
    assert_eq!(out["spec"]["deviceType"], "vfio-pci");
}

#[test]
fn infiniband_netdevice_forces_rdma() {
    let out = mutated(&policy_json("p", json!({"linkType": "IB", "isRdma": false})));
    assert_eq!(out["spec"]["isRdma"], true);
    let out = mutated(&policy_json("p", json!({"linkType": "ib"})));
    assert_eq!(out["spec"]["isRdma"], true);
}

#[test]
fn infiniband_vfio_keeps_rdma_off() {
    let out = mutated(&policy_json(
        "p",
        json!({"linkType": "IB", "deviceType": "vfio-pci"}),
    ));
    assert_eq!(out["spec"]["isRdma"], false);
}

#[test]
fn default_policy_and_specless_objects_are_not_patched() {
    assert_eq!(mutate_policy(&policy_json("default", json!({}))).patch, None);
    assert_eq!(mutate_policy(&json!({"metadata": {"name": "x"}})).patch, None);
}

#[test]
fn patch_is_upstream_jsonpatch() {
    let verdict = mutate_policy(&policy_json("p", json!({"deviceType": "netdevice"})));
    let text = serde_json::to_string(&verdict.patch).expect("serializes");
    assert_eq!(
        text,
        r#"[{"op":"add","path":"/spec/priority","value":99},{"op":"add","path":"/spec/isRdma","value":false}]"#
    );
}
