//! The decision algorithm (CONTRACT §4.3): deadline, sticky, weighted, fallbacks, legacy.
//!
//! Randomness and time are passed in, so every path is deterministic under test.

mod adaptive;
mod choice;
mod eligibility;
mod explain;
mod failure;
mod fallback;
mod headroom;
mod inputs;
mod model;
mod plan;
mod sticky;
mod weighted;

use rand::Rng;

use crate::breaker::BreakerRegistry;
use crate::error::Rejection;
use crate::live::LiveRegistry;
use crate::policy::{Policy, Strategy};
use crate::quota::{Ask, QuotaBook};
use crate::request::RoutingContext;

use choice::Choice;
pub use explain::{CandidateView, Explanation};
use inputs::Inputs;
pub use inputs::{MAX_FILTER_IDS, MAX_PROVIDER_NAME_BYTES};
pub use model::{Decision, DecisionMetadata, Exclusion, Reason};
pub use sticky::{StickyMapping, StickyStore};
use weighted::draw;

/// Sticky mappings, circuit breakers and live provider state: what decisions depend on.
#[derive(Debug)]
pub struct DecisionEngine {
    sticky: StickyStore,
    breakers: BreakerRegistry,
    live: LiveRegistry,
    quota: QuotaBook,
}

impl DecisionEngine {
    /// An engine whose sticky store holds at most `sticky_capacity` sessions.
    pub fn new(sticky_capacity: usize) -> Self {
        DecisionEngine {
            sticky: StickyStore::new(sticky_capacity),
            breakers: BreakerRegistry::new(),
            live: LiveRegistry::new(),
            quota: QuotaBook::new(false),
        }
    }

    /// The quota meters.
    pub fn quota(&self) -> &QuotaBook {
        &self.quota
    }

    /// Replaces the quota meters (before any decision): leased ones for a fleet.
    pub(crate) fn set_quota(&mut self, book: QuotaBook) {
        self.quota = book;
    }

    /// The live provider state, fed by feedback.
    pub fn live(&self) -> &LiveRegistry {
        &self.live
    }

    /// The circuit breakers, fed by feedback.
    pub fn breakers(&self) -> &BreakerRegistry {
        &self.breakers
    }

    /// Live sticky sessions at `now_ms`.
    pub fn sticky_sessions(&self, now_ms: u64) -> usize {
        self.sticky.len(now_ms)
    }

    /// Imports a sticky mapping recorded elsewhere (another router), replacing a local
    /// mapping; it lives `ttl_ms` from `now_ms`. A zero TTL imports nothing.
    pub fn remember_sticky(&self, mapping: &StickyMapping, ttl_ms: u64, now_ms: u64) {
        if ttl_ms == 0 || mapping.session.is_empty() {
            return;
        }
        let key = sticky::store_key(
            &mapping.tenant_id,
            &mapping.policy_id,
            &mapping.session_key,
            &mapping.session,
        );
        self.sticky
            .record(key, &mapping.provider_id, now_ms, ttl_ms);
    }

    /// Chooses a provider for `tenant_id` under `policy` given the routing `context`.
    pub fn decide(
        &self,
        policy: &Policy,
        tenant_id: &str,
        context: &RoutingContext<'_>,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Result<Decision, Rejection> {
        self.decide_exporting(policy, tenant_id, context, now_ms, rng, false)
            .map(|(decision, _)| decision)
    }

    /// [`Self::decide`], also returning the sticky mapping the decision recorded when `export`
    /// is true (a weighted draw for a session). With `export` false nothing extra is built.
    pub fn decide_exporting(
        &self,
        policy: &Policy,
        tenant_id: &str,
        context: &RoutingContext<'_>,
        now_ms: u64,
        rng: &mut impl Rng,
        export: bool,
    ) -> Result<(Decision, Option<StickyMapping>), Rejection> {
        self.decide_counted(policy, tenant_id, context, now_ms, rng, export, None, None)
    }

    /// [`Self::decide_exporting`] under quotas: providers `quota` leaves out are excluded
    /// (nothing is taken here: the caller takes from the chosen provider's meters). With
    /// `explain`, what the decision weighed is written there ([`Explanation`]).
    #[allow(clippy::too_many_arguments)]
    pub fn decide_counted(
        &self,
        policy: &Policy,
        tenant_id: &str,
        context: &RoutingContext<'_>,
        now_ms: u64,
        rng: &mut impl Rng,
        export: bool,
        quota: Option<&Ask<'_>>,
        explain: Option<&mut Explanation>,
    ) -> Result<(Decision, Option<StickyMapping>), Rejection> {
        let inputs = Inputs::read(context, now_ms)?;
        let live = match policy.strategy {
            Strategy::Adaptive => Some(self.live.policy_or_new(tenant_id, &policy.policy_id)),
            Strategy::Weighted | Strategy::Headroom => {
                self.live
                    .policy_if_cooling(tenant_id, &policy.policy_id, now_ms)
            }
        };
        let mut choice = Choice {
            breakers: policy.circuit_breaker.as_ref().map(|config| {
                self.breakers
                    .policy(tenant_id, &policy.policy_id, config, now_ms)
            }),
            policy,
            tenant_id,
            context,
            now_ms,
            random: rng.random(),
            filters: inputs.filters,
            live,
            ranked: Vec::new(),
            ranked_static: false,
            quota,
        };
        let candidates = choice.candidates();
        let scored = match policy.strategy {
            Strategy::Adaptive => adaptive::score(
                &candidates.all,
                choice.live.as_deref(),
                &policy.adaptive,
                now_ms,
            ),
            Strategy::Weighted | Strategy::Headroom => Vec::new(),
        };
        choice.rank(&candidates, &scored);
        if let Some(explanation) = explain {
            *explanation = choice.explain(&candidates, &scored);
        }

        // 4 (early). A caller reporting a failed call asks the fallback rules first.
        if let (Some(current), Some(_)) = (inputs.current_provider, context.get("status")) {
            if let Some(decision) =
                choice.fallback_rules(Some(current), inputs.retry_attempt, false)
            {
                return Ok((decision, None));
            }
        }

        // 2. Sticky, when the mapped provider is eligible and of the best tier.
        let session = policy.sticky.as_ref().and_then(|sticky| {
            let value = sticky::session_value(context.get(&sticky.session_key)?)?;
            let key = sticky::store_key(tenant_id, &policy.policy_id, &sticky.session_key, &value);
            Some((sticky, key, value))
        });
        if let Some((sticky, key, _)) = &session {
            let usable = self.sticky.lookup(key, now_ms, |name| {
                candidates
                    .all
                    .iter()
                    .find(|p| p.name == name && Some(p.priority) == candidates.best_tier)
            });
            if let Some(provider) = usable {
                return Ok((
                    choice.make(
                        &provider.name,
                        Reason::Sticky,
                        Some(&sticky.session_key),
                        None,
                    ),
                    None,
                ));
            }
        }

        // 3. Inside the best tier: a weighted draw, or the adaptive pick.
        let blocked_by_breakers = candidates.blocked_by_breakers();
        let picked = match policy.strategy {
            Strategy::Weighted => {
                let tier = candidates.tier();
                let total = tier.iter().map(|p| p.weight).sum();
                draw(&tier, total, rng).map(|p| (p, Reason::Weighted, None))
            }
            Strategy::Headroom => {
                headroom::draw(&candidates.tier(), quota, rng).map(|p| (p, Reason::Weighted, None))
            }
            Strategy::Adaptive => candidates
                .best_tier
                .and_then(|tier| adaptive::pick(&scored, tier, &policy.adaptive, rng))
                .map(|i| {
                    let chosen = &scored[i];
                    match &chosen.live {
                        Some(live) => live.chosen(),
                        None => {
                            if let Some(live) = &choice.live {
                                live.provider_or_new(&chosen.provider.name).chosen();
                            }
                        }
                    }
                    (chosen.provider, Reason::Adaptive, Some(chosen.score))
                }),
        };
        if let Some((provider, reason, score)) = picked {
            if let Some((sticky, key, value)) = session {
                let exported = export.then(|| StickyMapping {
                    tenant_id: tenant_id.to_owned(),
                    policy_id: policy.policy_id.clone(),
                    session_key: sticky.session_key.clone(),
                    session: value.into_owned(),
                    provider_id: provider.name.clone(),
                    ttl_ms: sticky.ttl_ms,
                    recorded_at_ms: now_ms,
                });
                self.sticky
                    .record(key, &provider.name, now_ms, sticky.ttl_ms);
                let mut decision =
                    choice.make(&provider.name, reason, Some(&sticky.session_key), None);
                decision.score = score;
                return Ok((decision, exported));
            }
            let mut decision = choice.make(&provider.name, reason, None, None);
            decision.score = score;
            return Ok((decision, None));
        }

        // 4. Nothing to draw from: the fallback rules, in order.
        if let Some(decision) = choice.fallback_rules(
            inputs.current_provider,
            inputs.retry_attempt,
            blocked_by_breakers,
        ) {
            return Ok((decision, None));
        }

        // 5. The legacy single fallback when its conditions match, then failure.
        if let Some(legacy) = &policy.legacy_fallback {
            if legacy.when.matches(context) && choice.eligible(&legacy.to) {
                let reason = if blocked_by_breakers {
                    Reason::CircuitBreakerFallback
                } else {
                    Reason::Fallback
                };
                return Ok((choice.make(&legacy.to, reason, None, None), None));
            }
        }
        Err(choice.failure(&candidates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use serde_json::Value;

    fn sticky_policy(policy_id: &str) -> Policy {
        Policy::from_json(
            r#"{"providers": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
                "sticky": {"enabled": true, "session_key": "user_id", "ttl": "10s"}}"#,
            "acme",
            policy_id,
        )
        .expect("valid policy")
    }

    fn context(user: Value) -> RoutingContext<'static> {
        let mut context = RoutingContext::new();
        context.insert("user_id", user);
        context
    }

    #[test]
    fn a_weighted_draw_exports_its_mapping_and_a_sticky_hit_does_not() {
        let engine = DecisionEngine::new(16);
        let policy = sticky_policy("default");
        let mut rng = SmallRng::seed_from_u64(7);
        let ctx = context(Value::from(42));
        let (first, mapping) = engine
            .decide_exporting(&policy, "acme", &ctx, 1_000, &mut rng, true)
            .expect("decided");
        assert_eq!(first.reason, Reason::Weighted);
        let mapping = mapping.expect("a weighted draw for a session exports its mapping");
        assert_eq!(
            mapping,
            StickyMapping {
                tenant_id: "acme".into(),
                policy_id: "default".into(),
                session_key: "user_id".into(),
                session: "42".into(),
                provider_id: first.provider_id.clone(),
                ttl_ms: 10_000,
                recorded_at_ms: 1_000,
            }
        );
        let (again, none) = engine
            .decide_exporting(&policy, "acme", &ctx, 1_001, &mut rng, true)
            .expect("decided");
        assert_eq!(again.reason, Reason::Sticky);
        assert!(none.is_none());
        let (_, off) = engine
            .decide_exporting(
                &policy,
                "acme",
                &context(Value::from("u-2")),
                1_002,
                &mut rng,
                false,
            )
            .expect("decided");
        assert!(off.is_none(), "nothing is exported unless asked");
    }

    #[test]
    fn an_imported_mapping_is_used_and_expires() {
        let engine = DecisionEngine::new(16);
        let policy = sticky_policy("default");
        let mut rng = SmallRng::seed_from_u64(1);
        let mapping = |provider: &str, session: &str| StickyMapping {
            tenant_id: "acme".into(),
            policy_id: "default".into(),
            session_key: "user_id".into(),
            session: session.into(),
            provider_id: provider.into(),
            ttl_ms: 500,
            recorded_at_ms: 1_000,
        };
        engine.remember_sticky(&mapping("b", "u-1"), 500, 1_000);
        for now in [1_000, 1_499] {
            let decision = engine
                .decide(&policy, "acme", &context(Value::from("u-1")), now, &mut rng)
                .expect("decided");
            assert_eq!(
                (decision.reason, decision.provider_id.as_str()),
                (Reason::Sticky, "b")
            );
        }
        let later = engine
            .decide(
                &policy,
                "acme",
                &context(Value::from("u-1")),
                1_500,
                &mut rng,
            )
            .expect("decided");
        assert_eq!(later.reason, Reason::Weighted);
        engine.remember_sticky(&mapping("b", "u-9"), 0, 1_000);
        assert_eq!(
            engine.sticky_sessions(1_000),
            1,
            "a zero TTL imports nothing"
        );
    }

    #[test]
    fn sessions_are_kept_apart_by_policy() {
        // A session alternating between two policies keeps one provider in each: the
        // mapping of one policy never answers for the other.
        let engine = DecisionEngine::new(64);
        let (one, two) = (sticky_policy("one"), sticky_policy("two"));
        let ctx = context(Value::from("u-7"));
        let mut rng = SmallRng::seed_from_u64(3);
        let first_one = engine
            .decide(&one, "acme", &ctx, 1_000, &mut rng)
            .expect("one");
        let first_two = engine
            .decide(&two, "acme", &ctx, 1_000, &mut rng)
            .expect("two");
        assert_eq!(
            first_two.reason,
            Reason::Weighted,
            "not policy one's mapping"
        );
        for now in 1_001..1_050 {
            let a = engine
                .decide(&one, "acme", &ctx, now, &mut rng)
                .expect("one");
            let b = engine
                .decide(&two, "acme", &ctx, now, &mut rng)
                .expect("two");
            assert_eq!(
                (a.reason, a.provider_id.as_str()),
                (Reason::Sticky, first_one.provider_id.as_str())
            );
            assert_eq!(
                (b.reason, b.provider_id.as_str()),
                (Reason::Sticky, first_two.provider_id.as_str())
            );
        }
    }

    #[test]
    fn every_decision_names_itself() {
        let engine = DecisionEngine::new(16);
        let policy = sticky_policy("default");
        let mut rng = SmallRng::seed_from_u64(9);
        let decision = engine
            .decide(&policy, "acme", &RoutingContext::new(), 1_234, &mut rng)
            .expect("decided");
        assert_eq!(
            ids::parse_decision_id(&decision.decision_id),
            Some((1_234, "default".to_owned()))
        );
    }
}
