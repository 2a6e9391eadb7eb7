//! [`Measured`]: what a run measured, round by round, and each side's totals over its
//! rounds ([`SideTotals`]); the input of [`super::Candidate::new`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::figures::{RoundFigures, Side};
use crate::load::PhaseResult;
use crate::stats::{PhaseStats, Recorder};

/// Everything one side measured, over all its rounds.
#[derive(Debug, Clone, Default)]
pub struct SideTotals {
    recorder: Recorder,
    window: Duration,
    cpu_s: Option<f64>,
    cpu_requests: u64,
}

impl SideTotals {
    /// Adds one round.
    pub fn add(&mut self, result: &PhaseResult) {
        // Every recorder has the same bounds, so merging cannot fail.
        let _ = self.recorder.merge(&result.recorder);
        self.window += result.window;
        if let Some(cpu) = result.cpu_s {
            self.cpu_s = Some(self.cpu_s.unwrap_or(0.0) + cpu);
            self.cpu_requests += result.recorder.recorded();
        }
    }

    /// The side's figures over all its rounds.
    pub fn stats(&self) -> PhaseStats {
        self.recorder.summarize(self.window)
    }

    /// CPU microseconds per request over all rounds with a CPU figure.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let cpu = self.cpu_s?;
        (self.cpu_requests > 0).then(|| cpu * 1e6 / self.cpu_requests as f64)
    }
}

/// What a run measured: its rounds in order, and each side's totals.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Every measured round, in order.
    pub rounds: Vec<RoundFigures>,
    /// Totals by side name.
    pub totals: BTreeMap<String, SideTotals>,
}

impl Measured {
    /// The totals of `side`, when it was measured.
    pub fn side(&self, side: Side) -> Option<&SideTotals> {
        self.totals.get(side.as_str())
    }
}
