//! [`target_parse`]: `Policy::from_json` on any text, and the CONTRACT §4.2 rules an
//! accepted policy keeps (and that a refused input must break).

use std::collections::HashSet;

use proptest::prelude::*;
use router_core::Policy;
use serde_json::Value;

/// `[a-z0-9_]+`, the provider-name rule of CONTRACT §4.2.
fn is_provider_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Parses `text`; checks the rejection or the accepted policy. Returns the policy.
pub fn target_parse(text: &str) -> Result<Option<Policy>, TestCaseError> {
    match Policy::from_json(text, "fuzz", "default") {
        Err(err) => {
            prop_assert!(
                !err.field.is_empty(),
                "a rejection names a field: {:?}",
                err
            );
            prop_assert!(!err.message.is_empty(), "{:?}", err);
            prop_assert_eq!(err.to_string(), format!("{}: {}", err.field, err.message));
            Ok(None)
        }
        Ok(policy) => {
            check_policy(&policy)?;
            if let Ok(input) = serde_json::from_str::<Value>(text) {
                check_input_rules(&input)?;
            }
            Ok(Some(policy))
        }
    }
}

/// Every rule an accepted policy keeps.
fn check_policy(policy: &Policy) -> Result<(), TestCaseError> {
    prop_assert_eq!(&policy.tenant_id, "fuzz");
    prop_assert_eq!(&policy.policy_id, "default");
    let mut names = HashSet::new();
    for provider in &policy.providers {
        prop_assert!(is_provider_name(&provider.name), "{:?}", provider);
        prop_assert!(
            names.insert(provider.name.clone()),
            "listed twice: {:?}",
            provider
        );
        prop_assert!(
            provider.weight.is_finite() && provider.weight >= 0.0,
            "{:?}",
            provider
        );
        for figure in [provider.expected_latency_ms, provider.expected_cost]
            .into_iter()
            .flatten()
        {
            prop_assert!(figure.is_finite() && figure >= 0.0, "{:?}", provider);
        }
    }
    for rule in &policy.fallbacks {
        prop_assert!(is_provider_name(&rule.to), "{:?}", rule);
        prop_assert!(rule.retry <= 10, "{:?}", rule);
    }
    if let Some(fallback) = &policy.legacy_fallback {
        let name = &fallback.to;
        prop_assert!(is_provider_name(name), "{:?}", name);
    }
    if let Some(sticky) = &policy.sticky {
        prop_assert!(!sticky.session_key.is_empty());
        prop_assert!(
            (1_000..=86_400_000).contains(&sticky.ttl_ms),
            "{:?}",
            sticky
        );
    }
    if let Some(breaker) = &policy.circuit_breaker {
        for count in [
            breaker.failure_threshold,
            breaker.success_threshold,
            breaker.half_open_max_calls,
        ] {
            prop_assert!((1..=1_000_000).contains(&count), "{:?}", breaker);
        }
        prop_assert!(breaker.timeout_ms >= 1, "{:?}", breaker);
        prop_assert!(breaker.error_rate_window_ms >= 1_000, "{:?}", breaker);
        prop_assert!(
            breaker.error_rate_threshold > 0.0 && breaker.error_rate_threshold <= 1.0,
            "{:?}",
            breaker
        );
    }
    Ok(())
}

/// Rules read straight from the input: a document breaking one must not have been accepted.
fn check_input_rules(input: &Value) -> Result<(), TestCaseError> {
    if let Some(list) = input.get("providers").and_then(Value::as_array) {
        for entry in list {
            let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
            prop_assert!(is_provider_name(name), "accepted provider {:?}", entry);
            let weight = entry.get("weight").and_then(Value::as_f64);
            prop_assert!(
                weight.is_some_and(|w| w >= 0.0),
                "accepted weight {:?}",
                entry
            );
        }
    }
    if let Some(map) = input.get("weights").and_then(Value::as_object) {
        for (name, weight) in map {
            prop_assert!(is_provider_name(name), "accepted provider {:?}", name);
            prop_assert!(
                weight.as_f64().is_some_and(|w| w >= 0.0),
                "accepted weight {}",
                weight
            );
        }
    }
    if let Some(rules) = input.get("fallbacks").and_then(Value::as_array) {
        for rule in rules {
            let to = rule.get("to").and_then(Value::as_str).unwrap_or("");
            prop_assert!(is_provider_name(to), "accepted fallback {}", rule);
            if let Some(retry) = rule.get("retry") {
                prop_assert!(
                    retry.as_u64().is_some_and(|r| r <= 10),
                    "accepted retry {}",
                    rule
                );
            }
        }
    }
    Ok(())
}
