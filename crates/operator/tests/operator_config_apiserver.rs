//! The `SriovOperatorConfig` controller against a real kube-apiserver (v1.36.2, sriov-testcluster):
//! the apiserver validates every object the operator deploys (schema, RBAC escalation rules,
//! webhook configuration rules), its `/metrics` `apiserver_request_total` counts the writes, and
//! the webhook's caBundle is checked by a TLS handshake with the real `sriov-network-webhook`
//! binary serving the operator-issued certificate. No controller-manager runs: nothing here needs
//! pods, only the objects.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use sriov_api::SriovOperatorConfig;
use sriov_operator::controller::operator_config::{
    OperatorConfigSettings, ReconcileOutcome, default_config_spec, ensure_default, reconcile_config,
};
use sriov_operator::controller::{OperatorContext, metrics::OperatorMetrics};
use sriov_operator::render::manifests::{DeploySettings, Images, render};
use sriov_testcluster::Cluster;
use tokio::sync::Mutex;

const WEBHOOK_BIN: &str = env!("CARGO_BIN_EXE_sriov-network-webhook");

/// The tests count cluster-wide write requests: they run one at a time.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn settings(namespace: &str) -> OperatorConfigSettings {
    OperatorConfigSettings {
        deploy: DeploySettings {
            namespace: namespace.into(),
            resource_prefix: "openshift.io".into(),
            images: Images {
                sriov_cni: "example.org/sriov-cni:v1".into(),
                infiniband_cni: "example.org/ib-sriov-cni:v1".into(),
                device_plugin: "example.org/sriovdp:v1".into(),
                resources_injector: "example.org/nri:v1".into(),
                config_daemon: "example.org/daemon:v1".into(),
                webhook: "example.org/webhook:v1".into(),
            },
            cni_bin_path: "/opt/cni/bin".into(),
            cluster_type: "kubernetes".into(),
            dev_mode: "FALSE".into(),
            use_external_drainer: false,
            image_pull_secrets: vec![],
            ..Default::default()
        },
        admission_controllers_enabled: true,
    }
}

async fn setup(cluster: &Cluster, namespace: &str) -> OperatorContext {
    let client = cluster.client().unwrap();
    sriov_testcluster::crd::install(&client, &sriov_api::crd::sriov_crds())
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    // Cluster-scoped objects outlive the namespace of a previous test in this binary: start
    // from none, so each test sees the operator create them.
    let by_label = kube::api::ListParams::default().labels("created-by=sriov-network-operator");
    let dp = kube::api::DeleteParams::default();
    Api::<ClusterRole>::all(client.clone())
        .delete_collection(&dp, &by_label)
        .await
        .unwrap();
    Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(client.clone())
        .delete_collection(&dp, &by_label)
        .await
        .unwrap();
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete_collection(&dp, &by_label)
        .await
        .unwrap();
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete_collection(&dp, &by_label)
        .await
        .unwrap();
    OperatorContext {
        client,
        namespace: namespace.into(),
        metrics: Arc::new(OperatorMetrics::new()),
    }
}

/// What the operator writes; the apiserver's own bookkeeping (its identity Lease, the
/// `kubernetes` Endpoints) is written every few seconds and left out.
const OPERATOR_WRITES: &[&str] = &[
    "daemonsets",
    "services",
    "secrets",
    "serviceaccounts",
    "configmaps",
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "sriovoperatorconfigs",
];

/// Sum of `apiserver_request_total` for write verbs (not dry-run) on [`OPERATOR_WRITES`], by
/// `verb resource`.
async fn writes(client: &kube::Client) -> BTreeMap<String, f64> {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(req).await.unwrap();
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let (labels, value) = line.rsplit_once(' ').unwrap();
        let label = |name: &str| {
            labels
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        let verb = label("verb");
        if !["POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"].contains(&verb.as_str())
            || !label("dry_run").is_empty()
            || !OPERATOR_WRITES.contains(&label("resource").as_str())
        {
            continue;
        }
        *out.entry(format!("{verb} {}", label("resource"))).or_insert(0.0) += value.parse::<f64>().unwrap();
    }
    out
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            (d > 0.0).then(|| (k.clone(), d))
        })
        .collect()
}

async fn config(ctx: &OperatorContext) -> SriovOperatorConfig {
    Api::<SriovOperatorConfig>::namespaced(ctx.client.clone(), &ctx.namespace)
        .get("default")
        .await
        .unwrap()
}

async fn patch_spec(ctx: &OperatorContext, spec: serde_json::Value) {
    Api::<SriovOperatorConfig>::namespaced(ctx.client.clone(), &ctx.namespace)
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec})),
        )
        .await
        .unwrap();
}

struct Webhook(Child);
impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves the Secret's certificate with the real webhook binary and completes a TLS handshake
/// trusting only `ca_bundle` for the Service's DNS name, as the apiserver does.
async fn handshake_with_secret_cert(secret: &Secret, ca_bundle: &[u8], dns_name: &str) {
    let data = secret.data.as_ref().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &data["tls.crt"].0).unwrap();
    std::fs::write(dir.path().join("tls.key"), &data["tls.key"].0).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(WEBHOOK_BIN)
        .args([
            "start".to_string(),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--tls-cert-file={}", dir.path().join("tls.crt").display()),
            format!("--tls-private-key-file={}", dir.path().join("tls.key").display()),
        ])
        .env("NAMESPACE", "x")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Webhook(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let tcp = loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "webhook not listening: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_bundle) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from(dns_name.to_string()).unwrap(), tcp)
        .await
        .unwrap_or_else(|e| panic!("the caBundle does not verify the serving cert for {dns_name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_config_deploys_everything_toggles_and_second_pass_writes_nothing() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = Cluster::shared() else { return };
    let ns = "sriov-opconfig";
    let ctx = setup(cluster, ns).await;
    let settings = settings(ns);
    let configs: Api<SriovOperatorConfig> = Api::namespaced(ctx.client.clone(), ns);

    // `default` created when absent, as upstream (admission controllers enabled)
    ensure_default(&configs, &settings).await.unwrap();
    let cfg = config(&ctx).await;
    assert_eq!(cfg.spec, default_config_spec(true));

    let first = reconcile_config(&ctx, &settings, &cfg).await.unwrap();
    assert_eq!(
        first.secrets_issued,
        ["network-resources-injector-secret", "operator-webhook-secret"]
    );
    assert_eq!(first.applied.len(), 22, "{first:?}");

    let daemonsets: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), ns);
    let names: Vec<String> = daemonsets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| d.metadata.name.unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "network-resources-injector",
            "operator-webhook",
            "sriov-device-plugin",
            "sriov-network-config-daemon"
        ]
    );
    let daemon = daemonsets.get("sriov-network-config-daemon").await.unwrap();
    let pod = daemon.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(pod.host_pid, Some(true));
    assert_eq!(pod.init_containers.unwrap().len(), 2);
    assert_eq!(
        daemon.metadata.owner_references.unwrap()[0].name,
        "default",
        "owned by the config"
    );
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    services.get("operator-webhook-service").await.unwrap();
    services.get("network-resources-injector-service").await.unwrap();

    // the caBundle in the webhook configurations verifies the serving cert in the Secret
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let validating = Api::<ValidatingWebhookConfiguration>::all(ctx.client.clone())
        .get("sriov-operator-webhook-config")
        .await
        .unwrap();
    let ca = validating.webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap();
    let webhook_secret = secrets.get("operator-webhook-secret").await.unwrap();
    handshake_with_secret_cert(
        &webhook_secret,
        &ca.0,
        &format!("operator-webhook-service.{ns}.svc"),
    )
    .await;
    let mutating = Api::<MutatingWebhookConfiguration>::all(ctx.client.clone())
        .get("network-resources-injector-config")
        .await
        .unwrap();
    let nri_ca = mutating.webhooks.unwrap()[0]
        .client_config
        .ca_bundle
        .clone()
        .unwrap();
    let nri_secret = secrets.get("network-resources-injector-secret").await.unwrap();
    handshake_with_secret_cert(
        &nri_secret,
        &nri_ca.0,
        &format!("network-resources-injector-service.{ns}.svc"),
    )
    .await;
    assert_ne!(ca.0, nri_ca.0, "one CA per webhook");

    // nothing changed: the second pass reads and writes nothing, the certificate is kept
    let before = writes(&ctx.client).await;
    let second = reconcile_config(&ctx, &settings, &config(&ctx).await)
        .await
        .unwrap();
    let after = writes(&ctx.client).await;
    assert_eq!(second, ReconcileOutcome::default());
    assert_eq!(
        delta(&before, &after),
        BTreeMap::new(),
        "writes on a quiet reconcile"
    );
    assert_eq!(
        secrets.get("operator-webhook-secret").await.unwrap().data,
        webhook_secret.data
    );
    eprintln!(
        "first reconcile: {} objects applied; second: 0 writes",
        first.applied.len()
    );

    // a hand edit of a deployed field is put back, nothing else is written
    daemonsets
        .patch(
            "sriov-device-plugin",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"template": {"spec": {"priorityClassName": null, "hostNetwork": false}}}}),
            ),
        )
        .await
        .unwrap();
    let restored = reconcile_config(&ctx, &settings, &config(&ctx).await)
        .await
        .unwrap();
    assert_eq!(restored.applied, [format!("DaemonSet/{ns}/sriov-device-plugin")]);
    let dp = daemonsets.get("sriov-device-plugin").await.unwrap();
    assert_eq!(dp.spec.unwrap().template.spec.unwrap().host_network, Some(true));

    // The validating webhook is live in the apiserver: with no webhook pod behind it (no kubelet
    // here) it refuses every SriovOperatorConfig change, as it would in a cluster whose webhook
    // is down. Remove its configuration by hand, then switch the webhook off.
    let refused = configs
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"logLevel": 1}})),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("operator-webhook.sriovnetwork.openshift.io"),
        "{refused}"
    );
    Api::<ValidatingWebhookConfiguration>::all(ctx.client.clone())
        .delete("sriov-operator-webhook-config", &Default::default())
        .await
        .unwrap();
    patch_spec(&ctx, json!({"enableOperatorWebhook": false})).await;
    let webhook_off = reconcile_config(&ctx, &settings, &config(&ctx).await)
        .await
        .unwrap();
    assert!(webhook_off.applied.is_empty(), "{webhook_off:?}");
    let mut deleted = webhook_off.deleted.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "ClusterRole/operator-webhook".to_string(),
            "ClusterRoleBinding/operator-webhook-role-binding".into(),
            format!("DaemonSet/{ns}/operator-webhook"),
            "MutatingWebhookConfiguration/sriov-operator-webhook-config".into(),
            format!("Secret/{ns}/operator-webhook-secret"),
            format!("Service/{ns}/operator-webhook-service"),
            format!("ServiceAccount/{ns}/operator-webhook-sa"),
        ]
    );

    // configDaemonNodeSelector: both DaemonSets follow, nothing else is written
    patch_spec(&ctx, json!({"configDaemonNodeSelector": {"sriov": "true"}})).await;
    let before = writes(&ctx.client).await;
    let changed = reconcile_config(&ctx, &settings, &config(&ctx).await)
        .await
        .unwrap();
    let after = writes(&ctx.client).await;
    assert_eq!(
        changed.applied,
        [
            format!("DaemonSet/{ns}/sriov-network-config-daemon"),
            format!("DaemonSet/{ns}/sriov-device-plugin")
        ]
    );
    assert_eq!(
        delta(&before, &after),
        BTreeMap::from([("APPLY daemonsets".to_string(), 2.0)])
    );
    let selector = |d: DaemonSet| d.spec.unwrap().template.spec.unwrap().node_selector.unwrap();
    assert_eq!(
        selector(daemonsets.get("sriov-network-config-daemon").await.unwrap()),
        BTreeMap::from([("sriov".to_string(), "true".to_string())])
    );
    assert_eq!(
        selector(daemonsets.get("sriov-device-plugin").await.unwrap()),
        BTreeMap::from([
            ("sriov".to_string(), "true".to_string()),
            (
                "sriovnetwork.openshift.io/device-plugin".to_string(),
                "Enabled".to_string()
            )
        ])
    );
    // a key dropped from the selector is dropped from the DaemonSet (server-side apply)
    patch_spec(
        &ctx,
        json!({"configDaemonNodeSelector": {"sriov": null, "pool": "a"}}),
    )
    .await;
    reconcile_config(&ctx, &settings, &config(&ctx).await)
        .await
        .unwrap();
    assert_eq!(
        selector(daemonsets.get("sriov-network-config-daemon").await.unwrap()),
        BTreeMap::from([("pool".to_string(), "a".to_string())])
    );

    // enableInjector off: every injector object goes, the rest stays untouched
    patch_spec(&ctx, json!({"enableInjector": false})).await;
    let off = reconcile_config(&ctx, &settings, &config(&ctx).await)
        .await
        .unwrap();
    assert!(off.applied.is_empty(), "{off:?}");
    let mut deleted = off.deleted.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "ClusterRole/network-resources-injector".to_string(),
            "ClusterRoleBinding/network-resources-injector-role-binding".into(),
            format!("ConfigMap/{ns}/nri-control-switches"),
            format!("DaemonSet/{ns}/network-resources-injector"),
            "MutatingWebhookConfiguration/network-resources-injector-config".into(),
            format!("Secret/{ns}/network-resources-injector-secret"),
            format!("Service/{ns}/network-resources-injector-service"),
            format!("ServiceAccount/{ns}/network-resources-injector-sa"),
        ]
    );
    assert!(
        daemonsets
            .get_opt("network-resources-injector")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<ClusterRole>::all(ctx.client.clone())
            .get_opt("network-resources-injector")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        daemonsets
            .get_opt("sriov-network-config-daemon")
            .await
            .unwrap()
            .is_some()
    );
    // and once gone, a further pass deletes nothing
    let before = writes(&ctx.client).await;
    let quiet = reconcile_config(&ctx, &settings, &config(&ctx).await)
        .await
        .unwrap();
    assert_eq!(quiet, ReconcileOutcome::default());
    assert_eq!(delta(&before, &writes(&ctx.client).await), BTreeMap::new());
}

/// Every object of every component, with every option that changes a manifest, is accepted by
/// the apiserver (server-side dry run: schema, RBAC, admissionregistration validation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_manifest_is_accepted_by_the_apiserver() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = Cluster::shared() else { return };
    let ns = "sriov-opconfig-dry";
    let ctx = setup(cluster, ns).await;
    let spec: sriov_api::OperatorConfigSpec = serde_json::from_value(json!({
        "enableInjector": true,
        "enableOperatorWebhook": true,
        "configDaemonNodeSelector": {"a": "b"},
        "configurationMode": "systemd",
        "useCDI": true,
        "disablePlugins": ["mellanox"],
        "configDaemonEnvVars": {"X": "1"},
        "featureGates": {
            "resourceInjectorMatchCondition": true,
            "parallelNicConfig": true,
            "manageSoftwareBridges": true,
            "blockDevicePluginUntilConfigured": true
        }
    }))
    .unwrap();
    let mut deploy = settings(ns).deploy;
    deploy.image_pull_secrets = vec!["pull-secret".into()];
    deploy.use_external_drainer = true;
    let cas = sriov_operator::render::manifests::CaBundles {
        injector: Some(cluster.ca_pem().to_string()),
        operator_webhook: Some(cluster.ca_pem().to_string()),
    };
    let plan = render(&spec, &deploy, &cas).unwrap();
    let mut accepted = 0;
    for (_, object) in &plan.apply {
        let key = sriov_operator::render::manifests::ObjectKey::of(object);
        let (group, version) = key.api_version.split_once('/').unwrap_or(("", &key.api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, &key.kind);
        let ar =
            kube::core::ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", key.kind.to_lowercase()));
        let api: Api<kube::api::DynamicObject> = match &key.namespace {
            Some(n) => Api::namespaced_with(ctx.client.clone(), n, &ar),
            None => Api::all_with(ctx.client.clone(), &ar),
        };
        let params = PatchParams::apply("sriov-network-operator").dry_run();
        api.patch(&key.name, &params, &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| panic!("{key} refused: {e}"));
        accepted += 1;
    }
    assert_eq!(accepted, 22);
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The controller loop itself (`run`): creates `default`, deploys, puts back a DaemonSet deleted
/// by hand (its watch, no timer), follows a spec change, and is silent when nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_loop_deploys_restores_follows_and_stays_quiet() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = Cluster::shared() else { return };
    let ns = "sriov-opconfig-loop";
    let ctx = setup(cluster, ns).await;
    let mut settings = settings(ns);
    // no webhook pods can run here, and a live validating webhook would refuse config changes
    settings.admission_controllers_enabled = false;
    let client = ctx.client.clone();
    let controller = tokio::spawn(sriov_operator::controller::operator_config::run(
        ctx.clone(),
        settings,
    ));
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    wait_for("both DaemonSets", async || {
        let a = daemonsets.get_opt("sriov-network-config-daemon").await.unwrap();
        let b = daemonsets.get_opt("sriov-device-plugin").await.unwrap();
        (a.is_some() && b.is_some()).then_some(())
    })
    .await;
    eprintln!("deployed {:?} after start", started.elapsed());
    let cfg = config(&ctx).await;
    assert_eq!(
        cfg.metadata.finalizers.unwrap_or_default(),
        ["operatorconfig.finalizers.sriovnetwork.openshift.io"]
    );
    assert!(!cfg.spec.enable_injector && !cfg.spec.enable_operator_webhook);

    daemonsets
        .delete("sriov-device-plugin", &Default::default())
        .await
        .unwrap();
    let deleted_at = Instant::now();
    wait_for("the deleted DaemonSet back", async || {
        daemonsets
            .get_opt("sriov-device-plugin")
            .await
            .unwrap()
            .map(|_| ())
    })
    .await;
    eprintln!("restored after {:?}", deleted_at.elapsed());

    patch_spec(&ctx, json!({"configDaemonNodeSelector": {"pool": "b"}})).await;
    wait_for("the new node selector", async || {
        let ds = daemonsets.get("sriov-network-config-daemon").await.unwrap();
        let sel = ds.spec.unwrap().template.spec.unwrap().node_selector.unwrap();
        (sel == BTreeMap::from([("pool".to_string(), "b".to_string())])).then_some(())
    })
    .await;

    // settle, then 5 quiet seconds: no writes at all from the running controller
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = writes(&client).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = writes(&client).await;
    assert_eq!(delta(&before, &after), BTreeMap::new(), "writes while quiet");
    let metrics = ctx.metrics.encode().unwrap();
    assert!(
        metrics.contains("sriov_operator_reconcile_duration_seconds_count{controller=\"operator-config\"}"),
        "{metrics}"
    );

    // deleting the config: the finalizer removes the cluster-scoped objects, then lets it go
    let configs: Api<SriovOperatorConfig> = Api::namespaced(client.clone(), ns);
    configs.delete("default", &Default::default()).await.unwrap();
    wait_for("the config gone", async || {
        configs.get_opt("default").await.unwrap().is_none().then_some(())
    })
    .await;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(
        roles
            .get_opt("sriov-network-config-daemon")
            .await
            .unwrap()
            .is_none()
    );
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(client.clone());
    assert!(
        bindings
            .get_opt("sriov-network-config-daemon")
            .await
            .unwrap()
            .is_none()
    );
    controller.abort();
}

/// cert-manager mode (env `ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED=true`): the
/// operator issues no certificate and never touches the Secrets (cert-manager's), names the
/// Certificate on each webhook configuration, and leaves `caBundle` to cert-manager's CA
/// injector: a value the injector writes (played here by a server-side apply under the
/// injector's field manager, since cert-manager cannot run here) survives the next passes, which
/// write nothing. Disabling a webhook deletes its objects, not cert-manager's Secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_manager_mode_issues_nothing_and_keeps_the_injected_ca() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = Cluster::shared() else { return };
    let ns = "sriov-opconfig-cm";
    let ctx = setup(cluster, ns).await;
    let mut settings = settings(ns);
    settings.deploy.cert_manager = true;
    let configs: Api<SriovOperatorConfig> = Api::namespaced(ctx.client.clone(), ns);
    ensure_default(&configs, &settings).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    // cert-manager's Secret, as its Certificate controller writes it (no label of ours)
    let cm_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "operator-webhook-secret",
                     "annotations": {"cert-manager.io/certificate-name": "operator-webhook-secret"}},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5", "ca.crt": "Y2E="}
    }))
    .unwrap();
    let cm_secret = secrets.create(&PostParams::default(), &cm_secret).await.unwrap();

    let cfg = config(&ctx).await;
    let first = reconcile_config(&ctx, &settings, &cfg).await.unwrap();
    assert!(first.secrets_issued.is_empty(), "{first:?}");
    let names: Vec<String> = secrets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["operator-webhook-secret"], "no Secret of the operator's");
    assert_eq!(
        secrets
            .get("operator-webhook-secret")
            .await
            .unwrap()
            .metadata
            .resource_version,
        cm_secret.metadata.resource_version,
        "cert-manager's Secret untouched"
    );
    let validating_api = Api::<ValidatingWebhookConfiguration>::all(ctx.client.clone());
    let validating = validating_api.get("sriov-operator-webhook-config").await.unwrap();
    assert_eq!(
        validating.metadata.annotations.as_ref().unwrap()["cert-manager.io/inject-ca-from"],
        format!("{ns}/operator-webhook-secret")
    );
    assert_eq!(
        validating.webhooks.as_ref().unwrap()[0].client_config.ca_bundle,
        None
    );
    let mutating = Api::<MutatingWebhookConfiguration>::all(ctx.client.clone())
        .get("network-resources-injector-config")
        .await
        .unwrap();
    assert_eq!(
        mutating.metadata.annotations.as_ref().unwrap()["cert-manager.io/inject-ca-from"],
        format!("{ns}/network-resources-injector-secret")
    );

    // The CA injector fills caBundle under its own field manager (a real PEM: the apiserver
    // parses it when it calls the webhook).
    use base64::Engine as _;
    let injected_pem = cluster.ca_pem().to_string();
    let webhook_name = validating.webhooks.as_ref().unwrap()[0].name.clone();
    validating_api
        .patch(
            "sriov-operator-webhook-config",
            &PatchParams::apply("cert-manager-cainjector").force(),
            &Patch::Apply(json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "sriov-operator-webhook-config"},
                "webhooks": [{"name": webhook_name, "clientConfig": {
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&injected_pem)}}]
            })),
        )
        .await
        .unwrap();
    let before = writes(&ctx.client).await;
    for _ in 0..2 {
        let cfg = config(&ctx).await;
        let again = reconcile_config(&ctx, &settings, &cfg).await.unwrap();
        assert!(
            again.applied.is_empty() && again.secrets_issued.is_empty(),
            "{again:?}"
        );
    }
    assert_eq!(delta(&before, &writes(&ctx.client).await), BTreeMap::new());
    let injected = validating_api.get("sriov-operator-webhook-config").await.unwrap();
    assert_eq!(
        injected.webhooks.unwrap()[0]
            .client_config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.clone()),
        Some(injected_pem.into_bytes()),
        "the injected CA stays"
    );

    // Disabling the operator webhook deletes its configurations but not cert-manager's Secret.
    // (The config is changed in the reconcile's input, not through the apiserver: the operator
    // webhook it configured, failing closed, has no server behind it here.)
    let mut cfg = config(&ctx).await;
    cfg.spec.enable_operator_webhook = false;
    reconcile_config(&ctx, &settings, &cfg).await.unwrap();
    assert!(
        validating_api
            .get_opt("sriov-operator-webhook-config")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        secrets
            .get("operator-webhook-secret")
            .await
            .unwrap()
            .metadata
            .resource_version,
        cm_secret.metadata.resource_version
    );
}
