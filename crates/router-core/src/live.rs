//! Live provider state: what feedback teaches about each (tenant, policy, provider).
//!
//! - Latency: a time-decayed, peak-sensitive average. A sample above the average replaces it
//!   at once; a lower one moves it with weight `1 − e^(−Δt/τ)`, so it converges in about τ
//!   whatever the feedback rate (τ is the policy's `adaptive.decay`).
//! - Error rate: the same time-decayed average of 0 (success) and 1 (failure), with its own
//!   time constant (`adaptive.error_decay`).
//! - Outstanding: decisions this router made for the provider that no feedback answered yet.
//! - Cooldown: the time until which a `rate_limited` report keeps the provider out; a later,
//!   shorter one never shortens it.
//!
//! Feedback writes under a per-provider lock (off the request path); decisions read atomics.
//! A policy with no feedback yet costs the request path one relaxed load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Maps keyed by tenant, policy or provider name: a fast hash (the request path reads them;
/// the keys come from validated policies, not from callers).
type NameMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// Two samples within the same millisecond are taken this far apart (ms), so a burst of
/// feedback still moves the averages.
const SAME_MS_STEP: f64 = 0.1;
/// A latency older than this many time constants no longer describes the provider: it
/// counts as unknown (a returning provider starts at its peers' mean).
const STALE_AFTER_DECAYS: u64 = 3;

/// One provider's live figures.
#[derive(Debug, Default)]
pub struct ProviderLive {
    /// Average latency, f64 bits (meaningful when `samples > 0`).
    latency_bits: AtomicU64,
    /// Error-rate average, f64 bits.
    error_bits: AtomicU64,
    /// When the last latency was recorded (ms).
    latency_at_ms: AtomicU64,
    /// Latency samples recorded.
    samples: AtomicU64,
    /// Decisions without feedback.
    outstanding: AtomicU64,
    /// Cooling down until (ms); 0 = never.
    cooldown_until_ms: AtomicU64,
    /// When the error rate was last updated (ms).
    error_at_ms: AtomicU64,
    /// Serialises feedback updates.
    update: Mutex<()>,
}

/// One feedback report as the live state reads it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Observation {
    /// The latency of the policy's metric, when reported.
    pub latency_ms: Option<f64>,
    /// The call failed.
    pub failed: bool,
    /// A cooldown to apply until this time (ms), for a `rate_limited` report.
    pub cool_until_ms: Option<u64>,
}

/// What a decision reads of a provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProviderView {
    /// The latency average, `None` when unknown or stale.
    pub latency_ms: Option<f64>,
    /// The error-rate average.
    pub error_rate: f64,
    /// Decisions without feedback.
    pub outstanding: u64,
    /// Cooling down until (ms), 0 when never.
    pub cooldown_until_ms: u64,
}

fn load_f64(cell: &AtomicU64) -> f64 {
    f64::from_bits(cell.load(Ordering::Relaxed))
}

fn store_f64(cell: &AtomicU64, value: f64) {
    cell.store(value.to_bits(), Ordering::Relaxed);
}

/// The weight an old average keeps after `dt_ms` with time constant `tau_ms`.
fn keep(dt_ms: u64, tau_ms: u64) -> f64 {
    let dt = if dt_ms == 0 {
        SAME_MS_STEP
    } else {
        dt_ms as f64
    };
    (-dt / tau_ms.max(1) as f64).exp()
}

impl ProviderLive {
    /// Records one report at `now_ms` with the policy's time constants.
    pub fn observe(&self, seen: Observation, now_ms: u64, decay_ms: u64, error_decay_ms: u64) {
        let _guard = self.update.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ms) = seen.latency_ms {
            let samples = self.samples.load(Ordering::Relaxed);
            let old = load_f64(&self.latency_bits);
            let then = self.latency_at_ms.load(Ordering::Relaxed);
            let next = if samples == 0 || ms >= old {
                ms
            } else {
                let w = keep(now_ms.saturating_sub(then), decay_ms);
                old * w + ms * (1.0 - w)
            };
            store_f64(&self.latency_bits, next);
            self.latency_at_ms.store(now_ms, Ordering::Relaxed);
            self.samples.store(samples + 1, Ordering::Relaxed);
        }
        let then = self.error_at_ms.load(Ordering::Relaxed);
        let w = keep(now_ms.saturating_sub(then), error_decay_ms);
        let x = if seen.failed { 1.0 } else { 0.0 };
        store_f64(
            &self.error_bits,
            load_f64(&self.error_bits) * w + x * (1.0 - w),
        );
        self.error_at_ms.store(now_ms, Ordering::Relaxed);
        if let Some(until) = seen.cool_until_ms {
            self.cooldown_until_ms.fetch_max(until, Ordering::Relaxed);
        }
        // Saturating: feedback may answer another router's decision.
        let _ = self
            .outstanding
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// A decision chose this provider.
    pub fn chosen(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures as of `now_ms` (a latency older than three decays is unknown).
    pub fn view(&self, now_ms: u64, decay_ms: u64) -> ProviderView {
        let fresh = self.samples.load(Ordering::Relaxed) > 0
            && now_ms.saturating_sub(self.latency_at_ms.load(Ordering::Relaxed))
                <= decay_ms.saturating_mul(STALE_AFTER_DECAYS);
        ProviderView {
            latency_ms: fresh.then(|| load_f64(&self.latency_bits)),
            error_rate: load_f64(&self.error_bits),
            outstanding: self.outstanding.load(Ordering::Relaxed),
            cooldown_until_ms: self.cooldown_until_ms.load(Ordering::Relaxed),
        }
    }

    /// When its cooldown ends (ms since the epoch; in the past when none runs).
    pub fn cooldown_until_ms(&self) -> u64 {
        self.cooldown_until_ms.load(Ordering::Relaxed)
    }

    /// True while a cooldown runs at `now_ms`.
    pub fn cooling(&self, now_ms: u64) -> bool {
        self.cooldown_until_ms.load(Ordering::Relaxed) > now_ms
    }
}

/// The live state of one policy's providers.
#[derive(Debug, Default)]
pub struct PolicyLive {
    providers: RwLock<NameMap<Arc<ProviderLive>>>,
    /// The latest end of a cooldown of any of its providers (ms).
    cooldowns_until_ms: AtomicU64,
}

impl PolicyLive {
    /// Records one report about `provider` (see [`ProviderLive::observe`]).
    pub fn observe(
        &self,
        provider: &str,
        seen: Observation,
        now_ms: u64,
        decay_ms: u64,
        error_decay_ms: u64,
    ) {
        if let Some(until) = seen.cool_until_ms {
            self.cooldowns_until_ms.fetch_max(until, Ordering::Relaxed);
        }
        self.provider_or_new(provider)
            .observe(seen, now_ms, decay_ms, error_decay_ms);
    }

    /// True while `provider` cools down at `now_ms`.
    pub fn cooling(&self, provider: &str, now_ms: u64) -> bool {
        self.cooldowns_until_ms.load(Ordering::Relaxed) > now_ms
            && self.provider(provider).is_some_and(|p| p.cooling(now_ms))
    }

    /// The provider's state, if any feedback or decision created it.
    pub fn provider(&self, name: &str) -> Option<Arc<ProviderLive>> {
        let map = self.providers.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// The provider's state, created when missing.
    pub fn provider_or_new(&self, name: &str) -> Arc<ProviderLive> {
        if let Some(found) = self.provider(name) {
            return found;
        }
        let mut map = self.providers.write().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }

    /// The state of each of `names` (`None` where there is none yet), under one read lock.
    pub fn each<'n>(&self, names: impl Iterator<Item = &'n str>) -> Vec<Option<Arc<ProviderLive>>> {
        let map = self.providers.read().unwrap_or_else(|p| p.into_inner());
        names.map(|name| map.get(name).cloned()).collect()
    }
}

/// Live state of every (tenant, policy).
#[derive(Debug, Default)]
pub struct LiveRegistry {
    /// tenant → policy → state.
    tenants: RwLock<NameMap<NameMap<Arc<PolicyLive>>>>,
    /// Set once any state exists: until then the request path reads nothing else.
    any: AtomicBool,
    /// The latest end of any cooldown (ms): a weighted policy reads its live state only
    /// while one may run.
    cooldowns_until_ms: AtomicU64,
}

impl LiveRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        LiveRegistry::default()
    }

    /// The policy's state, if it has any.
    pub fn policy(&self, tenant_id: &str, policy_id: &str) -> Option<Arc<PolicyLive>> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        tenants.get(tenant_id)?.get(policy_id).cloned()
    }

    /// The policy's state when a cooldown may run at `now_ms` (all a weighted policy reads).
    pub fn policy_if_cooling(
        &self,
        tenant_id: &str,
        policy_id: &str,
        now_ms: u64,
    ) -> Option<Arc<PolicyLive>> {
        if self.cooldowns_until_ms.load(Ordering::Relaxed) <= now_ms {
            return None;
        }
        self.policy(tenant_id, policy_id)
    }

    /// Records that a cooldown runs until `until_ms` somewhere.
    pub fn cooling_until(&self, until_ms: u64) {
        self.cooldowns_until_ms
            .fetch_max(until_ms, Ordering::Relaxed);
    }

    /// The policy's state, created when missing.
    pub fn policy_or_new(&self, tenant_id: &str, policy_id: &str) -> Arc<PolicyLive> {
        if let Some(found) = self.policy(tenant_id, policy_id) {
            return found;
        }
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        let live = tenants
            .entry(tenant_id.to_owned())
            .or_default()
            .entry(policy_id.to_owned())
            .or_default()
            .clone();
        self.any.store(true, Ordering::Relaxed);
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAU: u64 = 10_000;

    fn latency(ms: f64) -> Observation {
        Observation {
            latency_ms: Some(ms),
            ..Observation::default()
        }
    }

    #[test]
    fn a_slower_sample_takes_over_at_once_and_a_faster_one_decays_in() {
        let live = ProviderLive::default();
        live.observe(latency(800.0), 0, TAU, TAU);
        live.observe(latency(3_000.0), 10, TAU, TAU);
        assert_eq!(live.view(10, TAU).latency_ms, Some(3_000.0));
        // One time constant later, a fast sample has pulled about 63 % of the way down.
        live.observe(latency(800.0), 10 + TAU, TAU, TAU);
        let after = live.view(10 + TAU, TAU).latency_ms.unwrap_or_default();
        let expected = 800.0 + 2_200.0 * (-1.0f64).exp();
        assert!((after - expected).abs() < 1.0, "{after} vs {expected}");
    }

    #[test]
    fn many_samples_in_one_millisecond_still_move_the_average() {
        let live = ProviderLive::default();
        live.observe(latency(1_000.0), 0, TAU, TAU);
        // Each counts as 0.1 ms: 100,000 of them are one time constant.
        for _ in 0..100_000 {
            live.observe(latency(100.0), 5, TAU, TAU);
        }
        let now = live.view(5, TAU).latency_ms.unwrap_or_default();
        assert!(now < 500.0, "the average moved towards 100: {now}");
    }

    #[test]
    fn the_error_rate_follows_failures_with_its_own_time_constant() {
        let live = ProviderLive::default();
        let failed = Observation {
            failed: true,
            ..Observation::default()
        };
        for t in 0..5_000u64 {
            live.observe(failed, t, TAU, 1_000);
        }
        assert!(live.view(5_000, TAU).error_rate > 0.99);
        for t in 5_000..6_000u64 {
            live.observe(Observation::default(), t, TAU, 1_000);
        }
        let rate = live.view(6_000, TAU).error_rate;
        assert!((rate - (-1.0f64).exp()).abs() < 0.01, "{rate}");
    }

    #[test]
    fn a_shorter_cooldown_never_shortens_a_longer_one() {
        let live = ProviderLive::default();
        let cool = |until| Observation {
            failed: true,
            cool_until_ms: Some(until),
            ..Observation::default()
        };
        live.observe(cool(30_000), 0, TAU, TAU);
        live.observe(cool(5_000), 1, TAU, TAU);
        assert!(live.cooling(29_999));
        assert!(!live.cooling(30_000));
    }

    #[test]
    fn a_stale_latency_is_unknown_and_outstanding_never_underflows() {
        let live = ProviderLive::default();
        live.chosen();
        live.observe(latency(500.0), 0, TAU, TAU);
        live.observe(latency(500.0), 1, TAU, TAU);
        assert_eq!(live.view(3 * TAU + 1, TAU).latency_ms, Some(500.0));
        assert_eq!(live.view(3 * TAU + 2, TAU).latency_ms, None);
        assert_eq!(
            live.view(0, TAU).outstanding,
            0,
            "one decision, two reports"
        );
    }

    #[test]
    fn the_registry_reads_nothing_until_state_exists() {
        let registry = LiveRegistry::new();
        assert!(registry.policy("acme", "default").is_none());
        let made = registry.policy_or_new("acme", "default");
        made.provider_or_new("openai").chosen();
        let found = registry.policy("acme", "default").expect("created");
        assert_eq!(
            found.provider("openai").map(|p| p.view(0, TAU).outstanding),
            Some(1)
        );
        assert!(registry.policy("acme", "other").is_none());
    }
}
