//! network-resources-injector's `/mutate` handler (`review::answer`), from the body bytes to
//! the HTTP answer, against a fixed NAD cache and switches with one user-defined injection;
//! the body length picks the flags (hugepages, honor-resources), so every combination runs.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sriov_network_resources_injector::review::{Body, answer};
use sriov_network_resources_injector::{Settings, Switches};

type Nads = BTreeMap<(String, String), BTreeMap<String, String>>;

const RN: &str = "k8s.v1.cni.cncf.io/resourceName";

fn nads() -> &'static Nads {
    static NADS: OnceLock<Nads> = OnceLock::new();
    NADS.get_or_init(|| {
        let nad = |ns: &str, name: &str, a: &[(&str, &str)]| {
            (
                (ns.to_string(), name.to_string()),
                a.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            )
        };
        [
            nad("default", "sriov-net", &[(RN, "intel.com/sriov")]),
            nad("default", "net-a", &[(RN, "intel.com/sriov_a")]),
            nad("other", "net-b", &[(RN, "intel.com/sriov_b"), ("k8s.v1.cni.cncf.io/nodeSelector", "sriov=yes")]),
            nad("default", "two-labels", &[("k8s.v1.cni.cncf.io/nodeSelector", "a=b=c")]),
            nad("default", "plain", &[]),
        ]
        .into_iter()
        .collect()
    })
}

fn switches() -> &'static Switches {
    static SWITCHES: OnceLock<Switches> = OnceLock::new();
    SWITCHES.get_or_init(|| {
        Switches::parse(
            r#"{"features":{"enableHugePageDownApi":true},"user-defined-injections":{"want-sriov":{"op":"add","path":"/metadata/annotations","value":{"k8s.v1.cni.cncf.io/networks":"sriov-net"}}}}"#,
        )
        .expect("the fixed switches parse")
    })
}

fuzz_target!(|data: &[u8]| {
    let settings = Settings {
        hugepage_down_api: data.len() & 1 == 1,
        honor_resources: data.len() & 2 == 2,
        ..Settings::default()
    };
    let none = Switches::default();
    let switches = if data.len() & 4 == 4 { switches() } else { &none };
    let a = answer(Some("application/json"), Body::Bytes(data), nads(), &settings, switches);
    match a.status {
        200 => {
            assert!(a.json);
            let out: Value = serde_json::from_str(&a.body).expect("a 200 answer is JSON");
            assert_eq!(out["kind"], "AdmissionReview");
            let response = &out["response"];
            assert!(response["allowed"].is_boolean(), "no allowed in {out}");
            if let Ok(review) = serde_json::from_slice::<Value>(data) {
                assert_eq!(
                    response["uid"].as_str().unwrap_or("<none>"),
                    review["request"]["uid"].as_str().unwrap_or(""),
                    "response uid is the request's"
                );
            }
            if response["allowed"] == false {
                assert!(response["status"]["message"].is_string(), "denial without text: {out}");
            }
            if let Some(patch) = response["patch"].as_str() {
                assert_eq!(response["patchType"], "JSONPatch");
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(patch)
                    .expect("patch is base64");
                let ops: Vec<Value> = serde_json::from_slice(&bytes).expect("patch is a JSON list");
                assert!(!ops.is_empty(), "empty patch sent");
                for op in &ops {
                    assert_eq!(op["op"], "add", "{op}");
                    assert!(op["path"].as_str().is_some_and(|p| p.starts_with('/')), "{op}");
                }
            }
        }
        400 => {
            assert!(!a.json);
            assert!(a.body.ends_with('\n') && a.body.len() > 1, "400 without a message");
        }
        other => panic!("status {other} for a JSON body: {}", a.body),
    }
});
