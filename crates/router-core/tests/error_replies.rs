//! CONTRACT §3 error replies other than intake failures: `unauthorized`,
//! `policy_not_found`, `decision_failed`, `deadline_exceeded`, `overloaded`, `internal`, and
//! the HTTP status of every code.

mod common;

use std::collections::HashSet;

use common::*;
use router_core::{ErrorCode, IntakeErrorCode, Outcome, Reason, RouterSettings};
use serde_json::{json, Value};

const W3C: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

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

/// Every HTTP mapping of the §3 table, and `quota_exceeded` (docs/ROUTING.md "Quotas").
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
            ("quota_exceeded", 429),
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
