//! CONTRACT §3 replies other than intake failures: the success shape, `unauthorized`,
//! `policy_not_found`, `decision_failed`, `deadline_exceeded`, `overloaded`, `internal`; and
//! the §5 backpressure statuses and report.

mod common;

use std::collections::HashSet;

use common::*;
use router_core::backpressure::{classify, Signals};
use router_core::{
    BackpressureMonitor, BackpressureStatus, ErrorCode, IntakeErrorCode, Outcome, Reason,
    RouterSettings, Thresholds,
};
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

#[test]
fn unauthorized_tenant() {
    let router = router_with(RouterSettings {
        allowed_tenants: Some(["acme".to_owned(), "default_tenant".to_owned()].into()),
        ..RouterSettings::default()
    });
    assert_eq!(
        provider(&send(&router, &base())),
        provider(&send(&router, &base()))
    );
    let handled = router.handle(&bytes(&base_for("globex")), None, NOW, &mut rng(1));
    let reply = parse(&handled);
    assert_eq!(
        reply,
        json!({"ok": false,
               "error": {"code": "unauthorized",
                         "message": "tenant globex is not on the allow-list",
                         "intake_error_code": "TENANT_FORBIDDEN",
                         "details": {"tenant_id": "globex"}},
               "context": {"request_id": "r-1"}})
    );
    assert_eq!(
        handled.outcome,
        Outcome::Rejected {
            code: ErrorCode::Unauthorized,
            intake: Some(IntakeErrorCode::TenantForbidden),
            tenant_id: Some("globex".into()),
            message: "tenant globex is not on the allow-list".into(),
        }
    );
    // A tenant with no policy is still refused as unauthorized, not policy_not_found.
    let reply = send(&router, &base_for("initech"));
    assert_eq!(code(&reply), "unauthorized");
    // Validation comes first: a broken request from a forbidden tenant is invalid_request.
    let reply = send(&router, &del(base_for("globex"), "task.type"));
    assert_eq!(code(&reply), "invalid_request");
    // The check is exact: no prefix or case folding.
    assert_eq!(code(&send(&router, &base_for("ACME"))), "unauthorized");
    assert_eq!(code(&send(&router, &base_for("acme2"))), "unauthorized");
}

/// An empty allow-list refuses everybody; no allow-list serves everybody.
#[test]
fn empty_allow_list_refuses_every_tenant() {
    let closed = router_with(RouterSettings {
        allowed_tenants: Some(HashSet::new()),
        ..RouterSettings::default()
    });
    assert_eq!(code(&send(&closed, &base())), "unauthorized");
    let open = router();
    assert_eq!(send(&open, &base_for("globex"))["ok"], true);
}

#[test]
fn policy_not_found_names_tenant_and_policy() {
    let router = router();
    for (request, tenant, policy) in [
        (set(base(), "policy_id", json!("nope")), "acme", "nope"),
        (base_for("initech"), "initech", "default"),
        (
            set(base_for("globex"), "metadata.policy_id", json!("fast")),
            "globex",
            "fast",
        ),
    ] {
        let handled = router.handle(&bytes(&request), None, NOW, &mut rng(1));
        let reply = parse(&handled);
        assert_eq!(code(&reply), "policy_not_found");
        assert_eq!(
            reply["error"]["details"],
            json!({"tenant_id": tenant, "policy_id": policy})
        );
        assert!(reply["error"].get("intake_error_code").is_none(), "{reply}");
        let message = reply["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(tenant) && message.contains(policy),
            "{message}"
        );
        assert_eq!(reply["context"]["request_id"], "r-1");
        assert!(matches!(
            handled.outcome,
            Outcome::Rejected {
                code: ErrorCode::PolicyNotFound,
                intake: None,
                ..
            }
        ));
    }
}

#[test]
fn decision_failed_when_every_weight_is_zero() {
    let router = router();
    upsert(
        &router,
        "acme",
        "zero",
        json!({"providers": [{"name": "a", "weight": 0}, {"name": "b", "weight": 0.0}]}),
    );
    upsert(&router, "acme", "empty", json!({"providers": []}));
    for policy in ["zero", "empty"] {
        let reply = send(&router, &set(base(), "policy_id", json!(policy)));
        assert_eq!(code(&reply), "decision_failed", "{policy}");
        assert_eq!(
            reply["error"]["details"],
            json!({"tenant_id": "acme", "policy_id": policy})
        );
        assert!(reply["error"].get("intake_error_code").is_none());
        assert_eq!(reply["context"]["request_id"], "r-1");
    }
    // A fallback rule whose `when` does not match does not save it.
    upsert(
        &router,
        "acme",
        "zero_with_rule",
        json!({"providers": [{"name": "a", "weight": 0}],
               "fallbacks": [{"when": {"status": ["5xx"]}, "to": "b"}]}),
    );
    let reply = send(&router, &set(base(), "policy_id", json!("zero_with_rule")));
    assert_eq!(code(&reply), "decision_failed");
}

/// A `deadline` (epoch ms) strictly before now is exceeded; the deadline itself is not.
#[test]
fn deadline_exceeded() {
    let router = router();
    upsert(
        &router,
        "acme",
        "zero",
        json!({"providers": [{"name": "a", "weight": 0}]}),
    );
    let at = |deadline: Value| set(base(), "constraints.deadline", deadline);
    let rows = [
        ("one ms ago", at(json!(NOW - 1)), Some("deadline_exceeded")),
        (
            "half a ms ago",
            at(json!(NOW as f64 - 0.5)),
            Some("deadline_exceeded"),
        ),
        ("long ago", at(json!(0)), Some("deadline_exceeded")),
        ("negative", at(json!(-5)), Some("deadline_exceeded")),
        ("now", at(json!(NOW)), None),
        ("in one ms", at(json!(NOW + 1)), None),
        ("far future", at(json!(1e300)), None),
        ("null is no deadline", at(json!(null)), None),
        (
            "from metadata",
            set(base(), "metadata.deadline", json!(NOW - 1)),
            Some("deadline_exceeded"),
        ),
        (
            "checked before the decision",
            set(at(json!(NOW - 1)), "policy_id", json!("zero")),
            Some("deadline_exceeded"),
        ),
    ];
    for (name, request, expected) in rows {
        let reply = send(&router, &request);
        match expected {
            Some(expected) => {
                assert_eq!(code(&reply), expected, "{name}");
                assert!(reply["error"].get("intake_error_code").is_none(), "{name}");
                assert_eq!(reply["error"]["details"]["now"], NOW, "{name}");
                assert_eq!(reply["context"]["request_id"], "r-1", "{name}");
            }
            None => assert_eq!(reply["ok"], true, "{name}: {reply}"),
        }
    }
}

#[test]
fn overloaded_reply() {
    let router = router();
    let handled = router.overloaded(&bytes(&base()), 30);
    let reply = parse(&handled);
    assert_eq!(
        reply,
        json!({"ok": false,
               "error": {"code": "overloaded",
                         "message": "the router is overloaded; retry later",
                         "details": {"retry_after_seconds": 30}},
               "context": {"request_id": "r-1"}})
    );
    assert!(matches!(
        handled.outcome,
        Outcome::Rejected {
            code: ErrorCode::Overloaded,
            intake: None,
            ..
        }
    ));
    assert_eq!(
        parse(&router.overloaded(&bytes(&base()), 7))["error"]["details"]["retry_after_seconds"],
        7
    );
    // Whatever the body, an answer; the request id only when readable and valid.
    let long_id = set(base(), "request_id", json!("x".repeat(1000 * 1000)));
    for body in [
        b"".to_vec(),
        b"\xff\xfe".to_vec(),
        b"[1,2]".to_vec(),
        b"{\"request_id\": 5}".to_vec(),
        b"{\"request_id\": \"\"}".to_vec(),
        b"{\"request_id\": \"r-1\"".to_vec(),
        bytes(&long_id),
        vec![b'{'; 2 * 1024 * 1024],
    ] {
        let handled = router.overloaded(&body, 30);
        let reply = parse(&handled);
        assert_eq!(code(&reply), "overloaded");
        assert_eq!(reply["context"], json!({"request_id": null}));
        assert!(handled.reply.len() < 512);
    }
    // The gateway's message_id stands for request_id, and a valid trace_id is echoed.
    let gateway = json!({"message": {"message_id": "m-1"}, "trace_id": W3C});
    assert_eq!(
        parse(&router.overloaded(&bytes(&gateway), 30))["context"],
        json!({"request_id": "m-1", "trace_id": W3C})
    );
    let both = json!({"request_id": "r-9", "message": {"message_id": "m-1"}, "trace_id": "bad"});
    assert_eq!(
        parse(&router.overloaded(&bytes(&both), 30))["context"],
        json!({"request_id": "r-9"}),
        "request_id wins; an invalid trace id is not echoed"
    );
}

#[test]
fn internal_reply() {
    let router = router();
    let reply = parse(&router.internal_error(&bytes(&base())));
    assert_eq!(code(&reply), "internal");
    assert_eq!(reply["context"]["request_id"], "r-1");
    assert!(reply["error"].get("intake_error_code").is_none());
    let gateway = json!({"message": {"message_id": "m-2"}, "trace_id": W3C});
    let reply = parse(&router.internal_error(&bytes(&gateway)));
    assert_eq!(
        reply["context"],
        json!({"request_id": "m-2", "trace_id": W3C})
    );
}

/// Every HTTP mapping of the §3 table.
#[test]
fn error_codes_and_http_statuses() {
    let table: Vec<(&str, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.http_status()))
        .collect();
    assert_eq!(
        table,
        [
            ("invalid_request", 400),
            ("unauthorized", 401),
            ("policy_not_found", 404),
            ("decision_failed", 500),
            ("deadline_exceeded", 504),
            ("overloaded", 429),
            ("internal", 500),
        ]
    );
    for code in ErrorCode::ALL {
        assert_eq!(
            serde_json::to_value(code).expect("serialisable"),
            code.as_str()
        );
    }
    let reasons: Vec<(&str, u32)> = Reason::ALL
        .iter()
        .map(|r| (r.as_str(), r.priority()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("sticky", 100),
            ("weighted", 50),
            ("retry", 50),
            ("fallback", 25),
            ("circuit_breaker_fallback", 20),
            ("adaptive", 50),
        ]
    );
}

// ---- §5 backpressure -------------------------------------------------------------------

fn signals(pending: u64, inflight: u64, p95: f64) -> Signals {
    Signals {
        pending_messages: pending,
        inflight_messages: inflight,
        latency_p95_ms: p95,
    }
}

/// 0 signals over → inactive, 1 → warning, ≥ 2 → active; "over" is strictly greater.
#[test]
fn every_backpressure_status() {
    use BackpressureStatus::*;
    let t = Thresholds::default();
    assert_eq!(
        (t.queue_overload, t.inflight_overload, t.latency_overload_ms),
        (1000, 500, 100.0)
    );
    let rows = [
        ("idle", signals(0, 0, 0.0), Inactive),
        ("all at the threshold", signals(1000, 500, 100.0), Inactive),
        ("pending over", signals(1001, 0, 0.0), Warning),
        ("inflight over", signals(0, 501, 0.0), Warning),
        ("latency over", signals(0, 0, 100.001), Warning),
        ("pending + inflight", signals(1001, 501, 0.0), Active),
        ("pending + latency", signals(1001, 0, 101.0), Active),
        ("inflight + latency", signals(0, 501, 101.0), Active),
        ("all three", signals(u64::MAX, u64::MAX, f64::MAX), Active),
    ];
    for (name, s, expected) in rows {
        assert_eq!(classify(&s, &t), expected, "{name}");
    }
}

/// The monitor: latency p95 over the last 1000 decisions of the last second, the status, the
/// transition counter and the §5 report.
#[test]
fn backpressure_monitor_and_report() {
    use BackpressureStatus::*;
    let monitor = BackpressureMonitor::new(Thresholds::default(), 30);
    let moved = |change: Option<router_core::StatusChange>| change.map(|c| (c.from, c.to));
    assert_eq!(monitor.status(), Inactive);
    assert_eq!(moved(monitor.classify_now(0, 3, Inactive)), None);
    assert_eq!(
        moved(monitor.classify_now(1001, 3, Inactive)),
        Some((Inactive, Warning))
    );
    assert!(!monitor.is_active());
    assert_eq!(
        moved(monitor.classify_now(1001, 501, Inactive)),
        Some((Warning, Active))
    );
    assert!(monitor.is_active());
    assert_eq!(
        moved(monitor.classify_now(2000, 900, Inactive)),
        None,
        "still active"
    );
    assert_eq!(monitor.activations(), 1);
    assert_eq!(
        moved(monitor.classify_now(0, 0, Inactive)),
        Some((Active, Inactive))
    );
    // Latency: 960 fast decisions and 40 slow ones → p95 fast; 60 slow → p95 slow.
    let now = 5_000;
    for _ in 0..960 {
        monitor.record_latency(0.2, now);
    }
    for _ in 0..40 {
        monitor.record_latency(9000.0, now);
    }
    assert_eq!(moved(monitor.evaluate(0, 0, now)), None);
    assert_eq!(monitor.refresh_latency(now), 0.2);
    for _ in 0..20 {
        monitor.record_latency(9000.0, now);
    }
    assert_eq!(
        moved(monitor.evaluate(0, 0, now)),
        Some((Inactive, Warning))
    );
    assert_eq!(
        moved(monitor.evaluate(1001, 0, now)),
        Some((Warning, Active))
    );
    assert_eq!(monitor.activations(), 2);

    let report = serde_json::to_value(monitor.report(
        "beamline.router.v1.decide",
        1001,
        3,
        1_764_182_400_000,
    ))
    .expect("serialisable");
    assert_eq!(
        report,
        json!({"subject": "beamline.router.v1.decide", "status": "active",
               "metrics": {"pending_messages": 1001, "inflight_messages": 3,
                           "latency_p95_ms": 9000.0},
               "thresholds": {"queue_overload": 1000, "inflight_overload": 500,
                              "latency_overload_ms": 100.0},
               "policy": {"retry_after_seconds": 30}, "timestamp": 1_764_182_400_000_u64})
    );
}

/// While active, a decide request is answered `overloaded` with the monitor's retry-after —
/// never left unanswered.
#[test]
fn active_backpressure_answers_overloaded() {
    let router = router();
    let monitor = BackpressureMonitor::new(
        Thresholds {
            queue_overload: 10,
            inflight_overload: 10,
            latency_overload_ms: 100.0,
        },
        12,
    );
    monitor.classify_now(11, 11, BackpressureStatus::Inactive);
    assert!(monitor.is_active());
    let body = bytes(&base());
    let handled = if monitor.is_active() {
        router.overloaded(&body, monitor.retry_after_seconds())
    } else {
        router.handle(&body, None, NOW, &mut rng(1))
    };
    let reply = parse(&handled);
    assert_eq!(code(&reply), "overloaded");
    assert_eq!(reply["error"]["details"]["retry_after_seconds"], 12);
}
