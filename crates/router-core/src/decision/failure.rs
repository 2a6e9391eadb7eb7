//! The `decision_failed` rejection when nothing is left to choose: which providers are out
//! and why, and when a blocking breaker admits calls again.

use serde_json::{Map, Value};

use crate::error::{ErrorCode, Rejection};

use super::choice::Choice;
use super::eligibility::Candidates;
use super::model::Exclusion;

impl Choice<'_, '_> {
    /// `decision_failed`, saying why each provider is out.
    pub(super) fn failure(&self, candidates: &Candidates<'_>) -> Rejection {
        let blocked_by_breakers = candidates.blocked_by_breakers();
        let filtered = candidates.excluded.iter().any(|(_, why)| {
            matches!(
                why,
                Exclusion::Only | Exclusion::Ignore | Exclusion::Cooldown | Exclusion::Quota
            )
        });
        let message = if filtered {
            "no provider is left after the filters, breakers, cooldowns and quotas, and no fallback applies"
        } else if blocked_by_breakers {
            "every provider is blocked by its circuit breaker and no fallback applies"
        } else {
            "no provider has a weight above 0 and no fallback applies"
        };
        let mut rejection = Rejection::new(ErrorCode::DecisionFailed, message)
            .with_detail("tenant_id", self.tenant_id)
            .with_detail("policy_id", self.policy.policy_id.as_str());
        if filtered {
            let excluded: Map<String, Value> = candidates
                .excluded
                .iter()
                .map(|(name, why)| ((*name).to_owned(), Value::from(why.as_str())))
                .collect();
            rejection = rejection.with_detail("excluded", Value::Object(excluded));
        }
        let mut retry_after_ms = if blocked_by_breakers {
            self.first_admission_in_ms()
        } else {
            None
        };
        if let Some(ask) = self.quota {
            let frees: Map<String, Value> = candidates
                .excluded
                .iter()
                .filter(|(_, why)| *why == Exclusion::Quota)
                .filter_map(|(name, _)| Some(((*name).to_owned(), ask.excludes(name)?.1)))
                .map(|(name, ms)| {
                    retry_after_ms = Some(retry_after_ms.map_or(ms, |r: u64| r.min(ms)));
                    (name, Value::from(ms))
                })
                .collect();
            if !frees.is_empty() {
                rejection = rejection.with_detail("quota_frees_in_ms", Value::Object(frees));
            }
        }
        if let Some(ms) = retry_after_ms {
            rejection = rejection.with_detail("retry_after_ms", ms);
        }
        rejection
    }
}
