//! The operator's two plain-HTTP endpoints, as controller-runtime serves them: the probes
//! (`--health-probe-bind-address`, `/healthz` and `/readyz`) and the Prometheus metrics
//! (`--metrics-bind-address`, `/metrics`). Both run on every replica, leader or not, so a
//! follower is Ready and its `sriov_operator_leader` reads 0.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::OperatorMetrics;

/// The content type of prometheus-client's text encoding.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/healthz` and `/readyz`: `200 ok` while the process serves (upstream registers
/// controller-runtime's `healthz.Ping` for both).
pub fn probe_router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
}

/// `/metrics`: every metric of [`OperatorMetrics`], encoded on each scrape.
pub fn metrics_router(metrics: Arc<OperatorMetrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                match metrics.encode() {
                    Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("encoding metrics: {e}"),
                    )
                        .into_response(),
                }
            }
        }),
    )
}

/// Binds `addr`; an unspecified IPv6 address (`":8081"`) falls back to `0.0.0.0` on hosts
/// without IPv6.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(addr).await {
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() => {
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
            tokio::net::TcpListener::bind(v4).await.map_err(|_| e)
        }
        other => other,
    }
}

/// Serves `router` on `listener` until the process ends; a failure is logged.
pub fn spawn(what: &'static str, listener: tokio::net::TcpListener, router: Router) {
    let local = listener.local_addr().ok();
    tracing::info!(server = what, address = ?local, "serving");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(server = what, error = %e, "server stopped");
        }
    });
}
