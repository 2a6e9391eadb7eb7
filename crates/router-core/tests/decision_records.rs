//! Decision records: a sampled decision carries what it weighed (every provider with its
//! weight, tier, breaker, cooldown and exclusion), its choice and its plan; an unsampled one
//! carries nothing.

mod common;

use common::*;
use router_core::{BreakerState, DecisionRecord, Router, RouterSettings};
use serde_json::{json, Value};

/// acme's `records`: openai and anthropic in the first tier, local_llm and mistral behind.
fn policy() -> Value {
    json!({
        "version": "2.3",
        "providers": [
            {"name": "openai", "weight": 60},
            {"name": "anthropic", "weight": 40},
            {"name": "local_llm", "weight": 10, "priority": 2},
            {"name": "mistral", "weight": 5, "priority": 3}
        ],
        "sticky": {"enabled": true, "session_key": "user_id", "ttl": "10m"},
        "circuit_breaker": {"enabled": true, "failure_threshold": 5, "success_threshold": 2,
                            "timeout_ms": 60000, "half_open_max_calls": 1}
    })
}

fn recording(ratio: f64) -> Router {
    let router = router_with(RouterSettings::default()).with_decision_records(ratio);
    upsert(&router, "acme", "records", policy());
    router
}

fn report(router: &Router, body: Value) {
    router
        .feedback(&bytes(&body), NOW)
        .expect("feedback recorded");
}

fn decide(router: &Router, request: &Value, now: u64) -> (Value, Option<Box<DecisionRecord>>) {
    let handled = router.handle(&bytes(request), None, now, &mut rng(5));
    (parse(&handled), handled.record)
}

#[test]
fn a_record_names_the_open_breaker_the_cooldown_and_the_plan() {
    let router = recording(1.0);
    for _ in 0..5 {
        report(
            &router,
            json!({"tenant_id": "acme", "policy_id": "records", "provider_id": "openai",
                   "outcome": "failure"}),
        );
    }
    report(
        &router,
        json!({"tenant_id": "acme", "policy_id": "records", "provider_id": "anthropic",
               "outcome": "rate_limited", "retry_after_s": 30}),
    );
    let request = set(
        user(acme_request("records"), "u-42"),
        "constraints.max_latency_ms",
        json!(900),
    );
    let (reply, record) = decide(&router, &request, NOW + 1);
    let record = record.expect("every decision is recorded at ratio 1");
    assert_eq!(reply["decision"]["provider_id"], "local_llm", "{reply}");
    assert_eq!(record.provider_id, "local_llm");
    assert_eq!(record.decision_id, reply["decision"]["decision_id"]);
    assert_eq!(record.policy_version, "2.3");
    assert_eq!(record.plan, ["mistral"]);
    assert_eq!(
        json!(record.plan),
        reply["decision"]["fallbacks"],
        "the plan is the reply's"
    );
    let seen = |name: &str| {
        record
            .candidates
            .iter()
            .find(|c| c.provider_id == name)
            .unwrap_or_else(|| panic!("{name} in the record"))
            .clone()
    };
    let openai = seen("openai");
    assert_eq!(openai.breaker, BreakerState::Open);
    assert_eq!(openai.excluded.as_deref(), Some("circuit_breaker"));
    assert!(openai.breaker_admits_in_ms > 0);
    let anthropic = seen("anthropic");
    assert_eq!(anthropic.excluded.as_deref(), Some("cooldown"));
    assert_eq!(anthropic.cooldown_until_ms, Some(NOW + 30_000));
    let local = seen("local_llm");
    assert_eq!(local.excluded, None);
    assert!(local.best_tier);
    assert_eq!(record.inputs.get("max_latency_ms"), Some(&json!(900)));
    let sticky = record.sticky.as_ref().expect("the session key is recorded");
    assert_eq!(sticky.session_key, "user_id");
    assert!(
        !serde_json::to_string(&*record)
            .expect("a record is JSON")
            .contains("u-42"),
        "the session value itself is not kept"
    );
    let back: DecisionRecord =
        serde_json::from_str(&serde_json::to_string(&*record).expect("json")).expect("read back");
    assert_eq!(back, *record);
}

#[test]
fn records_are_sampled_at_the_ratio_and_off_by_default() {
    let request = acme_request("records");
    let off = recording(0.0);
    assert!((0..200).all(|i| decide(&off, &request, NOW + i).1.is_none()));
    let half = recording(0.5);
    let mut random = rng(11);
    let recorded = (0..2000)
        .filter(|i| {
            let handled = half.handle(&bytes(&request), None, NOW + i, &mut random);
            handled.record.is_some()
        })
        .count();
    assert!(
        (850..1150).contains(&recorded),
        "about half of 2000: {recorded}"
    );
}

#[test]
fn a_replayed_decision_is_not_recorded_again() {
    let router = recording(1.0);
    let request = set(acme_request("records"), "idempotency_key", json!("k-1"));
    assert!(decide(&router, &request, NOW).1.is_some());
    let (reply, record) = decide(&router, &request, NOW + 1);
    assert_eq!(reply["ok"], true);
    assert!(record.is_none());
}

#[test]
fn an_explained_decision_carries_its_record_without_keeping_it() {
    let router = recording(0.0);
    let handled = router.handle_explained(
        &bytes(&acme_request("records")),
        None,
        None,
        NOW,
        &mut rng(3),
        false,
    );
    let record = handled.record.expect("asked for");
    assert!(!handled.keep_record, "not sampled at ratio 0");
    assert_eq!(record.candidates.len(), 4);
    let kept = recording(1.0).handle_explained(
        &bytes(&acme_request("records")),
        None,
        None,
        NOW,
        &mut rng(3),
        false,
    );
    assert!(kept.keep_record && kept.record.is_some());
}
