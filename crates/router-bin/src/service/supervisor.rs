//! The periodic work: backpressure re-evaluated and gauges refreshed every 50 ms, messages
//! the client library dropped counted (and logged at most once per `DROP_LOG_INTERVAL`),
//! and freed memory given back once the decide path has been idle for a while.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use router_core::Router;

use crate::runtime::clock;
use crate::runtime::memory;
use crate::service::backpressure::Backpressure;
use crate::telemetry::metrics::Metrics;
use crate::transport::readiness::Readiness;

/// How often backpressure is re-evaluated and gauges refreshed.
const EVALUATION_PERIOD: Duration = Duration::from_millis(50);
/// Shortest time between two log lines about dropped messages.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counts what the client library dropped: the decide messages the connection received that
/// no worker read, measured only while every worker waits with nothing to read, and only
/// once the figure held still over two ticks (a message on its way to a worker is not a drop).
#[derive(Default)]
struct DropCounter {
    counted: u64,
    last_seen: Option<(u64, u64)>,
    unlogged: u64,
    last_log: Option<std::time::Instant>,
}

impl DropCounter {
    /// New drops since the last call.
    fn tick(&mut self, backpressure: &Backpressure) -> u64 {
        let Some(seen) = backpressure.intake.unread_while_idle() else {
            self.last_seen = None;
            return 0;
        };
        let steady = self.last_seen == Some(seen);
        self.last_seen = Some(seen);
        let (unread, _) = seen;
        if !steady || unread <= self.counted {
            return 0;
        }
        let new = unread - self.counted;
        self.counted = unread;
        new
    }

    /// Logs the drops not yet logged, at most once per [`DROP_LOG_INTERVAL`].
    fn log(&mut self, new: u64) {
        self.unlogged += new;
        if self.unlogged == 0
            || self
                .last_log
                .is_some_and(|at| at.elapsed() < DROP_LOG_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            dropped = self.unlogged,
            total = self.counted,
            "the NATS client library dropped decide requests as a slow consumer: they got no reply"
        );
        self.unlogged = 0;
        self.last_log = Some(std::time::Instant::now());
    }
}

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
    let mut drops = DropCounter::default();
    let mut last_upkeep = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {}
        }
        if last_upkeep.elapsed() >= crate::telemetry::metrics::UPKEEP_PERIOD {
            metrics.registry.run_upkeep();
            metrics.publish_quotas(router.engine().quota(), crate::runtime::clock::now_ms());
            last_upkeep = tokio::time::Instant::now();
        }
        let new_drops = drops.tick(&backpressure);
        if new_drops > 0 {
            metrics.dropped_slow_consumer.increment(new_drops);
            backpressure.dropped();
        }
        drops.log(new_drops);
        let taken = backpressure.intake.read();
        if taken == last_taken {
            idle_ticks = idle_ticks.saturating_add(1);
            if idle_ticks == memory::IDLE_TICKS_BEFORE_TRIM {
                memory::trim();
            }
        } else {
            (last_taken, idle_ticks) = (taken, 0);
        }
        backpressure.evaluate();
        metrics.decide_read.absolute(backpressure.intake.read());
        let (pending, inflight) = backpressure.intake.counts();
        metrics.pending.set(pending as f64);
        metrics.inflight.set(inflight as f64);
        let connected = if readiness.nats_connected() { 1.0 } else { 0.0 };
        metrics.nats_connected.set(connected);
        show_breakers(&router, &metrics);
    }
}

/// Logs and counts every breaker state change since the last tick, and sets the state gauge
/// of every breaker (its effective state: an open breaker past its timeout is half-open).
fn show_breakers(router: &Router, metrics: &Metrics) {
    let breakers = router.engine().breakers();
    for event in breakers.take_events() {
        let key = &event.key;
        let (from, to) = (event.transition.from.as_str(), event.transition.to.as_str());
        tracing::info!(
            tenant = %key.tenant,
            policy = %key.policy,
            provider = %key.provider,
            from,
            to,
            "circuit breaker changed state"
        );
        metrics
            .registry
            .counter(
                "router_breaker_transitions_total",
                &[
                    ("tenant", &key.tenant),
                    ("policy", &key.policy),
                    ("provider", &key.provider),
                    ("to", to),
                ],
            )
            .increment(1);
    }
    let mut not_closed = 0;
    for (key, state) in breaker_states(router) {
        if state != router_core::BreakerState::Closed {
            not_closed += 1;
        }
        metrics
            .registry
            .gauge(
                "router_breaker_state",
                &[
                    ("tenant", &key.tenant),
                    ("policy", &key.policy),
                    ("provider", &key.provider),
                ],
            )
            .set(state.gauge());
    }
    metrics.breakers_not_closed.set(not_closed as f64);
}

/// Every breaker that ever left `closed`, with its effective state now.
pub fn breaker_states(
    router: &Router,
) -> Vec<(router_core::breaker::BreakerKey, router_core::BreakerState)> {
    let policies = router.policies().snapshot();
    router
        .engine()
        .breakers()
        .states(clock::now_ms(), |tenant, policy| {
            policies.get(tenant, policy)?.circuit_breaker.clone()
        })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use router_core::{BackpressureMonitor, BackpressureStatus, Thresholds};

    use super::*;
    use crate::service::backpressure::IntakeCounts;

    fn backpressure() -> (Arc<async_nats::Statistics>, Backpressure) {
        let stats = Arc::new(async_nats::Statistics::default());
        let metrics = Arc::new(Metrics::new("t.v1.decide").expect("metrics"));
        let backpressure = Backpressure::new(
            BackpressureMonitor::new(Thresholds::default(), 30),
            IntakeCounts::new(stats.clone()),
            metrics,
        );
        (stats, backpressure)
    }

    #[test]
    fn drops_count_only_while_every_worker_is_idle_and_the_gap_holds() {
        let (stats, bp) = backpressure();
        let intake = &bp.intake;
        let idle = AtomicBool::new(false);
        intake.worker_started();
        let mut drops = DropCounter::default();
        // 10 received, 7 read: the worker is busy, nothing can be told yet.
        stats.in_messages.store(10, Ordering::Relaxed);
        for _ in 0..7 {
            intake.read_one();
        }
        assert_eq!(drops.tick(&bp), 0);
        // Idle with 3 unread: counted once the gap held over two ticks.
        intake.set_idle(&idle, true);
        assert_eq!(drops.tick(&bp), 0, "first sight");
        assert_eq!(drops.tick(&bp), 3, "held still: 3 dropped");
        assert_eq!(drops.tick(&bp), 0, "counted once");
        // A message on its way to the worker is not a drop: the gap moves.
        stats.in_messages.store(11, Ordering::Relaxed);
        assert_eq!(drops.tick(&bp), 0);
        intake.read_one();
        assert_eq!(drops.tick(&bp), 0);
        assert_eq!(drops.tick(&bp), 0, "the gap is back to 3: nothing new");
    }

    #[test]
    fn pending_is_what_was_queued_and_not_taken() {
        let (_, bp) = backpressure();
        let intake = &bp.intake;
        for _ in 0..5 {
            intake.read_one();
            intake.queued_one();
        }
        intake.start_one();
        assert_eq!(intake.counts(), (4, 1));
        intake.finish_one();
        assert_eq!(intake.counts(), (4, 0));
    }

    #[test]
    fn a_drop_keeps_the_status_at_warning() {
        let (_, bp) = backpressure();
        bp.classify();
        assert_eq!(bp.monitor.status(), BackpressureStatus::Inactive);
        bp.dropped();
        bp.classify();
        assert_eq!(bp.monitor.status(), BackpressureStatus::Warning);
    }
}
