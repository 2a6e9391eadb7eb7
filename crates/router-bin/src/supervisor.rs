//! The periodic work: backpressure re-evaluated and gauges refreshed every 50 ms, and freed
//! memory given back once the decide path has been idle for a while.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use router_core::Router;

use crate::backpressure::Backpressure;
use crate::memory;
use crate::metrics::Metrics;
use crate::readiness::Readiness;

/// How often backpressure is re-evaluated and gauges refreshed.
const EVALUATION_PERIOD: Duration = Duration::from_millis(50);

/// What the supervisor watches and refreshes.
pub struct Supervised {
    /// Backpressure signals.
    pub backpressure: Arc<Backpressure>,
    /// Connection state for the gauge.
    pub readiness: Arc<Readiness>,
    /// Breaker states for the gauge.
    pub router: Arc<Router>,
    /// The gauges.
    pub metrics: Arc<Metrics>,
}

/// Runs until `shutdown` flips.
pub async fn run(supervised: Supervised, mut shutdown: watch::Receiver<bool>) {
    let Supervised {
        backpressure,
        readiness,
        router,
        metrics,
    } = supervised;
    let mut tick = tokio::time::interval(EVALUATION_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (mut last_taken, mut idle_ticks) = (0, 0u32);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        let taken = backpressure.intake.taken();
        if taken == last_taken {
            idle_ticks = idle_ticks.saturating_add(1);
            if idle_ticks == memory::IDLE_TICKS_BEFORE_TRIM {
                memory::trim();
            }
        } else {
            (last_taken, idle_ticks) = (taken, 0);
        }
        backpressure.monitor.refresh_latency();
        backpressure.classify();
        let (pending, inflight) = backpressure.intake.counts();
        metrics.pending.set(pending as f64);
        metrics.inflight.set(inflight as f64);
        let connected = if readiness.nats_connected() { 1.0 } else { 0.0 };
        metrics.nats_connected.set(connected);
        metrics
            .breakers_not_closed
            .set(router.engine().breakers().not_closed() as f64);
    }
}
