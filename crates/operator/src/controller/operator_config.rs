//! The `SriovOperatorConfig` controller: deploys what the `default` config asks for (the config
//! daemon, the device plugin, and when enabled the injector and the operator webhook) from the
//! manifests embedded in the binary ([`crate::render::manifests`]).
//!
//! Each reconcile renders the whole set, reads each object back and writes only those that differ
//! (server-side apply under [`FIELD_MANAGER`]), deletes the objects of disabled components that
//! still exist, and keeps each webhook's TLS Secret (issued here, reused while it fits). It runs
//! when the config changes and when a deployed DaemonSet, Service, Secret or webhook configuration
//! changes (watched by the `created-by` label), and never on a timer: a quiet cluster costs no
//! requests. Namespaced objects are owned by the config, so deleting it lets the garbage collector
//! remove them; its finalizer removes the cluster-scoped ones: the webhook configurations, which
//! would otherwise keep failing admissions with no server behind them (upstream does the same),
//! and the ClusterRoles and bindings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{self, Event};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use sriov_api::operator_config::DEFAULT_OPERATOR_CONFIG_NAME;
use sriov_api::{OperatorConfigSpec, SriovOperatorConfig};

use super::webhook_certs;
use super::{FIELD_MANAGER, OperatorContext};
use crate::render::manifests::{
    self, CREATED_BY_LABEL, CREATED_BY_VALUE, CaBundles, Component, DeployPlan, DeploySettings, ObjectKey,
};

/// The controller's name in metrics and logs.
pub const CONTROLLER: &str = "operator-config";
/// Upstream's finalizer on the `SriovOperatorConfig`.
pub const FINALIZER: &str = "operatorconfig.finalizers.sriovnetwork.openshift.io";

/// What the operator's environment gives this controller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorConfigSettings {
    pub deploy: DeploySettings,
    /// env `ADMISSION_CONTROLLERS_ENABLED`: the `default` config the operator creates enables
    /// the injector and the operator webhook (upstream).
    pub admission_controllers_enabled: bool,
}

impl OperatorConfigSettings {
    /// From the operator's environment (see [`DeploySettings::from_env`]).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> OperatorConfigSettings {
        let enabled = env("ADMISSION_CONTROLLERS_ENABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        OperatorConfigSettings {
            deploy: DeploySettings::from_env(env),
            admission_controllers_enabled: enabled,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorConfigError {
    #[error("kubernetes API: {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Manifest(#[from] manifests::ManifestError),
    #[error(
        "Secret {namespace}/{secret} exists but was not created by the operator and has no ca.crt: \
         left unchanged; give it a ca.crt (cert-manager does) or delete it so the operator issues one"
    )]
    ForeignSecret { namespace: String, secret: String },
    #[error("issuing the certificate for Secret {secret}: {source}")]
    Certificate {
        secret: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("encoding {object}: {source}")]
    Encode {
        object: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("finalizer: {0}")]
    Finalizer(String),
}

fn kube_err(context: impl Into<String>) -> impl FnOnce(kube::Error) -> OperatorConfigError {
    let context = context.into();
    move |source| OperatorConfigError::Kube { context, source }
}

/// The spec of the `default` config the operator creates when there is none (upstream
/// `createDefaultOperatorConfig`).
pub fn default_config_spec(admission_controllers_enabled: bool) -> OperatorConfigSpec {
    // One rule for upstream's defaults: the binary's (which also knows about single-node
    // clusters and creates the config before any controller starts).
    super::default_config::default_operator_config("", admission_controllers_enabled, false).spec
}

/// What one reconcile did: the objects written and deleted (logged, and counted by the tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileOutcome {
    pub applied: Vec<String>,
    pub deleted: Vec<String>,
    pub secrets_issued: Vec<String>,
}

struct State {
    ctx: OperatorContext,
    settings: OperatorConfigSettings,
}

/// Creates the `default` config if absent, then reconciles it until the watch streams end.
pub async fn run(ctx: OperatorContext, settings: OperatorConfigSettings) -> Result<(), OperatorConfigError> {
    let configs: Api<SriovOperatorConfig> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    ensure_default(&configs, &settings).await?;
    let owned = watcher::Config::default().labels(&format!("{CREATED_BY_LABEL}={CREATED_BY_VALUE}"));
    let default_ref =
        ObjectRef::<SriovOperatorConfig>::new(DEFAULT_OPERATOR_CONFIG_NAME).within(&ctx.namespace);
    let client = ctx.client.clone();
    let namespace = ctx.namespace.clone();
    let (r1, r2, r3, r4, r5) = (
        default_ref.clone(),
        default_ref.clone(),
        default_ref.clone(),
        default_ref.clone(),
        default_ref,
    );
    Controller::new(
        configs,
        watcher::Config::default().fields(&format!("metadata.name={DEFAULT_OPERATOR_CONFIG_NAME}")),
    )
    .watches(
        Api::<DaemonSet>::namespaced(client.clone(), &namespace),
        owned.clone(),
        move |_| Some(r1.clone()),
    )
    .watches(
        Api::<Service>::namespaced(client.clone(), &namespace),
        owned.clone(),
        move |_| Some(r2.clone()),
    )
    .watches(
        Api::<Secret>::namespaced(client.clone(), &namespace),
        owned.clone(),
        move |_| Some(r3.clone()),
    )
    .watches(
        Api::<MutatingWebhookConfiguration>::all(client.clone()),
        owned.clone(),
        move |_| Some(r4.clone()),
    )
    .watches(
        Api::<ValidatingWebhookConfiguration>::all(client),
        owned,
        move |_| Some(r5.clone()),
    )
    .run(reconcile, error_policy, Arc::new(State { ctx, settings }))
    .for_each(|result| async move {
        if let Err(e) = result {
            tracing::warn!(controller = CONTROLLER, error = %e, "reconcile failed");
        }
    })
    .await;
    Ok(())
}

/// Creates the `default` config when it does not exist.
pub async fn ensure_default(
    configs: &Api<SriovOperatorConfig>,
    settings: &OperatorConfigSettings,
) -> Result<(), OperatorConfigError> {
    if configs
        .get_opt(DEFAULT_OPERATOR_CONFIG_NAME)
        .await
        .map_err(kube_err("get SriovOperatorConfig default"))?
        .is_some()
    {
        return Ok(());
    }
    let config = SriovOperatorConfig::new(
        DEFAULT_OPERATOR_CONFIG_NAME,
        default_config_spec(settings.admission_controllers_enabled),
    );
    match configs.create(&PostParams::default(), &config).await {
        Ok(_) => {
            tracing::info!("created SriovOperatorConfig default");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(kube_err("create SriovOperatorConfig default")(e)),
    }
}

async fn reconcile(
    config: Arc<SriovOperatorConfig>,
    state: Arc<State>,
) -> Result<Action, OperatorConfigError> {
    let started = Instant::now();
    let configs: Api<SriovOperatorConfig> = Api::namespaced(state.ctx.client.clone(), &state.ctx.namespace);
    let result = finalizer::finalizer(&configs, FINALIZER, config, |event| async {
        match event {
            Event::Apply(config) => {
                let outcome = reconcile_config(&state.ctx, &state.settings, &config).await?;
                if outcome != ReconcileOutcome::default() {
                    tracing::info!(controller = CONTROLLER, ?outcome, "deployed");
                }
                Ok(Action::await_change())
            }
            Event::Cleanup(_) => {
                remove_cluster_scoped(&state.ctx).await?;
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => OperatorConfigError::Finalizer(other.to_string()),
    });
    state
        .ctx
        .metrics
        .observe_reconcile(CONTROLLER, started.elapsed(), result.is_err());
    result
}

fn error_policy(_: Arc<SriovOperatorConfig>, error: &OperatorConfigError, _: Arc<State>) -> Action {
    tracing::warn!(controller = CONTROLLER, %error, "retrying in 5s");
    Action::requeue(Duration::from_secs(5))
}

/// One reconcile of `config`: certificates, render, apply what differs, delete what is disabled.
/// Public so tests can count what a second pass writes.
pub async fn reconcile_config(
    ctx: &OperatorContext,
    settings: &OperatorConfigSettings,
    config: &SriovOperatorConfig,
) -> Result<ReconcileOutcome, OperatorConfigError> {
    let mut outcome = ReconcileOutcome::default();
    if config.name_any() != DEFAULT_OPERATOR_CONFIG_NAME {
        return Ok(outcome);
    }
    let spec = &config.spec;
    let mut cas = CaBundles::default();
    for component in [Component::Injector, Component::OperatorWebhook] {
        // With cert-manager the Secrets and the caBundle are cert-manager's (see DeploySettings).
        if !manifests::enabled(spec, component) || settings.deploy.cert_manager {
            continue;
        }
        let ca = ensure_tls_secret(ctx, &settings.deploy, component, &mut outcome).await?;
        match component {
            Component::Injector => cas.injector = ca,
            _ => cas.operator_webhook = ca,
        }
    }
    let plan = manifests::render(spec, &settings.deploy, &cas)?;
    apply_plan(ctx, config, &plan, &mut outcome).await?;
    Ok(outcome)
}

/// The webhook's CA: the one in its Secret when that still fits, else a new one written there.
async fn ensure_tls_secret(
    ctx: &OperatorContext,
    deploy: &DeploySettings,
    component: Component,
    outcome: &mut ReconcileOutcome,
) -> Result<Option<String>, OperatorConfigError> {
    let Some((secret_name, service)) = deploy.tls_secret(component) else {
        return Ok(None);
    };
    let secret_name = secret_name.as_str();
    let names = webhook_certs::service_dns_names(service, &ctx.namespace);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let existing = secrets
        .get_opt(secret_name)
        .await
        .map_err(kube_err(format!("get Secret {secret_name}")))?;
    if let Some(ca) = existing
        .as_ref()
        .and_then(|s| webhook_certs::reusable_ca(s, &names))
    {
        return Ok(Some(ca));
    }
    // A Secret the operator did not issue (a user's, cert-manager's) is used as it is, never
    // replaced: deleting it would fight whoever writes it.
    if let Some(foreign) = existing
        .as_ref()
        .filter(|s| !webhook_certs::issued_by_operator(s))
    {
        return match webhook_certs::foreign_ca(foreign) {
            Some(ca) => Ok(Some(ca)),
            None => Err(OperatorConfigError::ForeignSecret {
                namespace: ctx.namespace.clone(),
                secret: secret_name.to_string(),
            }),
        };
    }
    let issued = webhook_certs::issue(&names).map_err(|source| OperatorConfigError::Certificate {
        secret: secret_name.to_string(),
        source,
    })?;
    let secret = webhook_certs::tls_secret(secret_name, &ctx.namespace, &names, &issued);
    // Our own Secret of another shape (issued for other names, keys missing) is replaced whole.
    if existing.is_some() {
        secrets
            .delete(secret_name, &DeleteParams::default())
            .await
            .map_err(kube_err(format!("delete Secret {secret_name}")))?;
    }
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(kube_err(format!("create Secret {secret_name}")))?;
    outcome.secrets_issued.push(secret_name.to_string());
    Ok(Some(issued.ca_pem))
}

fn api_for(ctx: &OperatorContext, key: &ObjectKey) -> Api<DynamicObject> {
    let (group, version) = match key.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", key.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &key.kind);
    // Every kind deployed here pluralises as lowercase + "s".
    let resource = ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", key.kind.to_lowercase()));
    match &key.namespace {
        Some(ns) => Api::namespaced_with(ctx.client.clone(), ns, &resource),
        None => Api::all_with(ctx.client.clone(), &resource),
    }
}

/// Namespaced objects are owned by the config (garbage-collected with it).
fn with_owner(mut object: Value, config: &SriovOperatorConfig) -> Value {
    let namespaced = object.pointer("/metadata/namespace").is_some();
    if let (true, Some(owner)) = (namespaced, config.controller_owner_ref(&()))
        && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("ownerReferences".into(), json!([owner]));
    }
    object
}

async fn apply_plan(
    ctx: &OperatorContext,
    config: &SriovOperatorConfig,
    plan: &DeployPlan,
    outcome: &mut ReconcileOutcome,
) -> Result<(), OperatorConfigError> {
    for (_, object) in &plan.apply {
        let key = ObjectKey::of(object);
        let desired = with_owner(object.clone(), config);
        let api = api_for(ctx, &key);
        let live = api
            .get_opt(&key.name)
            .await
            .map_err(kube_err(format!("get {key}")))?;
        let live = live
            .map(|l| serde_json::to_value(&l))
            .transpose()
            .map_err(|source| OperatorConfigError::Encode {
                object: key.to_string(),
                source,
            })?;
        if !manifests::needs_apply(&desired, live.as_ref()) {
            continue;
        }
        api.patch(
            &key.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map_err(kube_err(format!("apply {key}")))?;
        outcome.applied.push(key.to_string());
    }
    for (_, key) in &plan.delete {
        delete_if_present(ctx, key, outcome).await?;
    }
    Ok(())
}

async fn delete_if_present(
    ctx: &OperatorContext,
    key: &ObjectKey,
    outcome: &mut ReconcileOutcome,
) -> Result<(), OperatorConfigError> {
    let api = api_for(ctx, key);
    if api
        .get_metadata_opt(&key.name)
        .await
        .map_err(kube_err(format!("get {key}")))?
        .is_none()
    {
        return Ok(());
    }
    match api.delete(&key.name, &DeleteParams::background()).await {
        Ok(_) => {
            outcome.deleted.push(key.to_string());
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(kube_err(format!("delete {key}"))(e)),
    }
}

/// On the config's deletion the cluster-scoped objects go: the webhook configurations (nothing
/// would serve them) and the ClusterRoles and bindings, which no ownerReference can tie to a
/// namespaced config. The namespaced objects follow through the garbage collector.
async fn remove_cluster_scoped(ctx: &OperatorContext) -> Result<(), OperatorConfigError> {
    let everything_off = OperatorConfigSpec::default();
    let plan = manifests::render(&everything_off, &DeploySettings::default(), &CaBundles::default())?;
    let mut outcome = ReconcileOutcome::default();
    for (_, key) in &plan.delete {
        if key.namespace.is_none() {
            delete_if_present(ctx, key, &mut outcome).await?;
        }
    }
    // the config daemon's and device plugin's objects are never in `delete` (always enabled)
    let daemon = manifests::render_component_keys(Component::ConfigDaemon)?;
    for key in daemon.iter().filter(|k| k.namespace.is_none()) {
        delete_if_present(ctx, key, &mut outcome).await?;
    }
    if !outcome.deleted.is_empty() {
        tracing::info!(controller = CONTROLLER, deleted = ?outcome.deleted, "config deleted: removed cluster-scoped objects");
    }
    Ok(())
}
