//! What a scenario showed: per strategy, the changing provider's share before and after the
//! change, how long its share took to fall below 10 %, and what callers waited.

use std::time::Duration;

use super::model::{Scenario, CHANGING};

/// Width of the windows before and after the change that shares and latencies are taken over.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Width of the buckets the time to leave the changing provider is read from.
const BUCKET: Duration = Duration::from_millis(500);
/// The share below which the changing provider counts as left.
const LEFT_BELOW: f64 = 0.10;

/// One simulated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When it was made, from the start of the scenario.
    pub at: Duration,
    /// The provider decided first; `None` when the router refused.
    pub first: Option<String>,
    /// What the caller waited over all its calls, ms.
    pub caller_latency_ms: f64,
    /// A call worked.
    pub ok: bool,
}

impl Record {
    /// A request the router refused.
    pub fn refused(at: Duration) -> Self {
        Record {
            at,
            first: None,
            caller_latency_ms: 0.0,
            ok: false,
        }
    }
}

/// One strategy through one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The scenario.
    pub scenario: Scenario,
    /// `weighted` or `adaptive`.
    pub strategy: String,
    /// Decisions made.
    pub decisions: usize,
    /// The changing provider's share of decisions in the window before the change.
    pub share_before: f64,
    /// The same in the window after it.
    pub share_after: f64,
    /// From the change to the end of the first bucket where its share is under 10 %.
    pub time_to_leave: Option<Duration>,
    /// Mean caller wait before and after, ms.
    pub latency_before_ms: f64,
    /// Mean caller wait after the change, ms.
    pub latency_after_ms: f64,
    /// Requests whose every call failed, after the change.
    pub failed_after: usize,
}

fn share(records: &[&Record]) -> f64 {
    if records.is_empty() {
        return 0.0;
    }
    let changing = records
        .iter()
        .filter(|r| r.first.as_deref() == Some(CHANGING))
        .count();
    changing as f64 / records.len() as f64
}

fn mean_latency(records: &[&Record]) -> f64 {
    let ok: Vec<f64> = records
        .iter()
        .filter(|r| r.first.is_some())
        .map(|r| r.caller_latency_ms)
        .collect();
    if ok.is_empty() {
        0.0
    } else {
        ok.iter().sum::<f64>() / ok.len() as f64
    }
}

impl Summary {
    /// Reads `records` of `strategy` through `scenario`, which changed at `change_at`.
    pub fn of(scenario: Scenario, strategy: &str, records: &[Record], change_at: Duration) -> Self {
        let between = |from: Duration, to: Duration| -> Vec<&Record> {
            records
                .iter()
                .filter(|r| r.at >= from && r.at < to)
                .collect()
        };
        let before = between(change_at.saturating_sub(WINDOW), change_at);
        let after = between(change_at, change_at + WINDOW);
        let last = records.iter().map(|r| r.at).max().unwrap_or_default();
        let mut time_to_leave = None;
        // Whole buckets only: the last, partly filled one says little.
        let mut from = change_at;
        while from + BUCKET <= last {
            let bucket = between(from, from + BUCKET);
            if !bucket.is_empty() && share(&bucket) < LEFT_BELOW {
                time_to_leave = Some(from + BUCKET - change_at);
                break;
            }
            from += BUCKET;
        }
        Summary {
            scenario,
            strategy: strategy.to_owned(),
            decisions: records.len(),
            share_before: share(&before),
            share_after: share(&after),
            time_to_leave,
            latency_before_ms: mean_latency(&before),
            latency_after_ms: mean_latency(&after),
            failed_after: after.iter().filter(|r| !r.ok).count(),
        }
    }
}

/// The Markdown table of every summary.
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::from(
        "| scenario | strategy | decisions | p1 share 10 s before | p1 share 10 s after | \
         p1 under 10 % after | mean caller wait before | after | requests failed after |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in summaries {
        let left = s
            .time_to_leave
            .map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()));
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} % | {:.1} % | {} | {:.0} ms | {:.0} ms | {} |\n",
            s.scenario.name(),
            s.strategy,
            s.decisions,
            s.share_before * 100.0,
            s.share_after * 100.0,
            left,
            s.latency_before_ms,
            s.latency_after_ms,
            s.failed_after,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ms: u64, first: &str, latency: f64) -> Record {
        Record {
            at: Duration::from_millis(ms),
            first: Some(first.to_owned()),
            caller_latency_ms: latency,
            ok: true,
        }
    }

    #[test]
    fn shares_windows_and_the_time_to_leave() {
        let mut records = Vec::new();
        for i in 0..100u64 {
            let provider = if i % 2 == 0 { "p1" } else { "p2" };
            records.push(record(i * 100, provider, 850.0));
        }
        // After the change: p1 until 1.1 s; the bucket from 1.5 s to 2 s is the first without.
        for i in 0..100u64 {
            let provider = if i < 12 { "p1" } else { "p2" };
            records.push(record(10_000 + i * 100, provider, 900.0));
        }
        let s = Summary::of(
            Scenario::Latency,
            "adaptive",
            &records,
            Duration::from_secs(10),
        );
        assert_eq!(s.decisions, 200);
        assert!((s.share_before - 0.5).abs() < 1e-9);
        assert!((s.share_after - 0.12).abs() < 1e-9);
        assert_eq!(s.time_to_leave, Some(Duration::from_millis(2_000)));
        assert!((s.latency_before_ms - 850.0).abs() < 1e-9);
        let table = table(&[s]);
        assert!(
            table.contains("| latency | adaptive | 200 | 50.0 % | 12.0 % | 2.0 s |"),
            "{table}"
        );
    }

    #[test]
    fn a_provider_never_left_says_never() {
        let mut records: Vec<Record> = (0..200u64).map(|i| record(i * 100, "p1", 800.0)).collect();
        // A last, partly filled bucket without p1 does not count.
        records.push(record(20_000, "p2", 900.0));
        let s = Summary::of(
            Scenario::Errors,
            "weighted",
            &records,
            Duration::from_secs(10),
        );
        assert_eq!(s.time_to_leave, None);
        assert!(table(&[s]).contains("| never |"));
    }
}
