//! `sriov-network-operator`: run as upstream's Deployment runs it (`docs/operator.md`).
//!
//! Reads the environment ([`OperatorSettings`]; `RESOURCE_PREFIX` is mandatory), connects with
//! `--kubeconfig`, `KUBECONFIG` or the in-cluster config, serves the probes and metrics on every
//! replica, and, once leading (`--leader-elect`: the Lease `a56def2a.openshift.io` in
//! `NAMESPACE`; without it at once), creates the `default` SriovOperatorConfig when absent and
//! runs the controllers listed in [`controllers`]. Leadership lost: exit 1 (as
//! controller-runtime). SIGTERM / Ctrl-C: controllers stopped, Lease released, exit 0.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Parser};
use sriov_operator::controller::default_config::{DefaultConfig, ensure_default_operator_config};
use sriov_operator::controller::leader::{self, HoldEnd, LeaderElector, LeaseConfig};
use sriov_operator::controller::metrics::OperatorMetrics;
use sriov_operator::controller::operator_config::{self, OperatorConfigSettings};
use sriov_operator::controller::settings::{self, OperatorSettings, parse_bind_address, parse_go_duration};
use sriov_operator::controller::supervise::Controllers;
use sriov_operator::controller::{
    OperatorContext, drain, logging, networks, node_states, serve, sriov_switch,
};
use sriov_operator::render::NadContext;
use tokio::sync::watch;

/// The operator's controllers, each run supervised while this replica leads. One line each:
/// `.add("name", module::run)` where `run(ctx: OperatorContext)` returns a future of `()` or
/// `Result<(), E: Display>`; a controller that needs the settings takes a closure,
/// `.add("name", move |ctx| module::run(ctx, settings.clone()))`.
fn controllers(settings: &OperatorSettings) -> Controllers {
    let prefix = settings.resource_prefix.clone();
    let drain_prefix = settings.resource_prefix.clone();
    let stale_delay = settings.stale_node_state_cleanup_delay;
    Controllers::new()
        .add("drain", move |ctx: OperatorContext| {
            drain::run(ctx, drain_prefix.clone())
        })
        .add(node_states::CONTROLLER, move |ctx: OperatorContext| {
            // The stale delay as `OperatorSettings` parsed and validated it at start.
            let options = node_states::NodeStatesOptions {
                stale_delay,
                ..node_states::NodeStatesOptions::default()
            };
            node_states::run_with(ctx, options)
        })
        .add(sriov_switch::CONTROLLER, sriov_switch::run)
        .add(operator_config::CONTROLLER, |ctx: OperatorContext| {
            // The deploy settings (images, CNI bin path, secrets) from the same environment
            // `OperatorSettings` validated at start; the namespace is the one the controllers
            // use (its default applies when NAMESPACE is unset).
            let mut settings = OperatorConfigSettings::from_env(|k| std::env::var(k).ok());
            settings.deploy.namespace = ctx.namespace.clone();
            operator_config::run(ctx, settings)
        })
        .add(networks::CONTROLLER, move |ctx: OperatorContext| {
            let nad = NadContext {
                operator_namespace: ctx.namespace.clone(),
                resource_prefix: prefix.clone(),
            };
            networks::run_with(ctx, nad)
        })
}

#[derive(Parser, Debug)]
#[command(name = "sriov-network-operator", about = "SR-IOV network operator")]
struct Args {
    /// Address of `/metrics`: "0" turns it off (upstream's default), ":8080" every address.
    #[arg(long = "metrics-bind-address", default_value = "0")]
    metrics_bind_address: String,
    /// Address of `/healthz` and `/readyz`; "0" turns it off.
    #[arg(long = "health-probe-bind-address", default_value = ":8081")]
    health_probe_bind_address: String,
    /// Run the controllers only while holding the Lease `a56def2a.openshift.io` in NAMESPACE.
    #[arg(long = "leader-elect", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    leader_elect: bool,
    /// How long a leader's claim lasts unrenewed (Go duration).
    #[arg(long = "leader-elect-lease-duration", default_value = "10s", value_parser = parse_go_duration)]
    lease_duration: Duration,
    /// How long the leader retries renewing before it stops leading.
    #[arg(long = "leader-elect-renew-deadline", default_value = "8s", value_parser = parse_go_duration)]
    renew_deadline: Duration,
    /// Pause between renewals, and between a follower's looks at the Lease.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = parse_go_duration)]
    retry_period: Duration,
    /// A kubeconfig file (else KUBECONFIG, else the in-cluster config).
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
    /// Log encoding: console (default) or json.
    #[arg(long = "zap-encoder", default_value = "console", value_parser = logging::parse_encoder)]
    zap_encoder: logging::LogFormat,
    /// debug, info, warn, error, or a verbosity number (RUST_LOG overrides).
    #[arg(long = "zap-log-level", default_value = "info")]
    zap_log_level: String,
    /// Accepted for compatibility with upstream's zap flags; ignored.
    #[arg(long = "zap-devel", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    zap_devel: Option<String>,
    #[arg(long = "zap-stacktrace-level", hide = true)]
    zap_stacktrace_level: Option<String>,
    #[arg(long = "zap-time-encoding", hide = true)]
    zap_time_encoding: Option<String>,
    /// The chart's pre-delete hook: delete the SriovOperatorConfig `default` in NAMESPACE and
    /// wait until it is gone, i.e. until the running operator's finalizer has removed the
    /// cluster-scoped objects (Helm deletes the operator and the config together, and a config
    /// whose finalizer nobody removes any more stays Terminating). Then exit.
    #[arg(long)]
    uninstall: bool,
}

fn main() -> ExitCode {
    let args = Args::parse_from(settings::go_style_args(std::env::args()));
    let directive = match logging::level_directive(&args.zap_log_level) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("sriov-network-operator: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = logging::init(args.zap_encoder, directive) {
        eprintln!("sriov-network-operator: logging: {e}");
    }
    match start(args) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "sriov-network-operator stopped");
            eprintln!("sriov-network-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> anyhow::Result<ExitCode> {
    if args.uninstall {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?
            .block_on(uninstall(args.kubeconfig.as_deref()));
    }
    let settings = OperatorSettings::from_lookup(|k| std::env::var(k).ok())?;
    for note in &settings.notes {
        tracing::info!("{note}");
    }
    let probes = parse_bind_address("--health-probe-bind-address", &args.health_probe_bind_address)?;
    let metrics_at = parse_bind_address("--metrics-bind-address", &args.metrics_bind_address)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(operate(args, settings, probes, metrics_at))
}

async fn operate(
    args: Args,
    settings: OperatorSettings,
    probes: Option<std::net::SocketAddr>,
    metrics_at: Option<std::net::SocketAddr>,
) -> anyhow::Result<ExitCode> {
    tracing::info!(
        namespace = %settings.namespace,
        resource_prefix = %settings.resource_prefix,
        cluster_type = settings.cluster_type.as_str(),
        dev_mode = settings.dev_mode,
        leader_elect = args.leader_elect,
        "starting sriov-network-operator"
    );
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(OperatorMetrics::new());
    if let Some(addr) = probes {
        let listener = serve::bind(addr)
            .await
            .with_context(|| format!("--health-probe-bind-address {addr}"))?;
        serve::spawn("probes", listener, serve::probe_router());
    }
    if let Some(addr) = metrics_at {
        let listener = serve::bind(addr)
            .await
            .with_context(|| format!("--metrics-bind-address {addr}"))?;
        serve::spawn("metrics", listener, serve::metrics_router(metrics.clone()));
    }
    let stop = stop_on_signal();
    let ctx = OperatorContext {
        client: client.clone(),
        namespace: settings.namespace.clone(),
        metrics: metrics.clone(),
    };
    let controllers = controllers(&settings);

    let mut elector = None;
    if args.leader_elect {
        let config = LeaseConfig {
            name: leader::LEASE_NAME.into(),
            namespace: settings.namespace.clone(),
            identity: leader::local_identity(),
            lease_duration: args.lease_duration,
            renew_deadline: args.renew_deadline,
            retry_period: args.retry_period,
        };
        tracing::info!(lease = %config.name, identity = %config.identity, "waiting for leadership");
        let mut candidate = LeaderElector::new(client.clone(), config)?;
        tokio::select! {
            _ = candidate.acquire() => {}
            _ = stopped(stop.clone()) => return Ok(ExitCode::SUCCESS),
        }
        elector = Some(candidate);
    }
    metrics.leader.set(1);

    // What runs while leading; with --leader-elect, raced against the renewals, so even the
    // default config is written only while the Lease is ours.
    let leading = async {
        if let DefaultConfig::Created { disable_drain } =
            ensure_default_operator_config(&client, &settings).await?
        {
            tracing::info!(
                disable_drain,
                "the default SriovOperatorConfig was absent and is created"
            );
        }
        tracing::info!(controllers = ?controllers.names(), "starting controllers");
        controllers.run(ctx).await;
        anyhow::Ok(())
    };

    let Some(mut elector) = elector else {
        tokio::select! {
            r = leading => r?,
            _ = stopped(stop) => tracing::info!("stopping"),
        }
        return Ok(ExitCode::SUCCESS);
    };
    let end = tokio::select! {
        end = elector.hold(stopped(stop)) => end,
        r = leading => match r {
            Ok(()) => HoldEnd::Stopped,
            Err(e) => {
                release(&mut elector).await;
                return Err(e);
            }
        },
    };
    // `leading` is dropped here: every controller is stopped before the Lease changes hands.
    metrics.leader.set(0);
    match end {
        HoldEnd::Stopped => {
            tracing::info!("stopping");
            release(&mut elector).await;
            Ok(ExitCode::SUCCESS)
        }
        HoldEnd::Lost(reason) => {
            tracing::error!(%reason, "leader election lost");
            eprintln!("sriov-network-operator: leader election lost: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Gives the Lease up (when leading) so the next replica need not wait for it to expire.
async fn release(elector: &mut LeaderElector) {
    if let Err(e) = elector.release().await {
        tracing::warn!(error = %e, "cannot release the Lease; the next leader waits for it to expire");
    }
}

/// controller-runtime's order: `--kubeconfig`, `KUBECONFIG`, in-cluster, `~/.kube/config`.
/// `--uninstall`: delete the `default` config and wait (bounded) until it is gone.
async fn uninstall(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    use kube::api::{Api, DeleteParams};
    const LIMIT: Duration = Duration::from_secs(120);
    let namespace = std::env::var("NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .context("--uninstall needs NAMESPACE")?;
    let client = kube_client(kubeconfig).await?;
    let configs: Api<sriov_api::SriovOperatorConfig> = Api::namespaced(client, &namespace);
    match configs.delete("default", &DeleteParams::foreground()).await {
        Ok(_) => tracing::info!(
            namespace,
            "SriovOperatorConfig default deleted, waiting until it is gone"
        ),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            tracing::info!(namespace, "no SriovOperatorConfig default");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).with_context(|| format!("delete SriovOperatorConfig {namespace}/default")),
    }
    let started = std::time::Instant::now();
    while configs.get_opt("default").await?.is_some() {
        anyhow::ensure!(
            started.elapsed() < LIMIT,
            "SriovOperatorConfig {namespace}/default still there after {LIMIT:?} (is the operator running?)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tracing::info!(namespace, "SriovOperatorConfig default gone");
    Ok(ExitCode::SUCCESS)
}

async fn kube_client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let config = if let Some(path) = kubeconfig {
        let kc = Kubeconfig::read_from(path).with_context(|| format!("--kubeconfig {}", path.display()))?;
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("--kubeconfig {}", path.display()))?
    } else if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        kube::Config::from_kubeconfig(&KubeConfigOptions::default())
            .await
            .context("KUBECONFIG")?
    } else if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        kube::Config::incluster().context("in-cluster config")?
    } else {
        kube::Config::infer()
            .await
            .context("no KUBECONFIG, not in a cluster, and ~/.kube/config")?
    };
    kube::Client::try_from(config).context("Kubernetes client")
}

/// A channel that turns `true` on SIGTERM or Ctrl-C.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        let _ = tx.send(true);
    });
    rx
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone, which only happens at exit.
    let _ = stop.wait_for(|s| *s).await;
}
