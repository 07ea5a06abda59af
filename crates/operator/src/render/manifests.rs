//! `SriovOperatorConfig` → the objects the operator deploys: the config daemon and device plugin
//! DaemonSets, and, when enabled, the network-resources-injector and the operator webhook
//! (DaemonSets, Services, webhook configurations with their caBundle), with the RBAC of each.
//!
//! The manifests are plain YAML files embedded in the binary (`crates/operator/manifests/`), read
//! as upstream's `bindata/manifests` read, so a reviewer diffs them against upstream's and the Helm
//! chart's RBAC by eye. They use no template language: a scalar written `${NAME}` is replaced
//! whole, and what depends on the spec (args, env, node selectors, init containers, feature gates)
//! is set here, in Rust, on the parsed objects. Pure: spec + settings + CA bundles in, objects out.
//!
//! Deliberate differences from upstream, each for a reason:
//! * `logLevel` and `disableDrain` are not written into pod templates: upstream's daemon and drain
//!   controller read them from the `SriovOperatorConfig` at run time, and a pod-template field
//!   would restart every config daemon on a log-level change;
//! * `blockDevicePluginUntilConfigured` adds the device plugin's `wait-for-config` init container
//!   only when the gate is set explicitly (upstream: on by default), because sriov-rs's config
//!   daemon has no `wait-for-config` yet and a default-on gate would hold every device plugin;
//! * `metricsExporter` deploys nothing (sriov-rs has no metrics exporter binary);
//! * an init container whose image variable is empty is left out instead of rendered with
//!   `image: ""`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sriov_api::OperatorConfigSpec;

/// Label put on every object the operator deploys (upstream puts it on its cluster-scoped ones);
/// the controller watches by it.
pub const CREATED_BY_LABEL: &str = "created-by";
pub const CREATED_BY_VALUE: &str = "sriov-network-operator";
/// Annotation holding the SHA-256 of the rendered object: an object whose annotation differs was
/// rendered from other inputs (a key dropped from a map shows here, not in a subset compare).
pub const DESIRED_HASH_ANNOTATION: &str = "sriovnetwork.openshift.io/desired-hash";

pub const CONFIG_DAEMON: &str = "sriov-network-config-daemon";
pub const DEVICE_PLUGIN: &str = "sriov-device-plugin";
pub const INJECTOR: &str = "network-resources-injector";
pub const OPERATOR_WEBHOOK: &str = "operator-webhook";
pub const INJECTOR_SECRET: &str = "network-resources-injector-secret";
pub const OPERATOR_WEBHOOK_SECRET: &str = "operator-webhook-secret";
pub const INJECTOR_SERVICE: &str = "network-resources-injector-service";
pub const OPERATOR_WEBHOOK_SERVICE: &str = "operator-webhook-service";
/// The node label the device plugin DaemonSet selects on (set by the node-state controller).
pub const DEVICE_PLUGIN_LABEL: &str = "sriovnetwork.openshift.io/device-plugin";
/// Upstream's default CNI bin dir when `SRIOV_CNI_BIN_PATH` is empty.
pub const DEFAULT_CNI_BIN_PATH: &str = "/var/lib/cni/bin";

const CONFIG_DAEMON_YAML: &str = include_str!("../../manifests/config-daemon.yaml");
const DEVICE_PLUGIN_YAML: &str = include_str!("../../manifests/device-plugin.yaml");
const INJECTOR_YAML: &str = include_str!("../../manifests/injector.yaml");
const OPERATOR_WEBHOOK_YAML: &str = include_str!("../../manifests/operator-webhook.yaml");

/// The feature gate names (upstream `pkg/consts`).
pub mod gates {
    pub const PARALLEL_NIC_CONFIG: &str = "parallelNicConfig";
    pub const RESOURCE_INJECTOR_MATCH_CONDITION: &str = "resourceInjectorMatchCondition";
    pub const MANAGE_SOFTWARE_BRIDGES: &str = "manageSoftwareBridges";
    pub const BLOCK_DEVICE_PLUGIN_UNTIL_CONFIGURED: &str = "blockDevicePluginUntilConfigured";
}

/// The images the operator deploys (the operator's env `*_IMAGE`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Images {
    pub sriov_cni: String,
    pub infiniband_cni: String,
    pub device_plugin: String,
    pub resources_injector: String,
    pub config_daemon: String,
    pub webhook: String,
}

/// What the operator's environment fixes for everything it deploys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploySettings {
    /// The operator namespace (env `NAMESPACE`).
    pub namespace: String,
    /// env `RESOURCE_PREFIX`, passed to the device plugin.
    pub resource_prefix: String,
    pub images: Images,
    /// env `SRIOV_CNI_BIN_PATH`; empty means [`DEFAULT_CNI_BIN_PATH`].
    pub cni_bin_path: String,
    /// env `CLUSTER_TYPE` (`kubernetes` / `openshift`), passed to the config daemon.
    pub cluster_type: String,
    /// env `DEV_MODE`, passed as written to the config daemon and the webhook.
    pub dev_mode: String,
    /// env `USE_EXTERNAL_DRAINER`: when `true` the config daemon gets it too.
    pub use_external_drainer: bool,
    /// Secrets named in every pod's `imagePullSecrets` (env `IMAGE_PULL_SECRETS`, comma list).
    pub image_pull_secrets: Vec<String>,
    /// The injector's TLS Secret (env `ADMISSION_CONTROLLERS_CERTIFICATES_INJECTOR_SECRET_NAME`);
    /// empty means [`INJECTOR_SECRET`].
    pub injector_secret: String,
    /// The operator webhook's TLS Secret (env
    /// `ADMISSION_CONTROLLERS_CERTIFICATES_OPERATOR_SECRET_NAME`); empty means
    /// [`OPERATOR_WEBHOOK_SECRET`].
    pub operator_webhook_secret: String,
    /// env `ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED` (`true`, any case), as
    /// upstream: cert-manager fills the two TLS Secrets (Certificates named like them) and its
    /// CA injector the webhook configurations' `caBundle`; the operator issues nothing, deletes
    /// neither Secret, and leaves `caBundle` to the injector (annotation
    /// `cert-manager.io/inject-ca-from: <namespace>/<secret>`).
    pub cert_manager: bool,
}

impl DeploySettings {
    /// The settings from the operator's environment, as upstream's operator reads it (`env` looks
    /// one variable up; an unset variable and an empty one are the same).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> DeploySettings {
        let var = |name: &str| env(name).unwrap_or_default();
        DeploySettings {
            namespace: var("NAMESPACE"),
            resource_prefix: var("RESOURCE_PREFIX"),
            images: Images {
                sriov_cni: var("SRIOV_CNI_IMAGE"),
                infiniband_cni: var("SRIOV_INFINIBAND_CNI_IMAGE"),
                device_plugin: var("SRIOV_DEVICE_PLUGIN_IMAGE"),
                resources_injector: var("NETWORK_RESOURCES_INJECTOR_IMAGE"),
                config_daemon: var("SRIOV_NETWORK_CONFIG_DAEMON_IMAGE"),
                webhook: var("SRIOV_NETWORK_WEBHOOK_IMAGE"),
            },
            cni_bin_path: var("SRIOV_CNI_BIN_PATH"),
            cluster_type: var("CLUSTER_TYPE"),
            dev_mode: var("DEV_MODE"),
            use_external_drainer: var("USE_EXTERNAL_DRAINER").eq_ignore_ascii_case("true"),
            image_pull_secrets: var("IMAGE_PULL_SECRETS")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            injector_secret: var("ADMISSION_CONTROLLERS_CERTIFICATES_INJECTOR_SECRET_NAME"),
            operator_webhook_secret: var("ADMISSION_CONTROLLERS_CERTIFICATES_OPERATOR_SECRET_NAME"),
            cert_manager: var("ADMISSION_CONTROLLERS_CERTIFICATES_CERT_MANAGER_ENABLED")
                .eq_ignore_ascii_case("true"),
        }
    }

    /// The TLS Secret and the Service of a webhook component; `None` for the others.
    pub fn tls_secret(&self, component: Component) -> Option<(String, &'static str)> {
        let or = |name: &str, default: &str| {
            if name.is_empty() {
                default.to_string()
            } else {
                name.to_string()
            }
        };
        match component {
            Component::Injector => Some((or(&self.injector_secret, INJECTOR_SECRET), INJECTOR_SERVICE)),
            Component::OperatorWebhook => Some((
                or(&self.operator_webhook_secret, OPERATOR_WEBHOOK_SECRET),
                OPERATOR_WEBHOOK_SERVICE,
            )),
            Component::ConfigDaemon | Component::DevicePlugin => None,
        }
    }
}

/// The webhooks' CA certificates (PEM), from their TLS Secrets. `None` for a component that is
/// disabled or whose Secret is not made yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaBundles {
    pub injector: Option<String>,
    pub operator_webhook: Option<String>,
}

/// What the operator deploys, by component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    ConfigDaemon,
    DevicePlugin,
    Injector,
    OperatorWebhook,
}

/// One object to delete: its kind, name and namespace (`None` when cluster-scoped).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn of(object: &Value) -> ObjectKey {
        let s = |p: &str| object.pointer(p).and_then(Value::as_str).map(str::to_string);
        ObjectKey {
            api_version: s("/apiVersion").unwrap_or_default(),
            kind: s("/kind").unwrap_or_default(),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name").unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// The operator's decision: objects to apply (in dependency order: accounts and RBAC before the
/// workloads, Services before the webhook configurations) and objects of disabled components to
/// delete (Secrets included).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeployPlan {
    pub apply: Vec<(Component, Value)>,
    pub delete: Vec<(Component, ObjectKey)>,
}

/// Why the manifests cannot be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("embedded manifest {file}: {reason}")]
    Embedded { file: &'static str, reason: String },
    #[error("{component:?} is enabled but its CA bundle is not available yet (Secret {secret})")]
    MissingCa { component: Component, secret: String },
}

/// Which components `spec` enables; the config daemon and device plugin always run.
pub fn enabled(spec: &OperatorConfigSpec, component: Component) -> bool {
    match component {
        Component::ConfigDaemon | Component::DevicePlugin => true,
        Component::Injector => spec.enable_injector,
        Component::OperatorWebhook => spec.enable_operator_webhook,
    }
}

fn gate(spec: &OperatorConfigSpec, name: &str) -> bool {
    spec.feature_gates.get(name).copied().unwrap_or(false)
}

/// Renders every object for `spec`. Enabled webhook components need their CA in `cas`.
pub fn render(
    spec: &OperatorConfigSpec,
    settings: &DeploySettings,
    cas: &CaBundles,
) -> Result<DeployPlan, ManifestError> {
    let mut plan = DeployPlan::default();
    for component in [
        Component::ConfigDaemon,
        Component::DevicePlugin,
        Component::Injector,
        Component::OperatorWebhook,
    ] {
        let (file, yaml) = source(component);
        let ca = match component {
            Component::Injector => cas.injector.as_deref(),
            Component::OperatorWebhook => cas.operator_webhook.as_deref(),
            _ => None,
        };
        let tls_secret = settings.tls_secret(component);
        let vars = variables(settings, ca, tls_secret.as_ref().map(|(s, _)| s.as_str()));
        let mut objects = parse(file, yaml, &vars)?;
        if !enabled(spec, component) {
            for object in &objects {
                plan.delete.push((component, ObjectKey::of(object)));
            }
            // cert-manager's Secret is cert-manager's: deleting it would fight its Certificate.
            if let Some((secret, _)) = tls_secret.filter(|_| !settings.cert_manager) {
                plan.delete.push((
                    component,
                    ObjectKey {
                        api_version: "v1".into(),
                        kind: "Secret".into(),
                        namespace: Some(settings.namespace.clone()),
                        name: secret,
                    },
                ));
            }
            continue;
        }
        if let Some((secret, _)) = &tls_secret
            && ca.is_none()
            && !settings.cert_manager
        {
            return Err(ManifestError::MissingCa {
                component,
                secret: secret.clone(),
            });
        }
        for object in &mut objects {
            customize(component, object, spec, settings);
            if settings.cert_manager
                && let Some((secret, _)) = &tls_secret
            {
                inject_ca_from(object, &format!("{}/{secret}", settings.namespace));
            }
            label_and_hash(object);
        }
        plan.apply.extend(objects.into_iter().map(|o| (component, o)));
    }
    Ok(plan)
}

/// The objects a component deploys, by kind and name, whatever the spec; namespaced ones carry
/// an empty namespace (the keys say which are cluster-scoped).
pub fn render_component_keys(component: Component) -> Result<Vec<ObjectKey>, ManifestError> {
    let (file, yaml) = source(component);
    let vars = variables(&DeploySettings::default(), None, Some(""));
    Ok(parse(file, yaml, &vars)?.iter().map(ObjectKey::of).collect())
}

fn source(component: Component) -> (&'static str, &'static str) {
    match component {
        Component::ConfigDaemon => ("config-daemon.yaml", CONFIG_DAEMON_YAML),
        Component::DevicePlugin => ("device-plugin.yaml", DEVICE_PLUGIN_YAML),
        Component::Injector => ("injector.yaml", INJECTOR_YAML),
        Component::OperatorWebhook => ("operator-webhook.yaml", OPERATOR_WEBHOOK_YAML),
    }
}

fn variables(
    settings: &DeploySettings,
    ca: Option<&str>,
    tls_secret: Option<&str>,
) -> BTreeMap<&'static str, String> {
    use base64::Engine as _;
    let images = &settings.images;
    let cni_bin = if settings.cni_bin_path.is_empty() {
        DEFAULT_CNI_BIN_PATH.to_string()
    } else {
        settings.cni_bin_path.clone()
    };
    BTreeMap::from([
        ("NAMESPACE", settings.namespace.clone()),
        ("SRIOV_CNI_IMAGE", images.sriov_cni.clone()),
        ("SRIOV_INFINIBAND_CNI_IMAGE", images.infiniband_cni.clone()),
        ("SRIOV_DEVICE_PLUGIN_IMAGE", images.device_plugin.clone()),
        (
            "NETWORK_RESOURCES_INJECTOR_IMAGE",
            images.resources_injector.clone(),
        ),
        ("SRIOV_NETWORK_CONFIG_DAEMON_IMAGE", images.config_daemon.clone()),
        ("SRIOV_NETWORK_WEBHOOK_IMAGE", images.webhook.clone()),
        ("SRIOV_CNI_BIN_PATH", cni_bin),
        ("DEV_MODE", settings.dev_mode.clone()),
        ("TLS_SECRET", tls_secret.unwrap_or_default().to_string()),
        (
            "CA_BUNDLE",
            ca.map(|pem| base64::engine::general_purpose::STANDARD.encode(pem))
                .unwrap_or_default(),
        ),
    ])
}

/// Parses one embedded multi-document file and substitutes the `${NAME}` scalars.
fn parse(
    file: &'static str,
    yaml: &str,
    vars: &BTreeMap<&'static str, String>,
) -> Result<Vec<Value>, ManifestError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).map_err(|e| ManifestError::Embedded {
        file,
        reason: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(docs.len());
    for mut doc in docs.into_iter().filter(|d| !d.is_null()) {
        substitute(&mut doc, vars).map_err(|name| ManifestError::Embedded {
            file,
            reason: format!("unknown variable ${{{name}}}"),
        })?;
        out.push(doc);
    }
    Ok(out)
}

fn substitute(value: &mut Value, vars: &BTreeMap<&'static str, String>) -> Result<(), String> {
    match value {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                *s = vars.get(name).cloned().ok_or_else(|| name.to_string())?;
            }
        }
        Value::Array(items) => {
            for item in items {
                substitute(item, vars)?;
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                substitute(item, vars)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn kind(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or_default()
}

fn set(object: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = object.pointer_mut(pointer) {
        *slot = value;
    }
}

fn customize(component: Component, object: &mut Value, spec: &OperatorConfigSpec, settings: &DeploySettings) {
    let is_workload = kind(object) == "DaemonSet";
    if is_workload && !settings.image_pull_secrets.is_empty() {
        let secrets: Vec<Value> = settings
            .image_pull_secrets
            .iter()
            .map(|n| json!({"name": n}))
            .collect();
        if let Some(pod) = object
            .pointer_mut("/spec/template/spec")
            .and_then(Value::as_object_mut)
        {
            pod.insert("imagePullSecrets".into(), Value::Array(secrets));
        }
    }
    match (component, kind(object)) {
        (Component::ConfigDaemon, "DaemonSet") => config_daemon(object, spec, settings),
        (Component::DevicePlugin, "DaemonSet") => device_plugin(object, spec, settings),
        (Component::Injector, "MutatingWebhookConfiguration") => {
            if gate(spec, gates::RESOURCE_INJECTOR_MATCH_CONDITION)
                && let Some(hook) = object.pointer_mut("/webhooks/0").and_then(Value::as_object_mut)
            {
                hook.insert("failurePolicy".into(), json!("Fail"));
                hook.insert(
                    "matchConditions".into(),
                    json!([{
                        "name": "include-networks-annotation",
                        "expression": "has(object.metadata.annotations) && \"k8s.v1.cni.cncf.io/networks\" in object.metadata.annotations"
                    }]),
                );
            }
        }
        _ => {}
    }
}

/// The config daemon's node selector: `configDaemonNodeSelector`, else upstream's default.
pub fn config_daemon_node_selector(spec: &OperatorConfigSpec) -> BTreeMap<String, String> {
    if spec.config_daemon_node_selector.is_empty() {
        BTreeMap::from([
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("node-role.kubernetes.io/worker".to_string(), String::new()),
        ])
    } else {
        spec.config_daemon_node_selector.clone()
    }
}

/// The device plugin's node selector: `configDaemonNodeSelector` (or `kubernetes.io/os: linux`)
/// plus `sriovnetwork.openshift.io/device-plugin: Enabled`, as upstream.
pub fn device_plugin_node_selector(spec: &OperatorConfigSpec) -> BTreeMap<String, String> {
    let mut selector = if spec.config_daemon_node_selector.is_empty() {
        BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())])
    } else {
        spec.config_daemon_node_selector.clone()
    };
    selector.insert(DEVICE_PLUGIN_LABEL.to_string(), "Enabled".to_string());
    selector
}

/// The config daemon's arguments (upstream: `start [--use-systemd-service] [--disable-plugins=…]
/// [--parallel-nic-config] [--manage-software-bridges]`).
pub fn config_daemon_args(spec: &OperatorConfigSpec) -> Vec<String> {
    let mut args = vec!["start".to_string()];
    if spec.configuration_mode == "systemd" {
        args.push("--use-systemd-service".into());
    }
    if !spec.disable_plugins.is_empty() {
        args.push(format!("--disable-plugins={}", spec.disable_plugins.join(",")));
    }
    if gate(spec, gates::PARALLEL_NIC_CONFIG) {
        args.push("--parallel-nic-config".into());
    }
    if gate(spec, gates::MANAGE_SOFTWARE_BRIDGES) {
        args.push("--manage-software-bridges".into());
    }
    args
}

fn config_daemon(ds: &mut Value, spec: &OperatorConfigSpec, settings: &DeploySettings) {
    set(
        ds,
        "/spec/template/spec/nodeSelector",
        json!(config_daemon_node_selector(spec)),
    );
    set(
        ds,
        "/spec/template/spec/containers/0/args",
        json!(config_daemon_args(spec)),
    );
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    let mut env = vec![
        json!({"name": "NODE_NAME", "valueFrom": field("spec.nodeName")}),
        json!({"name": "NAMESPACE", "valueFrom": field("metadata.namespace")}),
        json!({"name": "CLUSTER_TYPE", "value": settings.cluster_type}),
        json!({"name": "DEV_MODE", "value": settings.dev_mode}),
    ];
    if settings.use_external_drainer {
        env.push(json!({"name": "USE_EXTERNAL_DRAINER", "value": "true"}));
    }
    for (name, value) in &spec.config_daemon_env_vars {
        env.push(json!({"name": name, "value": value}));
    }
    set(ds, "/spec/template/spec/containers/0/env", Value::Array(env));

    let image = settings.images.config_daemon.clone();
    if let Some(inits) = ds
        .pointer_mut("/spec/template/spec/initContainers")
        .and_then(Value::as_array_mut)
    {
        inits.retain(|c| {
            c.get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| !i.is_empty())
        });
        if spec.configuration_mode == "systemd" {
            inits.push(json!({
                "name": "sriov-service-copy",
                "image": image,
                "command": ["/bin/sh", "-c", "mkdir -p /host/var/lib/sriov/ && cp /usr/bin/sriov-network-config-daemon /host/var/lib/sriov/sriov-network-config-daemon"],
                "securityContext": {"privileged": true},
                "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}],
            }));
        }
    }
}

/// The device plugin's arguments, upstream's.
pub fn device_plugin_args(spec: &OperatorConfigSpec, settings: &DeploySettings) -> Vec<String> {
    let mut args = vec![
        "--log-level=10".to_string(),
        format!("--resource-prefix={}", settings.resource_prefix),
        "--config-file=/etc/pcidp/$(NODE_NAME)".to_string(),
    ];
    if spec.use_cdi {
        args.push("--use-cdi".into());
    }
    args
}

fn device_plugin(ds: &mut Value, spec: &OperatorConfigSpec, settings: &DeploySettings) {
    set(
        ds,
        "/spec/template/spec/nodeSelector",
        json!(device_plugin_node_selector(spec)),
    );
    set(
        ds,
        "/spec/template/spec/containers/0/args",
        json!(device_plugin_args(spec, settings)),
    );
    if gate(spec, gates::BLOCK_DEVICE_PLUGIN_UNTIL_CONFIGURED) {
        set(
            ds,
            "/spec/template/spec/initContainers",
            json!([{
                "name": "sriov-device-plugin-init",
                "image": settings.images.config_daemon,
                "command": ["sriov-network-config-daemon"],
                "args": ["wait-for-config"],
                "env": [
                    {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                ],
                "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}},
            }]),
        );
    }
    if spec.use_cdi {
        if let Some(mounts) = ds
            .pointer_mut("/spec/template/spec/containers/0/volumeMounts")
            .and_then(Value::as_array_mut)
        {
            mounts.push(json!({"name": "dynamic-cdi", "mountPath": "/var/run/cdi"}));
        }
        if let Some(volumes) = ds
            .pointer_mut("/spec/template/spec/volumes")
            .and_then(Value::as_array_mut)
        {
            volumes.push(json!({"name": "dynamic-cdi", "hostPath": {"path": "/var/run/cdi", "type": "DirectoryOrCreate"}}));
        }
    }
}

/// Adds the `created-by` label and the [`DESIRED_HASH_ANNOTATION`] (hash of everything else).
/// cert-manager mode: a webhook configuration names the Certificate its CA comes from and
/// carries no `caBundle` of ours (server-side apply then leaves the CA injector's value alone).
fn inject_ca_from(object: &mut Value, certificate: &str) {
    if !kind(object).ends_with("WebhookConfiguration") {
        return;
    }
    if let Some(hooks) = object.get_mut("webhooks").and_then(Value::as_array_mut) {
        for hook in hooks {
            if let Some(client) = hook.get_mut("clientConfig").and_then(Value::as_object_mut) {
                client.remove("caBundle");
            }
        }
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(CERT_MANAGER_INJECT_CA_FROM.into(), json!(certificate));
        }
    }
}

/// cert-manager's CA injector reads this annotation: `<namespace>/<Certificate name>`.
pub const CERT_MANAGER_INJECT_CA_FROM: &str = "cert-manager.io/inject-ca-from";

fn label_and_hash(object: &mut Value) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(CREATED_BY_LABEL.into(), json!(CREATED_BY_VALUE));
    }
    let hash = desired_hash(object);
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(DESIRED_HASH_ANNOTATION.into(), json!(hash));
        }
    }
}

/// SHA-256 (hex) of the object without its hash annotation.
pub fn desired_hash(object: &Value) -> String {
    let mut copy = object.clone();
    if let Some(annotations) = copy
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(DESIRED_HASH_ANNOTATION);
    }
    let digest = Sha256::digest(copy.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the live object must be rewritten to become `desired`: it is absent, was rendered from
/// other inputs (hash annotation), or someone changed a field the operator sets. Fields the
/// apiserver adds (defaults, status, clusterIP) are ignored, and so is a zero value the
/// apiserver drops (`false`, `0`, `""`, `{}`, `[]`), as Go's `omitempty` does.
pub fn needs_apply(desired: &Value, live: Option<&Value>) -> bool {
    let Some(live) = live else { return true };
    let hash = |v: &Value| {
        v.pointer("/metadata/annotations")
            .and_then(|a| a.get(DESIRED_HASH_ANNOTATION))
            .cloned()
    };
    if hash(desired) != hash(live) {
        return true;
    }
    !contains(live, desired)
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// `live` holds every non-zero field of `want` with the same value (lists element by element,
/// same length).
fn contains(live: &Value, want: &Value) -> bool {
    match (live, want) {
        (Value::Object(l), Value::Object(w)) => w.iter().all(|(k, wv)| match l.get(k) {
            Some(lv) => contains(lv, wv),
            None => is_zero(wv),
        }),
        (Value::Array(l), Value::Array(w)) => {
            l.len() == w.len() && l.iter().zip(w).all(|(lv, wv)| contains(lv, wv))
        }
        (Value::Number(l), Value::Number(w)) => l.as_f64() == w.as_f64(),
        (l, w) => l == w || (is_zero(w) && is_zero(l)),
    }
}

#[cfg(test)]
#[path = "manifests_tests.rs"]
mod tests;
