//! The routing targets: an accepted policy in a router answers every valid request with one
//! of its providers or an error a policy can lead to ([`target_decide_with`]), and the
//! weighted draw reaches every heavy provider ([`target_weighted_draw`]).

use std::collections::HashSet;

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use router_core::{Policy, Router, RouterSettings};
use serde_json::{json, Map, Value};

use crate::parse_target::target_parse;

/// A fixed "now" (epoch ms).
const NOW: u64 = 1_764_182_400_000;

/// Every provider an accepted policy can answer with.
fn named(policy: &Policy) -> Vec<String> {
    policy
        .providers
        .iter()
        .map(|p| p.name.clone())
        .chain(policy.fallbacks.iter().map(|f| f.to.clone()))
        .chain(policy.legacy_fallback.iter().map(|f| f.to.clone()))
        .collect()
}

/// An accepted policy in a router: every reply to a valid request is a decision for one
/// of its providers or one of the errors a policy can lead to.
pub fn target_decide_with(
    policy: &Policy,
    context: &Map<String, Value>,
    seed: u64,
) -> Result<(), TestCaseError> {
    let router = Router::new(RouterSettings::default());
    router.policies().upsert(policy.clone());
    let body = json!({
        "request_id": "fuzz-1",
        "tenant_id": "fuzz",
        "task": {"type": "chat", "payload": {"prompt": "hello world"}},
        "constraints": context,
    });
    let bytes = serde_json::to_vec(&body).expect("serialisable");
    let mut rng = SmallRng::seed_from_u64(seed);
    // Twice: the second call meets the sticky mapping and breaker state of the first.
    for _ in 0..2 {
        let handled = router.handle(&bytes, None, NOW, &mut rng);
        let reply: Value = serde_json::from_slice(&handled.reply)
            .map_err(|err| TestCaseError::fail(format!("reply is not JSON: {err}")))?;
        if reply["ok"] == true {
            let provider = reply["decision"]["provider_id"].as_str().unwrap_or("");
            if reply["decision"]["reason"] == "retry" {
                // A retry stays on the provider the caller names (CONTRACT §4.3, step 4).
                prop_assert_eq!(
                    context.get("current_provider").and_then(Value::as_str),
                    Some(provider),
                    "{}",
                    reply
                );
            } else {
                prop_assert!(
                    named(policy).iter().any(|p| p == provider),
                    "{} is not in the policy {:?}",
                    provider,
                    policy
                );
            }
        } else {
            let code = reply["error"]["code"].as_str().unwrap_or("");
            let field = reply["error"]["details"]["field"].as_str().unwrap_or("");
            prop_assert!(
                matches!(code, "decision_failed" | "deadline_exceeded")
                    || (code == "invalid_request"
                        && matches!(field, "deadline" | "retry_attempt" | "current_provider")),
                "unexpected reply for an accepted policy: {}",
                reply
            );
        }
    }
    Ok(())
}

/// A policy with these weights (providers `p0`, `p1`, ...) routes, over 400 decisions, at
/// least once to every provider holding a quarter of the weight or more.
pub fn target_weighted_draw(weights: &[f64]) -> Result<(), TestCaseError> {
    let providers: Vec<Value> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"name": format!("p{i}"), "weight": w}))
        .collect();
    let text = json!({ "providers": providers }).to_string();
    let Some(policy) = target_parse(&text)? else {
        return Err(TestCaseError::fail(format!(
            "finite weights >= 0 refused: {text}"
        )));
    };
    // Shares computed on weights scaled by the largest, so that the sum stays finite.
    let largest = weights.iter().cloned().fold(0.0, f64::max);
    prop_assume!(largest > 0.0);
    let scaled: Vec<f64> = weights.iter().map(|w| w / largest).collect();
    let total: f64 = scaled.iter().sum();
    let router = Router::new(RouterSettings::default());
    router.policies().upsert(policy);
    let body = br#"{"request_id":"w","tenant_id":"fuzz","task":{"type":"t","payload":{"prompt":"hello world"}}}"#;
    let mut seen = HashSet::new();
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..400 {
        let reply: Value = serde_json::from_slice(&router.handle(body, None, NOW, &mut rng).reply)
            .map_err(|err| TestCaseError::fail(format!("reply is not JSON: {err}")))?;
        prop_assert_eq!(&reply["ok"], &json!(true), "{}", reply);
        seen.insert(
            reply["decision"]["provider_id"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    for (i, share) in scaled.iter().map(|w| w / total).enumerate() {
        // P(never drawn in 400 draws | share >= 0.25) < 1e-49.
        if share >= 0.25 {
            prop_assert!(
                seen.contains(&format!("p{i}")),
                "p{} holds {:.0} % of the weight but was never drawn in 400 decisions \
                 (weights {:?}, drawn {:?})",
                i,
                share * 100.0,
                weights,
                seen
            );
        }
    }
    Ok(())
}
