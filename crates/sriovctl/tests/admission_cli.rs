//! `sriovctl validate` / `sriovctl mutate` as a user runs them: the built binary, files on
//! disk, the shared examples, exit status and output checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::{Value, json};

const NS: &str = "sriov-network-operator";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/examples")
}

fn sriovctl(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sriovctl"));
    cmd.args(args).env_remove("DEV_MODE").env("NAMESPACE", NS);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("sriovctl runs")
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write input");
    p.display().to_string()
}

#[test]
fn the_examples_are_allowed() {
    for file in ["policy-harvester.yaml", "policy-vm-netdevice.yaml"] {
        let path = examples().join(file).display().to_string();
        let out = sriovctl(&["validate", "-f", &path, "-o", "json"], &[]);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", stderr(&out));
        let review = json_out(&out);
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["response"]["allowed"], true, "{file}");
    }
}

#[test]
fn mutate_patch_defaults_the_example() {
    let path = examples().join("policy-vm-netdevice.yaml");
    let out = sriovctl(&["mutate", "-f", &path.display().to_string(), "-o", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let resp = &json_out(&out)["response"];
    assert_eq!(resp["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(resp["patch"].as_str().expect("patch string"))
        .expect("base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("JSONPatch");
    let text = std::fs::read_to_string(&path).expect("example");
    let mut object: Value = serde_saphyr::from_str(&text).expect("example parses");
    json_patch::patch(&mut object, &patch).expect("applies");
    assert_eq!(object["spec"]["priority"], 99);
    assert_eq!(object["spec"]["isRdma"], false);
    assert_eq!(object["spec"]["deviceType"], "netdevice");
    assert_eq!(object["spec"]["numVfs"], 2);
}

const CLUSTER: &str = r#"
---
apiVersion: v1
kind: Node
metadata: {name: w1, labels: {sriov: "true"}}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodeState
metadata: {name: w1, namespace: sriov-network-operator}
status:
  interfaces:
  - {name: eth1, pciAddress: "0000:01:00.0", vendor: "8086", deviceID: "10c9", totalvfs: 8, mtu: 1500}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodePolicy
metadata: {name: existing, namespace: sriov-network-operator}
spec:
  resourceName: first
  nodeSelector: {sriov: "true"}
  numVfs: 8
  nicSelector: {pfNames: ["eth1#0-3"]}
"#;

fn review_yaml(operation: &str, spec: Value) -> String {
    let object = json!({
        "apiVersion": "sriovnetwork.openshift.io/v1",
        "kind": "SriovNetworkNodePolicy",
        "metadata": {"name": "p-new", "namespace": NS},
        "spec": spec,
    });
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "sriovnetwork.openshift.io", "version": "v1", "kind": "SriovNetworkNodePolicy"},
            "resource": {"group": "sriovnetwork.openshift.io", "version": "v1", "resource": "sriovnetworknodepolicies"},
            "name": "p-new", "namespace": NS, "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": if operation == "UPDATE" { object.clone() } else { Value::Null },
        }
    });
    // JSON is YAML: the review as one document, the cluster after it.
    format!("{review}\n{CLUSTER}")
}

#[test]
fn review_with_cluster_objects_allows_and_denies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ok = write(
        dir.path(),
        "ok.yaml",
        &review_yaml(
            "CREATE",
            json!({"resourceName": "second", "nodeSelector": {"sriov": "true"}, "numVfs": 8,
            "nicSelector": {"pfNames": ["eth1#4-7"]}}),
        ),
    );
    let out = sriovctl(&["validate", "-f", &ok, "-o", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        json_out(&out)["response"],
        json!({"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": true})
    );

    let overlap = write(
        dir.path(),
        "overlap.yaml",
        &review_yaml(
            "UPDATE",
            json!({"resourceName": "second", "nodeSelector": {"sriov": "true"}, "numVfs": 8,
            "nicSelector": {"pfNames": ["eth1#3-7"]}}),
        ),
    );
    let out = sriovctl(&["validate", "-f", &overlap, "-o", "json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let resp = &json_out(&out)["response"];
    assert_eq!(resp["allowed"], false);
    assert_eq!(
        resp["status"]["reason"],
        "VF index range in eth1#3-7 is overlapped with existing policy existing"
    );
    assert!(
        stderr(&out).contains("denied: VF index range in eth1#3-7"),
        "{}",
        stderr(&out)
    );

    let zero = write(
        dir.path(),
        "zero.yaml",
        &review_yaml(
            "CREATE",
            json!({"resourceName": "second", "nodeSelector": {"sriov": "true"}, "numVfs": 0,
            "nicSelector": {"vendor": "8086"}}),
        ),
    );
    let out = sriovctl(&["validate", "-f", &zero, "-o", "json"], &[]);
    assert_eq!(
        json_out(&out)["response"]["status"]["reason"],
        "numVfs(0) in CR p-new is not allowed"
    );
}

#[test]
fn unsupported_nic_is_refused_unless_dev_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "p.yaml",
        "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodePolicy\nmetadata: {name: odd, namespace: sriov-network-operator}\n\
         spec: {resourceName: odd, nodeSelector: {}, numVfs: 2, nicSelector: {vendor: \"1234\"}}\n",
    );
    let out = sriovctl(&["validate", "-f", &file], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json_out(&out)["response"]["status"]["reason"],
        "vendor 1234 is not supported"
    );
    let out = sriovctl(&["validate", "-f", &file], &[("DEV_MODE", "TRUE")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn bad_input_names_object_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = |api: &str, spec: &str| {
        format!(
            "apiVersion: {api}\nkind: SriovNetworkNodePolicy\nmetadata: {{name: bad, namespace: {NS}}}\nspec: {spec}\n"
        )
    };
    // Unusable input: exit 2, message on stderr.
    let cases = [
        (
            "malformed.yaml",
            "spec: [unclosed\n".to_string(),
            vec!["malformed YAML/JSON"],
        ),
        (
            "version.yaml",
            policy("sriovnetwork.openshift.io/v2", "{numVfs: 1}"),
            vec![
                "SriovNetworkNodePolicy/bad",
                "field apiVersion",
                "sriovnetwork.openshift.io/v2",
            ],
        ),
        (
            "kind.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n".to_string(),
            vec!["Pod/x", "field kind"],
        ),
    ];
    for (name, text, needles) in cases {
        let file = write(dir.path(), name, &text);
        let out = sriovctl(&["validate", "-f", &file, "-o", "json"], &[]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        for n in needles {
            assert!(stderr(&out).contains(n), "{name}: {n:?} not in {}", stderr(&out));
        }
    }
    // Readable but invalid objects: denied (exit 1) with the object and field in the reason.
    let denied = [
        (
            "negative.yaml",
            "{resourceName: r, nodeSelector: {}, numVfs: -1, nicSelector: {pfNames: [eth1]}}",
            "spec.numVfs",
        ),
        (
            "type.yaml",
            "{resourceName: r, nodeSelector: {}, numVfs: many, nicSelector: {pfNames: [eth1]}}",
            "spec.numVfs",
        ),
        (
            "mtu.yaml",
            "{resourceName: r, nodeSelector: {}, numVfs: 1, mtu: 0, nicSelector: {pfNames: [eth1]}}",
            "spec.mtu",
        ),
    ];
    for (name, spec, field) in denied {
        let file = write(dir.path(), name, &policy("sriovnetwork.openshift.io/v1", spec));
        let out = sriovctl(&["validate", "-f", &file, "-o", "json"], &[]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let reason = json_out(&out)["response"]["status"]["reason"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            reason.contains("bad") && reason.contains(field),
            "{name}: {reason}"
        );
    }
    let out = sriovctl(&["validate", "-f", "/nonexistent/x.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/x.yaml"));
}

#[test]
fn bare_objects_get_the_api_servers_schema_checks_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "net.yaml",
        "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetwork\nmetadata: {name: n1, namespace: sriov-network-operator}\n\
         spec: {resourceName: r, vlan: 5000}\n",
    );
    let out = sriovctl(&["validate", "-f", &file, "-o", "json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let reason = json_out(&out)["response"]["status"]["reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        reason.contains("SriovNetwork/n1") && reason.contains("spec.vlan"),
        "{reason}"
    );
    // In the operator namespace a networkNamespace is fine; elsewhere the webhook refuses it.
    let ok = write(
        dir.path(),
        "ok.yaml",
        "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetwork\nmetadata: {name: n2, namespace: sriov-network-operator}\n\
         spec: {resourceName: r, networkNamespace: apps}\n",
    );
    assert_eq!(sriovctl(&["validate", "-f", &ok], &[]).status.code(), Some(0));
    let elsewhere = write(
        dir.path(),
        "elsewhere.yaml",
        "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetwork\nmetadata: {name: n3, namespace: apps}\n\
         spec: {resourceName: r, networkNamespace: other}\n",
    );
    let out = sriovctl(&["validate", "-f", &elsewhere], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        json_out(&out)["response"]["status"]["reason"],
        format!(
            ".Spec.NetworkNamespace field can't be specified if the resource is not in the {NS} namespace"
        )
    );
}

/// The CLI prints exactly what the webhook code answers (the HTTPS server is checked against
/// the same function in sriov-operator's tests).
#[test]
fn output_is_the_webhooks_answer() {
    use sriov_operator::admission::{Cluster, Hook, Settings, parse_objects, review};
    let dir = tempfile::tempdir().expect("tempdir");
    let text = review_yaml(
        "CREATE",
        json!({"resourceName": "second", "nodeSelector": {"sriov": "true"}, "numVfs": 8,
            "nicSelector": {"pfNames": ["eth1#2-7"]}}),
    );
    let file = write(dir.path(), "review.yaml", &text);
    let docs = parse_objects(&text).expect("parses");
    let cluster = Cluster::from_objects(&docs[1..], NS).expect("cluster");
    let settings = Settings {
        namespace: NS.to_string(),
        dev_mode: false,
    };
    for (hook, cmd) in [(Hook::Validate, "validate"), (Hook::Mutate, "mutate")] {
        let expected = review(hook, &docs[0], &settings, &cluster).expect("review");
        let out = sriovctl(&[cmd, "-f", &file, "-o", "json"], &[]);
        assert_eq!(json_out(&out), expected, "{cmd}");
    }
}
