//! HTTP on the metrics address: `/metrics`, `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::service::Shared;

/// Binds `addr` (failing with a message naming it) and returns the bound address and the
/// server future, which ends when `shutdown` flips.
pub async fn bind(
    addr: SocketAddr,
    state: Arc<Shared>,
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
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = shutdown.changed().await;
    });
    Ok((bound, std::future::IntoFuture::into_future(server)))
}

async fn metrics(AxumState(shared): AxumState<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn readyz(AxumState(shared): AxumState<Arc<Shared>>) -> impl IntoResponse {
    let connected = shared.nats_connected();
    let subscribed = shared.subscriptions_ready();
    let policies = shared.router.policies().snapshot().len();
    let body = serde_json::json!({
        "ready": connected && subscribed && policies > 0,
        "subscribed": subscribed,
        "nats_connected": connected,
        "policies_loaded": policies,
    })
    .to_string();
    let status = if connected && subscribed && policies > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}
