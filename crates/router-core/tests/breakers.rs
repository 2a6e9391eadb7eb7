//! CONTRACT §4.4 circuit breakers, driven only through `Router::feedback(json, now)` and
//! observed through decisions (and the registry's state), with injected time.
//!
//! `default_tenant/default`: openai 70 / anthropic 30; failure_threshold 5,
//! success_threshold 2, timeout_ms 60000, half_open_max_calls 3, error_rate_threshold 0.5
//! over 60 s.

mod common;

use std::collections::HashMap;

use common::*;
use router_core::feedback::Applied;
use router_core::policy::BreakerConfig;
use router_core::{BreakerState, FeedbackEffect, FeedbackError, Router, Transition};
use serde_json::{json, Value};

use BreakerState::{Closed, HalfOpen, Open};

const TENANT: &str = "default_tenant";
const TIMEOUT: u64 = 60_000;

fn dt() -> Value {
    base_for(TENANT)
}

fn config(router: &Router, tenant: &str, policy: &str) -> BreakerConfig {
    router
        .policies()
        .get(tenant, policy)
        .expect("policy")
        .circuit_breaker
        .clone()
        .expect("breaker configured")
}

fn state(router: &Router, provider: &str, now: u64) -> BreakerState {
    let config = config(router, TENANT, "default");
    router
        .engine()
        .breakers()
        .state((TENANT, "default", provider), &config, now)
}

/// Feeds one outcome for (default_tenant, provider).
fn report(router: &Router, provider: &str, outcome: &str, now: u64) -> Option<Transition> {
    match router.feedback(&feedback(TENANT, provider, outcome), now) {
        Ok(FeedbackEffect::Recorded(applied)) if applied.len() == 1 => applied[0].transition,
        other => panic!("feedback not recorded: {other:?}"),
    }
}

/// The effect of a report applied to one policy's breaker.
fn recorded(policy: &str, transition: Option<Transition>) -> FeedbackEffect {
    FeedbackEffect::Recorded(vec![Applied {
        policy_id: policy.to_owned(),
        transition,
    }])
}

fn transition(from: BreakerState, to: BreakerState) -> Option<Transition> {
    Some(Transition { from, to })
}

/// Opens `provider` with five consecutive failures at `now`.
fn open(router: &Router, provider: &str, now: u64) {
    for i in 0..4 {
        assert_eq!(
            report(router, provider, "failure", now),
            None,
            "failure {i}"
        );
    }
    assert_eq!(
        report(router, provider, "timeout", now),
        transition(Closed, Open)
    );
}

/// Providers chosen by `n` decisions at `now`, counted.
fn decide_many(router: &Router, request: &Value, n: u64, now: u64) -> HashMap<String, u64> {
    let mut rng = rng(now);
    let mut counts = HashMap::new();
    for _ in 0..n {
        let reply = send_rng(router, request, now, &mut rng);
        *counts.entry(provider(&reply).to_owned()).or_default() += 1;
    }
    counts
}

#[test]
fn consecutive_failures_open_the_breaker() {
    let router = router();
    // A history of successes keeps the error rate low: only the consecutive count trips.
    for t in 0..10 {
        assert_eq!(report(&router, "openai", "success", NOW + t), None);
    }
    for (i, outcome) in ["failure", "timeout", "rate_limited", "failure"]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            report(&router, "openai", outcome, NOW + 10 + i as u64),
            None
        );
    }
    assert_eq!(state(&router, "openai", NOW + 14), Closed);
    assert_eq!(
        report(&router, "openai", "failure", NOW + 14),
        transition(Closed, Open),
        "5 consecutive failures, error rate 5/15"
    );
    assert_eq!(state(&router, "openai", NOW + 15), Open);
    assert_eq!(state(&router, "anthropic", NOW + 15), Closed);
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let router = router();
    for t in 0..10 {
        report(&router, "openai", "success", NOW + t);
    }
    for t in 10..14 {
        assert_eq!(report(&router, "openai", "failure", NOW + t), None);
    }
    assert_eq!(report(&router, "openai", "success", NOW + 14), None);
    for t in 15..19 {
        assert_eq!(report(&router, "openai", "failure", NOW + t), None);
    }
    assert_eq!(
        state(&router, "openai", NOW + 20),
        Closed,
        "4 + 4 failures, 8/19"
    );
}

#[test]
fn error_rate_opens_the_breaker() {
    let router = router();
    // S F S F S: 2/5 = 0.4 < 0.5; then F: 3/6 = 0.5 >= 0.5 — consecutive never above 1.
    for (i, outcome) in ["success", "failure", "success", "failure", "success"]
        .into_iter()
        .enumerate()
    {
        assert_eq!(report(&router, "openai", outcome, NOW + i as u64), None);
    }
    assert_eq!(
        report(&router, "openai", "failure", NOW + 5),
        transition(Closed, Open)
    );
}

/// The error rate is judged once the window holds `failure_threshold` outcomes.
#[test]
fn error_rate_needs_enough_outcomes() {
    let router = router();
    // F S F S: 2/4 = 0.5, but only 4 outcomes (< failure_threshold 5).
    for (i, outcome) in ["failure", "success", "failure", "success"]
        .into_iter()
        .enumerate()
    {
        assert_eq!(report(&router, "openai", outcome, NOW + i as u64), None);
    }
    assert_eq!(state(&router, "openai", NOW + 4), Closed);
}

/// Outcomes older than the 60 s window no longer count.
#[test]
fn error_rate_window_slides() {
    let router = router();
    for t in 0..4 {
        report(&router, "openai", "failure", NOW + t);
    }
    // 60 s later the four failures have left the window: S S S S F is 1/5.
    let later = NOW + 61_000;
    for t in 0..4 {
        report(&router, "openai", "success", later + t);
    }
    assert_eq!(report(&router, "openai", "failure", later + 4), None);
    assert_eq!(state(&router, "openai", later + 5), Closed);
    // Within the window the same sequence opens it: 5/9.
    let router = common::router();
    for t in 0..4 {
        report(&router, "openai", "failure", NOW + t);
    }
    for t in 0..4 {
        report(&router, "openai", "success", NOW + 1_000 + t);
    }
    assert_eq!(
        report(&router, "openai", "failure", NOW + 1_004),
        transition(Closed, Open)
    );
}

/// Open: no calls; decisions avoid the provider. Timeout: half-open, a limited number of
/// probes. Enough probe successes: closed and used again.
#[test]
fn open_half_open_closed_through_decisions() {
    let router = router();
    let t_open = NOW;
    open(&router, "openai", t_open);

    let counts = decide_many(&router, &dt(), 200, t_open + 1);
    assert_eq!(
        counts,
        HashMap::from([("anthropic".to_owned(), 200)]),
        "open: avoided"
    );
    assert_eq!(state(&router, "openai", t_open + TIMEOUT - 1), Open);
    let counts = decide_many(&router, &dt(), 200, t_open + TIMEOUT - 1);
    assert_eq!(
        counts.get("openai"),
        None,
        "still open 1 ms before the timeout"
    );

    // Half-open after the timeout: exactly half_open_max_calls (3) probes are admitted.
    assert_eq!(state(&router, "openai", t_open + TIMEOUT), HalfOpen);
    let counts = decide_many(&router, &dt(), 200, t_open + TIMEOUT);
    assert_eq!(counts["openai"], 3, "{counts:?}");
    assert_eq!(counts["anthropic"], 197);

    // Two probe successes (success_threshold) close it.
    assert_eq!(
        report(&router, "openai", "success", t_open + TIMEOUT + 10),
        None
    );
    assert_eq!(state(&router, "openai", t_open + TIMEOUT + 10), HalfOpen);
    assert_eq!(
        report(&router, "openai", "success", t_open + TIMEOUT + 11),
        transition(HalfOpen, Closed)
    );
    assert_eq!(state(&router, "openai", t_open + TIMEOUT + 12), Closed);
    let counts = decide_many(&router, &dt(), 1_000, t_open + TIMEOUT + 12);
    let openai = counts["openai"] as f64 / 1_000.0;
    assert!(
        (0.65..0.75).contains(&openai),
        "used again at its weight: {counts:?}"
    );
}

/// A failure while half-open reopens the breaker for another full timeout.
#[test]
fn half_open_failure_reopens() {
    let router = router();
    open(&router, "openai", NOW);
    let probe_time = NOW + TIMEOUT + 5;
    let counts = decide_many(&router, &dt(), 50, probe_time);
    assert_eq!(counts["openai"], 3);
    assert_eq!(
        report(&router, "openai", "success", probe_time + 1),
        None,
        "one success is not enough"
    );
    assert_eq!(
        report(&router, "openai", "rate_limited", probe_time + 2),
        transition(HalfOpen, Open)
    );
    let reopened = probe_time + 2;
    assert_eq!(state(&router, "openai", reopened + TIMEOUT - 1), Open);
    assert_eq!(
        decide_many(&router, &dt(), 100, reopened + TIMEOUT - 1).get("openai"),
        None
    );
    assert_eq!(state(&router, "openai", reopened + TIMEOUT), HalfOpen);
    assert_eq!(
        decide_many(&router, &dt(), 100, reopened + TIMEOUT)["openai"],
        3,
        "a fresh set of probes"
    );
}

/// Feedback after the timeout with no decision in between: the breaker goes half-open on
/// the way, but a success is no probe result while no probe was sent (it reports a call made
/// before the breaker opened); a probe's success is.
#[test]
fn only_probes_close_a_half_open_breaker() {
    let router = router();
    open(&router, "openai", NOW);
    let later = NOW + TIMEOUT;
    assert_eq!(report(&router, "openai", "success", later), None);
    assert_eq!(state(&router, "openai", later), HalfOpen);
    assert_eq!(report(&router, "openai", "success", later + 1), None);
    assert_eq!(
        state(&router, "openai", later + 2),
        HalfOpen,
        "late successes do not close it"
    );
    let probes = decide_many(&router, &dt(), 100, later + 3);
    assert_eq!(probes["openai"], 3);
    assert_eq!(report(&router, "openai", "success", later + 4), None);
    assert_eq!(
        report(&router, "openai", "success", later + 5),
        transition(HalfOpen, Closed)
    );

    let router = common::router();
    open(&router, "openai", NOW);
    assert_eq!(
        report(&router, "openai", "failure", NOW + TIMEOUT),
        transition(HalfOpen, Open)
    );
    assert_eq!(state(&router, "openai", NOW + 2 * TIMEOUT - 1), Open);
}

/// Reports about calls made before the breaker opened change nothing while it is open.
#[test]
fn late_reports_while_open_change_nothing() {
    let router = router();
    open(&router, "openai", NOW);
    for t in 1..20 {
        let outcome = if t % 2 == 0 { "success" } else { "failure" };
        assert_eq!(report(&router, "openai", outcome, NOW + t), None);
    }
    assert_eq!(state(&router, "openai", NOW + TIMEOUT - 1), Open);
    assert_eq!(
        state(&router, "openai", NOW + TIMEOUT),
        HalfOpen,
        "timeout from when it opened"
    );
}

/// Breakers are per (tenant, provider).
#[test]
fn breakers_are_per_tenant() {
    let router = router();
    open(&router, "openai", NOW);
    let acme = decide_many(&router, &base(), 300, NOW + 1);
    assert!(acme.contains_key("openai"), "{acme:?}");
    assert_eq!(router.engine().breakers().not_closed(), 1);
}

/// Every weighted provider blocked: `circuit_breaker_fallback` (20) via a matching rule;
/// with weights 0 instead the same rule gives `fallback` (25).
#[test]
fn circuit_breaker_fallback() {
    let router = router();
    upsert(
        &router,
        "acme",
        "cbf",
        json!({"providers": [{"name": "a", "weight": 60}, {"name": "b", "weight": 40}],
               "fallbacks": [{"when": {}, "to": "spare"}],
               "circuit_breaker": {"failure_threshold": 1, "timeout_ms": 1000}}),
    );
    let request = set(base(), "policy_id", json!("cbf"));
    let fb = |provider: &str, outcome: &str, now: u64| {
        let body = bytes(&json!({"tenant_id": "acme", "policy_id": "cbf",
                                 "provider_id": provider, "outcome": outcome}));
        router.feedback(&body, now).expect("recorded")
    };
    assert_eq!(
        fb("a", "failure", NOW),
        recorded("cbf", transition(Closed, Open))
    );
    assert_eq!(
        decide_many(&router, &request, 50, NOW + 1),
        HashMap::from([("b".to_owned(), 50)])
    );
    fb("b", "timeout", NOW + 1);
    let reply = send_at(&router, &request, NOW + 2);
    assert_eq!(
        (provider(&reply), reason(&reply)),
        ("spare", "circuit_breaker_fallback")
    );
    assert_eq!(reply["decision"]["priority"], 20);
    // The fallback target blocked too: nothing left.
    fb("spare", "failure", NOW + 3);
    let reply = send_at(&router, &request, NOW + 4);
    assert_eq!(code(&reply), "decision_failed");
    let message = reply["error"]["message"].as_str().expect("message");
    assert!(message.contains("circuit breaker"), "{message}");
    // After the timeout the providers take probes again.
    let reply = send_at(&router, &request, NOW + 1_001);
    assert_eq!(reason(&reply), "weighted");

    upsert(
        &router,
        "acme",
        "zero",
        json!({"providers": [{"name": "a", "weight": 0}],
               "fallbacks": [{"when": {}, "to": "spare"}]}),
    );
    let reply = send(&router, &set(base(), "policy_id", json!("zero")));
    assert_eq!((provider(&reply), reason(&reply)), ("spare", "fallback"));
}

/// A retry on a provider whose breaker is open is not made: the rule's target instead, as
/// `circuit_breaker_fallback`.
#[test]
fn retry_blocked_by_the_breaker_falls_back() {
    let router = router();
    open(&router, "openai", NOW);
    let request = set(
        set(dt(), "constraints.current_provider", json!("openai")),
        "constraints.status",
        json!("5xx"),
    );
    let reply = send_at(&router, &request, NOW + 1);
    assert_eq!(
        (provider(&reply), reason(&reply)),
        ("anthropic", "circuit_breaker_fallback")
    );
    // The rule's target blocked as well: the next matching rule, else the regular algorithm.
    open(&router, "anthropic", NOW + 1);
    let reply = send_at(&router, &request, NOW + 2);
    assert_eq!(code(&reply), "decision_failed");
    let rate_limited = set(request, "constraints.status", json!("rate_limited"));
    let reply = send_at(&router, &rate_limited, NOW + 2);
    assert_eq!(
        (provider(&reply), reason(&reply)),
        ("local_llm", "fallback")
    );
}

/// The legacy `fallback.provider` when breakers block the weights map.
#[test]
fn legacy_fallback_after_breakers() {
    let router = router();
    upsert(
        &router,
        "acme",
        "legacy_cb",
        json!({"weights": {"a": 100}, "fallback": {"provider": "lf"},
               "circuit_breaker": {"failure_threshold": 1}}),
    );
    let body = bytes(&json!({"tenant_id": "acme", "policy_id": "legacy_cb",
                             "provider_id": "a", "outcome": "failure"}));
    router.feedback(&body, NOW).expect("recorded");
    let reply = send(&router, &set(base(), "policy_id", json!("legacy_cb")));
    assert_eq!(
        (provider(&reply), reason(&reply)),
        ("lf", "circuit_breaker_fallback")
    );
}

/// A sticky mapping to a provider whose breaker is open is skipped; the session moves to
/// the provider drawn instead and stays there after the breaker closes.
#[test]
fn sticky_skips_an_open_breaker() {
    let router = router();
    let session = set(dt(), "metadata.user_id", json!("u-1"));
    let mapped = provider(&send_at(&router, &session, NOW)).to_owned();
    assert_eq!(reason(&send_at(&router, &session, NOW + 1)), "sticky");
    open(&router, &mapped, NOW + 2);
    let reply = send_at(&router, &session, NOW + 3);
    assert_eq!(reason(&reply), "weighted");
    let moved = provider(&reply).to_owned();
    assert_ne!(moved, mapped);
    assert_eq!(reason(&send_at(&router, &session, NOW + 4)), "sticky");
    // Closed again (probes sent after the timeout, and their successes): the session stays
    // where it moved.
    let later = NOW + 2 + TIMEOUT;
    let probes = decide_many(&router, &dt(), 100, later);
    assert_eq!(probes.get(&mapped), Some(&3), "{probes:?}");
    report(&router, &mapped, "success", later);
    report(&router, &mapped, "success", later + 1);
    assert_eq!(state(&router, &mapped, later + 2), Closed);
    let reply = send_at(&router, &session, later + 2);
    assert_eq!(
        (provider(&reply), reason(&reply)),
        (moved.as_str(), "sticky")
    );
}

#[test]
fn feedback_errors() {
    let router = router();
    let invalid = |body: &[u8]| {
        assert!(
            matches!(router.feedback(body, NOW), Err(FeedbackError::Invalid(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    };
    invalid(b"");
    invalid(b"not json");
    invalid(b"[]");
    invalid(br#"{"tenant_id": "default_tenant", "provider_id": "openai"}"#);
    invalid(br#"{"tenant_id": "default_tenant", "provider_id": "openai", "outcome": "meh"}"#);
    invalid(br#"{"tenant_id": 1, "provider_id": "openai", "outcome": "failure"}"#);
    let mut huge = feedback(TENANT, "openai", "failure");
    huge.resize(2 * 1024 * 1024, b' ');
    invalid(&huge);
    assert_eq!(
        router.feedback(&feedback("initech", "openai", "failure"), NOW),
        Err(FeedbackError::UnknownPolicy {
            // Without a policy_id every policy of the tenant would do; it has none.
            tenant_id: "initech".into(),
            policy_id: "*".into()
        })
    );
    assert_eq!(
        router.feedback(&feedback(TENANT, "mystery", "failure"), NOW),
        Err(FeedbackError::UnknownProvider("mystery".into()))
    );
    // A fallback target has a breaker too; unknown fields are ignored.
    let body = bytes(&json!({"tenant_id": TENANT, "provider_id": "local_llm",
                             "outcome": "success", "latency_ms": 3, "extra": [1]}));
    assert_eq!(router.feedback(&body, NOW), Ok(recorded("default", None)));
    // globex has no circuit breaker: nothing to record (its legacy fallback is known).
    assert_eq!(
        router.feedback(&feedback("globex", "openai", "failure"), NOW),
        Ok(FeedbackEffect::Ignored)
    );
    assert_eq!(
        router.feedback(&feedback("globex", "local_llm", "failure"), NOW),
        Ok(FeedbackEffect::Ignored)
    );
    // Nothing above touched a breaker state.
    assert_eq!(router.engine().breakers().not_closed(), 0);
}

/// Probe feedback is fire-and-forget and may be lost: a half-open breaker whose probes were
/// all sent but never reported admits a new round of probes once `timeout_ms` has passed
/// since the last one, instead of shutting the provider out for good.
#[test]
fn lost_probe_reports_do_not_strand_a_provider() {
    let router = router();
    open(&router, "openai", NOW);
    let first_round = NOW + TIMEOUT;
    assert_eq!(decide_many(&router, &dt(), 100, first_round)["openai"], 3);
    // No report about the three probes arrives.
    assert_eq!(
        decide_many(&router, &dt(), 100, first_round + TIMEOUT - 1).get("openai"),
        None
    );
    assert_eq!(
        state(&router, "openai", first_round + TIMEOUT - 1),
        HalfOpen
    );
    assert_eq!(
        decide_many(&router, &dt(), 100, first_round + TIMEOUT)["openai"],
        3,
        "a new round of probes"
    );
}

/// `success_threshold` above `half_open_max_calls`: successes add up across probe rounds,
/// so the breaker can still close.
#[test]
fn success_threshold_above_the_probe_limit_still_closes() {
    let router = router();
    upsert(
        &router,
        "acme",
        "strict",
        json!({"providers": [{"name": "a", "weight": 100}],
               "fallbacks": [{"when": {}, "to": "spare"}],
               "circuit_breaker": {"failure_threshold": 1, "success_threshold": 2,
                                   "half_open_max_calls": 1, "timeout_ms": 1000}}),
    );
    let request = set(base(), "policy_id", json!("strict"));
    let fb = |outcome: &str, now: u64| {
        let body = bytes(&json!({"tenant_id": "acme", "policy_id": "strict",
                                 "provider_id": "a", "outcome": outcome}));
        router.feedback(&body, now).expect("recorded")
    };
    fb("failure", NOW);
    assert_eq!(
        provider(&send_at(&router, &request, NOW + 1_000)),
        "a",
        "probe 1"
    );
    assert_eq!(provider(&send_at(&router, &request, NOW + 1_001)), "spare");
    assert_eq!(fb("success", NOW + 1_002), recorded("strict", None));
    assert_eq!(provider(&send_at(&router, &request, NOW + 1_999)), "spare");
    assert_eq!(
        provider(&send_at(&router, &request, NOW + 2_000)),
        "a",
        "probe 2"
    );
    assert_eq!(
        fb("success", NOW + 2_001),
        recorded("strict", transition(HalfOpen, Closed))
    );
    let counts = decide_many(&router, &request, 20, NOW + 2_002);
    assert_eq!(counts, HashMap::from([("a".to_owned(), 20)]));
}
