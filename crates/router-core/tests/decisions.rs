//! CONTRACT §4.1–§4.3 through `Router::handle` with injected time and seeded randomness:
//! sticky sessions, the weighted draw, fallback rules, the legacy forms, idempotent replay
//! (§2) and policy reload.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use router_core::{Outcome, Reason, Router, RouterSettings};
use serde_json::{json, Value};

/// `default_tenant/default` (openai 70 / anthropic 30, sticky on `user_id` for 10 minutes).
fn dt() -> Value {
    base_for("default_tenant")
}

fn user(request: Value, id: &str) -> Value {
    set(request, "metadata.user_id", json!(id))
}

const TEN_MINUTES: u64 = 10 * 60 * 1000;

// ---- sticky ------------------------------------------------------------------------------

#[test]
fn sticky_by_user_id() {
    let router = router();
    let first = send_rng(&router, &user(dt(), "u-1"), NOW, &mut rng(1));
    assert_eq!(reason(&first), "weighted");
    assert_eq!(first["decision"]["priority"], 50);
    assert_eq!(
        first["decision"]["metadata"],
        json!({"tenant_id": "default_tenant", "sticky_key": "user_id"}),
        "the key a mapping was recorded under"
    );
    let chosen = provider(&first).to_owned();
    assert_eq!(router.engine().sticky_sessions(NOW), 1);
    for seed in 2..52 {
        let reply = send_rng(&router, &user(dt(), "u-1"), NOW + seed, &mut rng(seed));
        assert_eq!(provider(&reply), chosen, "seed {seed}");
        assert_eq!(reason(&reply), "sticky");
        assert_eq!(reply["decision"]["priority"], 100);
        assert_eq!(
            reply["decision"]["metadata"],
            json!({"tenant_id": "default_tenant", "sticky_key": "user_id"})
        );
    }
    // The session key may come from constraints too; numbers are session values.
    let in_constraints = set(dt(), "constraints.user_id", json!("u-1"));
    assert_eq!(reason(&send(&router, &in_constraints)), "sticky");
    let numeric = set(dt(), "metadata.user_id", json!(42));
    assert_eq!(reason(&send(&router, &numeric)), "weighted");
    assert_eq!(reason(&send(&router, &numeric)), "sticky");
    // Other users get their own mapping; across many users both providers appear.
    let mut by_provider: HashMap<String, usize> = HashMap::new();
    for i in 0..200 {
        let reply = send_rng(&router, &user(dt(), &format!("v-{i}")), NOW, &mut rng(i));
        assert_eq!(reason(&reply), "weighted");
        *by_provider.entry(provider(&reply).to_owned()).or_default() += 1;
    }
    assert_eq!(by_provider.len(), 2, "{by_provider:?}");
}

/// No usable session value, no sticky: no mapping and no `sticky_key`.
#[test]
fn sticky_needs_a_session_value() {
    let router = router();
    for value in [
        json!(""),
        json!(null),
        json!(true),
        json!(["u-1"]),
        json!({"id": 1}),
    ] {
        for _ in 0..3 {
            let reply = send(&router, &set(dt(), "metadata.user_id", value.clone()));
            assert_eq!(reason(&reply), "weighted", "{value}");
            assert_eq!(
                reply["decision"]["metadata"],
                json!({"tenant_id": "default_tenant"})
            );
        }
    }
    assert_eq!(router.engine().sticky_sessions(NOW), 0);
    // globex has no sticky section: user ids are ignored.
    let reply = send(&router, &user(base_for("globex"), "u-1"));
    assert_eq!(
        reply["decision"]["metadata"],
        json!({"tenant_id": "globex"})
    );
    assert_eq!(router.engine().sticky_sessions(NOW), 0);
}

/// Sessions are per tenant: the same user id in another tenant starts afresh.
#[test]
fn sticky_sessions_are_per_tenant() {
    let router = router();
    assert_eq!(reason(&send(&router, &user(dt(), "u-1"))), "weighted");
    assert_eq!(reason(&send(&router, &user(dt(), "u-1"))), "sticky");
    assert_eq!(reason(&send(&router, &user(base(), "u-1"))), "weighted");
    assert_eq!(reason(&send(&router, &user(base(), "u-1"))), "sticky");
}

/// A mapping lives for the policy's TTL from when it was recorded; sticky hits do not extend
/// it.
#[test]
fn sticky_mapping_expires_after_the_ttl() {
    let router = router();
    let t0 = NOW;
    let at = |now: u64, seed: u64| send_rng(&router, &user(dt(), "u-1"), now, &mut rng(seed));
    let first = at(t0, 1);
    assert_eq!(reason(&first), "weighted");
    assert_eq!(reason(&at(t0 + TEN_MINUTES / 2, 2)), "sticky");
    assert_eq!(reason(&at(t0 + TEN_MINUTES - 1, 3)), "sticky");
    assert_eq!(
        reason(&at(t0 + TEN_MINUTES, 4)),
        "weighted",
        "expired at exactly the TTL"
    );
    // The new draw is recorded afresh.
    assert_eq!(reason(&at(t0 + TEN_MINUTES + 1, 5)), "sticky");
    assert_eq!(reason(&at(t0 + 2 * TEN_MINUTES - 1, 6)), "sticky");
    assert_eq!(reason(&at(t0 + 2 * TEN_MINUTES, 7)), "weighted");
}

/// The store is bounded; when full, the oldest mapping goes first.
#[test]
fn sticky_store_is_bounded_and_evicts_the_oldest() {
    let router = router_with(RouterSettings {
        sticky_capacity: 2,
        ..RouterSettings::default()
    });
    for (i, id) in ["u-1", "u-2", "u-3"].into_iter().enumerate() {
        assert_eq!(
            reason(&send_at(&router, &user(dt(), id), NOW + i as u64)),
            "weighted"
        );
    }
    assert_eq!(router.engine().sticky_sessions(NOW), 2);
    assert_eq!(reason(&send(&router, &user(dt(), "u-3"))), "sticky");
    assert_eq!(reason(&send(&router, &user(dt(), "u-2"))), "sticky");
    assert_eq!(
        reason(&send(&router, &user(dt(), "u-1"))),
        "weighted",
        "u-1 was the oldest and was evicted"
    );
    // Recording u-1 again evicted u-2, now the oldest.
    assert_eq!(reason(&send(&router, &user(dt(), "u-3"))), "sticky");
    assert_eq!(reason(&send(&router, &user(dt(), "u-2"))), "weighted");
    assert_eq!(router.engine().sticky_sessions(NOW), 2);
}

/// A mapping to a provider the policy no longer weights (or lists) is not used.
#[test]
fn sticky_mapping_to_a_provider_without_weight_is_skipped() {
    let router = router();
    upsert(
        &router,
        "acme",
        "two",
        json!({"providers": [{"name": "a", "weight": 100}, {"name": "b", "weight": 0}],
               "sticky": {"session_key": "user_id", "ttl_seconds": 60}}),
    );
    let request = user(set(base(), "policy_id", json!("two")), "u-1");
    assert_eq!(provider(&send(&router, &request)), "a");
    assert_eq!(reason(&send(&router, &request)), "sticky");
    upsert(
        &router,
        "acme",
        "two",
        json!({"providers": [{"name": "a", "weight": 0}, {"name": "b", "weight": 100}],
               "sticky": {"session_key": "user_id", "ttl_seconds": 60}}),
    );
    let reply = send(&router, &request);
    assert_eq!((provider(&reply), reason(&reply)), ("b", "weighted"));
    assert_eq!(reason(&send(&router, &request)), "sticky");
    upsert(
        &router,
        "acme",
        "two",
        json!({"providers": [{"name": "c", "weight": 100}],
               "sticky": {"session_key": "user_id", "ttl_seconds": 60}}),
    );
    let reply = send(&router, &request);
    assert_eq!((provider(&reply), reason(&reply)), ("c", "weighted"));
}

/// A custom `session_key` is read from the context.
#[test]
fn sticky_with_a_custom_session_key() {
    let router = router();
    upsert(
        &router,
        "acme",
        "by_session",
        json!({"providers": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
               "sticky": {"enabled": true, "session_key": "session", "ttl": "1h"}}),
    );
    let request = set(
        set(base(), "policy_id", json!("by_session")),
        "constraints.session",
        json!("s-9"),
    );
    let first = send_rng(&router, &request, NOW, &mut rng(1));
    for seed in 0..20 {
        let reply = send_rng(&router, &request, NOW + 3_599_999, &mut rng(seed));
        assert_eq!(provider(&reply), provider(&first));
        assert_eq!(reply["decision"]["metadata"]["sticky_key"], "session");
    }
    let reply = send_rng(&router, &request, NOW + 3_600_000, &mut rng(1));
    assert_eq!(reason(&reply), "weighted");
    // `user_id` means nothing to this policy.
    let other = set(
        set(base(), "policy_id", json!("by_session")),
        "metadata.user_id",
        json!("u"),
    );
    assert_eq!(
        send(&router, &other)["decision"]["metadata"],
        json!({"tenant_id": "acme"})
    );
}

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

// ---- idempotency -------------------------------------------------------------------------

fn keyed(request: Value, key: &str) -> Value {
    set(request, "idempotency_key", json!(key))
}

#[test]
fn idempotent_replay() {
    let router = router();
    let first_handled = router.handle(&bytes(&keyed(base(), "k-1")), None, NOW, &mut rng(1));
    let first = parse(&first_handled);
    assert!(first.get("replayed").is_none(), "{first}");
    for seed in 2..30 {
        let again = keyed(set(base(), "request_id", json!(format!("r-{seed}"))), "k-1");
        let handled = router.handle(&bytes(&again), None, NOW + seed, &mut rng(seed));
        let reply = parse(&handled);
        assert_eq!(reply["replayed"], true);
        assert_eq!(reply["decision"], first["decision"], "the same decision");
        assert_eq!(reply["ok"], true);
        assert_eq!(
            reply["context"],
            json!({"request_id": format!("r-{seed}")}),
            "the context is the repeat's"
        );
        assert!(matches!(
            handled.outcome,
            Outcome::Decided { replayed: true, .. }
        ));
    }
    // A different key, or the same key for another tenant: a fresh decision.
    let other_key = send(&router, &keyed(base(), "k-2"));
    assert!(other_key.get("replayed").is_none());
    upsert(
        &router,
        "globex",
        "default",
        json!({"providers": [{"name": "g", "weight": 100}]}),
    );
    let other_tenant = send(&router, &keyed(base_for("globex"), "k-1"));
    assert!(other_tenant.get("replayed").is_none(), "{other_tenant}");
    assert_eq!(provider(&other_tenant), "g");
    // Replay is by (tenant, key) alone: a repeat naming another policy or carrying a past
    // deadline still gets the first decision.
    let reply = send(
        &router,
        &set(keyed(base(), "k-1"), "policy_id", json!("nope")),
    );
    assert_eq!(reply["replayed"], true);
    let reply = send(
        &router,
        &set(keyed(base(), "k-1"), "constraints.deadline", json!(0)),
    );
    assert_eq!(reply["replayed"], true);
    // But the repeat is still validated and authorised first.
    let reply = send(&router, &del(keyed(base(), "k-1"), "task.type"));
    assert_eq!(code(&reply), "invalid_request");
}

/// Replays last `idempotency_ttl_ms` from the first decision.
#[test]
fn idempotent_replay_expires() {
    let ttl = 10 * 60 * 1000;
    let router = router();
    assert_eq!(RouterSettings::default().idempotency_ttl_ms, ttl);
    let request = keyed(user(dt(), "u-1"), "k-1");
    let first = send_at(&router, &request, NOW);
    assert_eq!(reason(&first), "weighted");
    assert_eq!(send_at(&router, &request, NOW + ttl - 1)["replayed"], true);
    let fresh = send_at(&router, &request, NOW + ttl);
    assert!(fresh.get("replayed").is_none(), "{fresh}");
    assert_eq!(reason(&fresh), "weighted", "the sticky mapping expired too");
    assert_eq!(send_at(&router, &request, NOW + ttl + 1)["replayed"], true);

    let short = router_with(RouterSettings {
        idempotency_ttl_ms: 1_000,
        ..RouterSettings::default()
    });
    let request = keyed(base(), "k-1");
    send_at(&short, &request, NOW);
    assert_eq!(send_at(&short, &request, NOW + 999)["replayed"], true);
    assert!(send_at(&short, &request, NOW + 1_000)
        .get("replayed")
        .is_none());
}

/// Only decisions are remembered: a rejected first attempt does not block a later one.
#[test]
fn rejections_are_not_replayed() {
    let router = router();
    let request = set(keyed(base(), "k-1"), "policy_id", json!("later"));
    assert_eq!(code(&send(&router, &request)), "policy_not_found");
    upsert(
        &router,
        "acme",
        "later",
        json!({"providers": [{"name": "l", "weight": 100}]}),
    );
    let reply = send(&router, &request);
    assert!(reply.get("replayed").is_none());
    assert_eq!(provider(&reply), "l");
    assert_eq!(send(&router, &request)["replayed"], true);
}

/// The key store is bounded; the oldest key goes first.
#[test]
fn idempotency_store_is_bounded() {
    let router = router_with(RouterSettings {
        idempotency_capacity: 2,
        ..RouterSettings::default()
    });
    for key in ["k-1", "k-2", "k-3"] {
        send(&router, &keyed(base(), key));
    }
    assert_eq!(send(&router, &keyed(base(), "k-3"))["replayed"], true);
    assert_eq!(send(&router, &keyed(base(), "k-2"))["replayed"], true);
    assert!(send(&router, &keyed(base(), "k-1"))
        .get("replayed")
        .is_none());
}

// ---- reload ------------------------------------------------------------------------------

fn write(dir: &Path, tenant: &str, policy: &str, body: &str) {
    let tenant_dir = dir.join(tenant);
    std::fs::create_dir_all(&tenant_dir).expect("create tenant dir");
    std::fs::write(tenant_dir.join(format!("{policy}.json")), body).expect("write policy");
}

const ONE: &str = r#"{"providers": [{"name": "one", "weight": 100}]}"#;
const TWO: &str = r#"{"providers": [{"name": "two", "weight": 100}]}"#;

/// A reload keeps the served policy when its new file is invalid, names the file and the
/// reason, and still loads everything else.
#[test]
fn reload_keeps_the_old_policy_on_a_bad_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "acme", "default", ONE);
    let router = Router::new(RouterSettings::default());
    let report = router.policies().load_dir(dir.path()).expect("load");
    assert_eq!((report.loaded, report.errors.len()), (1, 0));
    assert_eq!(provider(&send(&router, &base())), "one");

    for (bad, reason_part) in [
        (
            r#"{"providers": [{"name": "two", "weight": -1}]}"#,
            "providers[0].weight",
        ),
        (
            r#"{"providers": [{"name": "Two", "weight": 1}]}"#,
            "providers[0].name",
        ),
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        (
            r#"{"providers": [], "sticky": {"ttl": "10d"}}"#,
            "sticky.ttl",
        ),
        (
            r#"{"fallbacks": [{"to": "x", "retry": 11}]}"#,
            "fallbacks[0].retry",
        ),
    ] {
        write(dir.path(), "acme", "default", bad);
        write(dir.path(), "globex", "default", TWO);
        let report = router.policies().load_dir(dir.path()).expect("reload");
        assert_eq!(report.errors.len(), 1, "{bad}");
        let error = &report.errors[0];
        assert!(error.path.ends_with("acme/default.json"), "{error}");
        assert!(error.reason.contains(reason_part), "{bad}: {error}");
        assert_eq!(
            report.kept_previous,
            vec![("acme".to_owned(), "default".to_owned())]
        );
        assert_eq!(report.loaded, 2);
        assert_eq!(provider(&send(&router, &base())), "one", "old policy kept");
        assert_eq!(provider(&send(&router, &base_for("globex"))), "two");
    }

    write(dir.path(), "acme", "default", TWO);
    let report = router.policies().load_dir(dir.path()).expect("reload");
    assert!(report.errors.is_empty() && report.kept_previous.is_empty());
    assert_eq!(
        provider(&send(&router, &base())),
        "two",
        "new policy served"
    );

    // A bad file with no previous version is reported and not served.
    write(dir.path(), "acme", "extra", "{}}");
    let report = router.policies().load_dir(dir.path()).expect("reload");
    assert_eq!(report.errors.len(), 1);
    assert!(report.kept_previous.is_empty());
    assert_eq!(
        code(&send(&router, &set(base(), "policy_id", json!("extra")))),
        "policy_not_found"
    );

    // A removed file is dropped; a missing directory changes nothing.
    std::fs::remove_file(dir.path().join("globex/default.json")).expect("remove");
    router.policies().load_dir(dir.path()).expect("reload");
    assert_eq!(
        code(&send(&router, &base_for("globex"))),
        "policy_not_found"
    );
    assert!(router
        .policies()
        .load_dir(&dir.path().join("missing"))
        .is_err());
    assert_eq!(provider(&send(&router, &base())), "two");
}

/// Reloading the same policies keeps sticky sessions (they live in the engine, not the
/// policy).
#[test]
fn reload_keeps_sticky_sessions() {
    let router = router();
    let first = send(&router, &user(dt(), "u-1"));
    router.policies().load_dir(&policy_dir()).expect("reload");
    let again = send(&router, &user(dt(), "u-1"));
    assert_eq!(reason(&again), "sticky");
    assert_eq!(provider(&again), provider(&first));
    assert_eq!(Reason::Sticky.as_str(), reason(&again));
}
