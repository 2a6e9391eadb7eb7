//! Properties of the draw: a random policy never sends a call to a provider of weight 0 or
//! with an open breaker, and over many draws each provider's share follows its weight.

mod common;

use std::collections::{HashMap, HashSet};

use common::any_reply::check;
use common::*;
use proptest::collection::vec;
use proptest::prelude::*;
use router_core::request::RoutingContext;
use router_core::{Router, RouterSettings};
use serde_json::{json, Value};

// ---- random policies: never a weight-0 provider, never an open breaker ------------------------

#[derive(Debug, Clone)]
struct RandomPolicy {
    /// (weight as written in the policy, breaker open)
    providers: Vec<(Value, bool)>,
    sticky: bool,
}

fn random_policy() -> impl Strategy<Value = RandomPolicy> {
    let weight = prop_oneof![
        2 => Just(json!(0)),
        1 => Just(json!(0.0)),
        3 => (1u64..=100).prop_map(Value::from),
        2 => (0.001f64..1.0).prop_map(Value::from),
    ];
    (vec((weight, any::<bool>()), 1..7), any::<bool>())
        .prop_map(|(providers, sticky)| RandomPolicy { providers, sticky })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn zero_weight_and_open_breaker_providers_are_never_chosen(
        policy in random_policy(),
        users in vec(prop::option::of(0u8..6), 40),
        seed in any::<u64>(),
    ) {
        let router = Router::new(RouterSettings::default());
        let providers: Vec<Value> = policy.providers.iter().enumerate()
            .map(|(i, (weight, _))| json!({"name": format!("p{i}"), "weight": weight}))
            .collect();
        let mut doc = json!({"providers": providers,
                             "circuit_breaker": {"failure_threshold": 1, "timeout_ms": 3_600_000}});
        if policy.sticky {
            doc["sticky"] = json!({"session_key": "user_id", "ttl": "1h"});
        }
        upsert(&router, "acme", "default", doc);
        let request = |user: Option<u8>| match user {
            Some(u) => set(base(), "metadata.user_id", json!(format!("u{u}"))),
            None => base(),
        };
        let mut rng = rng(seed);
        // Sticky mappings first, while every breaker is closed.
        for user in 0..6 {
            parse(&router.handle(&bytes(&request(Some(user))), None, NOW, &mut rng));
        }
        for (i, (_, open)) in policy.providers.iter().enumerate() {
            if *open {
                router.feedback(&feedback("acme", &format!("p{i}"), "failure"), NOW + 1)
                    .expect("recorded");
            }
        }
        let usable: HashSet<String> = policy.providers.iter().enumerate()
            .filter(|(_, (weight, open))| weight.as_f64().is_some_and(|w| w > 0.0) && !open)
            .map(|(i, _)| format!("p{i}"))
            .collect();
        for user in users {
            let reply = check(&router.handle(&bytes(&request(user)), None, NOW + 2, &mut rng))?;
            if usable.is_empty() {
                prop_assert_eq!(&reply["error"]["code"], "decision_failed");
            } else {
                let chosen = reply["decision"]["provider_id"].as_str().unwrap_or("");
                prop_assert!(usable.contains(chosen), "{} not in {:?}", chosen, usable);
                let reason = reply["decision"]["reason"].as_str().unwrap_or("");
                prop_assert!(reason == "weighted" || reason == "sticky", "{}", reply);
            }
        }
    }
}

// ---- the weighted split ---------------------------------------------------------------------

/// Over 100,000 draws with a fixed seed each provider's share is within 1 percentage point of
/// its weight's share.
#[test]
fn weighted_split_matches_the_policy() {
    let router = router();
    upsert(
        &router,
        "acme",
        "mixed",
        json!({"providers": [{"name": "a", "weight": 0.05}, {"name": "b", "weight": 0.15},
                             {"name": "c", "weight": 0.3}, {"name": "d", "weight": 0.5},
                             {"name": "off", "weight": 0}]}),
    );
    let cases = [
        ("default_tenant", "default"),
        ("acme", "default"),
        ("acme", "mixed"),
        ("globex", "default"),
    ];
    for (tenant, policy_id) in cases {
        let policy = router.policies().get(tenant, policy_id).expect("policy");
        let total: f64 = policy.providers.iter().map(|p| p.weight).sum();
        let context = RoutingContext::new();
        let mut rng = rng(2024);
        let mut counts: HashMap<String, u32> = HashMap::new();
        const DRAWS: u32 = 100_000;
        for _ in 0..DRAWS {
            let decision = router
                .engine()
                .decide(&policy, tenant, &context, NOW, &mut rng)
                .expect("a decision");
            *counts.entry(decision.provider_id).or_default() += 1;
        }
        for provider in &policy.providers {
            let expected = provider.weight / total;
            let observed =
                f64::from(counts.get(&provider.name).copied().unwrap_or(0)) / f64::from(DRAWS);
            assert!(
                (observed - expected).abs() < 0.01,
                "{tenant}/{policy_id}: {} drawn {:.4}, weight share {:.4}",
                provider.name,
                observed,
                expected
            );
        }
        assert_eq!(
            counts.values().sum::<u32>(),
            DRAWS,
            "nothing outside the policy: {counts:?}"
        );
    }
}
