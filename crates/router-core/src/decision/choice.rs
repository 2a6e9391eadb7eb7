//! [`Choice`]: one decision in progress, holding the policy's breakers locked from the first
//! question to the chosen call; and [`Choice::make`], which turns the chosen provider into a
//! [`Decision`].

use std::sync::Arc;

use serde_json::Value;

use crate::request::RoutingContext;

use crate::breaker::PolicyBreakers;
use crate::ids;
use crate::live::PolicyLive;
use crate::policy::Policy;
use crate::quota::Ask;

use super::inputs::Filters;
use super::model::{Decision, DecisionMetadata, Reason};

/// One decision in progress. It holds the policy's breakers locked from the first question
/// to the chosen call, so what they admit and the probe the decision takes cannot be raced.
pub(super) struct Choice<'a, 'c> {
    pub(super) breakers: Option<PolicyBreakers<'a>>,
    pub(super) policy: &'a Policy,
    pub(super) tenant_id: &'a str,
    pub(super) context: &'a RoutingContext<'c>,
    pub(super) now_ms: u64,
    /// Entropy for the decision id.
    pub(super) random: u32,
    /// The request's `only` / `ignore`.
    pub(super) filters: Filters<'a>,
    /// The policy's live provider state, when it has any.
    pub(super) live: Option<Arc<PolicyLive>>,
    /// Every eligible provider and fallback target, best first (see [`Choice::rank`]).
    pub(super) ranked: Vec<&'a str>,
    /// Every provider and target is eligible: the policy's precomputed plans apply.
    pub(super) ranked_static: bool,
    /// What the decision asks of the quotas, when the policy or tenant has any.
    pub(super) quota: Option<&'a Ask<'a>>,
}

impl Choice<'_, '_> {
    /// True when the policy's breakers let `provider` take a call now.
    pub(super) fn admits(&self, provider: &str) -> bool {
        self.breakers.as_ref().is_none_or(|b| b.admits(provider))
    }

    /// When the first provider of the policy that a breaker blocks is admitted again.
    pub(super) fn first_admission_in_ms(&self) -> Option<u64> {
        let breakers = self.breakers.as_ref()?;
        let named = self
            .policy
            .providers
            .iter()
            .map(|p| p.name.as_str())
            .chain(self.policy.fallback_targets());
        named
            .map(|name| breakers.admits_in_ms(name))
            .filter(|ms| *ms > 0)
            .min()
    }

    pub(super) fn make(
        &mut self,
        provider_id: &str,
        reason: Reason,
        sticky_key: Option<&str>,
        retry: Option<(u64, u32)>,
    ) -> Decision {
        if let Some(breakers) = &mut self.breakers {
            // Admitted under this same lock a moment ago, so the call is taken (a half-open
            // breaker counts its probe here).
            breakers.take(provider_id);
        }
        let entry = self.policy.provider(provider_id);
        let figure = |from_policy: Option<f64>, key: &str| {
            from_policy
                .or_else(|| self.context.get(key).and_then(Value::as_f64))
                .unwrap_or(0.0)
        };
        Decision {
            provider_id: provider_id.to_owned(),
            reason,
            priority: reason.priority(),
            expected_latency_ms: figure(
                entry.and_then(|p| p.expected_latency_ms),
                "expected_latency_ms",
            ),
            expected_cost: figure(entry.and_then(|p| p.expected_cost), "expected_cost"),
            policy_id: self.policy.policy_id.clone(),
            decision_id: ids::decision_id(self.now_ms, self.random, &self.policy.policy_id),
            fallbacks: self.plan(provider_id),
            score: None,
            metadata: DecisionMetadata {
                tenant_id: self.tenant_id.to_owned(),
                sticky_key: sticky_key.map(str::to_owned),
                retry_attempt: retry.map(|(attempt, _)| attempt),
                max_retries: retry.map(|(_, max)| max),
            },
        }
    }
}
