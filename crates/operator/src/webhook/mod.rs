//! The operator's admission webhook over HTTPS (upstream `cmd/webhook`): `POST
//! /mutating-custom-resource`, `POST /validating-custom-resource`, `GET /readyz`, served with
//! rustls (ring). The certificate and key files are watched and reloaded without a restart;
//! new connections get the new certificate.

mod reload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use serde_json::Value;

use crate::admission::{self, Cluster, Hook, Settings};

pub use reload::{CertWatcher, watch_certs};

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

/// The routes, as upstream names them.
pub fn router(webhook: Arc<Webhook>) -> Router {
    Router::new()
        .route("/mutating-custom-resource", post(mutating))
        .route("/validating-custom-resource", post(validating))
        .route("/readyz", get(|| async { "ok" }))
        .with_state(webhook)
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

/// Serves `webhook` over TLS on `listener` until `handle` shuts it down; the certificate
/// files are watched and reloaded while it runs.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: TlsFiles,
    webhook: Arc<Webhook>,
    handle: Handle<SocketAddr>,
) -> anyhow::Result<()> {
    install_crypto_provider();
    let config = RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "loading certificate {} and key {}: {e}",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    let _watcher = watch_certs(config.clone(), tls)?;
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(router(webhook).into_make_service())
        .await?;
    Ok(())
}
