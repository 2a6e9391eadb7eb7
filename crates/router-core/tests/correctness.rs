//! Feedback routing, decision ids, probes and idempotency under concurrency: the rules
//! CONTRACT §4.4 leaves to the router and docs/OPERATIONS.md writes down.

mod common;

use std::collections::HashMap;

use common::*;
use router_core::policy::BreakerConfig;
use router_core::{BreakerState, FeedbackEffect, Router};
use serde_json::{json, Value};

/// acme with two policies naming `a`, each with its own breaker settings.
fn two_policies() -> Router {
    let router = router();
    upsert(
        &router,
        "acme",
        "fast",
        json!({"providers": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
               "circuit_breaker": {"failure_threshold": 2, "timeout_ms": 1000}}),
    );
    upsert(
        &router,
        "acme",
        "slow",
        json!({"providers": [{"name": "a", "weight": 50}, {"name": "c", "weight": 50}],
               "circuit_breaker": {"failure_threshold": 4, "timeout_ms": 1000}}),
    );
    router
}

fn config(router: &Router, policy: &str) -> BreakerConfig {
    router
        .policies()
        .get("acme", policy)
        .and_then(|p| p.circuit_breaker.clone())
        .expect("breaker configured")
}

fn state(router: &Router, policy: &str, provider: &str, now: u64) -> BreakerState {
    router
        .engine()
        .breakers()
        .state(("acme", policy, provider), &config(router, policy), now)
}

fn report(router: &Router, body: Value, now: u64) -> FeedbackEffect {
    router.feedback(&bytes(&body), now).expect("applied")
}

/// Without policy_id, feedback feeds every policy of the tenant that lists the provider, each
/// under its own settings; before, it fed only `default` (here: no breaker at all).
#[test]
fn feedback_without_a_policy_feeds_every_policy_that_lists_the_provider() {
    let router = two_policies();
    for i in 0..2 {
        let effect = report(
            &router,
            json!({"tenant_id": "acme", "provider_id": "a", "outcome": "failure"}),
            NOW + i,
        );
        let FeedbackEffect::Recorded(applied) = effect else {
            panic!("not recorded: {effect:?}");
        };
        let policies: Vec<&str> = applied.iter().map(|a| a.policy_id.as_str()).collect();
        assert_eq!(policies, ["fast", "slow"], "acme/default does not list a");
    }
    assert_eq!(state(&router, "fast", "a", NOW + 2), BreakerState::Open);
    assert_eq!(
        state(&router, "slow", "a", NOW + 2),
        BreakerState::Closed,
        "its own threshold (4) is not reached: states are per policy"
    );
    // `b` is only in `fast`: only `fast` is fed.
    let effect = report(
        &router,
        json!({"tenant_id": "acme", "provider_id": "b", "outcome": "failure"}),
        NOW,
    );
    let FeedbackEffect::Recorded(applied) = effect else {
        panic!("not recorded");
    };
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].policy_id, "fast");
}

/// Feedback with the reply's decision_id feeds the policy of that decision, also when another
/// router (another process of the fleet) made it.
#[test]
fn a_decision_id_ties_feedback_to_its_policy_across_routers() {
    let deciding = two_policies();
    let other = two_policies();
    let reply = send(&deciding, &set(base(), "policy_id", json!("slow")));
    assert_eq!(reply["ok"], true, "{reply}");
    let decision_id = reply["decision"]["decision_id"]
        .as_str()
        .expect("decision_id in the reply")
        .to_owned();
    for i in 0..4 {
        let effect = report(
            &other,
            json!({"tenant_id": "acme", "provider_id": "a", "outcome": "failure",
                   "decision_id": decision_id}),
            NOW + i,
        );
        let FeedbackEffect::Recorded(applied) = effect else {
            panic!("not recorded");
        };
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].policy_id, "slow");
    }
    assert_eq!(state(&other, "slow", "a", NOW + 5), BreakerState::Open);
    assert_eq!(state(&other, "fast", "a", NOW + 5), BreakerState::Closed);
    // A decision id that does not fit is refused with the reason.
    for (body, needle) in [
        (
            json!({"tenant_id": "acme", "provider_id": "a", "outcome": "failure",
                   "decision_id": "nonsense"}),
            "decision_id",
        ),
        (
            json!({"tenant_id": "acme", "provider_id": "a", "outcome": "failure",
                   "decision_id": decision_id, "policy_id": "fast"}),
            "differs",
        ),
    ] {
        let err = other.feedback(&bytes(&body), NOW).expect_err("refused");
        assert!(err.to_string().contains(needle), "{err}");
    }
}

/// Decisions from many threads while half-open: never more probes than
/// `half_open_max_calls`, however the threads interleave.
#[test]
fn concurrent_decisions_send_at_most_the_probe_limit() {
    for round in 0..20u64 {
        let router = router();
        upsert(
            &router,
            "acme",
            "probe",
            json!({"providers": [{"name": "a", "weight": 99}, {"name": "b", "weight": 1}],
                   "circuit_breaker": {"failure_threshold": 1, "timeout_ms": 1000,
                                       "half_open_max_calls": 2}}),
        );
        router
            .feedback(
                &bytes(&json!({"tenant_id": "acme", "policy_id": "probe",
                               "provider_id": "a", "outcome": "failure"})),
                NOW,
            )
            .expect("recorded");
        let request = set(base(), "policy_id", json!("probe"));
        let half_open = NOW + 1_000;
        let probes: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (router, request) = (&router, &request);
                    s.spawn(move || {
                        let mut rng = rng(round * 100 + t);
                        (0..50)
                            .filter(|_| {
                                provider(&send_rng(router, request, half_open, &mut rng)) == "a"
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        assert_eq!(probes, 2, "round {round}: probes sent");
    }
}

/// Every provider blocked by an open breaker: `decision_failed` says when the first one
/// half-opens.
#[test]
fn decision_failed_says_when_a_breaker_half_opens() {
    let router = router();
    upsert(
        &router,
        "acme",
        "closed_shop",
        json!({"providers": [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}],
               "circuit_breaker": {"failure_threshold": 1, "timeout_ms": 10000}}),
    );
    for (provider, at) in [("a", NOW), ("b", NOW + 4_000)] {
        router
            .feedback(
                &bytes(&json!({"tenant_id": "acme", "policy_id": "closed_shop",
                               "provider_id": provider, "outcome": "failure"})),
                at,
            )
            .expect("recorded");
    }
    let reply = send_at(
        &router,
        &set(base(), "policy_id", json!("closed_shop")),
        NOW + 5_000,
    );
    assert_eq!(code(&reply), "decision_failed", "{reply}");
    assert_eq!(
        reply["error"]["details"]["retry_after_ms"], 5_000,
        "a half-opens 10 s after it opened: {reply}"
    );
}

/// Repeats of one idempotency key from many threads at once: one decision, replayed to all
/// the others.
#[test]
fn concurrent_repeats_of_a_key_decide_once() {
    for round in 0..20u64 {
        let router = router();
        let request = set(base(), "idempotency_key", json!(format!("k-{round}")));
        let replies: Vec<Value> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (router, request) = (&router, &request);
                    s.spawn(move || send_rng(router, request, NOW, &mut rng(round * 10 + t)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Value::Null))
                .collect()
        });
        let fresh = replies
            .iter()
            .filter(|r| r.get("replayed").is_none())
            .count();
        assert_eq!(fresh, 1, "round {round}: one decision, the rest replayed");
        let mut providers: HashMap<&str, usize> = HashMap::new();
        for reply in &replies {
            *providers.entry(provider(reply)).or_default() += 1;
        }
        assert_eq!(providers.len(), 1, "round {round}: {providers:?}");
    }
}

/// On a tenant's scoped subject, a body naming another tenant gets `unauthorized`
/// (TENANT_FORBIDDEN) and no decision; the subject's own tenant decides as usual.
#[test]
fn a_scoped_request_for_another_tenant_is_refused() {
    let router = router();
    let body = bytes(&base_for("globex"));
    let refused = parse(&router.handle_scoped(&body, None, Some("acme"), 1_000, &mut rng(1)));
    assert_eq!(code(&refused), "unauthorized", "{refused}");
    assert_eq!(refused["error"]["intake_error_code"], "TENANT_FORBIDDEN");
    assert_eq!(refused["error"]["details"]["subject_tenant"], "acme");
    let own = bytes(&base_for("acme"));
    let decided = parse(&router.handle_scoped(&own, None, Some("acme"), 1_000, &mut rng(1)));
    assert_eq!(decided["ok"], true, "{decided}");
}

/// Feedback on a tenant's scoped subject naming another tenant changes no breaker.
#[test]
fn scoped_feedback_for_another_tenant_touches_no_breaker() {
    let router = two_policies();
    for _ in 0..10 {
        let err = router
            .feedback_scoped(&feedback("acme", "a", "failure"), Some("globex"), 1_000)
            .expect_err("refused");
        assert_eq!(err.code().as_str(), "unauthorized");
    }
    assert_eq!(state(&router, "fast", "a", 1_000), BreakerState::Closed);
    router
        .feedback_scoped(&feedback("acme", "a", "failure"), Some("acme"), 1_000)
        .expect("own tenant applies");
}
