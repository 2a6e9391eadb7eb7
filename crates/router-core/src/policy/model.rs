//! The validated policy ([`Policy`] and its parts) and what the decision engine asks of it:
//! the static ranking, the plans precomputed from it, and which names it can send a call to.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::condition::Condition;

use super::quota::{ProviderLimits, QuotaSection};
use super::routing::{AdaptiveConfig, Strategy};

/// One validated, normalised policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Tenant the policy belongs to.
    pub tenant_id: String,
    /// Policy name within the tenant.
    pub policy_id: String,
    /// The document's `version` (default `"1.0"`).
    pub version: String,
    /// Weighted providers, in document order.
    pub providers: Vec<Provider>,
    /// Fallback rules, in order.
    pub fallbacks: Vec<FallbackRule>,
    /// The legacy single `fallback {provider, conditions}`: the last resort.
    pub legacy_fallback: Option<LegacyFallback>,
    /// Sticky sessions, when enabled.
    pub sticky: Option<StickyConfig>,
    /// Circuit breaker settings, when enabled.
    pub circuit_breaker: Option<BreakerConfig>,
    /// How a provider is chosen inside the best tier.
    pub strategy: Strategy,
    /// The adaptive strategy's settings (the live state uses its time constants for every
    /// strategy).
    pub adaptive: AdaptiveConfig,
    /// Cooldown of a `rate_limited` report without `retry_after_s`, in milliseconds.
    pub default_retry_after_ms: u64,
    /// Free-form policy metadata.
    pub metadata: Map<String, Value>,
    /// The `quota` section: the tenant's limits and the default token estimate.
    pub quota: Option<QuotaSection>,
    /// The plan after each provider or fallback target while every one is eligible
    /// (see [`Policy::static_plan`]).
    pub(super) static_plans: Vec<(String, Arc<[String]>)>,
}

/// A weighted provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    /// `[a-z0-9_]+`.
    pub name: String,
    /// Normalised weight (integer percentages divided by 100).
    pub weight: f64,
    /// Expected latency reported in decisions.
    pub expected_latency_ms: Option<f64>,
    /// Expected cost reported in decisions.
    pub expected_cost: Option<f64>,
    /// Tier: lower first; a tier is used only when every provider above is excluded.
    pub priority: u32,
    /// `rpm`, `tpm`, `max_concurrency` and `price`.
    pub limits: ProviderLimits,
}

/// One fallback rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackRule {
    /// When the rule applies.
    pub when: Condition,
    /// How many retries on the current provider before falling back (0–10).
    pub retry: u32,
    /// The provider to fall back to.
    pub to: String,
}

/// Sticky session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyConfig {
    /// Context key whose value identifies the session (default `user_id`).
    pub session_key: String,
    /// How long a mapping lives, in milliseconds.
    pub ttl_ms: u64,
}

/// The legacy single fallback: `fallback {"provider": …, "conditions": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyFallback {
    /// The provider to fall back to.
    pub to: String,
    /// When it applies: `conditions` as a list of statuses is `{"status": [...]}`; an object
    /// is a `when` condition; absent (or an empty list) matches every request.
    pub when: Condition,
}

/// Circuit breaker settings (CONTRACT §4.4).
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Half-open successes that close it.
    pub success_threshold: u32,
    /// How long it stays open before admitting probes.
    pub timeout_ms: u64,
    /// Probes admitted while half-open.
    pub half_open_max_calls: u32,
    /// Error rate over the window that opens the breaker (0 < r ≤ 1).
    pub error_rate_threshold: f64,
    /// The error-rate window.
    pub error_rate_window_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            success_threshold: 2,
            timeout_ms: 60_000,
            half_open_max_calls: 3,
            error_rate_threshold: 0.5,
            error_rate_window_ms: 60_000,
        }
    }
}

impl Policy {
    /// Every provider with a weight above 0 by tier, then weight (heaviest first), then the
    /// fallback rules' targets and the legacy fallback: the plan's order when every one is
    /// eligible and the strategy is weighted.
    pub fn static_ranking(&self) -> Vec<&str> {
        let mut providers: Vec<&Provider> =
            self.providers.iter().filter(|p| p.weight > 0.0).collect();
        providers.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then_with(|| b.weight.total_cmp(&a.weight))
        });
        let mut ranked: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        for target in self.fallback_targets() {
            if !ranked.contains(&target) {
                ranked.push(target);
            }
        }
        ranked
    }

    pub(super) fn make_static_plans(&self) -> Vec<(String, Arc<[String]>)> {
        let ranking = self.static_ranking();
        ranking
            .iter()
            .map(|chosen| {
                let rest: Vec<String> = ranking
                    .iter()
                    .filter(|name| *name != chosen)
                    .map(|name| (*name).to_owned())
                    .collect();
                ((*chosen).to_owned(), Arc::from(rest))
            })
            .collect()
    }

    /// True when `ranked` is [`Policy::static_ranking`]: the precomputed plans apply.
    pub fn is_static_ranking(&self, ranked: &[&str]) -> bool {
        ranked.len() == self.static_plans.len()
            && ranked
                .iter()
                .zip(&self.static_plans)
                .all(|(a, (b, _))| *a == b)
    }

    /// The plan after `chosen` while every provider and target is eligible (weighted
    /// strategy, no filter, no open breaker, no cooldown): computed once per policy.
    pub fn static_plan(&self, chosen: &str) -> Option<Arc<[String]>> {
        self.static_plans
            .iter()
            .find(|(name, _)| name == chosen)
            .map(|(_, plan)| plan.clone())
    }

    /// The provider entry with this name, if the policy lists it.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// True when the policy can send a call to `name`: a provider, a fallback rule's target
    /// or the legacy fallback.
    pub fn names(&self, name: &str) -> bool {
        self.provider(name).is_some() || self.fallback_targets().any(|to| to == name)
    }

    /// Tokens a request is admitted on when it names no estimate.
    pub fn estimated_tokens(&self) -> u64 {
        self.quota
            .map_or(super::quota::DEFAULT_ESTIMATED_TOKENS, |q| {
                q.estimated_tokens
            })
    }

    /// True when a decision under this policy is counted: a provider with `rpm`/`tpm`, or a
    /// `quota` section with a limit.
    pub fn has_quotas(&self) -> bool {
        self.providers.iter().any(|p| p.limits.is_limited())
            || self.quota.is_some_and(|q| q.tenant.is_limited())
    }

    /// The fallback rules' targets in order, then the legacy fallback's.
    pub fn fallback_targets(&self) -> impl Iterator<Item = &str> {
        self.fallbacks
            .iter()
            .map(|rule| rule.to.as_str())
            .chain(self.legacy_fallback.iter().map(|f| f.to.as_str()))
    }
}
