//! One breaker's state machine: closed, open and half-open, the error-rate window, and the
//! probe rounds while half-open (see the module docs of [`super`]).

use std::collections::VecDeque;

use crate::policy::BreakerConfig;

use super::report::Report;
use super::state::{BreakerState, Transition};

/// Most outcomes a window keeps, whatever its length in time.
const MAX_WINDOW_SAMPLES: usize = 10_000;

/// One breaker: its state and the counts that decide its next change.
#[derive(Debug, Clone)]
pub(super) struct Breaker {
    pub(super) state: BreakerState,
    consecutive_failures: u32,
    /// (time, failed) of recent outcomes while closed.
    window: VecDeque<(u64, bool)>,
    opened_at_ms: u64,
    /// When the breaker went half-open (probes sent from then on count).
    half_open_since_ms: u64,
    /// Probes admitted in the current round.
    probes_admitted: u32,
    /// Probe results (success) reported in the current round.
    round_reported: u32,
    /// Probe successes since the breaker went half-open.
    probe_successes: u32,
    /// When the last half-open probe was admitted.
    last_probe_ms: u64,
}

impl Breaker {
    pub(super) fn new() -> Self {
        Breaker {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            window: VecDeque::new(),
            opened_at_ms: 0,
            half_open_since_ms: 0,
            probes_admitted: 0,
            round_reported: 0,
            probe_successes: 0,
            last_probe_ms: 0,
        }
    }

    /// When an open breaker goes half-open.
    fn half_open_at(&self, config: &BreakerConfig) -> u64 {
        self.opened_at_ms.saturating_add(config.timeout_ms)
    }

    /// The state as of `now`: an open breaker whose timeout passed counts as half-open.
    pub(super) fn effective_state(&self, config: &BreakerConfig, now_ms: u64) -> BreakerState {
        match self.state {
            BreakerState::Open if now_ms >= self.half_open_at(config) => BreakerState::HalfOpen,
            state => state,
        }
    }

    pub(super) fn admits(&self, config: &BreakerConfig, now_ms: u64) -> bool {
        match self.effective_state(config, now_ms) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                self.state == BreakerState::Open
                    || self.probes_admitted < config.half_open_max_calls
                    || self.probe_round_over(config, now_ms)
            }
        }
    }

    /// Milliseconds until this breaker admits a call again (0 when it does now).
    pub(super) fn admits_in_ms(&self, config: &BreakerConfig, now_ms: u64) -> u64 {
        if self.admits(config, now_ms) {
            return 0;
        }
        let at = match self.state {
            BreakerState::Open => self.half_open_at(config),
            _ => self.last_probe_ms.saturating_add(config.timeout_ms),
        };
        at.saturating_sub(now_ms)
    }

    /// Every probe of the round sent, and no verdict for `timeout_ms` since the last one.
    fn probe_round_over(&self, config: &BreakerConfig, now_ms: u64) -> bool {
        self.probes_admitted >= config.half_open_max_calls
            && now_ms >= self.last_probe_ms.saturating_add(config.timeout_ms)
    }

    /// Moves an open breaker whose timeout passed to half-open.
    pub(super) fn settle(&mut self, config: &BreakerConfig, now_ms: u64) -> Option<Transition> {
        if self.state == BreakerState::Open
            && self.effective_state(config, now_ms) == BreakerState::HalfOpen
        {
            self.state = BreakerState::HalfOpen;
            self.half_open_since_ms = self.half_open_at(config);
            self.probes_admitted = 0;
            self.round_reported = 0;
            self.probe_successes = 0;
            return Some(Transition {
                from: BreakerState::Open,
                to: BreakerState::HalfOpen,
            });
        }
        None
    }

    /// Takes a call for this provider: true when admitted (consuming a probe when
    /// half-open).
    pub(super) fn take(&mut self, config: &BreakerConfig, now_ms: u64) -> bool {
        if !self.admits(config, now_ms) {
            return false;
        }
        if self.state == BreakerState::HalfOpen {
            if self.probe_round_over(config, now_ms) {
                self.probes_admitted = 0;
                self.round_reported = 0;
            }
            self.probes_admitted += 1;
            self.last_probe_ms = now_ms;
        }
        true
    }

    fn open(&mut self, now_ms: u64) {
        self.state = BreakerState::Open;
        self.opened_at_ms = now_ms;
        self.consecutive_failures = 0;
        self.window.clear();
    }

    fn close(&mut self) {
        *self = Breaker::new();
    }

    pub(super) fn record(&mut self, report: Report, config: &BreakerConfig, now_ms: u64) {
        let failed = report.outcome.is_failure();
        match self.state {
            BreakerState::Closed => {
                self.consecutive_failures = if failed {
                    self.consecutive_failures + 1
                } else {
                    0
                };
                self.window.push_back((now_ms, failed));
                let oldest = now_ms.saturating_sub(config.error_rate_window_ms);
                while self.window.front().is_some_and(|(t, _)| *t < oldest)
                    || self.window.len() > MAX_WINDOW_SAMPLES
                {
                    self.window.pop_front();
                }
                let failures = self.window.iter().filter(|(_, f)| *f).count();
                let rate_tripped = self.window.len() >= config.failure_threshold as usize
                    && failures as f64 / self.window.len() as f64 >= config.error_rate_threshold;
                if failed && (self.consecutive_failures >= config.failure_threshold || rate_tripped)
                {
                    self.open(now_ms);
                }
            }
            BreakerState::HalfOpen => {
                // A report about a call decided before the breaker went half-open is not a
                // probe result.
                if report
                    .decided_at_ms
                    .is_some_and(|at| at < self.half_open_since_ms)
                {
                    return;
                }
                if failed {
                    self.open(now_ms);
                    return;
                }
                // Without a decision id, a success counts only against a probe still
                // waiting for its result in this round.
                if report.decided_at_ms.is_none() && self.round_reported >= self.probes_admitted {
                    return;
                }
                self.round_reported += 1;
                self.probe_successes += 1;
                if self.probe_successes >= config.success_threshold {
                    self.close();
                }
            }
            // Late reports about calls made before the breaker opened change nothing.
            BreakerState::Open => {}
        }
    }
}
