//! [`BreakerRegistry`]: every breaker of the process, by tenant, policy and provider, behind
//! one lock; [`PolicyBreakers`] holds that lock for the length of one decision.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::policy::BreakerConfig;

use super::machine::Breaker;
use super::report::Report;
use super::state::{BreakerEvent, BreakerKey, BreakerState, Transition};

/// Most state changes kept for [`BreakerRegistry::take_events`] between two reads.
const MAX_EVENTS: usize = 10_000;

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

    /// The state of `provider`'s breaker now.
    pub fn state(&self, provider: &str) -> BreakerState {
        self.breaker(provider).map_or(BreakerState::Closed, |b| {
            b.effective_state(self.config, self.now_ms)
        })
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
