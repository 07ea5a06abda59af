//! The Helm chart `deploy/helm/sriov-network-operator`, judged by the real `helm` (lint in strict
//! mode, template) and the real kube-apiserver (server-side dry run of everything it renders, and
//! the chart's RBAC really applied, then the operator's reconcile run as the chart's
//! ServiceAccount: the apiserver's RBAC escalation check refuses any Role the operator creates
//! with more than the chart grants it).
//!
//! helm comes from `$HELM` or `<repo>/.tools/bin/helm` (scripts/deps/25-helm.sh), kubectl from
//! `$KUBECTL` or `<repo>/.tools/bin/kubectl` (scripts/deps/20-kubectl.sh).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use sriov_operator::controller::operator_config::{OperatorConfigSettings, reconcile_config};
use sriov_operator::controller::{OperatorContext, metrics::OperatorMetrics};
use sriov_testcluster::Cluster;
use tokio::sync::Mutex;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const CHART: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/helm/sriov-network-operator"
);

static SERIAL: Mutex<()> = Mutex::const_new(());

fn run(cmd: &mut Command, stdin: Option<&str>) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{stdout}\n{stderr}",
        out.status
    );
    stdout + &stderr
}

/// Upstream's chart values with every knob sriov-rs reads turned, as a user's values file would.
const UPSTREAM_STYLE_VALUES: &str = r#"
operator:
  resourcePrefix: example.com
  cniBinPath: /var/lib/cni/bin
  nodeSelector:
    node-role.kubernetes.io/control-plane: ""
  admissionControllers:
    enabled: true
  externalDrainer:
    enabled: true
  extraEnv:
    DEV_MODE: "TRUE"
sriovOperatorConfig:
  deploy: true
  configDaemonNodeSelector:
    feature.node.kubernetes.io/network-sriov.capable: "true"
  logLevel: 0
  disableDrain: true
  configurationMode: daemon
  disablePlugins: [mellanox]
  featureGates:
    parallelNicConfig: true
    resourceInjectorMatchCondition: true
  configDaemonEnvVars:
    SRIOV_CONF_BASE_PATH: /etc/sriov
supportedExtraNICs:
  - 'MyNIC: "8086 1521 1520"'
images:
  operator: registry.example/sriov-rs/operator:v0.1.0
imagePullSecrets: [regcred]
"#;

#[test]
fn chart_crds_are_the_generated_crds() {
    let crds = Path::new(REPO).join("deploy/crds");
    let mut expected: Vec<String> = std::fs::read_dir(&crds)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("sriovnetwork.openshift.io_"))
        .collect();
    expected.sort();
    let mut in_chart: Vec<String> = std::fs::read_dir(Path::new(CHART).join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    in_chart.sort();
    assert_eq!(
        in_chart, expected,
        "the chart's crds/ holds the sriovnetwork CRDs, not Multus' NAD CRD"
    );
    for name in &expected {
        assert_eq!(
            std::fs::read_to_string(Path::new(CHART).join("crds").join(name)).unwrap(),
            std::fs::read_to_string(crds.join(name)).unwrap(),
            "{name}: copy deploy/crds/{name} into the chart"
        );
    }
}

#[test]
fn chart_supported_nics_are_the_builtin_list() {
    let text = std::fs::read_to_string(Path::new(CHART).join("templates/configmap.yaml")).unwrap();
    let listed: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| !l.starts_with(' ') && !l.starts_with("{{"))
        .filter_map(|l| l.split_once(": \""))
        .map(|(k, v)| (k.to_string(), v.trim_end_matches('"').to_string()))
        .collect();
    let builtin = sriov_operator::admission::nics::SupportedNics::builtin();
    let builtin: BTreeMap<String, String> = builtin
        .0
        .iter()
        .map(|(k, id)| {
            (
                k.clone(),
                format!("{} {} {}", id.vendor, id.pf_device, id.vf_device),
            )
        })
        .collect();
    assert_eq!(listed, builtin);
}

#[test]
fn helm_lint_strict_is_clean_with_default_and_upstream_style_values() {
    let Some(helm) = sriov_test_support::repo_tool("HELM", "helm", "scripts/deps/25-helm.sh") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, UPSTREAM_STYLE_VALUES).unwrap();
    let out = run(Command::new(&helm).args(["lint", "--strict", CHART]), None);
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let out = run(
        Command::new(&helm)
            .args(["lint", "--strict", CHART, "-f"])
            .arg(&values),
        None,
    );
    assert!(out.contains("0 chart(s) failed"), "{out}");
}

fn template(helm: &Path, namespace: &str, values: Option<&Path>) -> String {
    let mut cmd = Command::new(helm);
    cmd.args([
        "template",
        "sriov-network-operator",
        CHART,
        "--namespace",
        namespace,
    ]);
    if let Some(v) = values {
        cmd.arg("-f").arg(v);
    }
    run(&mut cmd, None)
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_template_is_accepted_by_the_apiserver() {
    let _serial = SERIAL.lock().await;
    let Some(helm) = sriov_test_support::repo_tool("HELM", "helm", "scripts/deps/25-helm.sh") else {
        return;
    };
    let Some(kubectl) = sriov_test_support::repo_tool("KUBECTL", "kubectl", "scripts/deps/20-kubectl.sh")
    else {
        return;
    };
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, UPSTREAM_STYLE_VALUES).unwrap();
    for (ns, values) in [
        ("helm-defaults", None),
        ("helm-upstream-values", Some(values.as_path())),
    ] {
        namespace(&client, ns).await;
        let manifests = template(&helm, ns, values);
        let out = run(
            Command::new(&kubectl)
                .args(["apply", "--dry-run=server", "-f", "-"])
                .arg("--kubeconfig")
                .arg(cluster.kubeconfig()),
            Some(&manifests),
        );
        let accepted = out.lines().filter(|l| l.ends_with("(server dry run)")).count();
        let kinds = manifests.matches("\nkind: ").count() + usize::from(manifests.starts_with("kind: "));
        assert_eq!(accepted, kinds, "{out}");
        if values.is_some() {
            assert!(
                out.contains(
                    "sriovoperatorconfig.sriovnetwork.openshift.io/default created (server dry run)"
                )
            );
            assert!(manifests.contains("MyNIC: \"8086 1521 1520\""));
            assert!(manifests.contains("- name: regcred"));
            assert!(manifests.contains("parallelNicConfig: true"));
        } else {
            assert!(!manifests.contains("kind: SriovOperatorConfig"));
        }
        eprintln!("{ns}: {accepted} objects accepted by the apiserver (dry run)");
    }
}

/// The chart's RBAC is enough for the operator to deploy every component: its ServiceAccount,
/// ClusterRole, Role and bindings are applied for real, and the reconcile runs impersonating
/// that ServiceAccount. The apiserver refuses a Role or ClusterRole that grants more than the
/// creator holds, so a permission missing from the chart fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_lets_the_operator_deploy_every_component() {
    let _serial = SERIAL.lock().await;
    let Some(helm) = sriov_test_support::repo_tool("HELM", "helm", "scripts/deps/25-helm.sh") else {
        return;
    };
    let Some(kubectl) = sriov_test_support::repo_tool("KUBECTL", "kubectl", "scripts/deps/20-kubectl.sh")
    else {
        return;
    };
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    let ns = "helm-rbac";
    namespace(&client, ns).await;
    let manifests = template(&helm, ns, None);
    let rbac: Vec<&str> = manifests
        .split("\n---")
        .filter(|doc| {
            [
                "kind: ServiceAccount",
                "kind: ClusterRole",
                "kind: Role",
                "kind: RoleBinding",
                "kind: ClusterRoleBinding",
            ]
            .iter()
            .any(|k| doc.contains(&format!("\n{k}\n")))
        })
        .collect();
    assert_eq!(rbac.len(), 5, "{manifests}");
    let rbac = rbac.join("\n---");
    run(
        Command::new(&kubectl)
            .args(["apply", "-f", "-"])
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig()),
        Some(&rbac),
    );

    let mut config = cluster.config().clone();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:sriov-network-operator"));
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".into(),
    ]);
    let as_operator = kube::Client::try_from(config).unwrap();
    let ctx = OperatorContext {
        client: as_operator.clone(),
        namespace: ns.into(),
        metrics: Arc::new(OperatorMetrics::new()),
    };
    let settings = OperatorConfigSettings::from_env(|k| {
        let v = match k {
            "NAMESPACE" => ns,
            "RESOURCE_PREFIX" => "openshift.io",
            "SRIOV_CNI_IMAGE" => "example.org/cni",
            "SRIOV_NETWORK_CONFIG_DAEMON_IMAGE" => "example.org/daemon",
            "SRIOV_DEVICE_PLUGIN_IMAGE" => "example.org/dp",
            "NETWORK_RESOURCES_INJECTOR_IMAGE" => "example.org/nri",
            "SRIOV_NETWORK_WEBHOOK_IMAGE" => "example.org/webhook",
            "ADMISSION_CONTROLLERS_ENABLED" => "true",
            _ => return None,
        };
        Some(v.to_string())
    });
    let configs: Api<sriov_api::SriovOperatorConfig> = Api::namespaced(as_operator, ns);
    sriov_operator::controller::operator_config::ensure_default(&configs, &settings)
        .await
        .unwrap();
    let default = configs.get("default").await.unwrap();
    let outcome = reconcile_config(&ctx, &settings, &default)
        .await
        .unwrap_or_else(|e| panic!("the chart's RBAC is not enough: {e}"));
    assert_eq!(outcome.applied.len(), 22, "{outcome:?}");
    assert_eq!(outcome.secrets_issued.len(), 2);

    // and to delete them: the live validating webhook (no pod behind it here) refuses config
    // changes, so an admin removes it; then the operator removes the rest of both webhooks.
    Api::<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration>::all(client.clone())
        .delete("sriov-operator-webhook-config", &Default::default())
        .await
        .unwrap();
    Api::<sriov_api::SriovOperatorConfig>::namespaced(client.clone(), ns)
        .patch(
            "default",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"spec": {"enableInjector": false, "enableOperatorWebhook": false}}),
            ),
        )
        .await
        .unwrap();
    let default = configs.get("default").await.unwrap();
    let off = reconcile_config(&ctx, &settings, &default)
        .await
        .unwrap_or_else(|e| panic!("the chart's RBAC does not let the operator delete: {e}"));
    assert_eq!(off.deleted.len(), 15, "{off:?}");
}

/// The one switch as a chart value: `sriovOperatorConfig.sriovConfig` lands in the default
/// SriovOperatorConfig the chart deploys, the real apiserver accepts it against the chart's CRD,
/// and enabling it without `deploy` fails the render naming both values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_switch_value_lands_in_the_default_config() {
    let _serial = SERIAL.lock().await;
    let Some(helm) = sriov_test_support::repo_tool("HELM", "helm", "scripts/deps/25-helm.sh") else {
        return;
    };
    let Some(kubectl) = sriov_test_support::repo_tool("KUBECTL", "kubectl", "scripts/deps/20-kubectl.sh")
    else {
        return;
    };
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    namespace(&client, "helm-switch").await;
    let manifests = run(
        Command::new(&helm).args([
            "template",
            "sriov-network-operator",
            CHART,
            "--namespace",
            "helm-switch",
            "--set",
            "sriovOperatorConfig.deploy=true,sriovOperatorConfig.sriovConfig.enabled=true,\
             sriovOperatorConfig.sriovConfig.numVfs=8,sriovOperatorConfig.sriovConfig.deviceType=vfio-pci",
        ]),
        None,
    );
    let config = manifests
        .split("\n---")
        .find(|doc| doc.contains("kind: SriovOperatorConfig"))
        .unwrap();
    let config: sriov_api::SriovOperatorConfig = serde_saphyr::from_str(config).unwrap();
    let switch = config.spec.sriov_config.unwrap();
    assert!(switch.enabled);
    assert_eq!(switch.num_vfs, 8);
    assert_eq!(switch.device_type, "vfio-pci");
    let out = run(
        Command::new(&kubectl)
            .args(["apply", "--dry-run=server", "-f", "-"])
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig()),
        Some(&manifests),
    );
    assert!(
        out.contains("sriovoperatorconfig.sriovnetwork.openshift.io/default created (server dry run)"),
        "{out}"
    );

    let refused = Command::new(&helm)
        .args([
            "template",
            "x",
            CHART,
            "--set",
            "sriovOperatorConfig.sriovConfig.enabled=true",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("sriovOperatorConfig.sriovConfig.enabled=true needs sriovOperatorConfig.deploy=true"),
        "{stderr}"
    );
}

/// Stand-ins for cert-manager's two CRDs (group, kinds and scope as cert-manager's, the schema
/// left open): cert-manager itself cannot run here, so this checks that the chart's Issuer and
/// Certificates are well-formed objects of those kinds, not cert-manager's own validation.
fn cert_manager_crds() -> String {
    ["Issuer", "Certificate"]
        .iter()
        .map(|kind| {
            let plural = format!("{}s", kind.to_lowercase());
            format!(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  \
                 name: {plural}.cert-manager.io\nspec:\n  group: cert-manager.io\n  scope: Namespaced\n  \
                 names: {{kind: {kind}, plural: {plural}, singular: {}, listKind: {kind}List}}\n  \
                 versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      \
                 openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n---\n",
                kind.to_lowercase()
            )
        })
        .collect()
}

/// `certManager.enabled` + `generateSelfSigned`: the chart renders a self-signed Issuer and one
/// Certificate per webhook Secret (named like the Secret, for the operator's
/// `cert-manager.io/inject-ca-from`), and tells the operator not to issue certificates; the
/// apiserver accepts all of it (server dry run). Without `generateSelfSigned` only the operator's
/// switch is set; by default neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_manager_values_render_issuer_certificates_and_the_operator_switch() {
    let _serial = SERIAL.lock().await;
    let Some(helm) = sriov_test_support::repo_tool("HELM", "helm", "scripts/deps/25-helm.sh") else {
        return;
    };
    let Some(kubectl) = sriov_test_support::repo_tool("KUBECTL", "kubectl", "scripts/deps/20-kubectl.sh")
    else {
        return;
    };
    let Some(cluster) = Cluster::shared() else { return };
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    let kubectl_apply = |args: &[&str], input: &str| {
        run(
            Command::new(&kubectl)
                .args(["apply"])
                .args(args)
                .args(["-f", "-", "--kubeconfig"])
                .arg(cluster.kubeconfig()),
            Some(input),
        )
    };
    let out = kubectl_apply(&[], &cert_manager_crds());
    assert!(out.contains("certificates.cert-manager.io"), "{out}");
    namespace(&client, "helm-cert-manager").await;
    let render = |set: &str| {
        run(
            Command::new(&helm).args([
                "template",
                "sriov-network-operator",
                CHART,
                "--namespace",
                "helm-cert-manager",
                "--set",
                set,
            ]),
            None,
        )
    };
    let env = |manifests: &str| {
        let i = manifests
            .find("name: ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED")
            .expect("the operator gets the cert-manager switch");
        manifests[i..].lines().nth(1).unwrap().trim().to_string()
    };
    let manifests = render(
        "operator.admissionControllers.enabled=true,\
         operator.admissionControllers.certificates.certManager.enabled=true,\
         operator.admissionControllers.certificates.certManager.generateSelfSigned=true",
    );
    assert_eq!(env(&manifests), "value: \"true\"");
    let docs: Vec<serde_json::Value> = manifests
        .split("\n---")
        .filter_map(|d| serde_saphyr::from_str::<serde_json::Value>(d).ok())
        .filter(|d| d["apiVersion"] == "cert-manager.io/v1")
        .collect();
    let certificates: BTreeMap<String, &serde_json::Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Certificate")
        .map(|d| (d["metadata"]["name"].as_str().unwrap().to_string(), d))
        .collect();
    assert_eq!(docs.len(), 3, "{docs:#?}");
    assert!(
        docs.iter()
            .any(|d| d["kind"] == "Issuer" && d["spec"]["selfSigned"].is_object())
    );
    for (secret, service) in [
        ("operator-webhook-secret", "operator-webhook-service"),
        (
            "network-resources-injector-secret",
            "network-resources-injector-service",
        ),
    ] {
        let c = certificates
            .get(secret)
            .unwrap_or_else(|| panic!("no Certificate {secret}"));
        assert_eq!(c["spec"]["secretName"], secret);
        assert_eq!(
            c["spec"]["dnsNames"][0],
            format!("{service}.helm-cert-manager.svc")
        );
        assert_eq!(
            c["spec"]["issuerRef"]["name"],
            "sriov-network-operator-selfsigned-issuer"
        );
    }
    let out = kubectl_apply(&["--dry-run=server"], &manifests);
    for accepted in [
        "issuer.cert-manager.io/sriov-network-operator-selfsigned-issuer created (server dry run)",
        "certificate.cert-manager.io/operator-webhook-secret created (server dry run)",
        "certificate.cert-manager.io/network-resources-injector-secret created (server dry run)",
    ] {
        assert!(out.contains(accepted), "{out}");
    }

    let admin_provided = render(
        "operator.admissionControllers.enabled=true,\
         operator.admissionControllers.certificates.certManager.enabled=true",
    );
    assert_eq!(env(&admin_provided), "value: \"true\"");
    assert!(!admin_provided.contains("cert-manager.io/v1"));
    let default = render("operator.admissionControllers.enabled=true");
    assert_eq!(env(&default), "value: \"false\"");
    assert!(!default.contains("cert-manager.io/v1"));
}
