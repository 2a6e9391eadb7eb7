//! What a decision says: the chosen provider and its [`Reason`] (with the contract
//! priority), the plan, the metadata, and how they are written to JSON; and [`Exclusion`],
//! why a provider was left out.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why a provider was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A live sticky mapping for the session.
    Sticky,
    /// Drawn by weight.
    Weighted,
    /// Retry on the current provider under a fallback rule.
    Retry,
    /// A fallback rule (or the legacy fallback) fired.
    Fallback,
    /// A fallback because circuit breakers blocked the regular choice.
    CircuitBreakerFallback,
    /// Chosen by the adaptive strategy from live latency, load and errors.
    Adaptive,
}

impl Reason {
    /// Every reason, for metrics pre-registration.
    pub const ALL: [Reason; 6] = [
        Reason::Sticky,
        Reason::Weighted,
        Reason::Retry,
        Reason::Fallback,
        Reason::CircuitBreakerFallback,
        Reason::Adaptive,
    ];

    /// The contract priority of this reason.
    pub fn priority(self) -> u32 {
        match self {
            Reason::Sticky => 100,
            Reason::Weighted | Reason::Retry | Reason::Adaptive => 50,
            Reason::Fallback => 25,
            Reason::CircuitBreakerFallback => 20,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Sticky => "sticky",
            Reason::Weighted => "weighted",
            Reason::Retry => "retry",
            Reason::Fallback => "fallback",
            Reason::CircuitBreakerFallback => "circuit_breaker_fallback",
            Reason::Adaptive => "adaptive",
        }
    }
}

/// The chosen provider and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The provider to call.
    pub provider_id: String,
    /// Why.
    pub reason: Reason,
    /// The reason's priority.
    pub priority: u32,
    /// From the provider's policy entry, then the context, then 0.
    #[serde(serialize_with = "whole_as_integer")]
    pub expected_latency_ms: f64,
    /// From the provider's policy entry, then the context, then 0.
    #[serde(serialize_with = "whole_as_integer")]
    pub expected_cost: f64,
    /// The policy applied.
    pub policy_id: String,
    /// Names this decision in feedback (`decision_id`): it carries the policy and the time
    /// of the decision (see [`crate::ids::decision_id`]).
    pub decision_id: String,
    /// The providers to try next, in order, if this one fails: the same tiers, filters,
    /// breakers and cooldowns applied, then the fallback targets.
    #[serde(default)]
    pub fallbacks: Arc<[String]>,
    /// For `adaptive`: the score that chose the provider (lower is better), rounded.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_whole"
    )]
    pub score: Option<f64>,
    /// Tenant, sticky key and retry information.
    pub metadata: DecisionMetadata,
}

/// Writes a whole number as a JSON integer (`850`, as in CONTRACT §3, not `850.0`), so that
/// clients decoding into an integer type accept it; other values as they are.
fn whole_as_integer<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    // Within ±2^53 every whole f64 converts to i64 exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() <= EXACT {
        serializer.serialize_i64(*value as i64)
    } else {
        serializer.serialize_f64(*value)
    }
}

/// An optional figure rounded to a whole number, written as an integer.
fn optional_whole<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => whole_as_integer(&v.round(), serializer),
        None => serializer.serialize_none(),
    }
}

/// `decision.metadata`: a few facts about the decision, never the whole request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionMetadata {
    /// The tenant.
    pub tenant_id: String,
    /// The context key the sticky mapping was looked up or recorded under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_key: Option<String>,
    /// For `retry`: the attempt this decision makes (context `retry_attempt` + 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_attempt: Option<u64>,
    /// For `retry`: the rule's `retry` budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// Why a provider is out of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// Not in the request's `only` list.
    Only,
    /// In the request's `ignore` list.
    Ignore,
    /// Its circuit breaker blocks calls.
    CircuitBreaker,
    /// A rate-limit cooldown runs.
    Cooldown,
    /// Its weight is 0.
    ZeroWeight,
    /// Its `rpm` or `tpm` is used up for the window.
    Quota,
}

impl Exclusion {
    /// The name a `decision_failed` reply gives.
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Only => "only",
            Exclusion::Ignore => "ignore",
            Exclusion::CircuitBreaker => "circuit_breaker",
            Exclusion::Cooldown => "cooldown",
            Exclusion::ZeroWeight => "zero_weight",
            Exclusion::Quota => "quota",
        }
    }
}
