//! `sriov-network-webhook`: the operator's admission webhook (upstream's `webhook start`).
//!
//! Accepts upstream's arguments (`start --port=6443 --tls-cert-file=… --tls-private-key-file=…
//! [--enable-http2]`; the other TLS tuning and log flags are accepted and ignored: TLS is always
//! 1.2 or 1.3), reads `NAMESPACE` and `DEV_MODE` from the environment, and serves until SIGTERM /
//! Ctrl-C. Limits and timeouts: `sriov_operator::webhook::ServeOptions`.
//!
//! Where the dynamic checks see the cluster: `--cluster-objects FILE`; else the API server
//! (`--kubeconfig`, `KUBECONFIG`, or the in-cluster service account, as controller-runtime finds
//! it for upstream), watched by reflectors so that an admission makes no API call; else, with
//! none of these, an empty cluster.

use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use kube::config::{KubeConfigOptions, Kubeconfig};
use sriov_operator::admission::{Cluster, Settings};
use sriov_operator::webhook::{self, ClusterSource, FileCluster, TlsFiles, WatchedCluster, Webhook};

#[derive(Parser, Debug)]
#[command(
    name = "sriov-network-webhook",
    about = "SR-IOV operator admission webhook (HTTPS)"
)]
struct Args {
    /// Upstream's subcommand word; optional.
    #[arg(value_parser = ["start"])]
    command: Option<String>,
    /// PEM certificate (chain) served; reloaded when it changes.
    #[arg(long = "tls-cert-file")]
    tls_cert_file: PathBuf,
    /// PEM private key matching --tls-cert-file; reloaded when it changes.
    #[arg(long = "tls-private-key-file")]
    tls_private_key_file: PathBuf,
    /// Secure port.
    #[arg(long, default_value_t = 443)]
    port: u16,
    /// Address to bind (default: all, IPv6 and IPv4).
    #[arg(long, default_value_t = std::net::IpAddr::V6(Ipv6Addr::UNSPECIFIED))]
    bind_address: std::net::IpAddr,
    /// Kubernetes objects (nodes, node states, policies, config) for the dynamic checks, as a
    /// YAML file re-read on every request. Without it the dynamic checks see an empty cluster.
    #[arg(long, conflicts_with = "kubeconfig")]
    cluster_objects: Option<PathBuf>,
    /// Kubeconfig of the cluster whose nodes, node states, policies and supported-NIC ConfigMap
    /// the dynamic checks watch (default: `KUBECONFIG`, else in-cluster config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Offer and accept HTTP/2 (off by default, as upstream: the HTTP/2 rapid-reset attacks).
    /// `--enable-http2` or, as Go flags allow, `--enable-http2=true|false`.
    #[arg(
        long = "enable-http2",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    enable_http2: bool,
    /// Accepted for compatibility with upstream's manifests; ignored.
    #[arg(long = "tls-cipher-suites", hide = true)]
    tls_cipher_suites: Option<String>,
    #[arg(long = "tls-min-version", hide = true)]
    tls_min_version: Option<String>,
    #[arg(long = "tls-curve-preferences", hide = true)]
    tls_curve_preferences: Option<String>,
    #[arg(long = "zap-log-level", hide = true)]
    zap_log_level: Option<String>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let settings = Settings::from_env();
    tracing::info!(namespace = %settings.namespace, dev_mode = settings.dev_mode, port = args.port, "starting webhook");
    let addr = SocketAddr::new(args.bind_address, args.port);
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let tls = TlsFiles {
        cert: args.tls_cert_file,
        key: args.tls_private_key_file,
    };
    let options = webhook::ServeOptions {
        http2: args.enable_http2,
        ..webhook::ServeOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let cluster = cluster_source(&args.cluster_objects, &args.kubeconfig, &settings.namespace).await?;
        let hook = Arc::new(Webhook { settings, cluster });
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("stopping");
            stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        });
        webhook::serve(listener, tls, hook, handle, options).await
    })
}

/// The source of the dynamic checks' cluster view (see the module doc).
async fn cluster_source(
    objects: &Option<PathBuf>,
    kubeconfig: &Option<PathBuf>,
    namespace: &str,
) -> anyhow::Result<Box<dyn ClusterSource>> {
    if let Some(path) = objects {
        return Ok(Box::new(FileCluster {
            path: path.clone(),
            namespace: namespace.to_string(),
        }));
    }
    let config = match kubeconfig {
        Some(path) => {
            let file =
                Kubeconfig::read_from(path).with_context(|| format!("--kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))?
        }
        None if std::env::var_os("KUBECONFIG").is_some()
            || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() =>
        {
            kube::Config::infer()
                .await
                .context("KUBECONFIG / in-cluster configuration")?
        }
        None => {
            tracing::warn!(
                "no --cluster-objects, --kubeconfig, KUBECONFIG or in-cluster config: \
                 the dynamic checks see an empty cluster"
            );
            return Ok(Box::new(Cluster {
                nics: sriov_operator::admission::SupportedNics::builtin(),
                ..Cluster::default()
            }));
        }
    };
    let server = config.cluster_url.clone();
    let client = kube::Client::try_from(config).context("Kubernetes client")?;
    tracing::info!(%server, %namespace, "watching nodes, node states, policies, operator config, supported-nic-ids");
    let watched = WatchedCluster::start(client, namespace)
        .await
        .with_context(|| format!("watching {server}"))?;
    tracing::info!("cluster caches ready");
    Ok(Box::new(watched))
}

async fn shutdown_signal() {
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
}
