//! Backpressure (CONTRACT §5): three signals, a classifier and the status report.
//!
//! The service feeds the monitor with arrival → reply latencies of its decisions and,
//! periodically and per request, with its pending and in-flight counts; the request path only
//! reads the last classification (one atomic). Time is passed in as monotonic milliseconds.
//!
//! The latency signal is the p95 over the last [`LATENCY_WINDOW`] decisions of the last
//! [`LATENCY_WINDOW_MS`]: once a burst is over and no slow decision is younger than that,
//! the signal falls back (to 0 when idle), so backpressure cannot stay on for lack of new
//! decisions while it refuses every request.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Decisions whose latency the p95 is taken over.
pub const LATENCY_WINDOW: usize = 1000;
/// Age beyond which a decision's latency no longer counts, in milliseconds.
pub const LATENCY_WINDOW_MS: u64 = 1000;

/// Overload thresholds; a signal is over when strictly greater.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Pending messages (received, not yet being processed).
    pub queue_overload: u64,
    /// Messages being processed.
    pub inflight_overload: u64,
    /// p95 of arrival → reply over the last 1000 decisions (of the last second), in ms.
    pub latency_overload_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            queue_overload: 1000,
            inflight_overload: 500,
            latency_overload_ms: 100.0,
        }
    }
}

/// The classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackpressureStatus {
    /// No signal over.
    Inactive = 0,
    /// One signal over.
    Warning = 1,
    /// Two or more signals over: decide requests get `overloaded`.
    Active = 2,
}

impl BackpressureStatus {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => BackpressureStatus::Inactive,
            1 => BackpressureStatus::Warning,
            _ => BackpressureStatus::Active,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BackpressureStatus::Inactive => "inactive",
            BackpressureStatus::Warning => "warning",
            BackpressureStatus::Active => "active",
        }
    }
}

/// The three signals of one subject.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Signals {
    /// Received, not yet being processed.
    pub pending_messages: u64,
    /// Being processed.
    pub inflight_messages: u64,
    /// p95 of the last 1000 arrival → reply latencies (of the last second), ms.
    pub latency_p95_ms: f64,
}

/// 0 over → inactive, 1 → warning, ≥ 2 → active.
pub fn classify(signals: &Signals, thresholds: &Thresholds) -> BackpressureStatus {
    let over = [
        signals.pending_messages > thresholds.queue_overload,
        signals.inflight_messages > thresholds.inflight_overload,
        signals.latency_p95_ms > thresholds.latency_overload_ms,
    ]
    .iter()
    .filter(|over| **over)
    .count();
    match over {
        0 => BackpressureStatus::Inactive,
        1 => BackpressureStatus::Warning,
        _ => BackpressureStatus::Active,
    }
}

/// The reply of the status subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// The decide subject the report is about.
    pub subject: String,
    /// The classification.
    pub status: BackpressureStatus,
    /// The signals.
    pub metrics: Signals,
    /// The thresholds in force.
    pub thresholds: Thresholds,
    /// What callers are told while active.
    pub policy: RetryPolicy,
    /// Epoch milliseconds.
    pub timestamp: u64,
}

/// What overloaded callers are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    /// Seconds to wait before retrying.
    pub retry_after_seconds: u64,
}

/// A ring of the last [`LATENCY_WINDOW`] latencies with the time each was recorded.
#[derive(Debug)]
struct LatencyRing {
    /// (recorded at, ms).
    samples: Vec<(u64, f64)>,
    next: usize,
}

impl LatencyRing {
    fn push(&mut self, ms: f64, now_ms: u64) {
        if self.samples.len() < LATENCY_WINDOW {
            self.samples.push((now_ms, ms));
        } else {
            self.samples[self.next] = (now_ms, ms);
        }
        self.next = (self.next + 1) % LATENCY_WINDOW;
    }

    /// The p95 of the samples younger than [`LATENCY_WINDOW_MS`] at `now_ms` (0 when none).
    fn p95(&self, now_ms: u64) -> f64 {
        let oldest = now_ms.saturating_sub(LATENCY_WINDOW_MS);
        let mut recent: Vec<f64> = self
            .samples
            .iter()
            .filter(|(at, _)| *at >= oldest)
            .map(|(_, ms)| *ms)
            .collect();
        if recent.is_empty() {
            return 0.0;
        }
        let rank = ((recent.len() as f64 * 0.95).ceil() as usize).clamp(1, recent.len()) - 1;
        let (_, p95, _) = recent.select_nth_unstable_by(rank, f64::total_cmp);
        *p95
    }
}

/// A change of status, with the signals that caused it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusChange {
    /// Before.
    pub from: BackpressureStatus,
    /// After.
    pub to: BackpressureStatus,
    /// The signals classified.
    pub signals: Signals,
}

/// Keeps the signals, the current classification and the transition counter.
#[derive(Debug)]
pub struct BackpressureMonitor {
    thresholds: Thresholds,
    retry_after_seconds: u64,
    status: AtomicU8,
    activations: AtomicU64,
    latencies: Mutex<LatencyRing>,
    /// The last computed p95, as f64 bits, so classification needs no sort.
    p95_bits: AtomicU64,
}

impl BackpressureMonitor {
    /// A monitor with these thresholds; overloaded callers are told to retry after
    /// `retry_after_seconds`.
    pub fn new(thresholds: Thresholds, retry_after_seconds: u64) -> Self {
        BackpressureMonitor {
            thresholds,
            retry_after_seconds,
            status: AtomicU8::new(BackpressureStatus::Inactive as u8),
            activations: AtomicU64::new(0),
            latencies: Mutex::new(LatencyRing {
                samples: Vec::with_capacity(LATENCY_WINDOW),
                next: 0,
            }),
            p95_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Records one decision's arrival → reply latency, finished at `now_ms`.
    pub fn record_latency(&self, ms: f64, now_ms: u64) {
        self.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ms, now_ms);
    }

    /// Recomputes the p95 over the last [`LATENCY_WINDOW`] decisions younger than
    /// [`LATENCY_WINDOW_MS`] at `now_ms` (a sort of at most 1000 values: call it periodically,
    /// not per request) and returns it.
    pub fn refresh_latency(&self, now_ms: u64) -> f64 {
        let p95 = self
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .p95(now_ms);
        self.p95_bits.store(p95.to_bits(), Ordering::Relaxed);
        p95
    }

    /// Refreshes the p95, then classifies from the current counts.
    pub fn evaluate(&self, pending: u64, inflight: u64, now_ms: u64) -> Option<StatusChange> {
        self.refresh_latency(now_ms);
        self.classify_now(pending, inflight, BackpressureStatus::Inactive)
    }

    /// Classifies from the current counts and the last computed p95 (cheap: a few atomics),
    /// never below `floor` (a drop the service could not prevent keeps it at `warning`);
    /// returns the change when the status moved. A move into `active` is counted.
    pub fn classify_now(
        &self,
        pending: u64,
        inflight: u64,
        floor: BackpressureStatus,
    ) -> Option<StatusChange> {
        let signals = self.signals(pending, inflight);
        let status = classify(&signals, &self.thresholds).max(floor);
        if self.status.load(Ordering::Relaxed) == status as u8 {
            return None;
        }
        let before = BackpressureStatus::from_u8(self.status.swap(status as u8, Ordering::Relaxed));
        if before == status {
            return None;
        }
        if status == BackpressureStatus::Active {
            self.activations.fetch_add(1, Ordering::Relaxed);
        }
        Some(StatusChange {
            from: before,
            to: status,
            signals,
        })
    }

    /// The last classification.
    pub fn status(&self) -> BackpressureStatus {
        BackpressureStatus::from_u8(self.status.load(Ordering::Relaxed))
    }

    /// True while decide requests must be answered `overloaded`.
    pub fn is_active(&self) -> bool {
        self.status() == BackpressureStatus::Active
    }

    /// Transitions into `active` since start.
    pub fn activations(&self) -> u64 {
        self.activations.load(Ordering::Relaxed)
    }

    /// Seconds overloaded callers are told to wait.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after_seconds
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// The signals for these counts and the last computed p95.
    pub fn signals(&self, pending: u64, inflight: u64) -> Signals {
        Signals {
            pending_messages: pending,
            inflight_messages: inflight,
            latency_p95_ms: f64::from_bits(self.p95_bits.load(Ordering::Relaxed)),
        }
    }

    /// The status report for `subject`: the last classification and the signals for the
    /// given live counts.
    pub fn report(&self, subject: &str, pending: u64, inflight: u64, now_ms: u64) -> StatusReport {
        StatusReport {
            subject: subject.to_owned(),
            status: self.status(),
            metrics: self.signals(pending, inflight),
            thresholds: self.thresholds,
            policy: RetryPolicy {
                retry_after_seconds: self.retry_after_seconds,
            },
            timestamp: now_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackpressureStatus::*;

    #[test]
    fn every_status() {
        let t = Thresholds::default();
        let s = |p, i, l| Signals {
            pending_messages: p,
            inflight_messages: i,
            latency_p95_ms: l,
        };
        assert_eq!(classify(&s(0, 0, 0.0), &t), Inactive);
        assert_eq!(
            classify(&s(1000, 500, 100.0), &t),
            Inactive,
            "equal is not over"
        );
        assert_eq!(classify(&s(1001, 0, 0.0), &t), Warning);
        assert_eq!(classify(&s(0, 501, 0.0), &t), Warning);
        assert_eq!(classify(&s(0, 0, 100.1), &t), Warning);
        assert_eq!(classify(&s(1001, 501, 0.0), &t), Active);
        assert_eq!(classify(&s(1001, 0, 101.0), &t), Active);
        assert_eq!(classify(&s(1001, 501, 101.0), &t), Active);
    }

    #[test]
    fn monitor_reports_each_change_and_counts_transitions_into_active() {
        let thresholds = Thresholds {
            queue_overload: 1,
            inflight_overload: 1,
            latency_overload_ms: 1.0,
        };
        let monitor = BackpressureMonitor::new(thresholds, 7);
        assert_eq!(monitor.evaluate(0, 0, 0), None, "already inactive");
        let change = monitor.evaluate(2, 2, 0).expect("a change");
        assert_eq!((change.from, change.to), (Inactive, Active));
        assert_eq!(change.signals.pending_messages, 2);
        assert_eq!(monitor.evaluate(2, 2, 0), None);
        assert!(monitor.is_active());
        let change = monitor.evaluate(2, 0, 0).expect("a change");
        assert_eq!((change.from, change.to), (Active, Warning));
        assert!(monitor.evaluate(5, 5, 0).is_some());
        assert_eq!(monitor.activations(), 2);
        // A floor keeps it at warning with no signal over.
        let change = monitor.classify_now(0, 0, Warning).expect("a change");
        assert_eq!(change.to, Warning);
        let report = monitor.report("beamline.router.v1.decide", 5, 5, 42);
        assert_eq!(report.policy.retry_after_seconds, 7);
        assert_eq!(report.metrics.pending_messages, 5);
        let json = serde_json::to_value(&report).expect("serialisable");
        assert_eq!(json["status"], "warning");
        assert_eq!(json["thresholds"]["queue_overload"], 1);
    }

    #[test]
    fn p95_over_the_last_thousand_of_the_last_second() {
        let monitor = BackpressureMonitor::new(Thresholds::default(), 30);
        for i in 1..=100 {
            monitor.record_latency(i as f64, 10_000);
        }
        assert_eq!(monitor.refresh_latency(10_000), 95.0);
        for _ in 0..LATENCY_WINDOW {
            monitor.record_latency(1.0, 10_500);
        }
        assert_eq!(monitor.refresh_latency(10_500), 1.0);
        // A second later those decisions no longer count: idle is 0.
        assert_eq!(monitor.refresh_latency(10_500 + LATENCY_WINDOW_MS), 1.0);
        assert_eq!(monitor.refresh_latency(10_501 + LATENCY_WINDOW_MS), 0.0);
    }
}
