//! The real `kubectl` (v1.37, `scripts/deps/20-kubectl.sh`) reads the checked-in CRDs and the
//! example CRs. Offline there is no API server, and kubectl's client dry-run still needs API
//! discovery to map each kind to a resource, so this test serves discovery (only) from a tiny
//! local HTTP server built from our CRDs. kubectl then parses every manifest with its own YAML
//! stack (sigs.k8s.io/yaml), maps apiVersion/kind to our CRDs' resources and scopes, and prints
//! the objects; we check the CRDs come back exactly as the types generate them and the CRs
//! decode to what our parser reads. The server also serves the OpenAPI v2 document (protobuf,
//! built from our CRD schemas) that kubectl's client-side `--validate=strict` downloads, so
//! kubectl validates every CR against our schemas too (types, unknown fields, required).
//!
//! kubectl is taken from `$KUBECTL` or `<repo>/.tools/bin/kubectl`. When it is missing the test
//! is skipped, except under `CI=true`, where it fails.

#[path = "kubectl_support/openapi_v2.rs"]
mod openapi_v2;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionSpec;
use serde_json::{Value, json};
use sriov_api::parse_object;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn kubectl() -> Option<PathBuf> {
    let candidate = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join(".tools/bin/kubectl"));
    if candidate.is_file() {
        return Some(candidate);
    }
    sriov_test_support::prerequisite(
        false,
        &format!(
            "kubectl at {} (run scripts/deps/20-kubectl.sh or set KUBECTL)",
            candidate.display()
        ),
    );
    None
}

/// Legacy discovery documents (`/api`, `/apis`, `/apis/<group>/<version>`) for our CRDs plus
/// the core and apiextensions resources the manifests use.
fn discovery() -> Vec<(String, Value)> {
    let mut crds = sriov_api::crd::sriov_crds();
    crds.push(sriov_api::crd::nad_crd());
    let mut docs = vec![
        (
            "/api".to_string(),
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        (
            "/api/v1".to_string(),
            json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "nodes", "singularName": "node", "namespaced": false, "kind": "Node", "verbs": ["get", "list", "create"]},
                {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": ["get", "list", "create"]},
            ]}),
        ),
        (
            "/apis/apiextensions.k8s.io/v1".to_string(),
            json!({"kind": "APIResourceList", "groupVersion": "apiextensions.k8s.io/v1", "resources": [
                {"name": "customresourcedefinitions", "singularName": "customresourcedefinition", "namespaced": false,
                 "kind": "CustomResourceDefinition", "verbs": ["get", "list", "create"], "shortNames": ["crd"]},
            ]}),
        ),
    ];
    let mut groups: Vec<(String, Vec<Value>)> = vec![];
    for crd in &crds {
        let n = &crd.spec.names;
        let resource = json!({
            "name": n.plural, "singularName": n.singular, "namespaced": crd.spec.scope == "Namespaced",
            "kind": n.kind, "verbs": ["get", "list", "create"], "shortNames": n.short_names.clone().unwrap_or_default(),
        });
        match groups.iter_mut().find(|(g, _)| *g == crd.spec.group) {
            Some((_, list)) => list.push(resource),
            None => groups.push((crd.spec.group.clone(), vec![resource])),
        }
    }
    let mut group_list = vec![json!({"name": "apiextensions.k8s.io",
        "versions": [{"groupVersion": "apiextensions.k8s.io/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apiextensions.k8s.io/v1", "version": "v1"}})];
    for (group, resources) in groups {
        let gv = format!("{group}/v1");
        group_list.push(
            json!({"name": group, "versions": [{"groupVersion": gv, "version": "v1"}],
            "preferredVersion": {"groupVersion": gv, "version": "v1"}}),
        );
        docs.push((
            format!("/apis/{gv}"),
            json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources}),
        ));
    }
    docs.push((
        "/apis".to_string(),
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_list}),
    ));
    docs
}

/// Serve discovery and the protobuf OpenAPI v2 document until the process ends; everything
/// else is a 404 Status.
fn serve_discovery() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut docs: Vec<(String, &'static str, Vec<u8>)> = discovery()
        .into_iter()
        .map(|(path, doc)| (path, "application/json", doc.to_string().into_bytes()))
        .collect();
    docs.push((
        "/openapi/v2".to_string(),
        "application/octet-stream",
        openapi_v2::document(),
    ));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let docs = docs.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut content_length = 0usize;
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = header.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            content_length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; content_length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                    let path = path.split('?').next().unwrap_or(path);
                    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404});
                    let (status, content_type, body) = match docs.iter().find(|(p, _, _)| p == path) {
                        Some((_, ct, body)) => ("200 OK", *ct, body.clone()),
                        None => (
                            "404 Not Found",
                            "application/json",
                            not_found.to_string().into_bytes(),
                        ),
                    };
                    let mut response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    response.extend_from_slice(&body);
                    if (&stream).write_all(&response).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// `kubectl create --dry-run=client -o json` over the given manifests; the printed objects.
fn kubectl_dry_run(kubectl: &Path, files: &[PathBuf]) -> Vec<Value> {
    let out = kubectl_create(kubectl, files, "--validate=strict");
    assert!(
        out.status.success(),
        "kubectl rejected the manifests:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_printed(&out.stdout)
}

/// `kubectl create --dry-run=client -o json <validate>` over the given manifests.
fn kubectl_create(kubectl: &Path, files: &[PathBuf], validate: &str) -> std::process::Output {
    let server = serve_discovery();
    let cache = std::env::temp_dir().join(format!("sriov-api-kubectl-cache-{}", std::process::id()));
    let mut cmd = Command::new(kubectl);
    cmd.env("KUBECONFIG", "/dev/null")
        .args(["create", "--dry-run=client", "-o", "json", validate])
        .arg(format!("--server={server}"))
        .arg(format!("--cache-dir={}", cache.display()));
    for f in files {
        cmd.arg("-f").arg(f);
    }
    let out = cmd.output().expect("run kubectl");
    let _ = std::fs::remove_dir_all(&cache);
    out
}

/// kubectl prints one JSON document per object (or a `List`).
fn parse_printed(stdout: &[u8]) -> Vec<Value> {
    let mut objects = Vec::new();
    for doc in serde_json::Deserializer::from_slice(stdout).into_iter::<Value>() {
        let doc = doc.expect("kubectl printed JSON");
        match doc.get("items").and_then(Value::as_array) {
            Some(items) if doc["kind"] == "List" => objects.extend(items.iter().cloned()),
            _ => objects.push(doc),
        }
    }
    objects
}

#[test]
fn kubectl_reads_the_crds_exactly_as_generated() {
    let Some(kubectl) = kubectl() else { return };
    let dir = Path::new(REPO).join("deploy/crds");
    let printed = kubectl_dry_run(&kubectl, &[dir]);
    let mut generated = sriov_api::crd::sriov_crds();
    generated.push(sriov_api::crd::nad_crd());
    assert_eq!(printed.len(), generated.len());
    for crd in generated {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let got = printed
            .iter()
            .find(|o| o["metadata"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("kubectl did not print {name}"));
        // Compare typed: kubectl prints `minimum: 1.0` as `1`, the same number.
        let spec: CustomResourceDefinitionSpec =
            serde_json::from_value(got["spec"].clone()).expect("CRD spec");
        assert_eq!(spec, crd.spec, "{name}");
    }
}

const ALL_KINDS: &str = r#"
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovOperatorConfig
metadata: {name: default, namespace: sriov-network-operator}
spec: {configDaemonNodeSelector: {node-role.kubernetes.io/worker: ""}, logLevel: 2, disablePlugins: [mellanox]}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkPoolConfig
metadata: {name: pool, namespace: sriov-network-operator}
spec: {maxUnavailable: "10%", nodeSelector: {matchLabels: {pool: a}}, rdmaMode: exclusive}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovIBNetwork
metadata: {name: ib, namespace: sriov-network-operator}
spec: {resourceName: mlxib, capabilities: '{"infinibandGUID": true}', linkState: auto}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: OVSNetwork
metadata: {name: ovs, namespace: sriov-network-operator}
spec: {resourceName: ovsres, bridge: br-int, vlan: 7, trunk: [{minID: 10, maxID: 20}, {id: 30}]}
---
apiVersion: sriovnetwork.openshift.io/v1
kind: SriovNetworkNodeState
metadata: {name: worker-0, namespace: sriov-network-operator}
spec:
  interfaces:
  - {pciAddress: "0000:3b:00.0", name: eth1v, numVfs: 8, mtu: 9000, vfGroups: [{resourceName: intelnics, deviceType: vfio-pci, vfRange: 1-8, policyName: p}]}
status:
  syncStatus: Succeeded
  interfaces:
  - {pciAddress: "0000:3b:00.0", name: eth1v, vendor: "8086", deviceID: "1593", totalvfs: 64, numVfs: 8, Vfs: [{pciAddress: "0000:3b:01.0", vfID: 0, Vlan: 0}]}
"#;

#[test]
fn kubectl_maps_and_prints_the_example_crs_as_we_parse_them() {
    let Some(kubectl) = kubectl() else { return };
    let examples = Path::new(REPO).join("../shared/examples");
    let examples = if examples.is_dir() {
        examples
    } else {
        PathBuf::from("/work/shared/examples")
    };
    let tmp = std::env::temp_dir().join(format!("sriov-api-all-kinds-{}.yaml", std::process::id()));
    std::fs::write(&tmp, ALL_KINDS).expect("write manifest");
    let mut files: Vec<PathBuf> = [
        "policy-harvester.yaml",
        "policy-vm-netdevice.yaml",
        "network-vm.yaml",
        "network-container-host-local.yaml",
    ]
    .iter()
    .map(|f| examples.join(f))
    .collect();
    files.push(tmp.clone());
    let printed = kubectl_dry_run(&kubectl, &files);
    let _ = std::fs::remove_file(&tmp);
    assert_eq!(printed.len(), 9, "{printed:#?}");
    let mut sources: Vec<String> = files[..4]
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect();
    sources.extend(ALL_KINDS.split("\n---\n").map(str::to_string));
    for (source, object) in sources.iter().zip(&printed) {
        let ours = parse_object(source).expect("our parser accepts it");
        let theirs = parse_object(&object.to_string()).expect("our parser accepts kubectl's output");
        assert_eq!(
            ours,
            theirs,
            "kubectl and sriov-api read {} differently",
            ours.kind()
        );
    }
}

#[test]
fn kubectl_schema_validation_rejects_bad_fields_naming_them() {
    let Some(kubectl) = kubectl() else { return };
    let bad = "apiVersion: sriovnetwork.openshift.io/v1\nkind: SriovNetworkNodePolicy\nmetadata: {name: bad, namespace: ns}\nspec:\n  resourceName: r\n  nodeSelector: {}\n  numVfs: \"eight\"\n  nicSelector: {pfNames: [eth0], bogus: 1}\n";
    let tmp = std::env::temp_dir().join(format!("sriov-api-bad-{}.yaml", std::process::id()));
    std::fs::write(&tmp, bad).expect("write manifest");
    let out = kubectl_create(&kubectl, std::slice::from_ref(&tmp), "--validate=strict");
    let _ = std::fs::remove_file(&tmp);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("kubectl said: {stderr}");
    assert!(!out.status.success(), "kubectl accepted a bad policy: {stderr}");
    assert!(stderr.contains("spec.numVfs"), "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
}
