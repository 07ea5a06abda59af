//! The operator's admission webhook over HTTPS (upstream `cmd/webhook`): `POST
//! /mutating-custom-resource`, `POST /validating-custom-resource`, `GET /readyz`, served with
//! rustls (ring). The certificate and key files are watched and reloaded without a restart;
//! new connections get the new certificate.
//!
//! Hardening ([`ServeOptions`]; upstream's Go server has only the first two): TLS 1.2 and 1.3
//! only; HTTP/2 off unless `--enable-http2` (neither offered in ALPN nor accepted with prior
//! knowledge: the rapid-reset class of attacks, CVE-2023-44487); request bodies over 1 MiB
//! refused with 413 (upstream reads any size); a TLS handshake, the request headers and the
//! whole request each bounded by a timeout, so a slow client (slowloris) is disconnected.

mod reload;
pub mod watched;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::admission::{self, Cluster, Hook, Settings};

pub use reload::{CertWatcher, watch_certs};
pub use watched::WatchedCluster;

/// Where the webhook gets its view of the cluster for the dynamic checks, per request.
pub trait ClusterSource: Send + Sync + 'static {
    fn snapshot(&self) -> Result<Cluster, String>;
}

/// A fixed snapshot (tests; or no cluster access at all: then every policy that needs the
/// cluster is allowed with the "no matched node" warning).
impl ClusterSource for Cluster {
    fn snapshot(&self) -> Result<Cluster, String> {
        Ok(self.clone())
    }
}

/// Kubernetes objects in a YAML/JSON file, re-read on every request (the same input
/// `sriovctl validate` takes after the review).
pub struct FileCluster {
    pub path: PathBuf,
    pub namespace: String,
}

impl ClusterSource for FileCluster {
    fn snapshot(&self) -> Result<Cluster, String> {
        let text =
            std::fs::read_to_string(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let objects = admission::parse_objects(&text).map_err(|e| format!("{}: {e}", self.path.display()))?;
        Cluster::from_objects(&objects, &self.namespace).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// What the handlers share.
pub struct Webhook {
    pub settings: Settings,
    pub cluster: Box<dyn ClusterSource>,
}

/// How the HTTPS server protects itself; [`ServeOptions::default`] is what the binary uses
/// (HTTP/2 from `--enable-http2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// Offer and accept HTTP/2 (upstream's `--enable-http2`, default off).
    pub http2: bool,
    /// Largest request body read, in bytes; larger ones get 413 Payload Too Large.
    pub body_limit: usize,
    /// Time for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time for the request line and headers (first request and each keep-alive one).
    pub header_timeout: Duration,
    /// Time for a whole request, body and answer included; then 408 Request Timeout.
    pub request_timeout: Duration,
}

/// 1 MiB: an AdmissionReview of a policy (object and old object) is a few KiB; kube-apiserver
/// itself refuses objects over 1.5 MiB (etcd's limit), so nothing legitimate comes near it.
pub const BODY_LIMIT: usize = 1 << 20;

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            http2: false,
            body_limit: BODY_LIMIT,
            // kube-apiserver waits 10 s for a webhook by default (at most 30 s).
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The routes, as upstream names them, with the body limit and the request timeout.
pub fn router(webhook: Arc<Webhook>, options: &ServeOptions) -> Router {
    let limit = options.request_timeout;
    let body_limit = options.body_limit;
    Router::new()
        .route("/mutating-custom-resource", post(mutating))
        .route("/validating-custom-resource", post(validating))
        .route("/readyz", get(|| async { "ok" }))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            request_timeout(limit, req, next)
        }))
        .layer(DefaultBodyLimit::max(options.body_limit))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            declared_too_large(body_limit, req, next)
        }))
        .with_state(webhook)
}

/// Answers 413 before reading anything when `Content-Length` is over `limit`, so a client that
/// sent `Expect: 100-continue` (curl does for large bodies) is told at once instead of being
/// invited to send a body the server will not read. Bodies without a length are cut off by
/// [`DefaultBodyLimit`] while read.
async fn declared_too_large(limit: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => bad(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("length limit exceeded: Content-Length {n} is over the {limit}-byte limit"),
        ),
        _ => next.run(req).await,
    }
}

/// Answers 408 when reading the body and answering take longer than `limit`.
async fn request_timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => bad(
            StatusCode::REQUEST_TIMEOUT,
            format!("request not complete within {} s", limit.as_secs_f64()),
        ),
    }
}

async fn mutating(State(w): State<Arc<Webhook>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&w, Hook::Mutate, &headers, &body)
}

async fn validating(State(w): State<Arc<Webhook>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(&w, Hook::Validate, &headers, &body)
}

fn bad(status: StatusCode, text: String) -> Response {
    tracing::warn!(%status, "{text}");
    (status, text).into_response()
}

fn answer(w: &Webhook, hook: Hook, headers: &HeaderMap, body: &[u8]) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expect Content-Type application/json, got {content_type:?}"),
        );
    }
    let review: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return bad(
                StatusCode::BAD_REQUEST,
                format!("Request could not be decoded: {e}"),
            );
        }
    };
    let cluster = match w.cluster.snapshot() {
        Ok(c) => c,
        Err(e) => {
            return bad(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cluster state unavailable: {e}"),
            );
        }
    };
    match admission::review(hook, &review, &w.settings, &cluster) {
        Ok(out) => {
            tracing::debug!(response = %out, "admission answered");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                out.to_string(),
            )
                .into_response()
        }
        Err(e) => bad(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// PEM certificate (chain) and private key files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Installs rustls' ring provider once per process (a second call is a no-op).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The ALPN protocols offered: `http/1.1`, and `h2` first only when HTTP/2 is enabled.
pub fn alpn_protocols(http2: bool) -> Vec<Vec<u8>> {
    let mut protocols = Vec::new();
    if http2 {
        protocols.push(b"h2".to_vec());
    }
    protocols.push(b"http/1.1".to_vec());
    protocols
}

/// The rustls server configuration from the PEM files: TLS 1.3 and 1.2 only (rustls has no
/// older versions; naming them keeps it so should its defaults change) and [`alpn_protocols`].
pub fn tls_config(tls: &TlsFiles, http2: bool) -> anyhow::Result<Arc<ServerConfig>> {
    install_crypto_provider();
    let files = || format!("certificate {} and key {}", tls.cert.display(), tls.key.display());
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("loading {}: {e}", files()))?;
    let key =
        PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| anyhow::anyhow!("loading {}: {e}", files()))?;
    let mut config =
        ServerConfig::builder_with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| anyhow::anyhow!("loading {}: {e}", files()))?;
    config.alpn_protocols = alpn_protocols(http2);
    Ok(Arc::new(config))
}

/// Serves `webhook` over TLS on `listener` until `handle` shuts it down; the certificate
/// files are watched and reloaded while it runs.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: TlsFiles,
    webhook: Arc<Webhook>,
    handle: Handle<SocketAddr>,
    options: ServeOptions,
) -> anyhow::Result<()> {
    let config = RustlsConfig::from_config(tls_config(&tls, options.http2)?);
    let _watcher = watch_certs(config.clone(), tls, options.http2)?;
    listener.set_nonblocking(true)?;
    let handshake = options.handshake_timeout;
    let mut server = axum_server::from_tcp_rustls(listener, config)?
        .map(|acceptor| acceptor.handshake_timeout(handshake))
        .handle(handle)
        .first_request_timeout(options.header_timeout);
    if !options.http2 {
        // ALPN alone is not enough: hyper would still take an HTTP/2 connection preface.
        server = server.http1_only();
    }
    server
        .http_builder()
        .http1()
        .header_read_timeout(options.header_timeout);
    server
        .serve(router(webhook, &options).into_make_service())
        .await?;
    Ok(())
}
