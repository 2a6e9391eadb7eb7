//! Backpressure of the decide subject (CONTRACT §5): the intake counts the signals are read
//! from, the classification, and what it shows in metrics and on the status subject.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_nats::Statistics;

use router_core::{BackpressureMonitor, BackpressureStatus, StatusReport};

use crate::metrics::Metrics;

/// Counts of the decide path that the pending and in-flight signals come from.
pub struct IntakeCounts {
    /// Statistics of the decide connection: messages it received.
    decide_stats: Arc<Statistics>,
    /// Decide messages taken by a worker.
    taken: AtomicU64,
    /// Being processed.
    inflight: AtomicU64,
}

impl IntakeCounts {
    /// Counts over the decide connection whose statistics are `decide_stats`.
    pub fn new(decide_stats: Arc<Statistics>) -> Self {
        IntakeCounts {
            decide_stats,
            taken: AtomicU64::new(0),
            inflight: AtomicU64::new(0),
        }
    }

    /// A worker took a message and starts processing it.
    pub fn start_one(&self) {
        self.taken.fetch_add(1, Ordering::Relaxed);
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker finished processing a message.
    pub fn finish_one(&self) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Messages taken by a worker since start.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Being processed now.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// (pending, in flight). Pending is what the decide connection received and no worker
    /// has taken yet: the decide subscriptions are the only ones on that connection.
    pub fn counts(&self) -> (u64, u64) {
        let received = self.decide_stats.in_messages.load(Ordering::Relaxed);
        (received.saturating_sub(self.taken()), self.inflight())
    }
}

/// The classification with its inputs and outputs.
pub struct Backpressure {
    /// Signals, thresholds and the last classification.
    pub monitor: BackpressureMonitor,
    /// Where pending and in-flight come from.
    pub intake: IntakeCounts,
    metrics: Arc<Metrics>,
}

impl Backpressure {
    /// Backpressure from `monitor` over `intake`, shown in `metrics`.
    pub fn new(monitor: BackpressureMonitor, intake: IntakeCounts, metrics: Arc<Metrics>) -> Self {
        Backpressure {
            monitor,
            intake,
            metrics,
        }
    }

    /// Classifies from the current counts and the last computed latency p95; logs and counts
    /// a transition into `active`.
    pub fn classify(&self) {
        let (pending, inflight) = self.intake.counts();
        let (status, activated) = self.monitor.classify_now(pending, inflight);
        if activated {
            self.metrics.backpressure_active_total.increment(1);
            tracing::warn!(
                pending,
                inflight,
                "backpressure active: answering overloaded"
            );
        }
        let active = status == BackpressureStatus::Active;
        self.metrics
            .backpressure_active
            .set(if active { 1.0 } else { 0.0 });
    }

    /// The status subject's report for `subject` at `now_ms`.
    pub fn report(&self, subject: &str, now_ms: u64) -> StatusReport {
        let (pending, inflight) = self.intake.counts();
        self.monitor.report(subject, pending, inflight, now_ms)
    }
}
