//! Quotas (docs/ROUTING.md "Quotas") on one router: provider `rpm`/`tpm` leave a provider
//! out, tenant limits and budgets answer `quota_exceeded`, feedback corrects token
//! estimates, windows start again, a raised limit keeps the window's usage, and the
//! headroom strategy spreads traffic before a limit trips.

mod common;

use common::*;
use router_core::{Policy, Router};
use serde_json::{json, Value};

/// NOW is 2025-11-26T18:40:00Z: the start of a UTC minute.
const MINUTE: u64 = 60_000;

fn decide(router: &Router, request: &Value, now: u64, seed: u64) -> Value {
    send_rng(router, request, now, &mut rng(seed))
}

#[test]
fn a_provider_over_its_rpm_is_left_out_until_the_minute_ends() {
    let router = acme_with(
        "capped",
        json!({"providers": [{"name": "a", "weight": 100, "rpm": 3}, {"name": "b", "weight": 0}],
               "fallbacks": [{"to": "b"}]}),
    );
    let req = acme_request("capped");
    for i in 0..3 {
        assert_eq!(provider(&decide(&router, &req, NOW + i, i)), "a");
    }
    let fourth = decide(&router, &req, NOW + 10_000, 4);
    assert_eq!(provider(&fourth), "b", "the fallback takes over: {fourth}");
    assert_eq!(fourth["decision"]["reason"], "fallback");
    // Without a fallback: decision_failed naming the quota and when it frees.
    upsert(
        &router,
        "acme",
        "alone",
        json!({"providers": [{"name": "a", "weight": 100, "rpm": 1}]}),
    );
    let alone = acme_request("alone");
    assert_eq!(provider(&decide(&router, &alone, NOW, 1)), "a");
    let refused = decide(&router, &alone, NOW + 15_000, 2);
    assert_eq!(refused["error"]["code"], "decision_failed", "{refused}");
    let details = &refused["error"]["details"];
    assert_eq!(details["excluded"]["a"], "quota", "{refused}");
    assert_eq!(details["retry_after_ms"], 45_000, "{refused}");
    assert_eq!(details["quota_frees_in_ms"]["a"], 45_000, "{refused}");
    // The next minute admits again.
    assert_eq!(provider(&decide(&router, &alone, NOW + MINUTE, 3)), "a");
}

#[test]
fn a_tenant_over_its_rpm_gets_quota_exceeded_with_the_limit_usage_and_reset() {
    let router = acme_with(
        "limited",
        json!({"providers": [{"name": "a", "weight": 100}], "quota": {"rpm": 2}}),
    );
    let req = acme_request("limited");
    for i in 0..2 {
        assert_eq!(decide(&router, &req, NOW + i, i)["ok"], true);
    }
    let refused = decide(&router, &req, NOW + 20_000, 9);
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    let details = &refused["error"]["details"];
    assert_eq!(details["scope"], "tenant");
    assert_eq!(details["limit"], "rpm");
    assert_eq!(details["window"], "minute");
    assert_eq!(details["limit_value"], 2);
    assert_eq!(details["used"], 2);
    assert_eq!(details["retry_after_ms"], 40_000);
    // The tenant's limit holds across its policies: the shipped acme policy counts too.
    let other = decide(&router, &base(), NOW + 20_001, 10);
    assert_eq!(other["error"]["code"], "quota_exceeded", "{other}");
    assert_eq!(decide(&router, &req, NOW + MINUTE, 11)["ok"], true);
}

#[test]
fn feedback_with_more_tokens_than_estimated_uses_up_the_tpm() {
    let router = acme_with(
        "tokens",
        json!({"providers": [{"name": "a", "weight": 100, "tpm": 1000}],
               "quota": {"estimated_tokens": 100}}),
    );
    let req = acme_request("tokens");
    let first = decide(&router, &req, NOW, 1);
    let id = first["decision"]["decision_id"].clone();
    // Nine more fit on the estimate (10 × 100 = 1000)...
    router
        .feedback(
            &bytes(
                &json!({"tenant_id": "acme", "provider_id": "a", "decision_id": id,
                           "outcome": "success", "input_tokens": 200, "output_tokens": 750}),
            ),
            NOW + 5,
        )
        .expect("applied");
    // ...but the first call used 950: 50 are left, and a request for 100 is refused.
    let refused = decide(&router, &req, NOW + 10, 2);
    assert_eq!(refused["error"]["code"], "decision_failed", "{refused}");
    assert_eq!(refused["error"]["details"]["excluded"]["a"], "quota");
    let small = set(req.clone(), "constraints.max_tokens", json!(50));
    assert_eq!(provider(&decide(&router, &small, NOW + 11, 3)), "a");
    // A report repeated does not correct twice, and a wrong estimate type is refused.
    let bad = set(req, "constraints.estimated_tokens", json!("many"));
    let reply = decide(&router, &bad, NOW + 12, 4);
    assert_eq!(reply["error"]["code"], "invalid_request", "{reply}");
    assert_eq!(reply["error"]["details"]["field"], "estimated_tokens");
}

#[test]
fn a_day_budget_counts_spend_at_the_providers_price() {
    // 10 per million tokens; 1,000 tokens cost 0.01; a budget of 0.03 a day.
    let router = acme_with(
        "spend",
        json!({"providers": [{"name": "a", "weight": 100,
                              "price": {"input_per_mtok": 5, "output_per_mtok": 10}}],
               "quota": {"budget": {"day": 0.03}, "estimated_tokens": 1000}}),
    );
    let req = acme_request("spend");
    for i in 0..3 {
        assert_eq!(decide(&router, &req, NOW + i, i)["ok"], true);
    }
    let refused = decide(&router, &req, NOW + 3, 3);
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    let details = &refused["error"]["details"];
    assert_eq!(details["limit"], "budget_day");
    assert_eq!(details["window"], "day");
    assert_eq!(details["limit_value"], 0.03);
    assert_eq!(details["used"], 0.03);
    // NOW is 18:40 UTC: the day resets at midnight, 5 h 20 min later.
    assert_eq!(details["retry_after_ms"], (5 * 60 + 20) * MINUTE - 3);
}

#[test]
fn raising_a_limit_live_keeps_the_windows_usage() {
    let router = acme_with(
        "live",
        json!({"providers": [{"name": "a", "weight": 100}], "quota": {"rpm": 2}}),
    );
    let req = acme_request("live");
    for i in 0..2 {
        assert_eq!(decide(&router, &req, NOW + i, i)["ok"], true);
    }
    assert_eq!(decide(&router, &req, NOW + 2, 2)["ok"], false);
    upsert(
        &router,
        "acme",
        "live",
        json!({"providers": [{"name": "a", "weight": 100}], "quota": {"rpm": 3}}),
    );
    assert_eq!(
        decide(&router, &req, NOW + 3, 3)["ok"],
        true,
        "one more fits"
    );
    let refused = decide(&router, &req, NOW + 4, 4);
    assert_eq!(refused["error"]["details"]["used"], 3, "{refused}");
}

#[test]
fn the_headroom_strategy_moves_traffic_away_as_a_provider_fills() {
    let router = acme_with(
        "headroom",
        json!({"strategy": "headroom",
               "providers": [{"name": "a", "weight": 50, "rpm": 100},
                             {"name": "b", "weight": 50, "rpm": 100}]}),
    );
    let req = acme_request("headroom");
    let mut a = 0;
    for seed in 0..150 {
        if provider(&decide(&router, &req, NOW + seed, seed)) == "a" {
            a += 1;
        }
    }
    // Each draw favours the emptier provider: the split stays close to even.
    assert!((65..=85).contains(&a), "a got {a} of 150");
    // Fifty more use up both limits (2 × 100): then nothing is left for the minute.
    for seed in 0..50 {
        assert!(decide(&router, &req, NOW + 200 + seed, seed)["ok"] == true);
    }
    let refused = decide(&router, &req, NOW + 300, 1);
    assert_eq!(refused["error"]["code"], "decision_failed", "{refused}");
}

#[test]
fn quota_keys_are_validated_and_named() {
    let field = |doc: Value| {
        Policy::from_value(&doc, "acme", "p")
            .err()
            .map(|e| e.field)
            .unwrap_or_default()
    };
    assert_eq!(
        field(json!({"providers": [{"name": "a", "weight": 1, "rpm": 0}]})),
        "providers[0].rpm"
    );
    assert_eq!(
        field(json!({"providers": [{"name": "a", "weight": 1, "tpm": "lots"}]})),
        "providers[0].tpm"
    );
    assert_eq!(
        field(json!({"providers": [{"name": "a", "weight": 1, "price": {"input": 1}}]})),
        "providers[0].price.input"
    );
    assert_eq!(
        field(json!({"providers": [{"name": "a", "weight": 1}], "quota": {"budget": {"day": 5}}})),
        "quota.budget"
    );
    assert_eq!(
        field(json!({"quota": {"budget": {"week": 5}}})),
        "quota.budget.week"
    );
    assert_eq!(field(json!({"quota": {"rpm": -1}})), "quota.rpm");
    assert_eq!(field(json!({"quota": {"burst": 1}})), "quota.burst");
    assert_eq!(field(json!({"strategy": "cheapest"})), "strategy");
}
