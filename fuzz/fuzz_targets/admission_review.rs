//! The operator webhook's handler, from the `AdmissionReview` body bytes to the response, on both
//! paths (`/mutating-custom-resource`, `/validating-custom-resource`), against a fixed cluster
//! (a node, its node state, a policy and the operator config: `sriovctl`'s test cluster).
//! network-resources-injector's handler is `injector_review`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sriov_operator::admission::{Cluster, Hook, Settings, parse_objects, review};

const NAMESPACE: &str = "sriov-network-operator";

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let text = include_str!("../../crates/sriovctl/tests/render_diff_cluster.yaml");
        let objects = parse_objects(text).expect("the test cluster parses");
        Cluster::from_objects(&objects, NAMESPACE).expect("the test cluster is a cluster")
    })
}

fuzz_target!(|data: &[u8]| {
    // The webhook's own first step (`serde_json::from_slice` of the body).
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let settings = Settings {
        namespace: NAMESPACE.into(),
        dev_mode: data.first().is_some_and(|b| b & 1 == 1),
    };
    for hook in [Hook::Mutate, Hook::Validate] {
        let Ok(out) = review(hook, &body, &settings, cluster()) else {
            continue;
        };
        let response = &out["response"];
        assert!(response["allowed"].is_boolean(), "no allowed in {out}");
        assert_eq!(
            response["uid"].as_str().unwrap_or("<none>"),
            body["request"]["uid"].as_str().unwrap_or(""),
            "response uid is the request's"
        );
        // The text kubectl shows must be there when refused.
        if response["allowed"] == false {
            assert!(
                response["status"]["message"].is_string(),
                "denial without text: {out}"
            );
        }
    }
});
