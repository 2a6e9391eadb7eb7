//! The second load shape of an interleaved run: the same sides measured again in a few blocks
//! at many more callers (by default 1,000 instead of 64), after the gated figures are read.
//! Its ratios, errors, backpressure and memory are reported beside the main figures and
//! never gated.

use std::time::Duration;

use async_nats::Client;

use crate::cli::{Plan, SecondShape};
use crate::process::ProcessProbe;
use crate::report::{LoadShape, Measured};
use crate::router_metrics;
use crate::run::{interleaved_blocks, Targets};

/// How long reading the router's /metrics may take.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// Measures `shape` over the sides of `targets`.
pub(crate) async fn measure(
    plan: &Plan,
    clients: &[Client],
    targets: &Targets,
    shape: SecondShape,
) -> anyhow::Result<LoadShape> {
    let before = backpressure_transitions(plan).await;
    let mut measured = Measured::default();
    interleaved_blocks(
        plan,
        clients,
        [
            targets.raw_echo.as_ref(),
            targets.echo.as_ref(),
            targets.router.as_ref(),
        ],
        shape.concurrency,
        shape.blocks,
        &mut measured,
    )
    .await?;
    let mut figures = LoadShape::new(shape.concurrency, measured.rounds);
    figures.backpressure_active = match (before, backpressure_transitions(plan).await) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    figures.router_mem_mb = plan
        .router_pid
        .and_then(|pid| ProcessProbe::new(pid).and_then(|p| p.memory()).ok())
        .map(|memory| memory.peak_mib);
    Ok(figures)
}

/// The router's backpressure transitions so far, when its /metrics can be read.
async fn backpressure_transitions(plan: &Plan) -> Option<f64> {
    let url = plan.metrics_url.clone()?;
    tokio::task::spawn_blocking(move || router_metrics::fetch(&url, METRICS_TIMEOUT))
        .await
        .ok()?
        .ok()?
        .backpressure_active_total
}
