//! Property tests of admission: whatever JSON arrives as the object (or inside its spec), the
//! review answers (never panics), echoes the uid, and a mutation patch always applies to the
//! object it was computed for.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sriov_operator::admission::{Cluster, Hook, Settings, SupportedNics, review};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        "[a-z0-9#:.\\-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("numVfs".to_string()),
                    Just("priority".to_string()),
                    Just("isRdma".to_string()),
                    Just("linkType".to_string()),
                    Just("deviceType".to_string()),
                    Just("nicSelector".to_string()),
                    Just("pfNames".to_string()),
                    Just("nodeSelector".to_string()),
                    Just("mtu".to_string()),
                    "[a-zA-Z]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn request(kind: &str, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "prop", "kind": {"group": "sriovnetwork.openshift.io", "version": "v1", "kind": kind},
                    "operation": "CREATE", "userInfo": {}, "object": object}
    })
}

fn settings() -> Settings {
    Settings {
        namespace: "sriov-network-operator".to_string(),
        dev_mode: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_spec_gets_an_answer(spec in arb_json(), kind in prop_oneof![
        Just("SriovNetworkNodePolicy"), Just("SriovOperatorConfig"), Just("SriovNetworkPoolConfig"),
        Just("SriovNetwork"), Just("OVSNetwork"),
    ]) {
        let cluster = Cluster { nics: SupportedNics::builtin(), ..Cluster::default() };
        let object = json!({"metadata": {"name": "p", "namespace": "sriov-network-operator"}, "spec": spec});
        for hook in [Hook::Mutate, Hook::Validate] {
            let out = review(hook, &request(kind, object.clone()), &settings(), &cluster);
            let out = out.map_err(|e| TestCaseError::fail(format!("envelope rejected: {e}")))?;
            prop_assert_eq!(&out["response"]["uid"], "prop");
            prop_assert!(out["response"]["allowed"].is_boolean());
            if out["response"]["allowed"] == false {
                prop_assert!(out["response"]["status"]["reason"].as_str().is_some_and(|r| !r.is_empty()));
            }
        }
    }

    #[test]
    fn mutation_patch_applies_and_sets_defaults(spec in arb_json()) {
        let object = json!({"metadata": {"name": "p"}, "spec": spec});
        let verdict = sriov_operator::admission::mutate::mutate_policy(&object);
        if let Some(patch) = verdict.patch {
            let mut patched = object.clone();
            json_patch::patch(&mut patched, &patch).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(patched["spec"].get("priority").is_some());
            prop_assert!(patched["spec"]["isRdma"].is_boolean() || object["spec"].get("isRdma").is_some());
            prop_assert!(patched["spec"].get("deviceType").is_some());
        } else {
            prop_assert!(!object["spec"].is_object());
        }
    }

    #[test]
    fn any_object_value_gets_an_answer_or_an_envelope_error(object in arb_json()) {
        let cluster = Cluster::default();
        for hook in [Hook::Mutate, Hook::Validate] {
            if let Ok(out) = review(hook, &request("SriovNetworkNodePolicy", object.clone()), &settings(), &cluster) {
                prop_assert_eq!(&out["response"]["uid"], "prop");
            } else {
                prop_assert!(!object.is_object());
            }
        }
    }
}
