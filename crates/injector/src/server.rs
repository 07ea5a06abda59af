//! The HTTPS side: `POST /mutate` on the TLS port, `/healthz` and `/readyz` on the plain
//! health port (upstream's layout). TLS is rustls with the flags' minimum version, HTTP/2 only
//! when asked (`-enable-http2`), client certificates required unless `-insecure`.
//!
//! Certificate reload: the operator's webhook reloads with `RustlsConfig::reload_from_pem_file`,
//! which rebuilds a default `ServerConfig` and would drop this server's client-CA, ALPN and
//! version settings; so this one rebuilds its own `ServerConfig` when the files' bytes change
//! (checked every [`RELOAD_PERIOD`]; Kubernetes swaps Secret files by symlink, which a content
//! check sees whatever the mechanism).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use rustls::server::WebPkiClientVerifier;

use crate::cache::SwitchesCell;
use crate::mutate::{NadLookup, Settings};
use crate::review::{self, Body, MAX_BODY};

pub const RELOAD_PERIOD: Duration = Duration::from_secs(2);

/// TLS settings from the flags.
#[derive(Clone, Debug)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundles whose client certificates are accepted; empty with `insecure`.
    pub client_ca: Vec<PathBuf>,
    pub insecure: bool,
    pub http2: bool,
    /// `TLS12` or `TLS13` (upstream's spellings: `VersionTLS12`, `TLS1.2`, … are accepted too).
    pub min_version_13: bool,
}

/// Builds the rustls config from the files as they are now.
pub fn server_config(tls: &Tls) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls.min_version_13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificate {}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("reading key {}", tls.key.display()))?;
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
    let builder = if tls.insecure {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for ca in &tls.client_ca {
            for cert in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("reading client CA {}", ca.display()))?
            {
                roots.add(cert.with_context(|| format!("client CA {}", ca.display()))?)?;
            }
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = if tls.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// What the `/mutate` handler reads.
pub struct Injector {
    pub nads: Box<dyn NadLookup + Send + Sync>,
    pub settings: Settings,
    pub switches: SwitchesCell,
}

pub fn router(injector: Arc<Injector>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(injector)
}

async fn mutate(
    State(inj): State<Arc<Injector>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let body = match &body {
        Ok(b) => Body::Bytes(b),
        Err(_) => Body::TooLarge,
    };
    let switches = inj.switches.get();
    let a = review::answer(content_type, body, inj.nads.as_ref(), &inj.settings, &switches);
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ct = if a.json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    (status, [(header::CONTENT_TYPE, ct)], a.body).into_response()
}

/// `/healthz` and `/readyz`, plain HTTP as upstream.
pub fn health_router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
}

fn read_both(tls: &Tls) -> Option<(Vec<u8>, Vec<u8>)> {
    Some((std::fs::read(&tls.cert).ok()?, std::fs::read(&tls.key).ok()?))
}

/// Serves `/mutate` over TLS on `listener` until `handle` shuts it down, rebuilding the TLS
/// config when the certificate or key files change.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Tls,
    injector: Arc<Injector>,
    handle: Handle<SocketAddr>,
) -> anyhow::Result<()> {
    let config = RustlsConfig::from_config(Arc::new(server_config(&tls)?));
    let reloader = {
        let (config, tls) = (config.clone(), tls.clone());
        tokio::spawn(async move {
            let mut seen = read_both(&tls);
            loop {
                tokio::time::sleep(RELOAD_PERIOD).await;
                let now = read_both(&tls);
                if now.is_none() || now == seen {
                    continue;
                }
                match server_config(&tls) {
                    Ok(c) => {
                        config.reload_from_config(Arc::new(c));
                        tracing::info!(cert = %tls.cert.display(), "reloaded TLS certificate");
                        seen = now;
                    }
                    Err(e) => tracing::warn!("TLS certificate not reloaded, keeping the previous one: {e:#}"),
                }
            }
        })
    };
    listener.set_nonblocking(true)?;
    let served = axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(router(injector).into_make_service())
        .await;
    reloader.abort();
    Ok(served?)
}
