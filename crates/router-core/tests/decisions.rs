//! CONTRACT §4.1–§4.3 through `Router::handle` with seeded randomness: the weighted draw,
//! fallback rules and the legacy forms.

mod common;

use std::collections::HashMap;

use common::*;
use router_core::Router;
use serde_json::{json, Value};

// ---- weighted ----------------------------------------------------------------------------

#[test]
fn weighted_draws_only_weighted_providers() {
    let router = router();
    let mut rng = rng(11);
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..2_000 {
        let reply = send_rng(&router, &dt(), NOW, &mut rng);
        assert_eq!(reason(&reply), "weighted");
        assert_eq!(reply["decision"]["priority"], 50);
        assert_eq!(
            reply["decision"]["metadata"],
            json!({"tenant_id": "default_tenant"})
        );
        *counts.entry(provider(&reply).to_owned()).or_default() += 1;
    }
    assert_eq!(counts.len(), 2, "local_llm is only a fallback: {counts:?}");
    let openai = f64::from(counts["openai"]) / 2_000.0;
    assert!((0.66..0.74).contains(&openai), "{counts:?}");
}

/// The same seed gives the same sequence of decisions.
#[test]
fn decisions_are_reproducible_with_a_seed() {
    let run = || {
        let router = router();
        let mut rng = rng(99);
        (0..50)
            .map(|_| provider(&send_rng(&router, &base(), NOW, &mut rng)).to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

/// Float weights are taken as they are: relative to their sum.
#[test]
fn float_weights_are_relative() {
    let router = router();
    upsert(
        &router,
        "acme",
        "floats",
        json!({"providers": [{"name": "a", "weight": 0.2}, {"name": "b", "weight": 0.6},
                             {"name": "z", "weight": 0.0}]}),
    );
    let split = split(&router, &set(base(), "policy_id", json!("floats")), 20_000);
    assert_eq!(split.len(), 2, "{split:?}");
    assert!((split["a"] - 0.25).abs() < 0.015, "{split:?}");
}

fn split(router: &Router, request: &Value, draws: u32) -> HashMap<String, f64> {
    let mut rng = rng(5);
    let mut counts: HashMap<String, u32> = HashMap::new();
    let body = bytes(request);
    for _ in 0..draws {
        let reply = parse(&router.handle(&body, None, NOW, &mut rng));
        *counts.entry(provider(&reply).to_owned()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(k, v)| (k, f64::from(v) / f64::from(draws)))
        .collect()
}

// ---- fallback rules ----------------------------------------------------------------------

fn failed_call(request: Value, current: &str, status: &str) -> Value {
    set(
        set(request, "constraints.current_provider", json!(current)),
        "constraints.status",
        json!(status),
    )
}

/// `default_tenant`: `{"status": ["timeout", "5xx"]}` retry 2 → anthropic;
/// `{"status": ["rate_limited"]}` retry 0 → local_llm.
#[test]
fn retry_then_fallback() {
    let router = router();
    let attempt = |request: Value, n: Value| set(request, "metadata.retry_attempt", n);
    let rows = [
        (
            "5xx, first failure: retry",
            failed_call(dt(), "openai", "5xx"),
            ("openai", "retry", 50),
            json!({"tenant_id": "default_tenant", "retry_attempt": 1, "max_retries": 2}),
        ),
        (
            "timeout, attempt 0 given: retry",
            attempt(failed_call(dt(), "openai", "timeout"), json!(0)),
            ("openai", "retry", 50),
            json!({"tenant_id": "default_tenant", "retry_attempt": 1, "max_retries": 2}),
        ),
        (
            "5xx, attempt 1: retry again",
            attempt(failed_call(dt(), "openai", "5xx"), json!(1)),
            ("openai", "retry", 50),
            json!({"tenant_id": "default_tenant", "retry_attempt": 2, "max_retries": 2}),
        ),
        (
            "retry on whatever provider failed, even one outside the policy",
            failed_call(dt(), "mystery", "5xx"),
            ("mystery", "retry", 50),
            json!({"tenant_id": "default_tenant", "retry_attempt": 1, "max_retries": 2}),
        ),
        (
            "5xx, attempt 2: retries used up, fall back",
            attempt(failed_call(dt(), "openai", "5xx"), json!(2)),
            ("anthropic", "fallback", 25),
            json!({"tenant_id": "default_tenant"}),
        ),
        (
            "5xx, attempt 9: fall back",
            attempt(failed_call(dt(), "openai", "5xx"), json!(9)),
            ("anthropic", "fallback", 25),
            json!({"tenant_id": "default_tenant"}),
        ),
        (
            "rate_limited, retry 0: fall back at once",
            failed_call(dt(), "openai", "rate_limited"),
            ("local_llm", "fallback", 25),
            json!({"tenant_id": "default_tenant"}),
        ),
    ];
    for (name, request, (expected_provider, expected_reason, priority), metadata) in rows {
        let reply = send(&router, &request);
        assert_eq!(provider(&reply), expected_provider, "{name}");
        assert_eq!(reason(&reply), expected_reason, "{name}");
        assert_eq!(reply["decision"]["priority"], priority, "{name}");
        assert_eq!(reply["decision"]["metadata"], metadata, "{name}");
    }
    // No rule matches, or no current_provider / no status: the regular algorithm.
    for (name, request) in [
        ("status without a rule", failed_call(dt(), "openai", "4xx")),
        (
            "status without current_provider",
            set(dt(), "constraints.status", json!("5xx")),
        ),
        (
            "current_provider without status",
            set(dt(), "constraints.current_provider", json!("openai")),
        ),
        (
            "status of another type",
            set(
                failed_call(dt(), "openai", "x"),
                "constraints.status",
                json!(["5xx"]),
            ),
        ),
    ] {
        assert_eq!(reason(&send(&router, &request)), "weighted", "{name}");
    }
}

/// A fallback target outside the provider list: figures from the context, else 0.
#[test]
fn fallback_target_figures_come_from_the_context() {
    let router = router();
    let request = failed_call(dt(), "openai", "rate_limited");
    let reply = send(&router, &request);
    assert_eq!(provider(&reply), "local_llm");
    assert_eq!(reply["decision"]["expected_latency_ms"], 0);
    assert_eq!(reply["decision"]["expected_cost"], 0);
    let reply = send(
        &router,
        &set(request, "constraints.expected_latency_ms", json!(300)),
    );
    assert_eq!(reply["decision"]["expected_latency_ms"], 300);
    // A target that is in the provider list takes the policy's figures.
    let reply = send(
        &router,
        &set(
            failed_call(dt(), "openai", "5xx"),
            "metadata.retry_attempt",
            json!(2),
        ),
    );
    assert_eq!(
        (
            &reply["decision"]["expected_latency_ms"],
            &reply["decision"]["expected_cost"]
        ),
        (&json!(920), &json!(0.015))
    );
}

/// Both `when` forms: key → list ("one of") or scalar (equality), and the operator forms with
/// `{"var": ...}` paths; every clause must hold; a missing key never matches; rules apply in
/// order.
#[test]
fn when_forms() {
    let router = router();
    upsert(
        &router,
        "acme",
        "forms",
        json!({
            "providers": [{"name": "main", "weight": 100}],
            "fallbacks": [
                {"when": {"status": "timeout", "region": "eu"}, "to": "scalar_eu"},
                {"when": {"status": ["busy", "slow"], "tier": ["gold"]}, "to": "list_gold"},
                {"when": {"==": [{"var": "status"}, "overload"]}, "to": "op_eq"},
                {"when": {"in": [{"var": "status"}, ["a", "b"]]}, "to": "op_in"},
                {"when": {">": [{"var": "error.code"}, 499]}, "to": "op_gt_nested"},
                {"when": {"<=": [{"var": "attempts"}, 1.5], "status": "flaky"}, "to": "op_le"},
                {"when": {"!=": [{"var": "tier"}, "gold"], "status": ["busy"]}, "to": "op_ne"},
                {"when": {}, "to": "catch_all"}
            ]
        }),
    );
    let call = |status: &str, extra: Value| {
        let mut request = failed_call(set(base(), "policy_id", json!("forms")), "main", status);
        for (k, v) in extra.as_object().expect("object") {
            request = set(request, &format!("constraints.{k}"), v.clone());
        }
        let reply = send(&router, &request);
        assert_eq!(reason(&reply), "fallback", "{reply}");
        provider(&reply).to_owned()
    };
    let rows = [
        (
            "scalar: both keys equal",
            "timeout",
            json!({"region": "eu"}),
            "scalar_eu",
        ),
        (
            "scalar: one key differs",
            "timeout",
            json!({"region": "us"}),
            "catch_all",
        ),
        ("scalar: a key missing", "timeout", json!({}), "catch_all"),
        ("list: one of", "slow", json!({"tier": "gold"}), "list_gold"),
        (
            "list: not one of",
            "slow",
            json!({"tier": "silver"}),
            "catch_all",
        ),
        ("==", "overload", json!({}), "op_eq"),
        ("in", "b", json!({}), "op_in"),
        (
            "> on a nested path",
            "x",
            json!({"error": {"code": 503}}),
            "op_gt_nested",
        ),
        (
            "> not greater",
            "x",
            json!({"error": {"code": 404}}),
            "catch_all",
        ),
        (
            "> on a missing path",
            "x",
            json!({"error": {}}),
            "catch_all",
        ),
        ("<= with a float", "flaky", json!({"attempts": 1}), "op_le"),
        ("<= over", "flaky", json!({"attempts": 2}), "catch_all"),
        ("!= holds", "busy", json!({"tier": "silver"}), "op_ne"),
        (
            "!= with the var missing never matches",
            "busy",
            json!({}),
            "catch_all",
        ),
        (
            "earlier rule wins",
            "busy",
            json!({"tier": "gold"}),
            "list_gold",
        ),
    ];
    for (name, status, extra, expected) in rows {
        assert_eq!(call(status, extra), expected, "{name}");
    }
}

/// `retry_attempt` is readable by `when` operators (default_tenant has none; acme has
/// `{">=": [{"var": "retry_attempt"}, 3]}` → local_llm).
#[test]
fn operator_rule_on_retry_attempt() {
    let router = router();
    let request = |attempt: u64| {
        set(
            failed_call(base(), "openai", "4xx"),
            "metadata.retry_attempt",
            json!(attempt),
        )
    };
    assert_eq!(reason(&send(&router, &request(2))), "weighted");
    let reply = send(&router, &request(3));
    assert_eq!(
        (provider(&reply), reason(&reply)),
        ("local_llm", "fallback")
    );
    assert_eq!(reply["decision"]["expected_latency_ms"], 300);
    // Not after the retries of the first rule.
    let reply = send(
        &router,
        &set(
            failed_call(base(), "openai", "5xx"),
            "metadata.retry_attempt",
            json!(0),
        ),
    );
    assert_eq!((provider(&reply), reason(&reply)), ("openai", "retry"));
}

/// Rules also apply when there is nothing to draw from (all weights 0), before the legacy
/// fallback.
#[test]
fn fallback_rules_when_nothing_can_be_drawn() {
    let router = router();
    upsert(
        &router,
        "acme",
        "drained",
        json!({"providers": [{"name": "a", "weight": 0}],
               "fallbacks": [{"when": {"region": "eu"}, "to": "eu_spare"},
                             {"when": {}, "retry": 3, "to": "spare"}],
               "fallback": {"provider": "legacy"}}),
    );
    let request = set(base(), "policy_id", json!("drained"));
    let reply = send(&router, &request);
    assert_eq!((provider(&reply), reason(&reply)), ("spare", "fallback"));
    assert_eq!(reply["decision"]["priority"], 25);
    let reply = send(
        &router,
        &set(request.clone(), "constraints.region", json!("eu")),
    );
    assert_eq!(provider(&reply), "eu_spare");
    // With a current provider the rule's retries apply here too.
    let reply = send(
        &router,
        &set(request, "constraints.current_provider", json!("a")),
    );
    assert_eq!((provider(&reply), reason(&reply)), ("a", "retry"));
}

// ---- legacy forms ------------------------------------------------------------------------

/// globex: `{"weights": {"openai": 100}, "fallback": {"provider": "local_llm", ...}}`.
#[test]
fn legacy_weights_map() {
    let router = router();
    for seed in 0..20 {
        let reply = send_rng(&router, &base_for("globex"), NOW, &mut rng(seed));
        assert_eq!((provider(&reply), reason(&reply)), ("openai", "weighted"));
        assert_eq!(reply["decision"]["expected_latency_ms"], 0);
    }
    upsert(
        &router,
        "acme",
        "legacy_split",
        json!({"weights": {"a": 25, "b": 75}}),
    );
    let split = split(
        &router,
        &set(base(), "policy_id", json!("legacy_split")),
        20_000,
    );
    assert!((split["a"] - 0.25).abs() < 0.015, "{split:?}");
}

/// The legacy `fallback.provider` is the last resort, when its `conditions` (statuses, as
/// `when.status`) match the request's context; without conditions it always applies.
#[test]
fn legacy_fallback_provider() {
    let router = router();
    upsert(
        &router,
        "acme",
        "legacy",
        json!({"weights": {"a": 0},
               "fallback": {"provider": "lf", "conditions": ["timeout"]}}),
    );
    let legacy = set(base(), "policy_id", json!("legacy"));
    let reply = send(&router, &legacy);
    assert_eq!(
        code(&reply),
        "decision_failed",
        "no status: the conditions do not match"
    );
    let reply = send(
        &router,
        &set(legacy.clone(), "constraints.status", json!("5xx")),
    );
    assert_eq!(code(&reply), "decision_failed", "another status");
    let reply = send(
        &router,
        &set(legacy, "constraints.status", json!("timeout")),
    );
    assert_eq!((provider(&reply), reason(&reply)), ("lf", "fallback"));
    upsert(
        &router,
        "acme",
        "legacy_any",
        json!({"weights": {"a": 0}, "fallback": {"provider": "lf"}}),
    );
    let reply = send(&router, &set(base(), "policy_id", json!("legacy_any")));
    assert_eq!((provider(&reply), reason(&reply)), ("lf", "fallback"));
    assert_eq!(reply["decision"]["priority"], 25);
    assert_eq!(reply["decision"]["metadata"], json!({"tenant_id": "acme"}));
    // globex with its only provider failing: the legacy form has no rules, so no retry.
    let reply = send(
        &router,
        &failed_call(base_for("globex"), "openai", "timeout"),
    );
    assert_eq!((provider(&reply), reason(&reply)), ("openai", "weighted"));
}
