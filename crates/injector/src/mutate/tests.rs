//! One table test per rule of upstream's mutation (and the sriov-rs container choice).
#![allow(clippy::unwrap_used, clippy::type_complexity)]

use serde_json::{Value, json};

use super::*;

type Nads = BTreeMap<(String, String), BTreeMap<String, String>>;

fn nads(list: &[(&str, &str, &[(&str, &str)])]) -> Nads {
    list.iter()
        .map(|(ns, name, a)| {
            (
                (ns.to_string(), name.to_string()),
                a.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            )
        })
        .collect()
}

fn sriov_nads() -> Nads {
    nads(&[
        (
            "default",
            "net-a",
            &[(DEFAULT_RESOURCE_NAME_KEY, "intel.com/sriov_a")],
        ),
        (
            "other",
            "net-b",
            &[(DEFAULT_RESOURCE_NAME_KEY, "intel.com/sriov_b")],
        ),
        ("default", "plain", &[]),
        (
            "default",
            "pinned",
            &[
                (DEFAULT_RESOURCE_NAME_KEY, "intel.com/sriov_a"),
                (NODE_SELECTOR_ANNOTATION, "sriov = yes"),
            ],
        ),
        ("default", "two-labels", &[(NODE_SELECTOR_ANNOTATION, "a=b=c")]),
        (
            "default",
            "mlx",
            &[
                ("example.com/vf", "mellanox.com/vf"),
                (DEFAULT_RESOURCE_NAME_KEY, "intel.com/sriov_a"),
            ],
        ),
    ])
}

/// The pod decoded from its JSON text as the webhook decodes it (borrowing its strings from the
/// text, which is leaked: a test's pods live as long as the test).
fn pod(v: Value) -> PodView<'static> {
    serde_json::from_str(Box::leak(v.to_string().into_boxed_str())).unwrap()
}

fn simple_pod(annotations: Value) -> PodView<'static> {
    pod(json!({
        "metadata": {"name": "p", "namespace": "default", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "x"}]}
    }))
}

fn run(p: &PodView, settings: &Settings, switches: &Switches) -> Result<Mutation, Denied> {
    mutate(p, "default", &sriov_nads(), settings, switches)
}

/// The patch as JSON, for comparing with `json!` tables.
fn json_of(m: &Mutation) -> Value {
    serde_json::to_value(&m.patch).unwrap()
}

fn patch_of(p: &PodView) -> Value {
    json_of(&run(p, &Settings::default(), &Switches::default()).unwrap())
}

#[test]
fn comma_list_counts_each_network_into_requests_and_limits_of_container_0() {
    let p = simple_pod(json!({NETWORKS_ANNOTATION: "net-a, net-a@net2, other/net-b, plain"}));
    let m = run(&p, &Settings::default(), &Switches::default()).unwrap();
    assert_eq!(m.message, "allowed");
    assert_eq!(
        json_of(&m),
        json!([
            {"op":"add","path":"/spec/containers/0/resources/requests","value":{}},
            {"op":"add","path":"/spec/containers/0/resources/limits","value":{}},
            {"op":"add","path":"/spec/containers/0/resources/requests/intel.com~1sriov_a","value":"2"},
            {"op":"add","path":"/spec/containers/0/resources/limits/intel.com~1sriov_a","value":"2"},
            {"op":"add","path":"/spec/containers/0/resources/requests/intel.com~1sriov_b","value":"1"},
            {"op":"add","path":"/spec/containers/0/resources/limits/intel.com~1sriov_b","value":"1"},
            {"op":"add","path":"/spec/containers/0/volumeMounts","value":[{"name":"podnetinfo","readOnly":true,"mountPath":"/etc/podnetinfo"}]},
            {"op":"add","path":"/spec/volumes","value":[{"name":"podnetinfo","downwardAPI":{"items":[
                {"path":"annotations","fieldRef":{"fieldPath":"metadata.annotations"}}]}}]}
        ])
    );
}

#[test]
fn json_list_is_parsed_like_the_comma_list() {
    let p =
        simple_pod(json!({NETWORKS_ANNOTATION: r#"[{"name":"net-b","namespace":"other","interface":"x"}]"#}));
    let patch = patch_of(&p);
    assert_eq!(
        patch[2]["path"],
        "/spec/containers/0/resources/requests/intel.com~1sriov_b"
    );
}

#[test]
fn default_network_annotation_counts_too() {
    let p = simple_pod(json!({DEFAULT_NETWORK_ANNOTATION: "net-a", NETWORKS_ANNOTATION: "net-a"}));
    assert_eq!(patch_of(&p)[2]["value"], "2");
}

#[test]
fn every_resource_name_key_is_counted() {
    let p = simple_pod(json!({NETWORKS_ANNOTATION: "mlx"}));
    let settings = Settings {
        resource_name_keys: vec![DEFAULT_RESOURCE_NAME_KEY.into(), "example.com/vf".into()],
        ..Settings::default()
    };
    let paths: Vec<_> = run(&p, &settings, &Switches::default())
        .unwrap()
        .patch
        .iter()
        .map(|o| o.path.clone())
        .collect();
    assert!(paths.contains(&"/spec/containers/0/resources/requests/intel.com~1sriov_a".into()));
    assert!(paths.contains(&"/spec/containers/0/resources/requests/mellanox.com~1vf".into()));
}

#[test]
fn a_resource_already_requested_by_any_container_is_left_alone_unless_honored() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "default", "annotations": {NETWORKS_ANNOTATION: "net-a"}},
        "spec": {"containers": [
            {"name": "app", "image": "x", "resources": {"requests": {"intel.com/sriov_a": "3"}, "limits": {"intel.com/sriov_a": "3"}}},
        ]}
    }));
    let plain = patch_of(&p);
    assert!(
        plain
            .as_array()
            .unwrap()
            .iter()
            .all(|o| !o["path"].as_str().unwrap().contains("resources")),
        "{plain}"
    );
    let honored = run(
        &p,
        &Settings {
            honor_resources: true,
            ..Settings::default()
        },
        &Switches::default(),
    )
    .unwrap();
    assert_eq!(
        json_of(&honored)[0],
        json!({"op":"add","path":"/spec/containers/0/resources/requests/intel.com~1sriov_a","value":"4"})
    );
    assert_eq!(
        json_of(&honored)[1],
        json!({"op":"add","path":"/spec/containers/0/resources/limits/intel.com~1sriov_a","value":"4"})
    );
}

#[test]
fn podnetinfo_has_labels_and_is_mounted_in_every_container_once() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "x"}, "annotations": {NETWORKS_ANNOTATION: "net-a"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]},
                {"name": "side", "image": "x", "volumeMounts": [{"name": "podnetinfo", "mountPath": "/etc/podnetinfo"}]}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    }));
    let patch = patch_of(&p);
    let tail = &patch.as_array().unwrap()[4..];
    assert_eq!(
        tail,
        &[
            json!({"op":"add","path":"/spec/containers/0/volumeMounts/-","value":{"name":"podnetinfo","readOnly":true,"mountPath":"/etc/podnetinfo"}}),
            json!({"op":"add","path":"/spec/volumes/-","value":{"name":"podnetinfo","downwardAPI":{"items":[
                {"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}},
                {"path":"annotations","fieldRef":{"fieldPath":"metadata.annotations"}}]}}}),
        ]
    );
}

#[test]
fn hugepages_become_downward_items_and_container_name_env_when_enabled() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "default", "annotations": {NETWORKS_ANNOTATION: "net-a"}},
        "spec": {"containers": [
            {"name": "app", "image": "x", "resources": {"requests": {"hugepages-1Gi": "2Gi"}, "limits": {"hugepages-1Gi": "2Gi"}}},
            {"name": "side", "image": "x", "env": [{"name": "A", "value": "b"}], "resources": {"limits": {"hugepages-2Mi": "0"}}}
        ]}
    }));
    let off = patch_of(&p);
    assert!(!off.to_string().contains("hugepages_"), "{off}");
    let switches = Switches {
        hugepage_down_api: Some(true),
        ..Switches::default()
    };
    let on = json_of(&run(&p, &Settings::default(), &switches).unwrap());
    let ops = on.as_array().unwrap();
    assert!(ops.contains(
        &json!({"op":"add","path":"/spec/containers/0/env","value":[{"name":"CONTAINER_NAME","value":"app"}]})
    ));
    assert!(
        !on.to_string().contains("\"side\""),
        "zero hugepages ignored: {on}"
    );
    let volume = ops.last().unwrap();
    assert_eq!(
        volume["value"][0]["downwardAPI"]["items"],
        json!([
            {"path":"annotations","fieldRef":{"fieldPath":"metadata.annotations"}},
            {"path":"hugepages_1G_request_app","resourceFieldRef":{"containerName":"app","resource":"requests.hugepages-1Gi","divisor":"1Mi"}},
            {"path":"hugepages_1G_limit_app","resourceFieldRef":{"containerName":"app","resource":"limits.hugepages-1Gi","divisor":"1Mi"}}
        ])
    );
}

#[test]
fn nad_node_selector_is_merged_into_the_pods() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "default", "annotations": {NETWORKS_ANNOTATION: "pinned"}},
        "spec": {"containers": [{"name": "app", "image": "x"}], "nodeSelector": {"zone": "a"}}
    }));
    let patch = patch_of(&p);
    assert!(
        patch
            .as_array()
            .unwrap()
            .contains(&json!({"op":"add","path":"/spec/nodeSelector","value":{"sriov":"yes","zone":"a"}})),
        "{patch}"
    );
    let bad = simple_pod(json!({NETWORKS_ANNOTATION: "two-labels"}));
    assert_eq!(
        run(&bad, &Settings::default(), &Switches::default()),
        Err(Denied::Refused(
            "node selector in net-attach-def two-labels has more than one label".into()
        ))
    );
}

#[test]
fn user_defined_injection_adds_annotations_and_its_networks() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"want-sriov": "true", "no": "false"}, "annotations": {"keep": "me"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]}
    }));
    let switches = Switches::parse(
        r#"{"user-defined-injections":{
            "want-sriov":{"op":"add","path":"/metadata/annotations","value":{"k8s.v1.cni.cncf.io/networks":"net-a"}},
            "no":{"op":"add","path":"/metadata/annotations","value":{"k8s.v1.cni.cncf.io/networks":"other/net-b"}}}}"#,
    )
    .unwrap();
    let m = run(&p, &Settings::default(), &switches).unwrap();
    assert_eq!(
        json_of(&m)[0],
        json!({"op":"add","path":"/metadata/annotations","value":{"k8s.v1.cni.cncf.io/networks":"net-a","keep":"me"}})
    );
    assert_eq!(
        json_of(&m)[3]["path"],
        "/spec/containers/0/resources/requests/intel.com~1sriov_a"
    );
    assert!(!json_of(&m).to_string().contains("sriov_b"));
}

#[test]
fn the_container_annotation_moves_the_resources_not_the_count() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "default",
            "annotations": {NETWORKS_ANNOTATION: "net-a", CONTAINER_ANNOTATION: "dpdk-app"}},
        "spec": {"containers": [{"name": "istio-proxy", "image": "x"}, {"name": "dpdk-app", "image": "x"}]}
    }));
    let patch = patch_of(&p);
    let resource_ops: Vec<_> = patch
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["path"].as_str().unwrap().contains("/resources"))
        .collect();
    assert_eq!(resource_ops.len(), 4, "{patch}");
    assert!(
        resource_ops
            .iter()
            .all(|o| o["path"].as_str().unwrap().starts_with("/spec/containers/1/"))
    );
    assert_eq!(resource_ops[2]["value"], "1");
    let missing = simple_pod(json!({NETWORKS_ANNOTATION: "net-a", CONTAINER_ANNOTATION: "nope"}));
    let err = run(&missing, &Settings::default(), &Switches::default()).unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");
}

#[test]
fn no_networks_no_patch() {
    let m = run(
        &simple_pod(json!({"x": "y"})),
        &Settings::default(),
        &Switches::default(),
    )
    .unwrap();
    assert_eq!(
        m,
        Mutation {
            message: NO_NETWORKS,
            patch: vec![]
        }
    );
}

#[test]
fn networks_without_resources_get_no_resources_and_no_volume() {
    assert_eq!(
        patch_of(&simple_pod(json!({NETWORKS_ANNOTATION: "plain"}))),
        json!([])
    );
}

#[test]
fn missing_nad_is_refused_naming_namespace_and_name() {
    let p = simple_pod(json!({NETWORKS_ANNOTATION: "net-a,ghosts/missing"}));
    let err = run(&p, &Settings::default(), &Switches::default()).unwrap_err();
    assert_eq!(
        err,
        Denied::Refused(
            "could not find network attachment definition 'ghosts/missing': could not get Network Attachment Definition ghosts/missing: network-attachment-definitions.k8s.cni.cncf.io \"missing\" not found".into()
        )
    );
}

#[test]
fn malformed_annotation_is_a_bad_request() {
    let p = simple_pod(json!({NETWORKS_ANNOTATION: "a/b/c"}));
    assert!(matches!(
        run(&p, &Settings::default(), &Switches::default()),
        Err(Denied::BadAnnotation(_))
    ));
}

#[test]
fn pod_without_namespace_uses_the_requests() {
    let p = pod(
        json!({"metadata": {"name": "p", "annotations": {NETWORKS_ANNOTATION: "net-b"}},
                       "spec": {"containers": [{"name": "a", "image": "x"}]}}),
    );
    assert!(
        mutate(
            &p,
            "other",
            &sriov_nads(),
            &Settings::default(),
            &Switches::default()
        )
        .is_ok()
    );
    assert!(
        mutate(
            &p,
            "default",
            &sriov_nads(),
            &Settings::default(),
            &Switches::default()
        )
        .is_err()
    );
}

/// The patch bytes, every shape of operation: upstream's field order (Go encodes struct fields in
/// declaration order) and sorted map keys. A new volume and new lists first; then appends to
/// existing env, mounts and volumes, with a user-defined injection and hugepages.
#[test]
fn patch_bytes_are_upstreams() {
    let settings = Settings {
        hugepage_down_api: true,
        ..Settings::default()
    };
    let fresh = pod(json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {NETWORKS_ANNOTATION: "pinned"}},
        "spec": {"containers": [{"name": "app", "image": "x",
            "resources": {"requests": {"hugepages-2Mi": "2Mi"}, "limits": {"hugepages-2Mi": "2Mi"}}}]}
    }));
    let m = run(&fresh, &settings, &Switches::default()).unwrap();
    assert_eq!(
        serde_json::to_string(&m.patch).unwrap(),
        concat!(
            r#"[{"op":"add","path":"/spec/containers/0/resources/requests/intel.com~1sriov_a","value":"1"},"#,
            r#"{"op":"add","path":"/spec/containers/0/resources/limits/intel.com~1sriov_a","value":"1"},"#,
            r#"{"op":"add","path":"/spec/containers/0/env","value":[{"name":"CONTAINER_NAME","value":"app"}]},"#,
            r#"{"op":"add","path":"/spec/nodeSelector","value":{"sriov":"yes"}},"#,
            r#"{"op":"add","path":"/spec/containers/0/volumeMounts","value":[{"name":"podnetinfo","readOnly":true,"mountPath":"/etc/podnetinfo"}]},"#,
            r#"{"op":"add","path":"/spec/volumes","value":[{"name":"podnetinfo","downwardAPI":{"items":["#,
            r#"{"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}},"#,
            r#"{"path":"annotations","fieldRef":{"fieldPath":"metadata.annotations"}},"#,
            r#"{"path":"hugepages_2M_request_app","resourceFieldRef":{"containerName":"app","resource":"requests.hugepages-2Mi","divisor":"1Mi"}},"#,
            r#"{"path":"hugepages_2M_limit_app","resourceFieldRef":{"containerName":"app","resource":"limits.hugepages-2Mi","divisor":"1Mi"}}]}}]}]"#
        )
    );

    let switches = Switches::parse(
        r#"{"user-defined-injections":{"want-sriov":{"op":"add","path":"/metadata/annotations","value":{"k8s.v1.cni.cncf.io/networks":"net-a"}}}}"#,
    )
    .unwrap();
    let existing = pod(json!({
        "metadata": {"name": "p", "namespace": "default", "labels": {"want-sriov": "true"},
                     "annotations": {"keep": "me"}},
        "spec": {
            "containers": [{"name": "app", "image": "x",
                "resources": {"requests": {"hugepages-1Gi": "1Gi"}},
                "env": [{"name": "X", "value": "1"}],
                "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    }));
    let m = run(&existing, &settings, &switches).unwrap();
    assert_eq!(
        serde_json::to_string(&m.patch).unwrap(),
        concat!(
            r#"[{"op":"add","path":"/metadata/annotations","value":{"k8s.v1.cni.cncf.io/networks":"net-a","keep":"me"}},"#,
            r#"{"op":"add","path":"/spec/containers/0/resources/limits","value":{}},"#,
            r#"{"op":"add","path":"/spec/containers/0/resources/requests/intel.com~1sriov_a","value":"1"},"#,
            r#"{"op":"add","path":"/spec/containers/0/resources/limits/intel.com~1sriov_a","value":"1"},"#,
            r#"{"op":"add","path":"/spec/containers/0/env/-","value":{"name":"CONTAINER_NAME","value":"app"}},"#,
            r#"{"op":"add","path":"/spec/containers/0/volumeMounts/-","value":{"name":"podnetinfo","readOnly":true,"mountPath":"/etc/podnetinfo"}},"#,
            r#"{"op":"add","path":"/spec/volumes/-","value":{"name":"podnetinfo","downwardAPI":{"items":["#,
            r#"{"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}},"#,
            r#"{"path":"annotations","fieldRef":{"fieldPath":"metadata.annotations"}},"#,
            r#"{"path":"hugepages_1G_request_app","resourceFieldRef":{"containerName":"app","resource":"requests.hugepages-1Gi","divisor":"1Mi"}}]}}}]"#
        )
    );
}
