//! `sriovctl render` as a user runs it: the built binary on the shared examples plus a small
//! cluster (operator config, a node, its discovered NICs), and on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const NS: &str = "sriov-network-operator";

const CLUSTER: &str = r#"
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovOperatorConfig
metadata: {name: default, namespace: sriov-network-operator}
spec: {}
---
apiVersion: v1
kind: Node
metadata:
  name: w1
  labels:
    node-role.kubernetes.io/worker: ""
    kubernetes.io/os: linux
    feature.node.kubernetes.io/network-sriov.capable: "true"
---
apiVersion: v1
kind: Node
metadata:
  name: cp1
  labels: {node-role.kubernetes.io/control-plane: "", kubernetes.io/os: linux}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodeState
metadata: {name: w1, namespace: sriov-network-operator}
status:
  interfaces:
  - {name: ens1f0, pciAddress: "0000:65:00.0", vendor: "8086", deviceID: "1593", totalvfs: 64, mtu: 1500, linkType: ETH}
  - {name: eth1v, pciAddress: "0000:66:00.0", vendor: "8086", deviceID: "10c9", totalvfs: 8, mtu: 1500, linkType: ETH}
"#;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/examples")
}

fn example(name: &str) -> String {
    examples().join(name).display().to_string()
}

fn sriovctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sriovctl"))
        .args(args)
        .env("NAMESPACE", NS)
        .env("RESOURCE_PREFIX", "intel.com")
        .output()
        .expect("sriovctl runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write input");
    p.display().to_string()
}

fn render_json(files: &[&str]) -> Vec<Value> {
    let mut args = vec!["render"];
    for f in files {
        args.extend(["-f", f]);
    }
    args.extend(["-o", "json"]);
    let out = sriovctl(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("a JSON list")
}

#[test]
fn renders_node_states_device_plugin_config_and_nads_from_the_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = write(dir.path(), "cluster.yaml", CLUSTER);
    let objects = render_json(&[
        &cluster,
        &example("policy-vm-netdevice.yaml"),
        &example("policy-harvester.yaml"),
        &example("network-container-host-local.yaml"),
    ]);
    let kinds: Vec<&str> = objects.iter().map(|o| o["kind"].as_str().unwrap_or("")).collect();
    // Only w1 runs the config daemon (cp1 is no worker).
    assert_eq!(
        kinds,
        [
            "SriovNetworkNodeState",
            "ConfigMap",
            "NetworkAttachmentDefinition"
        ]
    );

    let state = &objects[0];
    assert_eq!(state["metadata"]["name"], "w1");
    assert_eq!(state["metadata"]["namespace"], NS);
    let ifaces = state["spec"]["interfaces"].as_array().expect("interfaces");
    let by_pci = |pci: &str| {
        ifaces
            .iter()
            .find(|i| i["pciAddress"] == pci)
            .expect("PF rendered")
            .clone()
    };
    let e810 = by_pci("0000:65:00.0");
    assert_eq!(e810["numVfs"], 2);
    assert_eq!(e810["vfGroups"][0]["policyName"], "vf-policy");
    assert_eq!(e810["vfGroups"][0]["vfRange"], "0-1");
    let igb = by_pci("0000:66:00.0");
    assert_eq!(igb["mtu"], 9000);
    assert_eq!(igb["vfGroups"][0]["deviceType"], "vfio-pci");
    // Harvester's `eth1v#1-8`; where it ends on an 8-VF PF is the render's rule (tested there).
    assert!(
        igb["vfGroups"][0]["vfRange"]
            .as_str()
            .is_some_and(|r| r.starts_with("1-")),
        "{igb}"
    );

    let cm = &objects[1];
    assert_eq!(cm["metadata"]["name"], "device-plugin-config");
    let dp: Value = serde_json::from_str(cm["data"]["w1"].as_str().expect("w1 config")).expect("DP JSON");
    assert_eq!(dp["resourceList"][0]["resourceName"], "intelnics");
    assert!(cm["data"].get("cp1").is_none());

    let nad = &objects[2];
    assert_eq!(nad["apiVersion"], "k8s.cni.cncf.io/v1");
    assert_eq!(nad["metadata"]["namespace"], "my-app");
    assert_eq!(
        nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"],
        "intel.com/intelnics"
    );
    let config: Value =
        serde_json::from_str(nad["spec"]["config"].as_str().expect("config")).expect("CNI JSON");
    assert_eq!(config["type"], "sriov");
    assert_eq!(config["ipam"]["type"], "host-local");
}

#[test]
fn yaml_output_is_the_same_objects_and_output_is_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = write(dir.path(), "cluster.yaml", CLUSTER);
    let files = [
        cluster.as_str(),
        &example("policy-vm-netdevice.yaml"),
        &example("network-vm.yaml"),
    ];
    let json = render_json(&files);
    let mut args = vec!["render"];
    for f in files {
        args.extend(["-f", f]);
    }
    let first = sriovctl(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let text = String::from_utf8(first.stdout.clone()).expect("utf-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML documents");
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    assert_eq!(docs, json);
    let second = sriovctl(&args);
    assert_eq!(
        first.stdout, second.stdout,
        "render must be byte-identical on unchanged input"
    );
}

#[test]
fn an_unrenderable_network_names_object_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let net = write(
        dir.path(),
        "net.yaml",
        "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetwork\nmetadata: {name: broken, namespace: sriov-network-operator}\n\
         spec: {resourceName: intelnics, capabilities: '{\"mac\": tru'}\n",
    );
    let out = sriovctl(&["render", "-f", &net, "-o", "json"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "nothing printed on failure");
    let err = stderr(&out);
    assert!(
        err.contains("SriovNetwork") && err.contains("broken") && err.contains("spec.capabilities"),
        "{err}"
    );
}

#[test]
fn bad_manifests_name_object_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = |api: &str, spec: &str| {
        format!(
            "apiVersion: {api}\nkind: SriovNetworkNodePolicy\nmetadata: {{name: bad, namespace: {NS}}}\nspec: {spec}\n"
        )
    };
    let good = "{resourceName: r, nodeSelector: {}, numVfs: 1, nicSelector: {pfNames: [eth1]}}";
    let cases = [
        ("malformed.yaml", "kind: [\n".to_string(), vec!["malformed.yaml"]),
        (
            "version.yaml",
            policy("sriovnetwork.openshift.io/v9", good),
            vec!["bad", "apiVersion"],
        ),
        (
            "kind.yaml",
            "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovThing\nmetadata: {name: t}\n".into(),
            vec!["SriovThing", "kind"],
        ),
        (
            "negative.yaml",
            policy(
                "sriovnetwork.openshift.io/v1",
                "{resourceName: r, nodeSelector: {}, numVfs: -1, nicSelector: {pfNames: [eth1]}}",
            ),
            vec!["bad", "numVfs"],
        ),
        (
            "type.yaml",
            policy(
                "sriovnetwork.openshift.io/v1",
                "{resourceName: r, nodeSelector: {}, numVfs: [1], nicSelector: {pfNames: [eth1]}}",
            ),
            vec!["bad", "numVfs"],
        ),
        (
            "pfnames.yaml",
            policy(
                "sriovnetwork.openshift.io/v1",
                "{resourceName: r, nodeSelector: {}, numVfs: 4, nicSelector: {pfNames: [\"eth1#x-2\"]}}",
            ),
            vec!["bad", "pfNames"],
        ),
    ];
    for (name, text, needles) in cases {
        let file = write(dir.path(), name, &text);
        let out = sriovctl(&["render", "-f", &file, "-o", "json"]);
        assert_ne!(out.status.code(), Some(0), "{name} must fail");
        let err = stderr(&out);
        for n in needles {
            assert!(err.contains(n), "{name}: {n:?} not in {err}");
        }
    }
}
