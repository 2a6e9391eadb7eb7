//! Circuit breakers per (tenant, provider), CONTRACT §4.4.
//!
//! Closed → open on `failure_threshold` consecutive failures, or when the error rate over the
//! window reaches `error_rate_threshold` (judged once the window holds at least
//! `failure_threshold` outcomes, so one early failure cannot open it). Open → half-open after
//! `timeout_ms`; half-open admits `half_open_max_calls` probes; `success_threshold` successes
//! close it and any failure reopens it. Feedback is fire-and-forget, so probe reports may be
//! lost: when every probe of a round has been sent and `timeout_ms` has passed since the
//! last one without a verdict, a new round is admitted (successes so far still count).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::policy::BreakerConfig;

/// Most outcomes a window keeps, whatever its length in time.
const MAX_WINDOW_SAMPLES: usize = 10_000;

/// What a caller reports about a provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The call worked.
    Success,
    /// The provider failed.
    Failure,
    /// The call timed out.
    Timeout,
    /// The provider refused for rate limiting (counts as a failure).
    RateLimited,
}

impl CallOutcome {
    fn is_failure(self) -> bool {
        !matches!(self, CallOutcome::Success)
    }
}

/// The three breaker states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are blocked until the timeout passes.
    Open,
    /// A limited number of probes decide whether to close again.
    HalfOpen,
}

/// A state change, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
}

#[derive(Debug)]
struct Breaker {
    state: BreakerState,
    consecutive_failures: u32,
    /// (time, failed) of recent outcomes while closed.
    window: VecDeque<(u64, bool)>,
    opened_at_ms: u64,
    probes_admitted: u32,
    probe_successes: u32,
    /// When the last half-open probe was admitted.
    last_probe_ms: u64,
}

impl Breaker {
    fn new() -> Self {
        Breaker {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            window: VecDeque::new(),
            opened_at_ms: 0,
            probes_admitted: 0,
            probe_successes: 0,
            last_probe_ms: 0,
        }
    }

    /// The state as of `now`: an open breaker whose timeout passed counts as half-open.
    fn effective_state(&self, config: &BreakerConfig, now_ms: u64) -> BreakerState {
        match self.state {
            BreakerState::Open if now_ms >= self.opened_at_ms.saturating_add(config.timeout_ms) => {
                BreakerState::HalfOpen
            }
            state => state,
        }
    }

    fn admits(&self, config: &BreakerConfig, now_ms: u64) -> bool {
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

    /// Every probe of the round sent, and no verdict for `timeout_ms` since the last one.
    fn probe_round_over(&self, config: &BreakerConfig, now_ms: u64) -> bool {
        self.probes_admitted >= config.half_open_max_calls
            && now_ms >= self.last_probe_ms.saturating_add(config.timeout_ms)
    }

    /// Counts one probe sent while half-open, starting a new round when the last one is over.
    fn admit_probe(&mut self, config: &BreakerConfig, now_ms: u64) {
        if self.probe_round_over(config, now_ms) {
            self.probes_admitted = 0;
        }
        self.probes_admitted += 1;
        self.last_probe_ms = now_ms;
    }

    fn settle(&mut self, config: &BreakerConfig, now_ms: u64) -> Option<Transition> {
        if self.state == BreakerState::Open
            && self.effective_state(config, now_ms) == BreakerState::HalfOpen
        {
            self.state = BreakerState::HalfOpen;
            self.probes_admitted = 0;
            self.probe_successes = 0;
            return Some(Transition {
                from: BreakerState::Open,
                to: BreakerState::HalfOpen,
            });
        }
        None
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

    fn record(&mut self, outcome: CallOutcome, config: &BreakerConfig, now_ms: u64) {
        let failed = outcome.is_failure();
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
            BreakerState::HalfOpen if failed => self.open(now_ms),
            BreakerState::HalfOpen => {
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

/// All breakers of the process.
#[derive(Debug, Default)]
pub struct BreakerRegistry {
    by_tenant: Mutex<HashMap<String, HashMap<String, Breaker>>>,
}

impl BreakerRegistry {
    /// An empty registry: every provider starts closed.
    pub fn new() -> Self {
        BreakerRegistry::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, HashMap<String, Breaker>>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update; the data is still
        // a valid breaker map, so keep serving.
        let mut guard = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Whether the breaker of (tenant, provider) would admit a call now.
    pub fn admits(
        &self,
        tenant: &str,
        provider: &str,
        config: &BreakerConfig,
        now_ms: u64,
    ) -> bool {
        self.with(|map| {
            map.get(tenant)
                .and_then(|providers| providers.get(provider))
                .is_none_or(|breaker| breaker.admits(config, now_ms))
        })
    }

    /// Records that a decision sent a call to (tenant, provider): consumes a half-open probe.
    pub fn on_chosen(&self, tenant: &str, provider: &str, config: &BreakerConfig, now_ms: u64) {
        self.with(|map| {
            if let Some(breaker) = map.get_mut(tenant).and_then(|p| p.get_mut(provider)) {
                breaker.settle(config, now_ms);
                if breaker.state == BreakerState::HalfOpen {
                    breaker.admit_probe(config, now_ms);
                }
            }
        });
    }

    /// Feeds one reported outcome; returns the state change it caused, if any.
    pub fn record(
        &self,
        tenant: &str,
        provider: &str,
        outcome: CallOutcome,
        config: &BreakerConfig,
        now_ms: u64,
    ) -> Option<Transition> {
        self.with(|map| {
            let providers = map.entry(tenant.to_owned()).or_default();
            let breaker = providers
                .entry(provider.to_owned())
                .or_insert_with(Breaker::new);
            breaker.settle(config, now_ms);
            let before = breaker.state;
            breaker.record(outcome, config, now_ms);
            (breaker.state != before).then_some(Transition {
                from: before,
                to: breaker.state,
            })
        })
    }

    /// The state of (tenant, provider) as of `now`.
    pub fn state(
        &self,
        tenant: &str,
        provider: &str,
        config: &BreakerConfig,
        now_ms: u64,
    ) -> BreakerState {
        self.with(|map| {
            map.get(tenant)
                .and_then(|providers| providers.get(provider))
                .map_or(BreakerState::Closed, |b| b.effective_state(config, now_ms))
        })
    }

    /// Number of (tenant, provider) pairs whose breaker is not closed.
    pub fn not_closed(&self) -> usize {
        self.with(|map| {
            map.values()
                .flat_map(HashMap::values)
                .filter(|b| b.state != BreakerState::Closed)
                .count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::*;
    use CallOutcome::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            success_threshold: 2,
            timeout_ms: 1_000,
            half_open_max_calls: 2,
            error_rate_threshold: 0.5,
            error_rate_window_ms: 10_000,
        }
    }

    #[test]
    fn consecutive_failures_open_it() {
        let (reg, cfg) = (BreakerRegistry::new(), config());
        assert_eq!(reg.record("t", "p", Failure, &cfg, 0), None);
        assert_eq!(reg.record("t", "p", Timeout, &cfg, 1), None);
        let t = reg.record("t", "p", RateLimited, &cfg, 2);
        assert_eq!(
            t,
            Some(Transition {
                from: Closed,
                to: Open
            })
        );
        assert!(!reg.admits("t", "p", &cfg, 3));
        assert_eq!(reg.state("t", "p", &cfg, 3), Open);
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let (reg, cfg) = (
            BreakerRegistry::new(),
            BreakerConfig {
                error_rate_threshold: 1.0,
                ..config()
            },
        );
        reg.record("t", "p", Failure, &cfg, 0);
        reg.record("t", "p", Failure, &cfg, 1);
        reg.record("t", "p", Success, &cfg, 2);
        reg.record("t", "p", Failure, &cfg, 3);
        assert_eq!(reg.state("t", "p", &cfg, 4), Closed);
    }

    #[test]
    fn error_rate_opens_it() {
        let (reg, cfg) = (
            BreakerRegistry::new(),
            BreakerConfig {
                failure_threshold: 4,
                ..config()
            },
        );
        // S F S F: consecutive never reaches 4, but 2/4 = 0.5 >= 0.5 once 4 samples exist.
        reg.record("t", "p", Success, &cfg, 0);
        reg.record("t", "p", Failure, &cfg, 1);
        reg.record("t", "p", Success, &cfg, 2);
        assert_eq!(reg.state("t", "p", &cfg, 3), Closed);
        reg.record("t", "p", Failure, &cfg, 3);
        assert_eq!(reg.state("t", "p", &cfg, 4), Open);
    }

    #[test]
    fn old_outcomes_leave_the_window() {
        let (reg, cfg) = (
            BreakerRegistry::new(),
            BreakerConfig {
                failure_threshold: 4,
                ..config()
            },
        );
        reg.record("t", "p", Failure, &cfg, 0);
        reg.record("t", "p", Success, &cfg, 1);
        reg.record("t", "p", Failure, &cfg, 2);
        // 20 s later the earlier failures are outside the 10 s window.
        reg.record("t", "p", Success, &cfg, 20_000);
        reg.record("t", "p", Success, &cfg, 20_001);
        reg.record("t", "p", Success, &cfg, 20_002);
        reg.record("t", "p", Failure, &cfg, 20_003);
        assert_eq!(reg.state("t", "p", &cfg, 20_004), Closed);
    }

    #[test]
    fn half_open_probes_then_close() {
        let (reg, cfg) = (BreakerRegistry::new(), config());
        for t in 0..3 {
            reg.record("t", "p", Failure, &cfg, t);
        }
        assert!(!reg.admits("t", "p", &cfg, 999));
        assert_eq!(reg.state("t", "p", &cfg, 1_002), HalfOpen);
        assert!(reg.admits("t", "p", &cfg, 1_002));
        reg.on_chosen("t", "p", &cfg, 1_002);
        assert!(reg.admits("t", "p", &cfg, 1_003));
        reg.on_chosen("t", "p", &cfg, 1_003);
        assert!(
            !reg.admits("t", "p", &cfg, 1_004),
            "only 2 probes while half-open"
        );
        assert_eq!(reg.record("t", "p", Success, &cfg, 1_005), None);
        let t = reg.record("t", "p", Success, &cfg, 1_006);
        assert_eq!(
            t,
            Some(Transition {
                from: HalfOpen,
                to: Closed
            })
        );
        assert!(reg.admits("t", "p", &cfg, 1_007));
    }

    #[test]
    fn half_open_failure_reopens() {
        let (reg, cfg) = (BreakerRegistry::new(), config());
        for t in 0..3 {
            reg.record("t", "p", Failure, &cfg, t);
        }
        reg.on_chosen("t", "p", &cfg, 1_500);
        let t = reg.record("t", "p", Failure, &cfg, 1_600);
        assert_eq!(
            t,
            Some(Transition {
                from: HalfOpen,
                to: Open
            })
        );
        assert!(!reg.admits("t", "p", &cfg, 2_000));
        assert!(reg.admits("t", "p", &cfg, 2_600));
    }

    #[test]
    fn breakers_are_per_tenant_and_provider() {
        let (reg, cfg) = (BreakerRegistry::new(), config());
        for t in 0..3 {
            reg.record("a", "p", Failure, &cfg, t);
        }
        assert!(!reg.admits("a", "p", &cfg, 10));
        assert!(reg.admits("b", "p", &cfg, 10));
        assert!(reg.admits("a", "q", &cfg, 10));
        assert_eq!(reg.not_closed(), 1);
    }
}
