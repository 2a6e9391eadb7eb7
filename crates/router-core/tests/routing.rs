//! Routing that learns from outcomes (docs/ROUTING.md): priority tiers, rate-limit
//! cooldowns, the ranked plan, the request's filters and the adaptive strategy.

mod common;

use std::collections::HashMap;

use common::*;
use router_core::Router;
use serde_json::{json, Value};

fn feedback(router: &Router, body: Value, now: u64) {
    router.feedback(&bytes(&body), now).expect("applied");
}

/// Providers chosen over `n` decisions at `now` (seeds 0..n).
fn shares(router: &Router, request: &Value, now: u64, n: u64) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for seed in 0..n {
        let reply = send_rng(router, request, now, &mut rng(seed));
        *counts.entry(provider(&reply).to_owned()).or_default() += 1;
    }
    counts
}

fn tiers_without_breaker() -> Value {
    json!({"providers": [{"name": "a", "weight": 50, "priority": 1},
                         {"name": "b", "weight": 50, "priority": 1},
                         {"name": "c", "weight": 100, "priority": 2}]})
}

fn tiers() -> Value {
    json!({"providers": [{"name": "a", "weight": 50, "priority": 1},
                         {"name": "b", "weight": 50, "priority": 1},
                         {"name": "c", "weight": 100, "priority": 2}],
           "circuit_breaker": {"failure_threshold": 1, "timeout_ms": 60000}})
}

#[test]
fn no_decision_reaches_tier_two_while_tier_one_has_an_eligible_provider() {
    let router = acme_with("tiers", tiers());
    let req = acme_request("tiers");
    let all = shares(&router, &req, NOW, 2_000);
    assert_eq!(all.get("c"), None, "tier 2 is never used: {all:?}");
    // One tier-1 provider out: the other takes everything, still not tier 2.
    feedback(
        &router,
        json!({"tenant_id": "acme", "policy_id": "tiers", "provider_id": "a", "outcome": "failure"}),
        NOW,
    );
    let one_left = shares(&router, &req, NOW + 1, 2_000);
    assert_eq!(one_left, HashMap::from([("b".to_owned(), 2_000)]));
    // Both out: tier 2.
    feedback(
        &router,
        json!({"tenant_id": "acme", "policy_id": "tiers", "provider_id": "b", "outcome": "failure"}),
        NOW + 1,
    );
    let reply = send_at(&router, &req, NOW + 2);
    assert_eq!(provider(&reply), "c");
    assert_eq!(reply["decision"]["fallbacks"], json!([]));
}

#[test]
fn the_plan_lists_the_rest_by_tier_then_weight_then_fallback_targets() {
    let router = acme_with(
        "plan",
        json!({"providers": [{"name": "a", "weight": 10, "priority": 1},
                             {"name": "b", "weight": 90, "priority": 1},
                             {"name": "c", "weight": 100, "priority": 2}],
               "fallbacks": [{"when": {"status": ["timeout"]}, "to": "local_llm"}]}),
    );
    let reply = send_rng(&router, &acme_request("plan"), NOW, &mut rng(3));
    let chosen = provider(&reply).to_owned();
    let expected: Vec<&str> = ["b", "a", "c", "local_llm"]
        .into_iter()
        .filter(|p| *p != chosen)
        .collect();
    assert_eq!(reply["decision"]["fallbacks"], json!(expected), "{reply}");
}

#[test]
fn a_rate_limit_cools_a_provider_for_its_retry_after_and_a_shorter_one_never_shortens_it() {
    let router = acme_with("cool", tiers_without_breaker());
    let req = acme_request("cool");
    feedback(
        &router,
        json!({"tenant_id": "acme", "policy_id": "cool", "provider_id": "a",
               "status": "rate_limited", "retry_after_s": 5}),
        NOW,
    );
    feedback(
        &router,
        json!({"tenant_id": "acme", "policy_id": "cool", "provider_id": "a",
               "outcome": "rate_limited", "retry_after_s": 1}),
        NOW + 100,
    );
    let cooling = shares(&router, &req, NOW + 4_999, 500);
    assert_eq!(cooling, HashMap::from([("b".to_owned(), 500)]));
    let reply = send_at(&router, &req, NOW + 4_999);
    assert_eq!(
        reply["decision"]["fallbacks"],
        json!(["c"]),
        "a cooling provider is not in the plan either"
    );
    let back = shares(&router, &req, NOW + 5_000, 500);
    assert!(back.get("a").is_some_and(|n| *n > 100), "{back:?}");
}

#[test]
fn a_rate_limit_without_retry_after_cools_for_the_policy_default() {
    let mut doc = tiers_without_breaker();
    doc["rate_limit"] = json!({"default_retry_after": "2s"});
    let router = acme_with("cool", doc);
    feedback(
        &router,
        json!({"tenant_id": "acme", "policy_id": "cool", "provider_id": "b",
               "status": "rate_limited"}),
        NOW,
    );
    let req = acme_request("cool");
    assert_eq!(
        shares(&router, &req, NOW + 1_999, 200),
        HashMap::from([("a".to_owned(), 200)])
    );
    assert!(shares(&router, &req, NOW + 2_000, 200).contains_key("b"));
}

#[test]
fn only_and_ignore_narrow_the_choice_and_an_empty_result_names_each_filter() {
    let router = acme_with("tiers", tiers());
    let only_c = set(
        acme_request("tiers"),
        "constraints.only",
        json!(["c", "unknown"]),
    );
    assert_eq!(
        shares(&router, &only_c, NOW, 200),
        HashMap::from([("c".to_owned(), 200)])
    );
    let ignore_a = set(acme_request("tiers"), "constraints.ignore", json!(["a"]));
    assert_eq!(
        shares(&router, &ignore_a, NOW, 200),
        HashMap::from([("b".to_owned(), 200)])
    );
    let nothing = set(
        set(acme_request("tiers"), "constraints.only", json!(["a", "b"])),
        "constraints.ignore",
        json!(["a", "b"]),
    );
    let reply = send(&router, &nothing);
    assert_eq!(reply["ok"], false, "{reply}");
    assert_eq!(reply["error"]["code"], "decision_failed");
    assert_eq!(
        reply["error"]["details"]["excluded"],
        json!({"a": "ignore", "b": "ignore", "c": "only"}),
        "{reply}"
    );
    let wrong = set(acme_request("tiers"), "constraints.only", json!("a"));
    let reply = send(&router, &wrong);
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"]["code"], "invalid_request", "{reply}");
}

fn adaptive() -> Value {
    json!({"strategy": "adaptive",
           "providers": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
           "adaptive": {"explore": 0.05}})
}

fn report_latency(router: &Router, provider: &str, ms: f64, now: u64) {
    feedback(
        router,
        json!({"tenant_id": "acme", "policy_id": "adaptive", "provider_id": provider,
               "outcome": "success", "latency_ms": ms}),
        now,
    );
}

/// `n` callers one after the other at `now`: each decides, "calls" the provider (whose
/// latency is `latency(provider)`) and reports it. Returns the shares.
fn play(router: &Router, n: u64, now: u64, latency: impl Fn(&str) -> f64) -> HashMap<String, u64> {
    let req = acme_request("adaptive");
    let mut counts = HashMap::new();
    for seed in 0..n {
        let reply = send_rng(router, &req, now, &mut rng(seed));
        let chosen = provider(&reply).to_owned();
        report_latency(router, &chosen, latency(&chosen), now);
        *counts.entry(chosen).or_default() += 1;
    }
    counts
}

#[test]
fn adaptive_keeps_the_weights_inside_the_buffer_and_leaves_a_slow_provider() {
    let router = acme_with("adaptive", adaptive());
    let close = play(
        &router,
        2_000,
        NOW,
        |p| if p == "a" { 800.0 } else { 900.0 },
    );
    for p in ["a", "b"] {
        let n = close.get(p).copied().unwrap_or(0);
        assert!((800..=1_200).contains(&n), "within the buffer: {close:?}");
    }
    let after = play(&router, 2_000, NOW + 10, |p| {
        if p == "a" {
            3_000.0
        } else {
            900.0
        }
    });
    let slow = after.get("a").copied().unwrap_or(0);
    assert!(
        (20..=200).contains(&slow),
        "about the explore share (5 %) goes to a: {after:?}"
    );
    let reply = send_at(&router, &acme_request("adaptive"), NOW + 20);
    assert_eq!(reply["decision"]["reason"], "adaptive", "{reply}");
    assert!(reply["decision"]["score"].is_number(), "{reply}");
}

#[test]
fn adaptive_skips_a_degraded_provider_while_another_is_healthy() {
    let router = acme_with("adaptive", adaptive());
    let req = acme_request("adaptive");
    for t in 0..200u64 {
        feedback(
            &router,
            json!({"tenant_id": "acme", "policy_id": "adaptive", "provider_id": "a",
                   "outcome": "failure", "latency_ms": 100}),
            NOW + t * 50,
        );
        report_latency(&router, "b", 900.0, NOW + t * 50);
    }
    let after = shares(&router, &req, NOW + 10_000, 1_000);
    assert_eq!(after, HashMap::from([("b".to_owned(), 1_000)]));
}

#[test]
fn bad_feedback_figures_are_refused() {
    let router = acme_with("adaptive", adaptive());
    for body in [
        json!({"tenant_id": "acme", "provider_id": "a", "outcome": "success", "ttft_ms": -1}),
        json!({"tenant_id": "acme", "provider_id": "a", "status": "rate_limited",
               "retry_after_s": 1e9}),
        json!({"tenant_id": "acme", "provider_id": "a", "outcome": "success",
               "input_tokens": "many"}),
        json!({"tenant_id": "acme", "provider_id": "a"}),
    ] {
        assert!(router.feedback(&bytes(&body), NOW).is_err(), "{body}");
    }
    let unknown_field = json!({"tenant_id": "acme", "provider_id": "a", "status": "5xx",
                               "ttft_ms": 120, "input_tokens": 10, "output_tokens": 20,
                               "region": "eu"});
    assert!(router.feedback(&bytes(&unknown_field), NOW).is_ok());
}

/// `callers` concurrent callers every 10 ms (virtual time) from `start` to `until`: in each
/// round every caller decides (so the decisions of a round are outstanding together), then
/// each reports its provider's `latency(provider, t)` right after. Returns the shares of the
/// decisions made from `count_from`.
fn concurrent(
    router: &Router,
    policy_id: &str,
    callers: u64,
    (start, until, count_from): (u64, u64, u64),
    latency: impl Fn(&str, u64) -> f64,
) -> HashMap<String, u64> {
    let req = acme_request(policy_id);
    let mut counts = HashMap::new();
    let mut seed = 0;
    for at in (start..until).step_by(10) {
        let mut chosen = Vec::new();
        for _ in 0..callers {
            seed += 1;
            let reply = send_rng(router, &req, at, &mut rng(seed));
            chosen.push(provider(&reply).to_owned());
        }
        for name in chosen {
            feedback(
                router,
                json!({"tenant_id": "acme", "policy_id": policy_id, "provider_id": name,
                       "outcome": "success", "latency_ms": latency(&name, at)}),
                at,
            );
            if at >= count_from {
                *counts.entry(name).or_default() += 1;
            }
        }
    }
    counts
}

#[test]
fn eight_concurrent_callers_leave_a_provider_that_became_three_times_slower() {
    // Two providers at weight 50: `fast` at 800 ms, `slow` at 900 ms; then fast goes to
    // 3,000 ms. In the last 2 s of the next 6 s it gets about the explore share (5 %):
    // decisions in flight do not outweigh a 3.3× latency gap (the load counts only as a
    // share of a known capacity).
    let router = acme_with(
        "eight",
        json!({"strategy": "adaptive",
               "providers": [{"name": "fast", "weight": 50}, {"name": "slow", "weight": 50}]}),
    );
    let change = NOW + 10_000;
    let latency = |p: &str, t: u64| match (p, t >= change) {
        ("fast", false) => 800.0,
        ("fast", true) => 3_000.0,
        _ => 900.0,
    };
    let after = concurrent(
        &router,
        "eight",
        8,
        (NOW, change + 6_000, change + 4_000),
        latency,
    );
    let fast = after.get("fast").copied().unwrap_or(0);
    let total: u64 = after.values().sum();
    assert!(total > 0, "{after:?}");
    eprintln!("fast: {fast} of {total} decisions in the last 2 s");
    assert!(
        fast * 10 < total,
        "fast got {fast} of {total} decisions in the last 2 s (goal < 10 %)"
    );
}

#[test]
fn a_known_capacity_spreads_load_to_the_provider_with_room() {
    // Same latency; `small` serves 2 calls at once, `large` 50: with 8 callers in flight
    // the load on small counts and most decisions go to large.
    let router = acme_with(
        "capacity",
        json!({"strategy": "adaptive", "adaptive": {"explore": 0.0},
               "providers": [{"name": "small", "weight": 50, "max_concurrency": 2},
                             {"name": "large", "weight": 50, "max_concurrency": 50}]}),
    );
    let shares = concurrent(
        &router,
        "capacity",
        8,
        (NOW, NOW + 20_000, NOW + 5_000),
        |_, _| 1_000.0,
    );
    let large = shares.get("large").copied().unwrap_or(0);
    let total: u64 = shares.values().sum();
    assert!(
        large * 10 >= total * 7,
        "large got {large} of {total}: {shares:?}"
    );
}
