//! Parsing never panics: arbitrary text, and example manifests with arbitrary values put in
//! their fields, always give an object or an error that names the object.

use proptest::prelude::*;
use serde_json::{Value, json};
use sriov_api::{ApiError, parse_documents, parse_object};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 10] = [
    "numVfs",
    "priority",
    "mtu",
    "nicSelector",
    "deviceType",
    "nodeSelector",
    "resourceName",
    "isRdma",
    "linkType",
    "bridge",
];

fn policy() -> Value {
    json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"resourceName": "r", "nodeSelector": {}, "numVfs": 2, "nicSelector": {"pfNames": ["eth0#0-1"]}}
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "(?s).{0,200}") {
        let _ = parse_documents(&text);
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(lines in proptest::collection::vec("[ a-z:#\\-\\[\\]{}\"'0-9]{0,20}", 0..10)) {
        let _ = parse_documents(&lines.join("\n"));
    }

    #[test]
    fn any_value_in_a_policy_field_parses_or_names_the_object(field in 0usize..FIELDS.len(), value in arb_json()) {
        let mut doc = policy();
        doc["spec"][FIELDS[field]] = value;
        match parse_object(&doc.to_string()) {
            Ok(_) => {}
            Err(e @ (ApiError::InvalidField { .. } | ApiError::Decode { .. })) => {
                prop_assert!(e.to_string().starts_with("SriovNetworkNodePolicy/p: "), "{}", e);
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {}", other),
        }
    }
}
