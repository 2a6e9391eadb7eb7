//! Which providers a decision may use: the request's `only` / `ignore` filters, circuit
//! breakers and rate-limit cooldowns, and the best tier among what is left.

use serde_json::{Map, Value};

use crate::error::{IntakeErrorCode, Rejection};
use crate::policy::Provider;

use super::Choice;

/// Longest `only` / `ignore` list accepted.
pub const MAX_FILTER_IDS: usize = 64;

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
        }
    }
}

/// The request's provider filters (context `only` and `ignore`; unknown ids are ignored).
#[derive(Debug, Default)]
pub(super) struct Filters<'a> {
    only: Option<Vec<&'a str>>,
    ignore: Vec<&'a str>,
}

impl<'a> Filters<'a> {
    /// Reads `only` and `ignore` from the routing context.
    pub(super) fn read(context: &'a Map<String, Value>) -> Result<Self, Rejection> {
        Ok(Filters {
            only: ids(context, "only")?,
            ignore: ids(context, "ignore")?.unwrap_or_default(),
        })
    }

    /// True when the request names no filter.
    pub(super) fn is_empty(&self) -> bool {
        self.only.is_none() && self.ignore.is_empty()
    }

    /// Why the filters remove `provider`, if they do.
    pub(super) fn removes(&self, provider: &str) -> Option<Exclusion> {
        if self.ignore.contains(&provider) {
            return Some(Exclusion::Ignore);
        }
        match &self.only {
            Some(only) if !only.contains(&provider) => Some(Exclusion::Only),
            _ => None,
        }
    }
}

fn ids<'a>(context: &'a Map<String, Value>, key: &str) -> Result<Option<Vec<&'a str>>, Rejection> {
    let invalid = || {
        Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            key,
            format!("{key} must be a list of at most {MAX_FILTER_IDS} provider ids"),
        )
    };
    match context.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) if list.len() <= MAX_FILTER_IDS => list
            .iter()
            .map(|id| id.as_str().ok_or_else(invalid))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid()),
    }
}

/// The providers a decision may draw from, and why the others are out.
pub(super) struct Candidates<'p> {
    /// Eligible providers with a weight above 0, in policy order.
    pub all: Vec<&'p Provider>,
    /// The lowest priority among them.
    pub best_tier: Option<u32>,
    /// Providers left out, with why.
    pub excluded: Vec<(&'p str, Exclusion)>,
}

impl<'p> Candidates<'p> {
    /// Those of the best tier.
    pub fn tier(&self) -> Vec<&'p Provider> {
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

impl<'a> Choice<'a> {
    /// Why `provider` cannot be used now, if it cannot: filters, then its breaker, then a
    /// cooldown.
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
        cooling.then_some(Exclusion::Cooldown)
    }

    /// True when `provider` can be used now.
    pub(super) fn eligible(&self, provider: &str) -> bool {
        self.exclusion(provider).is_none()
    }

    /// The policy's providers sorted into candidates and exclusions.
    pub(super) fn candidates(&self) -> Candidates<'a> {
        let providers = &self.policy.providers;
        let mut all = Vec::with_capacity(providers.len());
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
