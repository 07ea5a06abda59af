//! Defaulting of `SriovNetworkNodePolicy` (upstream `mutateSriovNetworkNodePolicy`): works on
//! the raw object as upstream does, so unknown fields and odd types pass through untouched.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::Value;

use super::Verdict;

/// `add /spec/<field> value`.
fn add(field: &str, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(["spec", field]),
        value,
    })
}

/// The JSONPatch that defaults `object` (a policy):
/// * `priority` absent → `add /spec/priority 99` (lowest precedence);
/// * `isRdma` absent → `add /spec/isRdma false`;
/// * `linkType` IB (any case) and `deviceType` not vfio-pci → `add /spec/isRdma true`
///   (after the previous one, so it wins, as upstream);
/// * `deviceType` absent → `add /spec/deviceType netdevice`. Upstream moved this default into
///   the CRD, so in a cluster the API server has already set it and this never fires; it makes
///   `sriovctl mutate` on a hand-written object yield the same defaulted object.
///
/// The policy named `default` (deprecated) and an object without a `spec` map are not patched.
pub fn mutate_policy(object: &Value) -> Verdict {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name == "default" {
        return Verdict::allow();
    }
    let Some(spec) = object.get("spec").and_then(Value::as_object) else {
        return Verdict::allow();
    };
    let mut ops = Vec::new();
    if !spec.contains_key("priority") {
        ops.push(add("priority", Value::from(99)));
    }
    if !spec.contains_key("isRdma") {
        ops.push(add("isRdma", Value::Bool(false)));
    }
    let device_type = spec.get("deviceType").and_then(Value::as_str);
    if !spec.contains_key("deviceType") {
        ops.push(add("deviceType", Value::from("netdevice")));
    }
    let is_ib = spec
        .get("linkType")
        .and_then(Value::as_str)
        .is_some_and(|l| l.eq_ignore_ascii_case("ib"));
    if is_ib && !device_type.is_some_and(|d| d.eq_ignore_ascii_case("vfio-pci")) {
        ops.push(add("isRdma", Value::Bool(true)));
    }
    Verdict {
        patch: Some(Patch(ops)),
        ..Verdict::allow()
    }
}
