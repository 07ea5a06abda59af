//! `network-resources-injector`: upstream's command line (Go `flag` style: `-port=8443` or
//! `--port 8443`), env `NAMESPACE` for the switches ConfigMap, the cluster from in-cluster
//! config or `KUBECONFIG`. Serves until SIGTERM / Ctrl-C.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use anyhow::Context;
use sriov_network_resources_injector::cache::{NadCache, SwitchesCell};
use sriov_network_resources_injector::flags::{self, FlagError};
use sriov_network_resources_injector::server::{self, Injector};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// One thread serves everything: an admission is microseconds of work, and on a small node
/// (2 cores here, shared with the load generator in the benchmark) a second worker only adds
/// wake-ups and cross-thread hand-offs (measured: docs/injector.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // `RUST_LOG` as `Targets` (`info`, `kube=debug,warn`...), not `EnvFilter`: the same
    // target=level directives without span/field matching, whose regex engine would be compiled
    // at start and kept resident (issue #13 counts every page of code touched).
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();
    let options = match flags::parse(std::env::args()) {
        Ok(o) => o,
        Err(FlagError::Clap(e)) => e.exit(),
        Err(e) => return Err(e.into()),
    };
    let namespace = std::env::var("NAMESPACE").unwrap_or_else(|_| "kube-system".into());
    let (settings, tls) = (options.settings, options.tls);
    let client = kube::Client::try_default()
        .await
        .context("Kubernetes client (in-cluster or KUBECONFIG)")?;
    let switches = SwitchesCell::default();
    switches.watch(client.clone(), &namespace);
    let nads = NadCache::start(client, &settings.resource_name_keys)
        .await
        .context("NetworkAttachmentDefinition watch")?;
    tracing::info!(nads = nads.len(), %namespace, port = options.port, "caches synced, serving");

    let health =
        tokio::net::TcpListener::bind(SocketAddr::new(options.bind_address, options.health_check_port))
            .await
            .with_context(|| format!("binding health port {}", options.health_check_port))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(health, server::health_router()).await {
            tracing::error!("health server: {e}");
        }
    });
    let addr = SocketAddr::new(options.bind_address, options.port);
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
