//! Which providers a decision may use: the request's `only` / `ignore` filters, circuit
//! breakers and rate-limit cooldowns, and the best tier among what is left.

use smallvec::SmallVec;

use crate::policy::Provider;

use super::choice::Choice;
use super::model::Exclusion;

/// Providers held on the stack up to this many (a policy rarely names more).
const INLINE_PROVIDERS: usize = 8;

/// Some of a policy's providers, without a heap allocation for the usual few.
pub(super) type ProviderList<'p> = SmallVec<[&'p Provider; INLINE_PROVIDERS]>;

/// The providers a decision may draw from, and why the others are out.
pub(super) struct Candidates<'p> {
    /// Eligible providers with a weight above 0, in policy order.
    pub all: ProviderList<'p>,
    /// The lowest priority among them.
    pub best_tier: Option<u32>,
    /// Providers left out, with why.
    pub excluded: Vec<(&'p str, Exclusion)>,
}

impl<'p> Candidates<'p> {
    /// Those of the best tier.
    pub fn tier(&self) -> ProviderList<'p> {
        self.all
            .iter()
            .copied()
            .filter(|p| Some(p.priority) == self.best_tier)
            .collect()
    }

    /// True when a breaker blocked some provider.
    pub fn blocked_by_breakers(&self) -> bool {
        self.excluded
            .iter()
            .any(|(_, why)| *why == Exclusion::CircuitBreaker)
    }
}

impl<'a> Choice<'a, '_> {
    /// Why `provider` cannot be used now, if it cannot: filters, then its breaker, then a
    /// cooldown, then its quota.
    pub(super) fn exclusion(&self, provider: &str) -> Option<Exclusion> {
        if let Some(filtered) = self.filters.removes(provider) {
            return Some(filtered);
        }
        if !self.admits(provider) {
            return Some(Exclusion::CircuitBreaker);
        }
        let cooling = self
            .live
            .as_ref()
            .is_some_and(|live| live.cooling(provider, self.now_ms));
        if cooling {
            return Some(Exclusion::Cooldown);
        }
        let over_quota = self
            .quota
            .is_some_and(|ask| ask.excludes(provider).is_some());
        over_quota.then_some(Exclusion::Quota)
    }

    /// True when `provider` can be used now.
    pub(super) fn eligible(&self, provider: &str) -> bool {
        self.exclusion(provider).is_none()
    }

    /// The policy's providers sorted into candidates and exclusions.
    pub(super) fn candidates(&self) -> Candidates<'a> {
        let providers = &self.policy.providers;
        let mut all = ProviderList::new();
        let mut excluded = Vec::new();
        let mut best_tier: Option<u32> = None;
        for provider in providers {
            let why = if provider.weight > 0.0 {
                self.exclusion(&provider.name)
            } else {
                Some(Exclusion::ZeroWeight)
            };
            match why {
                None => {
                    best_tier =
                        Some(best_tier.map_or(provider.priority, |t| t.min(provider.priority)));
                    all.push(provider);
                }
                Some(why) => excluded.push((provider.name.as_str(), why)),
            }
        }
        Candidates {
            all,
            best_tier,
            excluded,
        }
    }
}
