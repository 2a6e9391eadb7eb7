//! Latency histograms and counters for one phase, and the figures drawn from them.
//!
//! Every request that belongs to the measured window is recorded, whatever its outcome:
//! failed requests (error replies, timeouts, no responders) record their latency in the same
//! histogram as successful ones, so an error can never make the latency figures look better
//! by disappearing from them. They are also counted in `errors_total` / `errors_by_kind`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// Highest latency the histogram tracks exactly, in microseconds (one hour); longer ones
/// are clamped to it.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Significant figures kept by the histogram (0.1 % resolution).
const SIGNIFICANT_FIGURES: u8 = 3;

/// Collects the outcomes and latencies of one requester; merged after the phase.
#[derive(Debug, Clone)]
pub struct Recorder {
    histogram: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    unsent: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder (microsecond histogram, 1 µs to 1 h, 3 significant figures).
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts: a failure here is a bug.
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGNIFICANT_FIGURES)
            .expect("constant histogram bounds are valid");
        Self {
            histogram,
            ok: 0,
            errors: BTreeMap::new(),
            unsent: 0,
        }
    }

    /// Records one finished request.
    pub fn record(&mut self, outcome: &Outcome, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(micros.max(1));
        match outcome.error_kind() {
            None => self.ok += 1,
            Some(kind) => *self.errors.entry(kind).or_insert(0) += 1,
        }
    }

    /// Counts requests an open-loop schedule meant to send in the measured window but could
    /// not send before the phase's hard deadline. They are errors of kind `unsent` and have
    /// no latency.
    pub fn record_unsent(&mut self, count: u64) {
        if count > 0 {
            self.unsent += count;
            *self.errors.entry("unsent".to_owned()).or_insert(0) += count;
        }
    }

    /// Adds another recorder's data to this one.
    pub fn merge(&mut self, other: &Recorder) -> anyhow::Result<()> {
        self.histogram
            .add(&other.histogram)
            .context("merging latency histograms")?;
        self.ok += other.ok;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_insert(0) += count;
        }
        self.unsent += other.unsent;
        Ok(())
    }

    /// Number of requests recorded with a latency (all outcomes).
    pub fn recorded(&self) -> u64 {
        self.histogram.len()
    }

    /// Draws the phase figures; `window` is the measured time the requests were spread over.
    pub fn summarize(&self, window: Duration) -> PhaseStats {
        let errors_total: u64 = self.errors.values().sum();
        let requests_total = self.histogram.len() + self.unsent;
        let seconds = window.as_secs_f64();
        let rps = if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        };
        PhaseStats {
            requests_total,
            requests_ok: self.ok,
            errors_total,
            errors_by_kind: self.errors.clone(),
            rps,
            window_s: seconds,
            latency: Percentiles::from_histogram(&self.histogram),
        }
    }
}

/// Latency figures in milliseconds; `None` when nothing was recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Highest recorded latency.
    pub max_ms: Option<f64>,
    /// Arithmetic mean.
    pub mean_ms: Option<f64>,
}

impl Percentiles {
    fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let at = |q: f64| Some(micros_to_ms(histogram.value_at_quantile(q) as f64));
        Self {
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: Some(micros_to_ms(histogram.max() as f64)),
            mean_ms: Some(micros_to_ms(histogram.mean())),
        }
    }
}

/// Microseconds to milliseconds, rounded to the microsecond.
fn micros_to_ms(micros: f64) -> f64 {
    (micros).round() / 1000.0
}

/// The figures of one measured phase (router or echo).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseStats {
    /// Requests in the measured window: every outcome, plus open-loop requests left unsent.
    pub requests_total: u64,
    /// Requests answered with `"ok": true`.
    pub requests_ok: u64,
    /// `requests_total - requests_ok`.
    pub errors_total: u64,
    /// Errors by kind (see [`Outcome::error_kind`]); only kinds that occurred.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Successful requests per second over the measured window (goodput).
    pub rps: f64,
    /// Length of the measured window in seconds.
    pub window_s: f64,
    /// Latency of all recorded requests, failed ones included.
    pub latency: Percentiles,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut rec = Recorder::new();
        for v in 1..=1000 {
            rec.record(&Outcome::Ok, ms(v));
        }
        let stats = rec.summarize(Duration::from_secs(10));
        assert_eq!(stats.requests_total, 1000);
        assert_eq!(stats.requests_ok, 1000);
        assert_eq!(stats.errors_total, 0);
        assert!((stats.rps - 100.0).abs() < 1e-9);
        let close = |got: Option<f64>, want: f64| {
            let got = got.expect("figure present");
            assert!((got - want).abs() <= want * 0.002, "got {got}, want {want}");
        };
        close(stats.latency.p50_ms, 500.0);
        close(stats.latency.p95_ms, 950.0);
        close(stats.latency.p99_ms, 990.0);
        close(stats.latency.p999_ms, 999.0);
        close(stats.latency.max_ms, 1000.0);
        close(stats.latency.mean_ms, 500.5);
    }

    #[test]
    fn failed_requests_keep_their_latency_and_are_counted() {
        let mut rec = Recorder::new();
        for _ in 0..98 {
            rec.record(&Outcome::Ok, ms(1));
        }
        rec.record(&Outcome::Timeout, ms(2000));
        rec.record(&Outcome::ErrorReply("overloaded".into()), ms(3));
        let stats = rec.summarize(Duration::from_secs(1));
        assert_eq!(stats.requests_total, 100);
        assert_eq!(stats.errors_total, 2);
        assert_eq!(stats.errors_by_kind.get("timeout"), Some(&1));
        assert_eq!(stats.errors_by_kind.get("reply.overloaded"), Some(&1));
        // rps counts successes only.
        assert!((stats.rps - 98.0).abs() < 1e-9);
        // The timeout is in the tail: max is about 2 s.
        let max = stats.latency.max_ms.unwrap_or_default();
        assert!((max - 2000.0).abs() < 2.0, "max {max}");
    }

    #[test]
    fn merge_adds_everything() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.record(&Outcome::Ok, ms(1));
        b.record(&Outcome::NoResponders, ms(1));
        b.record_unsent(3);
        a.merge(&b).expect("merge");
        let stats = a.summarize(Duration::from_secs(1));
        assert_eq!(stats.requests_total, 5);
        assert_eq!(stats.requests_ok, 1);
        assert_eq!(stats.errors_total, 4);
        assert_eq!(stats.errors_by_kind.get("unsent"), Some(&3));
        assert_eq!(stats.errors_by_kind.get("no_responders"), Some(&1));
    }

    #[test]
    fn empty_phase_has_no_percentiles() {
        let stats = Recorder::new().summarize(Duration::ZERO);
        assert_eq!(stats.latency, Percentiles::default());
        assert_eq!(stats.rps, 0.0);
    }

    #[test]
    fn huge_latency_is_clamped_not_lost() {
        let mut rec = Recorder::new();
        rec.record(&Outcome::Timeout, Duration::from_secs(10_000));
        rec.record(&Outcome::Ok, Duration::ZERO);
        assert_eq!(rec.recorded(), 2);
    }
}
