//! The decision algorithm (CONTRACT §4.3): deadline, sticky, weighted, fallbacks, legacy.
//!
//! Randomness and time are passed in, so every path is deterministic under test.

mod adaptive;
mod eligibility;
mod fallback;
mod plan;
mod sticky;
mod weighted;

use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::breaker::{BreakerRegistry, PolicyBreakers};
use crate::error::{ErrorCode, IntakeErrorCode, Rejection};
use crate::ids;
use crate::live::{LiveRegistry, PolicyLive};
use crate::policy::{Policy, Strategy};

pub use eligibility::{Exclusion, MAX_FILTER_IDS};
pub use sticky::{StickyMapping, StickyStore};
use weighted::draw;

/// Longest `current_provider` accepted from the routing context, in bytes.
pub const MAX_PROVIDER_NAME_BYTES: usize = 128;

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

/// Sticky mappings, circuit breakers and live provider state: what decisions depend on.
#[derive(Debug)]
pub struct DecisionEngine {
    sticky: StickyStore,
    breakers: BreakerRegistry,
    live: LiveRegistry,
}

impl DecisionEngine {
    /// An engine whose sticky store holds at most `sticky_capacity` sessions.
    pub fn new(sticky_capacity: usize) -> Self {
        DecisionEngine {
            sticky: StickyStore::new(sticky_capacity),
            breakers: BreakerRegistry::new(),
            live: LiveRegistry::new(),
        }
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
        context: &Map<String, Value>,
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
        context: &Map<String, Value>,
        now_ms: u64,
        rng: &mut impl Rng,
        export: bool,
    ) -> Result<(Decision, Option<StickyMapping>), Rejection> {
        let inputs = Inputs::read(context, now_ms)?;
        let live = match policy.strategy {
            Strategy::Adaptive => Some(self.live.policy_or_new(tenant_id, &policy.policy_id)),
            Strategy::Weighted => self
                .live
                .policy_if_cooling(tenant_id, &policy.policy_id, now_ms),
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
        };
        let candidates = choice.candidates();
        let scored = match policy.strategy {
            Strategy::Adaptive => adaptive::score(
                &candidates.all,
                choice.live.as_deref(),
                &policy.adaptive,
                now_ms,
            ),
            Strategy::Weighted => Vec::new(),
        };
        choice.rank(&candidates, &scored);

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
            let mapped = self.sticky.lookup(key, now_ms);
            let usable = mapped.and_then(|name| {
                candidates
                    .all
                    .iter()
                    .find(|p| p.name == *name && Some(p.priority) == candidates.best_tier)
            });
            if let Some(provider) = usable {
                let name = provider.name.clone();
                return Ok((
                    choice.make(&name, Reason::Sticky, Some(&sticky.session_key), None),
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
                    session: value,
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

impl Choice<'_> {
    /// `decision_failed`, saying why each provider is out.
    fn failure(&self, candidates: &eligibility::Candidates<'_>) -> Rejection {
        let blocked_by_breakers = candidates.blocked_by_breakers();
        let filtered = candidates.excluded.iter().any(|(_, why)| {
            matches!(
                why,
                Exclusion::Only | Exclusion::Ignore | Exclusion::Cooldown
            )
        });
        let message = if filtered {
            "no provider is left after the filters, breakers and cooldowns, and no fallback applies"
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
        if blocked_by_breakers {
            if let Some(ms) = self.first_admission_in_ms() {
                rejection = rejection.with_detail("retry_after_ms", ms);
            }
        }
        rejection
    }
}

/// Context values the algorithm reads.
struct Inputs<'a> {
    current_provider: Option<&'a str>,
    retry_attempt: u64,
    filters: eligibility::Filters<'a>,
}

impl<'a> Inputs<'a> {
    fn read(context: &'a Map<String, Value>, now_ms: u64) -> Result<Self, Rejection> {
        let invalid = |field: &str, message: &str| {
            Rejection::intake(IntakeErrorCode::SchemaValidationFailed, field, message)
        };
        match context.get("deadline") {
            None | Some(Value::Null) => {}
            Some(Value::Number(deadline)) => {
                if deadline.as_f64().is_some_and(|d| d < now_ms as f64) {
                    return Err(Rejection::new(
                        ErrorCode::DeadlineExceeded,
                        "the request deadline has already passed",
                    )
                    .with_detail("deadline", deadline.clone())
                    .with_detail("now", now_ms));
                }
            }
            Some(_) => return Err(invalid("deadline", "deadline must be a number (epoch ms)")),
        }
        let retry_attempt = match context.get("retry_attempt") {
            None | Some(Value::Null) => 0,
            Some(value) => value
                .as_u64()
                .ok_or_else(|| invalid("retry_attempt", "retry_attempt must be an integer >= 0"))?,
        };
        // It may become the decision's provider_id (retry): only a provider name, so that
        // the reply never echoes arbitrary, unbounded input.
        let current_provider = match context.get("current_provider") {
            None | Some(Value::Null) => None,
            Some(Value::String(name))
                if name.len() <= MAX_PROVIDER_NAME_BYTES && ids::is_provider_name(name) =>
            {
                Some(name.as_str())
            }
            Some(_) => {
                return Err(invalid(
                    "current_provider",
                    "current_provider must be a provider name ([a-z0-9_]+, at most 128 bytes)",
                ))
            }
        };
        Ok(Inputs {
            current_provider,
            retry_attempt,
            filters: eligibility::Filters::read(context)?,
        })
    }
}

/// One decision in progress. It holds the policy's breakers locked from the first question
/// to the chosen call, so what they admit and the probe the decision takes cannot be raced.
struct Choice<'a> {
    breakers: Option<PolicyBreakers<'a>>,
    policy: &'a Policy,
    tenant_id: &'a str,
    context: &'a Map<String, Value>,
    now_ms: u64,
    /// Entropy for the decision id.
    random: u32,
    /// The request's `only` / `ignore`.
    filters: eligibility::Filters<'a>,
    /// The policy's live provider state, when it has any.
    live: Option<Arc<PolicyLive>>,
    /// Every eligible provider and fallback target, best first (see [`Choice::rank`]).
    ranked: Vec<&'a str>,
    /// Every provider and target is eligible: the policy's precomputed plans apply.
    ranked_static: bool,
}

impl Choice<'_> {
    fn admits(&self, provider: &str) -> bool {
        self.breakers.as_ref().is_none_or(|b| b.admits(provider))
    }

    /// When the first provider of the policy that a breaker blocks is admitted again.
    fn first_admission_in_ms(&self) -> Option<u64> {
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

    fn make(
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn sticky_policy(policy_id: &str) -> Policy {
        Policy::from_json(
            r#"{"providers": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
                "sticky": {"enabled": true, "session_key": "user_id", "ttl": "10s"}}"#,
            "acme",
            policy_id,
        )
        .expect("valid policy")
    }

    fn context(user: Value) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("user_id".into(), user);
        map
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
            .decide(&policy, "acme", &Map::new(), 1_234, &mut rng)
            .expect("decided");
        assert_eq!(
            ids::parse_decision_id(&decision.decision_id),
            Some((1_234, "default".to_owned()))
        );
    }
}
