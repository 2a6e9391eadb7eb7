//! Backpressure (CONTRACT §5): three signals, a classifier and the status report.
//!
//! The service feeds the monitor with decision latencies and, periodically, with its pending
//! and in-flight counts; the request path only reads the last classification (one atomic).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Decisions whose latency the p95 is taken over.
pub const LATENCY_WINDOW: usize = 1000;

/// Overload thresholds; a signal is over when strictly greater.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// Pending messages (received, not yet being processed).
    pub queue_overload: u64,
    /// Messages being processed.
    pub inflight_overload: u64,
    /// p95 decision latency over the last 1000 decisions, in ms.
    pub latency_overload_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            queue_overload: 1000,
            inflight_overload: 500,
            latency_overload_ms: 5000.0,
        }
    }
}

/// The classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    /// p95 of the last 1000 decision latencies, ms.
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

/// A ring of the last [`LATENCY_WINDOW`] latencies.
#[derive(Debug)]
struct LatencyRing {
    samples: Vec<f64>,
    next: usize,
}

impl LatencyRing {
    fn push(&mut self, ms: f64) {
        if self.samples.len() < LATENCY_WINDOW {
            self.samples.push(ms);
        } else {
            self.samples[self.next] = ms;
        }
        self.next = (self.next + 1) % LATENCY_WINDOW;
    }

    fn p95(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let mut sorted = self.samples.clone();
        let rank = ((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len()) - 1;
        let (_, p95, _) = sorted.select_nth_unstable_by(rank, f64::total_cmp);
        *p95
    }
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

    /// Records one decision's end-to-end latency.
    pub fn record_latency(&self, ms: f64) {
        self.latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ms);
    }

    /// Recomputes the p95 over the last [`LATENCY_WINDOW`] decisions (a sort of at most
    /// 1000 values: call it periodically, not per request) and returns it.
    pub fn refresh_latency(&self) -> f64 {
        let p95 = self
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .p95();
        self.p95_bits.store(p95.to_bits(), Ordering::Relaxed);
        p95
    }

    /// Refreshes the p95, then classifies from the current counts; returns the new status
    /// and whether this call moved it into `active`.
    pub fn evaluate(&self, pending: u64, inflight: u64) -> (BackpressureStatus, bool) {
        self.refresh_latency();
        self.classify_now(pending, inflight)
    }

    /// Classifies from the current counts and the last computed p95 (cheap: a few
    /// atomics); returns the new status and whether this call moved it into
    /// `active`.
    pub fn classify_now(&self, pending: u64, inflight: u64) -> (BackpressureStatus, bool) {
        let status = classify(&self.signals(pending, inflight), &self.thresholds);
        if self.status.load(Ordering::Relaxed) == status as u8 {
            return (status, false);
        }
        let before = BackpressureStatus::from_u8(self.status.swap(status as u8, Ordering::Relaxed));
        let activated =
            status == BackpressureStatus::Active && before != BackpressureStatus::Active;
        if activated {
            self.activations.fetch_add(1, Ordering::Relaxed);
        }
        (status, activated)
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
            classify(&s(1000, 500, 5000.0), &t),
            Inactive,
            "equal is not over"
        );
        assert_eq!(classify(&s(1001, 0, 0.0), &t), Warning);
        assert_eq!(classify(&s(0, 501, 0.0), &t), Warning);
        assert_eq!(classify(&s(0, 0, 5000.1), &t), Warning);
        assert_eq!(classify(&s(1001, 501, 0.0), &t), Active);
        assert_eq!(classify(&s(1001, 0, 5001.0), &t), Active);
        assert_eq!(classify(&s(1001, 501, 5001.0), &t), Active);
    }

    #[test]
    fn monitor_counts_transitions_into_active() {
        let thresholds = Thresholds {
            queue_overload: 1,
            inflight_overload: 1,
            latency_overload_ms: 1.0,
        };
        let monitor = BackpressureMonitor::new(thresholds, 7);
        assert_eq!(monitor.evaluate(0, 0), (Inactive, false));
        assert_eq!(monitor.evaluate(2, 2), (Active, true));
        assert_eq!(monitor.evaluate(2, 2), (Active, false));
        assert!(monitor.is_active());
        assert_eq!(monitor.evaluate(2, 0), (Warning, false));
        assert_eq!(monitor.evaluate(5, 5), (Active, true));
        assert_eq!(monitor.activations(), 2);
        let report = monitor.report("beamline.router.v1.decide", 5, 5, 42);
        assert_eq!(report.policy.retry_after_seconds, 7);
        assert_eq!(report.metrics.pending_messages, 5);
        let json = serde_json::to_value(&report).expect("serialisable");
        assert_eq!(json["status"], "active");
        assert_eq!(json["thresholds"]["queue_overload"], 1);
    }

    #[test]
    fn p95_over_the_last_thousand() {
        let monitor = BackpressureMonitor::new(Thresholds::default(), 30);
        for i in 1..=100 {
            monitor.record_latency(i as f64);
        }
        monitor.evaluate(0, 0);
        assert_eq!(monitor.report("s", 0, 0, 0).metrics.latency_p95_ms, 95.0);
        for _ in 0..LATENCY_WINDOW {
            monitor.record_latency(1.0);
        }
        monitor.evaluate(0, 0);
        assert_eq!(monitor.report("s", 0, 0, 0).metrics.latency_p95_ms, 1.0);
    }
}
