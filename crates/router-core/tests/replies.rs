//! CONTRACT §3 success replies through `Router::handle`: the exact shape, the echoed trace
//! id, where the expected figures come from, what is never echoed, and how the policy id
//! and the routing context are read.

mod common;

use std::collections::HashSet;

use common::*;
use router_core::{Outcome, Reason};
use serde_json::{json, Value};

const W3C: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The success reply is exactly the §3 example's shape: no other keys, whole numbers written
/// as integers, figures from the chosen provider's policy entry.
#[test]
fn success_reply_has_exactly_the_contract_shape() {
    let router = router();
    let request = set(base(), "trace_id", json!(W3C));
    let mut seen = HashSet::new();
    for seed in 0..100 {
        let handled = router.handle(&bytes(&request), Some("1"), NOW, &mut rng(seed));
        let reply = parse(&handled);
        let provider = provider(&reply).to_owned();
        let (latency, cost) = match provider.as_str() {
            "anthropic" => (json!(900), json!(0.015)),
            "openai" => (json!(850), json!(0.012)),
            "local_llm" => (json!(300), json!(0.001)),
            other => panic!("acme has no provider {other}"),
        };
        let decision_id = reply["decision"]["decision_id"].clone();
        // The ranked plan: the other providers, heaviest first.
        let plan: Vec<&str> = ["anthropic", "openai", "local_llm"]
            .into_iter()
            .filter(|p| *p != provider)
            .collect();
        assert_eq!(
            reply["decision"]["fallbacks"],
            json!(plan),
            "the plan after {provider}"
        );
        assert_eq!(
            decision_id
                .as_str()
                .and_then(router_core::ids::parse_decision_id),
            Some((NOW, "default".to_owned())),
            "the decision names its time and policy: {reply}"
        );
        assert_eq!(
            reply,
            json!({"ok": true,
                   "decision": {"provider_id": provider, "reason": "weighted", "priority": 50,
                                "expected_latency_ms": latency, "expected_cost": cost,
                                "policy_id": "default", "decision_id": decision_id,
                                "fallbacks": plan,
                                "metadata": {"tenant_id": "acme"}},
                   "context": {"request_id": "r-1", "trace_id": W3C}})
        );
        let text = String::from_utf8(handled.reply.clone()).expect("UTF-8");
        assert!(
            text.contains(&format!(r#""expected_latency_ms":{latency},"#)),
            "{text}"
        );
        assert_eq!(
            handled.outcome,
            Outcome::Decided {
                reason: Reason::Weighted,
                replayed: false
            }
        );
        seen.insert(provider);
    }
    assert_eq!(seen.len(), 3, "every acme provider drawn over 100 seeds");
}

/// A UUID trace id is echoed as given; no trace id, no `trace_id` key.
#[test]
fn trace_id_is_echoed_as_given() {
    let router = router();
    let uuid = "9B2F5C1E-4D3A-4B8C-9E7F-0A1B2C3D4E5F";
    let reply = send(&router, &set(base(), "trace_id", json!(uuid)));
    assert_eq!(
        reply["context"],
        json!({"request_id": "r-1", "trace_id": uuid})
    );
    let reply = send(&router, &base());
    assert_eq!(reply["context"], json!({"request_id": "r-1"}));
}

/// `expected_latency_ms` / `expected_cost`: the policy entry, then the context, then 0.
#[test]
fn expected_figures_come_from_policy_then_context_then_zero() {
    let router = router();
    upsert(
        &router,
        "acme",
        "figures",
        json!({"providers": [{"name": "listed", "weight": 100,
                              "expected_latency_ms": 850, "expected_cost": 0.012}]}),
    );
    upsert(
        &router,
        "acme",
        "bare",
        json!({"providers": [{"name": "bare", "weight": 100}]}),
    );
    let with = |policy: &str, constraints: Value| {
        let reply = send(
            &router,
            &set(
                set(base(), "policy_id", json!(policy)),
                "constraints",
                constraints,
            ),
        );
        (
            reply["decision"]["expected_latency_ms"].clone(),
            reply["decision"]["expected_cost"].clone(),
        )
    };
    let rows = [
        (
            "policy wins over context",
            "figures",
            json!({"expected_latency_ms": 1, "expected_cost": 9}),
            (json!(850), json!(0.012)),
        ),
        (
            "context when the policy has none",
            "bare",
            json!({"expected_latency_ms": 120, "expected_cost": 0.5}),
            (json!(120), json!(0.5)),
        ),
        (
            "fractional context figures",
            "bare",
            json!({"expected_latency_ms": 12.5, "expected_cost": 0.001}),
            (json!(12.5), json!(0.001)),
        ),
        (
            "huge figures stay floats",
            "bare",
            json!({"expected_latency_ms": 1e300, "expected_cost": 1e-300}),
            (json!(1e300), json!(1e-300)),
        ),
        ("zero when neither", "bare", json!({}), (json!(0), json!(0))),
        (
            "non-numbers in the context are not figures",
            "bare",
            json!({"expected_latency_ms": "fast", "expected_cost": null}),
            (json!(0), json!(0)),
        ),
    ];
    for (name, policy, constraints, expected) in rows {
        assert_eq!(with(policy, constraints), expected, "{name}");
    }
}

/// `decision.metadata` carries the tenant (and the sticky key); nothing of the request is
/// echoed back.
#[test]
fn the_reply_does_not_echo_the_request() {
    let router = router();
    let request = json!({
        "request_id": "r-1", "tenant_id": "acme",
        "task": {"type": "SECRET-TYPE", "payload": {"prompt": "SECRET-PAYLOAD"}},
        "constraints": {"region": "SECRET-REGION"},
        "metadata": {"note": "SECRET-NOTE", "user_id": "u-SECRET"},
        "run_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "flow_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "step_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "idempotency_key": "SECRET-KEY",
        "unknown": "SECRET-UNKNOWN"
    });
    let handled = router.handle(&bytes(&request), None, NOW, &mut rng(3));
    let text = String::from_utf8(handled.reply.clone()).expect("UTF-8");
    assert!(!text.contains("SECRET"), "{text}");
    assert!(!text.contains("01ARZ3"), "{text}");
    let reply = parse(&handled);
    assert_eq!(
        reply["decision"]["metadata"],
        json!({"tenant_id": "acme", "sticky_key": "user_id"})
    );
    let keys: Vec<_> = reply.as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, ["context", "decision", "ok"]);
}

/// `policy_id`, else `constraints.policy_id`, else `metadata.policy_id`, else `default`.
#[test]
fn policy_id_precedence() {
    let router = router();
    for (policy, provider) in [("p_top", "top"), ("p_con", "con"), ("p_meta", "meta")] {
        upsert(
            &router,
            "acme",
            policy,
            json!({"providers": [{"name": provider, "weight": 100}]}),
        );
    }
    let top = |r: Value| set(r, "policy_id", json!("p_top"));
    let con = |r: Value| set(r, "constraints.policy_id", json!("p_con"));
    let meta = |r: Value| set(r, "metadata.policy_id", json!("p_meta"));
    let rows = [
        (
            "all three: top level",
            top(con(meta(base()))),
            "p_top",
            "top",
        ),
        (
            "top level and constraints",
            top(con(base())),
            "p_top",
            "top",
        ),
        ("top level and metadata", top(meta(base())), "p_top", "top"),
        (
            "constraints before metadata",
            con(meta(base())),
            "p_con",
            "con",
        ),
        ("constraints only", con(base()), "p_con", "con"),
        ("metadata only", meta(base()), "p_meta", "meta"),
        (
            "constraints null, metadata",
            set(meta(base()), "constraints.policy_id", json!(null)),
            "p_meta",
            "meta",
        ),
        ("none: default", base(), "default", ""),
    ];
    for (name, request, policy_id, expected_provider) in rows {
        let reply = send(&router, &request);
        assert_eq!(reply["decision"]["policy_id"], policy_id, "{name}: {reply}");
        if !expected_provider.is_empty() {
            assert_eq!(provider(&reply), expected_provider, "{name}");
        }
    }
}

/// `constraints` and `metadata` merge into one routing context; metadata wins a clash; the
/// request's tenant is always the context's `tenant_id`.
#[test]
fn constraints_and_metadata_merge_with_metadata_winning() {
    let router = router();
    upsert(
        &router,
        "acme",
        "bare",
        json!({"providers": [{"name": "bare", "weight": 100}]}),
    );
    let request = set(
        set(base(), "policy_id", json!("bare")),
        "constraints",
        json!({"expected_latency_ms": 1, "expected_cost": 0.25}),
    );
    let reply = send(
        &router,
        &set(request.clone(), "metadata.expected_latency_ms", json!(2)),
    );
    assert_eq!(reply["decision"]["expected_latency_ms"], 2, "metadata wins");
    assert_eq!(reply["decision"]["expected_cost"], 0.25, "constraints kept");
    let reply = send(&router, &request);
    assert_eq!(reply["decision"]["expected_latency_ms"], 1);

    upsert(
        &router,
        "acme",
        "by_tenant",
        json!({"providers": [{"name": "never", "weight": 0}],
               "fallbacks": [{"when": {"tenant_id": "acme"}, "to": "right"},
                             {"when": {}, "to": "wrong"}]}),
    );
    let forged = set(
        set(
            set(base(), "policy_id", json!("by_tenant")),
            "constraints.tenant_id",
            json!("evil"),
        ),
        "metadata.tenant_id",
        json!("evil"),
    );
    assert_eq!(provider(&send(&router, &forged)), "right");
}
