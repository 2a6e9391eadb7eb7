//! The second load shape of an interleaved run: the same sides measured again in a few blocks
//! at many more callers (by default 1,000 instead of 64), after the gated figures are read.
//! Its ratios, errors, backpressure and memory are reported beside the main figures and
//! never gated.

use async_nats::Client;

use crate::cli::{Plan, SecondShape};
use crate::process::ProcessProbe;
use crate::report::{LoadShape, Measured};
use crate::router_metrics::RouterMetrics;
use crate::run::{fetch_router_metrics, interleaved_blocks, Targets};

/// Measures `shape` over the sides of `targets`. What was measured is kept when a round
/// fails (the shape then says why it stopped); the second value lists what could not be
/// read, for the candidate's warnings.
pub(crate) async fn measure(
    plan: &Plan,
    clients: &[Client],
    targets: &Targets,
    shape: SecondShape,
) -> (LoadShape, Vec<String>) {
    let mut warnings = Vec::new();
    let before = router_metrics(plan, &mut warnings).await;
    let mut measured = Measured::default();
    let outcome = interleaved_blocks(
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
    .await;
    let mut figures = LoadShape::new(shape.concurrency, measured.rounds);
    if let Err(err) = outcome {
        let reason = format!("{err:#}");
        warnings.push(format!(
            "the second load shape stopped early ({} round(s) measured): {reason}",
            figures.rounds.len()
        ));
        figures.stopped = Some(reason);
    }
    let after = router_metrics(plan, &mut warnings).await;
    figures.backpressure_active = match (before, &after) {
        (Some(before), Some(after)) => after
            .backpressure_active_total
            .zip(before.backpressure_active_total)
            .map(|(after, before)| after - before),
        _ => None,
    };
    figures.router_mem_mb = match plan.router_pid {
        Some(pid) => match ProcessProbe::new(pid).and_then(|p| p.memory()) {
            Ok(memory) => Some(memory.peak_mib),
            Err(err) => {
                warnings.push(format!(
                    "memory of the router after the second load shape (pid {pid}): {err:#}"
                ));
                None
            }
        },
        None => after.and_then(|metrics| metrics.mem_mb),
    };
    (figures, warnings)
}

/// The router's /metrics figures, when its endpoint is named; a failed read is a warning.
async fn router_metrics(plan: &Plan, warnings: &mut Vec<String>) -> Option<RouterMetrics> {
    match fetch_router_metrics(plan.metrics_url.clone()?).await {
        Ok(metrics) => Some(metrics),
        Err(err) => {
            warnings.push(format!("second load shape: {err:#}"));
            None
        }
    }
}
