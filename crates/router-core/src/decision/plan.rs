//! The ranked plan of every reply (`decision.fallbacks`): what the caller tries next if the
//! chosen provider fails, so that it never has to ask again to fail over.
//!
//! Order: the eligible providers by tier (lower priority first), inside a tier by score for
//! the adaptive strategy or by weight (heaviest first) for the weighted one, policy order on
//! ties; then the fallback rules' targets and the legacy fallback, when eligible.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::policy::Strategy;

use super::adaptive::Scored;
use super::choice::Choice;
use super::eligibility::Candidates;
use super::model::Exclusion;

impl<'a> Choice<'a, '_> {
    /// Ranks every eligible provider and fallback target (kept for [`Choice::plan`]).
    pub(super) fn rank(&mut self, candidates: &Candidates<'a>, scored: &[Scored<'a>]) {
        if self.policy.strategy == Strategy::Weighted
            && candidates
                .excluded
                .iter()
                .all(|(_, why)| *why == Exclusion::ZeroWeight)
            && self.filters.is_empty()
            && self.live.is_none()
            && self.breakers.as_ref().is_none_or(|b| b.all_closed())
        {
            // Everything eligible: the policy's precomputed plans apply.
            self.ranked_static = true;
            return;
        }
        let key = |name: &str, weight: f64| -> f64 {
            scored
                .iter()
                .find(|s| std::ptr::eq(s.provider.name.as_str(), name))
                .map_or(-weight, |s| s.score)
        };
        let mut providers = candidates.all.clone();
        providers.sort_by(|a, b| {
            a.priority.cmp(&b.priority).then_with(|| {
                key(&a.name, a.weight)
                    .partial_cmp(&key(&b.name, b.weight))
                    .unwrap_or(Ordering::Equal)
            })
        });
        let mut ranked: Vec<&'a str> = providers.iter().map(|p| p.name.as_str()).collect();
        for target in self.policy.fallback_targets() {
            if !ranked.contains(&target) && self.eligible(target) {
                ranked.push(target);
            }
        }
        // The same order as with everything eligible: the precomputed plans apply.
        self.ranked_static = self.policy.is_static_ranking(&ranked);
        self.ranked = ranked;
    }

    /// The plan after `chosen`: the ranking without it.
    pub(super) fn plan(&self, chosen: &str) -> Arc<[String]> {
        if self.ranked_static {
            if let Some(plan) = self.policy.static_plan(chosen) {
                return plan;
            }
        }
        let ranked: &[&str] = if self.ranked_static {
            &[]
        } else {
            &self.ranked
        };
        let rest: Vec<String> = ranked
            .iter()
            .filter(|name| **name != chosen)
            .map(|name| (*name).to_owned())
            .collect();
        Arc::from(rest)
    }
}
