//! Circuit breakers per (tenant, policy, provider), CONTRACT §4.4.
//!
//! Each policy of a tenant has breakers of its own, configured by that policy: a provider
//! failing under one policy's settings does not use another policy's. Closed → open on
//! `failure_threshold` consecutive failures, or when the error rate over the window reaches
//! `error_rate_threshold` (judged once the window holds at least `failure_threshold`
//! outcomes, so one early failure cannot open it). Open → half-open after `timeout_ms`;
//! half-open admits `half_open_max_calls` probes; `success_threshold` probe successes close it
//! and a probe failure reopens it.
//!
//! Probes are counted under the same lock that admitted them ([`PolicyBreakers`]), so
//! concurrent decisions never send more than `half_open_max_calls` probes. A success counts
//! as a probe result only for a call made while half-open: one whose decision (named by its
//! `decision_id`) was issued after the breaker went half-open, or, for a report without one,
//! while the round still has a probe without a result. A report about a decision issued
//! before the breaker went half-open changes nothing. Feedback is fire-and-forget, so probe
//! reports may be lost: when every probe of a round has been sent and `timeout_ms` has passed
//! since the last one without a verdict, a new round is admitted (successes so far still
//! count).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::policy::BreakerConfig;

/// Most outcomes a window keeps, whatever its length in time.
const MAX_WINDOW_SAMPLES: usize = 10_000;
/// Most state changes kept for [`BreakerRegistry::take_events`] between two reads.
const MAX_EVENTS: usize = 10_000;

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

impl BreakerState {
    /// The wire name (`closed`, `open`, `half_open`).
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The gauge value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

/// A state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
}

/// Which breaker: (tenant, policy, provider).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BreakerKey {
    /// The tenant.
    pub tenant: String,
    /// The policy.
    pub policy: String,
    /// The provider.
    pub provider: String,
}

/// A state change of one breaker, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerEvent {
    /// The breaker.
    pub key: BreakerKey,
    /// The change.
    pub transition: Transition,
    /// When, epoch milliseconds.
    pub at_ms: u64,
}

/// What a report says about the call it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The outcome.
    pub outcome: CallOutcome,
    /// When the decision that sent the call was issued, when the report names it.
    pub decided_at_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct Breaker {
    state: BreakerState,
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
    fn new() -> Self {
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
    fn effective_state(&self, config: &BreakerConfig, now_ms: u64) -> BreakerState {
        match self.state {
            BreakerState::Open if now_ms >= self.half_open_at(config) => BreakerState::HalfOpen,
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

    /// Milliseconds until this breaker admits a call again (0 when it does now).
    fn admits_in_ms(&self, config: &BreakerConfig, now_ms: u64) -> u64 {
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
    fn settle(&mut self, config: &BreakerConfig, now_ms: u64) -> Option<Transition> {
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
    fn take(&mut self, config: &BreakerConfig, now_ms: u64) -> bool {
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

    fn record(&mut self, report: Report, config: &BreakerConfig, now_ms: u64) {
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

/// A map keyed by tenant, policy or provider name, with a fast, randomly seeded hash (every
/// decision looks its policy's breakers up).
type NameMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// Breakers of one tenant: policy → provider → breaker.
type TenantBreakers = NameMap<NameMap<Breaker>>;

#[derive(Debug, Default)]
struct Registry {
    by_tenant: NameMap<TenantBreakers>,
    events: Vec<BreakerEvent>,
}

impl Registry {
    fn push_event(&mut self, tenant: &str, policy: &str, provider: &str, t: Transition, now: u64) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(BreakerEvent {
                key: BreakerKey {
                    tenant: tenant.to_owned(),
                    policy: policy.to_owned(),
                    provider: provider.to_owned(),
                },
                transition: t,
                at_ms: now,
            });
        }
    }
}

/// All breakers of the process.
#[derive(Debug, Default)]
pub struct BreakerRegistry {
    inner: Mutex<Registry>,
}

/// The breakers of one (tenant, policy), locked for the length of one decision: what they
/// admit and the probes the decision takes are decided under one lock.
pub struct PolicyBreakers<'a> {
    guard: MutexGuard<'a, Registry>,
    tenant: &'a str,
    policy: &'a str,
    config: &'a BreakerConfig,
    now_ms: u64,
    /// Every breaker of the policy was closed when the lock was taken (nothing can open one
    /// while it is held): then every provider is admitted without a lookup.
    all_closed: bool,
}

impl PolicyBreakers<'_> {
    fn breaker(&self, provider: &str) -> Option<&Breaker> {
        self.guard
            .by_tenant
            .get(self.tenant)?
            .get(self.policy)?
            .get(provider)
    }

    /// True when every breaker of the policy was closed as the lock was taken.
    pub fn all_closed(&self) -> bool {
        self.all_closed
    }

    /// Whether `provider` would be admitted now.
    pub fn admits(&self, provider: &str) -> bool {
        self.all_closed
            || self
                .breaker(provider)
                .is_none_or(|b| b.admits(self.config, self.now_ms))
    }

    /// Milliseconds until `provider` is admitted again (0 when it is now).
    pub fn admits_in_ms(&self, provider: &str) -> u64 {
        self.breaker(provider)
            .map_or(0, |b| b.admits_in_ms(self.config, self.now_ms))
    }

    /// Sends a call to `provider`: true when admitted, consuming a probe when half-open.
    pub fn take(&mut self, provider: &str) -> bool {
        let (tenant, policy, config, now) = (self.tenant, self.policy, self.config, self.now_ms);
        let registry = &mut *self.guard;
        let Some(breaker) = registry
            .by_tenant
            .get_mut(tenant)
            .and_then(|p| p.get_mut(policy))
            .and_then(|p| p.get_mut(provider))
        else {
            return true;
        };
        let settled = breaker.settle(config, now);
        let taken = breaker.take(config, now);
        if let Some(t) = settled {
            registry.push_event(tenant, policy, provider, t, now);
        }
        taken
    }
}

impl BreakerRegistry {
    /// An empty registry: every provider starts closed.
    pub fn new() -> Self {
        BreakerRegistry::default()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A poisoned lock only means another thread panicked mid-update; the data is still
        // a valid breaker map, so keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The breakers of (tenant, policy) under `config`, locked until the returned value is
    /// dropped.
    pub fn policy<'a>(
        &'a self,
        tenant: &'a str,
        policy: &'a str,
        config: &'a BreakerConfig,
        now_ms: u64,
    ) -> PolicyBreakers<'a> {
        let guard = self.lock();
        let all_closed = guard
            .by_tenant
            .get(tenant)
            .and_then(|policies| policies.get(policy))
            .is_none_or(|breakers| breakers.values().all(|b| b.state == BreakerState::Closed));
        PolicyBreakers {
            guard,
            tenant,
            policy,
            config,
            now_ms,
            all_closed,
        }
    }

    /// Feeds one report for (tenant, policy, provider); returns the state change it caused.
    pub fn record(
        &self,
        key: (&str, &str, &str),
        report: Report,
        config: &BreakerConfig,
        now_ms: u64,
    ) -> Option<Transition> {
        let (tenant, policy, provider) = key;
        let mut registry = self.lock();
        let breaker = registry
            .by_tenant
            .entry(tenant.to_owned())
            .or_default()
            .entry(policy.to_owned())
            .or_default()
            .entry(provider.to_owned())
            .or_insert_with(Breaker::new);
        let settled = breaker.settle(config, now_ms);
        let before = breaker.state;
        breaker.record(report, config, now_ms);
        let after = breaker.state;
        if let Some(t) = settled {
            registry.push_event(tenant, policy, provider, t, now_ms);
        }
        let change = (after != before).then_some(Transition {
            from: before,
            to: after,
        });
        if let Some(t) = change {
            registry.push_event(tenant, policy, provider, t, now_ms);
        }
        change
    }

    /// The state of (tenant, policy, provider) as of `now`.
    pub fn state(
        &self,
        key: (&str, &str, &str),
        config: &BreakerConfig,
        now_ms: u64,
    ) -> BreakerState {
        let (tenant, policy, provider) = key;
        self.lock()
            .by_tenant
            .get(tenant)
            .and_then(|p| p.get(policy))
            .and_then(|p| p.get(provider))
            .map_or(BreakerState::Closed, |b| b.effective_state(config, now_ms))
    }

    /// Every breaker that ever left `closed`, with its state as of `now` (`config_of`
    /// gives the policy's breaker settings; breakers of a policy that is gone are left out).
    pub fn states(
        &self,
        now_ms: u64,
        config_of: impl Fn(&str, &str) -> Option<BreakerConfig>,
    ) -> Vec<(BreakerKey, BreakerState)> {
        let registry = self.lock();
        let mut states = Vec::new();
        for (tenant, policies) in &registry.by_tenant {
            for (policy, providers) in policies {
                let Some(config) = config_of(tenant, policy) else {
                    continue;
                };
                for (provider, breaker) in providers {
                    let key = BreakerKey {
                        tenant: tenant.clone(),
                        policy: policy.clone(),
                        provider: provider.clone(),
                    };
                    states.push((key, breaker.effective_state(&config, now_ms)));
                }
            }
        }
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }

    /// The state changes since the last call (the oldest first), for logs and metrics.
    pub fn take_events(&self) -> Vec<BreakerEvent> {
        std::mem::take(&mut self.lock().events)
    }

    /// Number of breakers that are not closed.
    pub fn not_closed(&self) -> usize {
        self.lock()
            .by_tenant
            .values()
            .flat_map(HashMap::values)
            .flat_map(HashMap::values)
            .filter(|b| b.state != BreakerState::Closed)
            .count()
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

    const KEY: (&str, &str, &str) = ("t", "default", "p");

    fn report(outcome: CallOutcome) -> Report {
        Report {
            outcome,
            decided_at_ms: None,
        }
    }

    fn record(reg: &BreakerRegistry, outcome: CallOutcome, now: u64) -> Option<Transition> {
        reg.record(KEY, report(outcome), &config(), now)
    }

    fn admits(reg: &BreakerRegistry, now: u64) -> bool {
        reg.policy("t", "default", &config(), now).admits("p")
    }

    fn take(reg: &BreakerRegistry, now: u64) -> bool {
        reg.policy("t", "default", &config(), now).take("p")
    }

    #[test]
    fn consecutive_failures_open_it() {
        let reg = BreakerRegistry::new();
        assert_eq!(record(&reg, Failure, 0), None);
        assert_eq!(record(&reg, Timeout, 1), None);
        let t = record(&reg, RateLimited, 2);
        assert_eq!(
            t,
            Some(Transition {
                from: Closed,
                to: Open
            })
        );
        assert!(!admits(&reg, 3));
        assert_eq!(reg.state(KEY, &config(), 3), Open);
        assert_eq!(
            reg.policy("t", "default", &config(), 3).admits_in_ms("p"),
            999
        );
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let reg = BreakerRegistry::new();
        let cfg = BreakerConfig {
            error_rate_threshold: 1.0,
            ..config()
        };
        for (outcome, t) in [(Failure, 0), (Failure, 1), (Success, 2), (Failure, 3)] {
            reg.record(KEY, report(outcome), &cfg, t);
        }
        assert_eq!(reg.state(KEY, &cfg, 4), Closed);
    }

    #[test]
    fn error_rate_opens_it() {
        let reg = BreakerRegistry::new();
        let cfg = BreakerConfig {
            failure_threshold: 4,
            ..config()
        };
        // S F S F: consecutive never reaches 4, but 2/4 = 0.5 >= 0.5 once 4 samples exist.
        for (outcome, t) in [(Success, 0), (Failure, 1), (Success, 2)] {
            reg.record(KEY, report(outcome), &cfg, t);
        }
        assert_eq!(reg.state(KEY, &cfg, 3), Closed);
        reg.record(KEY, report(Failure), &cfg, 3);
        assert_eq!(reg.state(KEY, &cfg, 4), Open);
    }

    #[test]
    fn old_outcomes_leave_the_window() {
        let reg = BreakerRegistry::new();
        let cfg = BreakerConfig {
            failure_threshold: 4,
            ..config()
        };
        for (outcome, t) in [
            (Failure, 0),
            (Success, 1),
            (Failure, 2),
            // 20 s later the earlier failures are outside the 10 s window.
            (Success, 20_000),
            (Success, 20_001),
            (Success, 20_002),
            (Failure, 20_003),
        ] {
            reg.record(KEY, report(outcome), &cfg, t);
        }
        assert_eq!(reg.state(KEY, &cfg, 20_004), Closed);
    }

    #[test]
    fn half_open_probes_then_close() {
        let reg = BreakerRegistry::new();
        for t in 0..3 {
            record(&reg, Failure, t);
        }
        assert!(!admits(&reg, 999));
        assert_eq!(reg.state(KEY, &config(), 1_002), HalfOpen);
        assert!(take(&reg, 1_002));
        assert!(take(&reg, 1_003));
        assert!(!take(&reg, 1_004), "only 2 probes while half-open");
        assert_eq!(record(&reg, Success, 1_005), None);
        let t = record(&reg, Success, 1_006);
        assert_eq!(
            t,
            Some(Transition {
                from: HalfOpen,
                to: Closed
            })
        );
        assert!(admits(&reg, 1_007));
        let events: Vec<_> = reg
            .take_events()
            .into_iter()
            .map(|e| (e.transition.from, e.transition.to))
            .collect();
        assert_eq!(
            events,
            [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)],
            "every change is an event"
        );
        assert!(reg.take_events().is_empty());
    }

    #[test]
    fn probes_are_counted_under_the_lock_that_admits_them() {
        let reg = BreakerRegistry::new();
        for t in 0..3 {
            record(&reg, Failure, t);
        }
        // Two decisions at once: each admits and takes under one lock, so at most
        // half_open_max_calls (2) probes go out however they interleave.
        let taken = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| take(&reg, 1_500))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(false))
                .filter(|t| *t)
                .count()
        });
        assert_eq!(taken, 2);
    }

    #[test]
    fn a_late_success_is_not_a_probe_result() {
        let reg = BreakerRegistry::new();
        for t in 0..3 {
            record(&reg, Failure, t);
        }
        // Half-open from 1_002; no probe sent yet: a success without a decision id is a
        // late report about an earlier call.
        assert_eq!(record(&reg, Success, 1_100), None);
        assert_eq!(record(&reg, Success, 1_101), None);
        assert_eq!(reg.state(KEY, &config(), 1_102), HalfOpen);
        // One probe: one success counts, a second without a probe does not.
        assert!(take(&reg, 1_200));
        assert_eq!(record(&reg, Success, 1_201), None);
        assert_eq!(record(&reg, Success, 1_202), None);
        assert_eq!(reg.state(KEY, &config(), 1_203), HalfOpen);
        // A report naming a decision issued before the breaker went half-open: ignored,
        // failure or success.
        let early = |outcome| Report {
            outcome,
            decided_at_ms: Some(500),
        };
        assert_eq!(reg.record(KEY, early(Failure), &config(), 1_300), None);
        assert_eq!(reg.record(KEY, early(Success), &config(), 1_300), None);
        // A decision issued after: counts.
        let fresh = Report {
            outcome: Success,
            decided_at_ms: Some(1_200),
        };
        assert_eq!(
            reg.record(KEY, fresh, &config(), 1_400),
            Some(Transition {
                from: HalfOpen,
                to: Closed
            })
        );
    }

    #[test]
    fn half_open_failure_reopens() {
        let reg = BreakerRegistry::new();
        for t in 0..3 {
            record(&reg, Failure, t);
        }
        assert!(take(&reg, 1_500));
        let t = record(&reg, Failure, 1_600);
        assert_eq!(
            t,
            Some(Transition {
                from: HalfOpen,
                to: Open
            })
        );
        assert!(!admits(&reg, 2_000));
        assert!(admits(&reg, 2_600));
    }

    #[test]
    fn breakers_are_per_tenant_policy_and_provider() {
        let reg = BreakerRegistry::new();
        for t in 0..3 {
            reg.record(("a", "default", "p"), report(Failure), &config(), t);
        }
        let admits =
            |tenant, policy, provider| reg.policy(tenant, policy, &config(), 10).admits(provider);
        assert!(!admits("a", "default", "p"));
        assert!(admits("b", "default", "p"));
        assert!(admits("a", "other", "p"), "another policy of the tenant");
        assert!(admits("a", "default", "q"));
        assert_eq!(reg.not_closed(), 1);
        let states = reg.states(10, |_, _| Some(config()));
        assert_eq!(states.len(), 1);
        assert_eq!(states[0].0.policy, "default");
        assert_eq!(states[0].1, Open);
    }
}
