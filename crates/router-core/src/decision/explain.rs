//! [`Explanation`]: what one decision weighed — every provider of the policy with its weight,
//! tier, score, breaker, cooldown and quota, and why it was left out — taken at the moment
//! the decision ranked them, only when the caller asks for it (a sampled decision record).

use serde::{Deserialize, Serialize};

use crate::breaker::BreakerState;

use super::adaptive::Scored;
use super::choice::Choice;
use super::eligibility::Candidates;
use super::model::Exclusion;

/// Every provider of the policy as one decision saw it, in policy order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The policy's providers, in policy order.
    pub candidates: Vec<CandidateView>,
}

/// One provider as a decision saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateView {
    /// The provider.
    pub provider_id: String,
    /// Its weight in the policy.
    pub weight: f64,
    /// Its tier (lower is tried first).
    pub priority: u32,
    /// Its breaker's state.
    pub breaker: BreakerState,
    /// Milliseconds until its breaker admits a call again (0 when it does now).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub breaker_admits_in_ms: u64,
    /// When its rate-limit cooldown ends (ms since the epoch), while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_until_ms: Option<u64>,
    /// The limit that left it out (`rpm`, `tpm`, `budget_day`, `budget_month`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_exhausted: Option<String>,
    /// The share of its limits left (1 without limits), when the decision counted quotas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_headroom: Option<f64>,
    /// Its adaptive score (lower is better), for the adaptive strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Why it was out of the draw (`only`, `ignore`, `circuit_breaker`, `cooldown`,
    /// `zero_weight`, `quota`), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<String>,
    /// In the best tier among the eligible providers: what the draw chose from.
    #[serde(default)]
    pub best_tier: bool,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl<'a> Choice<'a, '_> {
    /// Every provider of the policy as this decision ranked them.
    pub(super) fn explain(
        &self,
        candidates: &Candidates<'a>,
        scored: &[Scored<'a>],
    ) -> Explanation {
        let excluded = |name: &str| -> Option<Exclusion> {
            candidates
                .excluded
                .iter()
                .find(|(excluded, _)| *excluded == name)
                .map(|(_, why)| *why)
        };
        let candidates_view = self
            .policy
            .providers
            .iter()
            .map(|provider| {
                let name = provider.name.as_str();
                let why = excluded(name);
                let cooldown_until_ms = self
                    .live
                    .as_ref()
                    .and_then(|live| live.provider(name))
                    .map(|live| live.cooldown_until_ms())
                    .filter(|until| *until > self.now_ms);
                CandidateView {
                    provider_id: provider.name.clone(),
                    weight: provider.weight,
                    priority: provider.priority,
                    breaker: self
                        .breakers
                        .as_ref()
                        .map_or(BreakerState::Closed, |b| b.state(name)),
                    breaker_admits_in_ms: self
                        .breakers
                        .as_ref()
                        .map_or(0, |b| b.admits_in_ms(name)),
                    cooldown_until_ms,
                    quota_exhausted: self
                        .quota
                        .and_then(|ask| ask.excludes(name))
                        .map(|(kind, _)| kind.as_str().to_owned()),
                    quota_headroom: self.quota.map(|ask| ask.headroom(name)),
                    score: scored
                        .iter()
                        .find(|s| s.provider.name == name)
                        .map(|s| s.score),
                    excluded: why.map(|why| why.as_str().to_owned()),
                    best_tier: why.is_none() && Some(provider.priority) == candidates.best_tier,
                }
            })
            .collect();
        Explanation {
            candidates: candidates_view,
        }
    }
}
