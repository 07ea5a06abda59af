use serde_json::{Value, json};

use super::fixtures::{NS, cluster, policy_json, settings};
use crate::admission::{AdmissionError, Hook, review};

fn request(kind: &str, operation: &str, object: Value, old: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "sriovnetwork.openshift.io", "version": "v1", "kind": kind},
            "namespace": NS,
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": old,
        }
    })
}

fn validate(kind: &str, operation: &str, object: Value, old: Value) -> Value {
    review(
        Hook::Validate,
        &request(kind, operation, object, old),
        &settings(),
        &cluster(vec![]),
    )
    .expect("envelope is fine")["response"]
        .clone()
}

#[test]
fn allowed_response_has_only_uid_and_allowed() {
    let out = validate(
        "SriovNetworkNodePolicy",
        "CREATE",
        policy_json("p1", json!({})),
        Value::Null,
    );
    assert_eq!(out, json!({"uid": "u-1", "allowed": true}));
}

#[test]
fn denial_text_is_in_status_reason() {
    let obj = policy_json("p1", json!({"resourceName": ""}));
    let out = validate("SriovNetworkNodePolicy", "CREATE", obj, Value::Null);
    assert_eq!(
        out,
        json!({"uid": "u-1", "allowed": false, "status": {"metadata": {},
            "message": "resource name must not be empty", "reason": "resource name must not be empty"}})
    );
}

#[test]
fn delete_only_warns_about_the_namespace() {
    let mut old = policy_json("p1", json!({"resourceName": ""}));
    old["metadata"]["namespace"] = json!("elsewhere");
    let out = validate("SriovNetworkNodePolicy", "DELETE", Value::Null, old);
    assert_eq!(out["allowed"], true);
    assert_eq!(
        out["warnings"],
        json!([format!(
            "p1 is created or updated but not used. Only policy in {NS} namespace is respected."
        )])
    );
}

#[test]
fn the_default_policy_is_not_validated() {
    let out = validate(
        "SriovNetworkNodePolicy",
        "CREATE",
        policy_json("default", json!({"resourceName": ""})),
        Value::Null,
    );
    assert_eq!(out["allowed"], true);
}

#[test]
fn other_kinds_are_routed() {
    let cfg = json!({"metadata": {"name": "other", "namespace": NS}, "spec": {}});
    let out = validate("SriovOperatorConfig", "CREATE", cfg.clone(), Value::Null);
    assert_eq!(
        out["status"]["reason"],
        format!("only default SriovOperatorConfig in {NS} namespace is used")
    );
    assert_eq!(
        validate("SriovOperatorConfig", "DELETE", Value::Null, cfg)["allowed"],
        true
    );
    let net = json!({"metadata": {"name": "n", "namespace": "apps"}, "spec": {"networkNamespace": "x", "resourceName": "r"}});
    for kind in ["SriovNetwork", "SriovIBNetwork", "OVSNetwork"] {
        assert_eq!(
            validate(kind, "CREATE", net.clone(), Value::Null)["allowed"],
            false,
            "{kind}"
        );
    }
    let pool = json!({"metadata": {"name": "p", "namespace": NS}, "spec": {"maxUnavailable": "x"}});
    assert_eq!(
        validate("SriovNetworkPoolConfig", "UPDATE", pool, Value::Null)["allowed"],
        false
    );
    assert_eq!(
        validate("Pod", "CREATE", json!({"metadata": {}}), Value::Null),
        json!({"uid": "u-1", "allowed": true})
    );
}

#[test]
fn object_namespace_defaults_to_the_request_namespace() {
    let mut obj = policy_json("p1", json!({}));
    obj["metadata"].as_object_mut().map(|m| m.remove("namespace"));
    let out = validate("SriovNetworkNodePolicy", "CREATE", obj, Value::Null);
    assert_eq!(out, json!({"uid": "u-1", "allowed": true}));
}

#[test]
fn v1beta1_is_answered_in_kind() {
    let mut req = request(
        "SriovNetworkNodePolicy",
        "CREATE",
        policy_json("p1", json!({})),
        Value::Null,
    );
    req["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let out = review(Hook::Mutate, &req, &settings(), &cluster(vec![])).expect("answered");
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(out["response"]["patchType"], "JSONPatch");
}

#[test]
fn bad_envelopes_are_errors_naming_the_field() {
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "AdmissionReview", "request": {}}),
            "apiVersion",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}),
            "kind",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
            "request",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}}),
            "request.uid",
        ),
        (
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "operation": "CREATE"}}),
            "request.object",
        ),
    ];
    for (input, field) in cases {
        match review(Hook::Validate, &input, &settings(), &cluster(vec![])) {
            Err(AdmissionError::Review { field: f, .. }) => assert_eq!(f, field, "{input}"),
            other => panic!("{input}: expected an envelope error on {field}, got {other:?}"),
        }
    }
}

#[test]
fn odd_values_never_panic() {
    let odd = [
        json!(null),
        json!(1),
        json!("s"),
        json!([]),
        json!({"spec": null}),
        json!({"metadata": 3, "spec": []}),
        json!({"metadata": {"name": 3}, "spec": {"nicSelector": "x"}}),
        json!({"spec": {"numVfs": 1e99, "priority": -5, "pfNames": [1]}}),
        json!({"spec": {"nicSelector": {"pfNames": ["#", "a#-", "a#1-", "a##", "a#99999999999999999999-1"]}, "numVfs": 1}}),
    ];
    for obj in odd {
        for hook in [Hook::Mutate, Hook::Validate] {
            for kind in [
                "SriovNetworkNodePolicy",
                "SriovOperatorConfig",
                "SriovNetworkPoolConfig",
                "SriovNetwork",
            ] {
                let _ = review(
                    hook,
                    &request(kind, "CREATE", obj.clone(), obj.clone()),
                    &settings(),
                    &cluster(vec![]),
                );
            }
        }
    }
}
