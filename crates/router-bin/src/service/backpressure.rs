//! Backpressure of the decide subject (CONTRACT §5): the intake counts the signals are read
//! from, the classification (logged once per change), and what it shows in metrics and on
//! the status subject.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::Statistics;

use router_core::{BackpressureMonitor, BackpressureStatus, StatusChange, StatusReport};

use crate::runtime::clock;
use crate::telemetry::metrics::Metrics;

/// How long a message the client library dropped keeps the status at `warning` at least.
pub const DROP_WARNING: Duration = Duration::from_secs(10);

/// Counts of the decide path that the signals come from.
pub struct IntakeCounts {
    /// Statistics of the decide connection: messages it received (dropped ones included).
    decide_stats: Arc<Statistics>,
    /// Messages the workers read off their subscriptions (and stamped).
    read: AtomicU64,
    /// Read, waiting in a worker's queue.
    queued: AtomicU64,
    /// Taken from a queue, being processed.
    inflight: AtomicU64,
    /// Workers waiting for a message with an empty queue and nothing left to read.
    idle_workers: AtomicU64,
    /// Workers serving.
    workers: AtomicU64,
    /// Messages the decide connection received that are no decide requests (the readiness
    /// round trip's answer).
    not_decide: AtomicU64,
}

impl IntakeCounts {
    /// Counts over the decide connection whose statistics are `decide_stats`.
    pub fn new(decide_stats: Arc<Statistics>) -> Self {
        IntakeCounts {
            decide_stats,
            read: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            inflight: AtomicU64::new(0),
            idle_workers: AtomicU64::new(0),
            workers: AtomicU64::new(0),
            not_decide: AtomicU64::new(0),
        }
    }

    /// The decide connection received `count` messages that are no decide requests.
    pub fn received_elsewhere(&self, count: u64) {
        self.not_decide.fetch_add(count, Ordering::Relaxed);
    }

    /// A worker starts serving.
    pub fn worker_started(&self) {
        self.workers.fetch_add(1, Ordering::Relaxed);
    }

    /// A message was read off a subscription.
    pub fn read_one(&self) {
        self.read.fetch_add(1, Ordering::Relaxed);
    }

    /// A read message was queued for a worker.
    pub fn queued_one(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker took a queued message and starts processing it.
    pub fn start_one(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.inflight.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker finished processing a message.
    pub fn finish_one(&self) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
    }

    /// A worker waits for its next message (`true`) or has one (`false`).
    pub fn set_idle(&self, idle: &AtomicBool, now: bool) {
        if idle.swap(now, Ordering::Relaxed) != now {
            if now {
                self.idle_workers.fetch_add(1, Ordering::Relaxed);
            } else {
                self.idle_workers.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Messages read off the subscriptions since start.
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Being processed now.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::Relaxed)
    }

    /// (pending, in flight): pending is what the router read and queued and no worker has
    /// taken yet; a message the client library dropped was never read, so it is not pending.
    pub fn counts(&self) -> (u64, u64) {
        (self.queued.load(Ordering::Relaxed), self.inflight())
    }

    /// Messages the decide connection received that no worker read, when every worker is
    /// waiting with nothing left to read (then the difference is what the client library
    /// dropped); `None` while a worker is busy.
    pub fn unread_while_idle(&self) -> Option<(u64, u64)> {
        let workers = self.workers.load(Ordering::Relaxed);
        if workers == 0 || self.idle_workers.load(Ordering::Relaxed) < workers {
            return None;
        }
        let received = self.decide_stats.in_messages.load(Ordering::Relaxed);
        let received = received.saturating_sub(self.not_decide.load(Ordering::Relaxed));
        let read = self.read();
        Some((received.saturating_sub(read), read))
    }
}

/// The classification with its inputs and outputs.
pub struct Backpressure {
    /// Signals, thresholds and the last classification.
    pub monitor: BackpressureMonitor,
    /// Where pending and in-flight come from.
    pub intake: IntakeCounts,
    metrics: Arc<Metrics>,
    /// When the client library last dropped a message (the status stays at least `warning`
    /// for [`DROP_WARNING`]).
    last_drop: Mutex<Option<Instant>>,
}

impl Backpressure {
    /// Backpressure from `monitor` over `intake`, shown in `metrics`.
    pub fn new(monitor: BackpressureMonitor, intake: IntakeCounts, metrics: Arc<Metrics>) -> Self {
        Backpressure {
            monitor,
            intake,
            metrics,
            last_drop: Mutex::new(None),
        }
    }

    /// Records that the client library dropped messages now.
    pub fn dropped(&self) {
        *self.last_drop.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn floor(&self) -> BackpressureStatus {
        let recent = self
            .last_drop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < DROP_WARNING);
        if recent {
            BackpressureStatus::Warning
        } else {
            BackpressureStatus::Inactive
        }
    }

    /// Classifies from the current counts and the last computed latency p95; a change is
    /// logged once with the signals, and shown in the gauge and the transition counter.
    pub fn classify(&self) {
        let (pending, inflight) = self.intake.counts();
        if let Some(change) = self.monitor.classify_now(pending, inflight, self.floor()) {
            self.show(&change);
        }
    }

    /// Recomputes the latency p95 (periodic work), then classifies.
    pub fn evaluate(&self) {
        self.monitor.refresh_latency(clock::monotonic_ms());
        self.classify();
    }

    fn show(&self, change: &StatusChange) {
        let active = change.to == BackpressureStatus::Active;
        self.metrics
            .backpressure_active
            .set(if active { 1.0 } else { 0.0 });
        if active {
            self.metrics.backpressure_active_total.increment(1);
        }
        let s = change.signals;
        let (from, to) = (change.from.as_str(), change.to.as_str());
        if change.to > change.from {
            tracing::warn!(
                from,
                to,
                pending = s.pending_messages,
                inflight = s.inflight_messages,
                latency_p95_ms = s.latency_p95_ms,
                "backpressure rose{}",
                if active { ": answering overloaded" } else { "" }
            );
        } else {
            tracing::info!(
                from,
                to,
                pending = s.pending_messages,
                inflight = s.inflight_messages,
                latency_p95_ms = s.latency_p95_ms,
                "backpressure fell"
            );
        }
    }

    /// The status subject's report for `subject` at `now_ms`.
    pub fn report(&self, subject: &str, now_ms: u64) -> StatusReport {
        let (pending, inflight) = self.intake.counts();
        self.monitor.report(subject, pending, inflight, now_ms)
    }
}
