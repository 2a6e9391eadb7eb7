//! HTTP on the metrics address: `/metrics`, `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::telemetry::metrics::Metrics;
use crate::transport::readiness::Readiness;

/// What the endpoints read.
#[derive(Clone)]
struct Endpoints {
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

/// Binds `addr` (failing with a message naming it) and returns the bound address and the
/// server future, which ends when `shutdown` flips.
pub async fn bind(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(
    SocketAddr,
    impl std::future::Future<Output = std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on metrics address {addr} (is the port in use? set --metrics-addr)")
    })?;
    let bound = listener
        .local_addr()
        .context("metrics listener has no address")?;
    let app = axum::Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Endpoints { metrics, readiness });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    });
    Ok((bound, std::future::IntoFuture::into_future(server)))
}

async fn render_metrics(AxumState(endpoints): AxumState<Endpoints>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        endpoints.metrics.render(),
    )
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn readyz(AxumState(endpoints): AxumState<Endpoints>) -> impl IntoResponse {
    let report = endpoints.readiness.report();
    let body = serde_json::json!({
        "ready": report.ready(),
        "subscribed": report.subscribed,
        "nats_connected": report.nats_connected,
        "policies_loaded": report.policies_loaded,
    })
    .to_string();
    let status = if report.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}
