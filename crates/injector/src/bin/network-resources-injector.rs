//! `network-resources-injector`: upstream's command line (Go `flag` style: `-port=8443` or
//! `--port 8443`), env `NAMESPACE` for the switches ConfigMap, the cluster from in-cluster
//! config or `KUBECONFIG`. Serves until SIGTERM / Ctrl-C.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{ArgAction, Parser};
use sriov_network_resources_injector::cache::{NadCache, SwitchesCell};
use sriov_network_resources_injector::server::{self, Injector, Tls};
use sriov_network_resources_injector::{Settings, mutate::DEFAULT_RESOURCE_NAME_KEY};

const SA_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

#[derive(Parser, Debug)]
#[command(
    name = "network-resources-injector",
    about = "Network resources injector (mutating admission webhook)"
)]
struct Args {
    #[arg(long, default_value_t = 8443)]
    port: u16,
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    bind_address: IpAddr,
    #[arg(long = "tls-cert-file", default_value = "cert.pem")]
    tls_cert_file: PathBuf,
    #[arg(long = "tls-private-key-file", default_value = "key.pem")]
    tls_private_key_file: PathBuf,
    /// Accept clients without a certificate (no client-CA check).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    insecure: bool,
    /// CA bundle for client certificates; repeatable. Default: the service account's CA.
    #[arg(long = "client-ca")]
    client_ca: Vec<PathBuf>,
    #[arg(long = "health-check-port", default_value_t = 8444)]
    health_check_port: u16,
    #[arg(long = "enable-http2", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    enable_http2: bool,
    /// `VersionTLS12`/`TLS1.2`/`1.2` (default) or `VersionTLS13`/`TLS1.3`/`1.3`.
    #[arg(long = "tls-min-version", default_value = "VersionTLS12")]
    tls_min_version: String,
    #[arg(long = "injectHugepageDownApi", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    inject_hugepage_down_api: bool,
    /// Comma list of NAD annotation keys holding a resource name.
    #[arg(long = "network-resource-name-keys", default_value = DEFAULT_RESOURCE_NAME_KEY)]
    network_resource_name_keys: String,
    #[arg(long = "honor-resources", num_args = 0..=1, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    honor_resources: bool,
    /// Accepted for upstream compatibility; rustls chooses the suites and curves.
    #[arg(long = "tls-cipher-suites", hide = true)]
    tls_cipher_suites: Option<String>,
    #[arg(long = "tls-curve-preferences", hide = true)]
    tls_curve_preferences: Option<String>,
    #[arg(long = "logtostderr", hide = true, num_args = 0..=1, default_missing_value = "true")]
    logtostderr: Option<String>,
    #[arg(long = "alsologtostderr", hide = true, num_args = 0..=1, default_missing_value = "true")]
    alsologtostderr: Option<String>,
    #[arg(long = "v", hide = true)]
    verbosity: Option<String>,
}

/// Go's `flag` takes `-name`; clap takes `--name`. Single-dash words become double-dash.
fn go_style(args: impl Iterator<Item = String>) -> Vec<String> {
    args.enumerate()
        .map(|(i, a)| {
            if i > 0 && a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
                format!("-{a}")
            } else {
                a
            }
        })
        .collect()
}

fn min_version_13(text: &str) -> anyhow::Result<bool> {
    match text {
        "VersionTLS12" | "TLS1.2" | "1.2" | "TLS12" => Ok(false),
        "VersionTLS13" | "TLS1.3" | "1.3" | "TLS13" => Ok(true),
        other => anyhow::bail!("-tls-min-version {other:?}: rustls supports VersionTLS12 and VersionTLS13"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse_from(go_style(std::env::args()));
    let keys: Vec<String> = args
        .network_resource_name_keys
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    anyhow::ensure!(
        !keys.is_empty(),
        "-network-resource-name-keys: resource keys can not be empty"
    );
    let namespace = std::env::var("NAMESPACE").unwrap_or_else(|_| "kube-system".into());
    let settings = Settings {
        resource_name_keys: keys,
        hugepage_down_api: args.inject_hugepage_down_api,
        honor_resources: args.honor_resources,
    };
    let tls = Tls {
        cert: args.tls_cert_file,
        key: args.tls_private_key_file,
        client_ca: if args.client_ca.is_empty() && !args.insecure {
            vec![SA_CA.into()]
        } else {
            args.client_ca
        },
        insecure: args.insecure,
        http2: args.enable_http2,
        min_version_13: min_version_13(&args.tls_min_version)?,
    };

    let client = kube::Client::try_default()
        .await
        .context("Kubernetes client (in-cluster or KUBECONFIG)")?;
    let switches = SwitchesCell::default();
    switches.watch(client.clone(), &namespace);
    let nads = NadCache::start(client)
        .await
        .context("NetworkAttachmentDefinition watch")?;
    tracing::info!(nads = nads.len(), %namespace, port = args.port, "caches synced, serving");

    let health = tokio::net::TcpListener::bind(SocketAddr::new(args.bind_address, args.health_check_port))
        .await
        .with_context(|| format!("binding health port {}", args.health_check_port))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(health, server::health_router()).await {
            tracing::error!("health server: {e}");
        }
    });
    let addr = SocketAddr::new(args.bind_address, args.port);
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("SIGTERM handler: {e}");
                return;
            }
        };
        tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    let injector = Arc::new(Injector {
        nads: Box::new(nads),
        settings,
        switches,
    });
    server::serve(listener, tls, injector, handle).await
}
