//! Properties (proptest) of the request path and the draw, and hostile inputs: deep nesting,
//! huge numbers. CONTRACT §3: no input may crash, hang or go unanswered.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use common::*;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use router_core::{Handled, Router, RouterSettings};
use serde_json::{json, Map, Value};

const W3C: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";
const ULID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

const CODES: [&str; 7] = [
    "invalid_request",
    "unauthorized",
    "policy_not_found",
    "decision_failed",
    "deadline_exceeded",
    "overloaded",
    "internal",
];
const INTAKE_CODES: [&str; 5] = [
    "SCHEMA_VALIDATION_FAILED",
    "VERSION_UNSUPPORTED",
    "CORRELATION_FIELDS_INVALID",
    "TENANT_FORBIDDEN",
    "PAYLOAD_TOO_SMALL",
];
const REASONS: [(&str, u64); 5] = [
    ("sticky", 100),
    ("weighted", 50),
    ("retry", 50),
    ("fallback", 25),
    ("circuit_breaker_fallback", 20),
];

/// One router shared by the request-path properties; its sticky, breaker and idempotency
/// state grows across cases, which only widens what is exercised.
fn shared() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let router = router();
        // Feedback that opens some breakers, so decisions meet open ones too.
        for provider in ["anthropic", "local_llm"] {
            for _ in 0..5 {
                router
                    .feedback(&feedback("acme", provider, "failure"), NOW)
                    .expect("recorded");
            }
        }
        router
    })
}

/// Every reply: JSON, `ok` a bool, a `context.request_id` that is null or a string, the
/// right envelope for `ok`, codes from the contract, never `internal`, and small.
fn check(handled: &Handled) -> Result<Value, TestCaseError> {
    let reply: Value = serde_json::from_slice(&handled.reply)
        .map_err(|err| TestCaseError::fail(format!("reply is not JSON: {err}")))?;
    prop_assert!(reply["ok"].is_boolean(), "{}", reply);
    let request_id = &reply["context"]["request_id"];
    prop_assert!(
        reply["context"]
            .as_object()
            .is_some_and(|c| c.contains_key("request_id"))
            && (request_id.is_null()
                || request_id
                    .as_str()
                    .is_some_and(|id| !id.is_empty() && id.len() <= 256)),
        "{}",
        reply
    );
    prop_assert!(
        handled.reply.len() <= 4096,
        "reply of {} bytes",
        handled.reply.len()
    );
    if reply["ok"] == true {
        let decision = &reply["decision"];
        prop_assert!(decision["provider_id"].is_string(), "{}", reply);
        let reason = decision["reason"].as_str().unwrap_or("");
        let priority = REASONS.iter().find(|(r, _)| *r == reason).map(|(_, p)| *p);
        prop_assert!(priority.is_some(), "{}", reply);
        prop_assert_eq!(decision["priority"].as_u64(), priority);
        prop_assert!(decision["expected_latency_ms"].is_number(), "{}", reply);
        prop_assert!(decision["expected_cost"].is_number(), "{}", reply);
        prop_assert!(decision["metadata"]["tenant_id"].is_string(), "{}", reply);
    } else {
        let code = reply["error"]["code"].as_str().unwrap_or("");
        prop_assert!(CODES.contains(&code), "{}", reply);
        prop_assert_ne!(code, "internal", "bad input is never internal: {}", reply);
        prop_assert!(reply["error"]["message"].is_string(), "{}", reply);
        match reply["error"].get("intake_error_code") {
            Some(intake) => {
                prop_assert!(
                    INTAKE_CODES.contains(&intake.as_str().unwrap_or("")),
                    "{}",
                    reply
                );
                prop_assert!(
                    code == "invalid_request" || code == "unauthorized",
                    "{}",
                    reply
                );
            }
            None => prop_assert_ne!(code, "invalid_request", "{}", reply),
        }
    }
    Ok(reply)
}

/// The request path, the overload reply and feedback on the same bytes.
fn exercise(
    router: &Router,
    body: &[u8],
    header: Option<&str>,
    now: u64,
    seed: u64,
) -> Result<Value, TestCaseError> {
    let reply = check(&router.handle(body, header, now, &mut rng(seed)))?;
    let overloaded = check(&router.overloaded(body, 30))?;
    prop_assert_eq!(&overloaded["error"]["code"], "overloaded");
    let _ = router.feedback(body, now);
    Ok(reply)
}

// ---- generators ----------------------------------------------------------------------------

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 128, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

const FIELD_NAMES: [&str; 30] = [
    "version",
    "request_id",
    "tenant_id",
    "trace_id",
    "task",
    "message",
    "policy_id",
    "constraints",
    "metadata",
    "run_id",
    "flow_id",
    "step_id",
    "idempotency_key",
    "type",
    "payload",
    "payload_ref",
    "message_type",
    "message_id",
    "deadline",
    "retry_attempt",
    "current_provider",
    "status",
    "user_id",
    "expected_latency_ms",
    "expected_cost",
    "prompt",
    "error",
    "code",
    "var",
    "unknown",
];

/// Values that look like what the fields expect, plus wrong types and edge cases.
fn field_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(2),
            Just(3),
            Just(i64::MAX),
            any::<i64>()
        ]
        .prop_map(Value::from),
        prop_oneof![
            Just(0.5),
            Just(-0.0),
            Just(1e300),
            Just(NOW as f64 - 1.0),
            any::<f64>()
        ]
        .prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(NOW)),
        Just(json!(NOW + 60_000)),
        prop_oneof![
            Just("1"),
            Just("2"),
            Just(""),
            Just("r-1"),
            Just("acme"),
            Just("default_tenant"),
            Just("globex"),
            Just("initech"),
            Just("default"),
            Just(W3C),
            Just(UUID),
            Just(ULID),
            Just("openai"),
            Just("anthropic"),
            Just("local_llm"),
            Just("5xx"),
            Just("timeout"),
            Just("rate_limited"),
            Just("u-1"),
            Just("s3://bucket/key"),
            Just("chat"),
        ]
        .prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        (0usize..300).prop_map(|n| Value::from("x".repeat(n))),
    ]
}

/// Objects keyed by the contract's real field names (and a few others), with random-typed
/// values, nested.
fn field_value() -> impl Strategy<Value = Value> {
    field_scalar().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec((prop::sample::select(&FIELD_NAMES[..]), inner), 0..8).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

const PATHS: [&str; 27] = [
    "version",
    "request_id",
    "tenant_id",
    "trace_id",
    "task",
    "task.type",
    "task.payload",
    "task.payload_ref",
    "message",
    "message.message_type",
    "message.payload",
    "message.message_id",
    "policy_id",
    "constraints",
    "constraints.deadline",
    "constraints.retry_attempt",
    "constraints.current_provider",
    "constraints.status",
    "constraints.policy_id",
    "metadata",
    "metadata.user_id",
    "metadata.policy_id",
    "metadata.expected_latency_ms",
    "run_id",
    "flow_id",
    "step_id",
    "idempotency_key",
];

/// A valid request with a few fields replaced or removed.
fn mutated_request() -> impl Strategy<Value = Value> {
    let edit = (
        prop::sample::select(&PATHS[..]),
        prop::option::weighted(0.85, field_value()),
    );
    (
        prop::sample::select(&["acme", "default_tenant", "globex"][..]),
        vec(edit, 1..5),
    )
        .prop_map(|(tenant, edits)| {
            let mut request = base_for(tenant);
            for (path, value) in edits {
                request = match value {
                    Some(value) => set(request, path, value),
                    None => remove(request, path),
                };
            }
            request
        })
}

/// Removes `path` when present.
fn remove(mut request: Value, path: &str) -> Value {
    let (parent, key) = match path.rsplit_once('.') {
        Some((parent, key)) => (request.get_mut(parent), key),
        None => (Some(&mut request), path),
    };
    if let Some(Value::Object(map)) = parent {
        map.remove(key);
    }
    request
}

// ---- request-path properties ----------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Arbitrary bytes and headers: always one well-formed reply.
    #[test]
    fn arbitrary_bytes_get_a_reply(
        body in vec(any::<u8>(), 0..600),
        header in prop::option::of(".{0,8}"),
        seed in any::<u64>(),
    ) {
        let reply = exercise(shared(), &body, header.as_deref(), NOW, seed)?;
        // Random bytes are essentially never a valid request.
        prop_assert_eq!(&reply["ok"], false);
    }

    /// Bytes that start like a request, then go wrong.
    #[test]
    fn corrupted_requests_get_a_reply(
        cut in 0usize..200,
        garbage in vec(any::<u8>(), 0..40),
        seed in any::<u64>(),
    ) {
        let valid = bytes(&set(base(), "metadata", json!({"user_id": "u-1", "n": [1, 2.5, null]})));
        let mut body = valid[..cut.min(valid.len())].to_vec();
        body.extend_from_slice(&garbage);
        exercise(shared(), &body, None, NOW, seed)?;
    }

    /// Any JSON value as the body.
    #[test]
    fn arbitrary_json_gets_a_reply(value in any_json(), seed in any::<u64>()) {
        let body = serde_json::to_vec(&value).expect("serialisable");
        let reply = exercise(shared(), &body, Some("1"), NOW, seed)?;
        if !value.is_object() {
            prop_assert_eq!(&reply["error"]["intake_error_code"], "SCHEMA_VALIDATION_FAILED");
            prop_assert_eq!(&reply["context"]["request_id"], &Value::Null);
        }
    }

    /// Objects with the contract's field names and random-typed values.
    #[test]
    fn objects_with_real_field_names_get_a_reply(
        fields in vec((prop::sample::select(&FIELD_NAMES[..]), field_value()), 0..14),
        now_offset in 0u64..10_000_000,
        seed in any::<u64>(),
    ) {
        let object: Map<String, Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let body = serde_json::to_vec(&Value::Object(object)).expect("serialisable");
        exercise(shared(), &body, None, NOW + now_offset, seed)?;
    }

    /// Valid requests with a few fields replaced by random values: every path through
    /// intake and the decision, and the echoed request id is the one sent.
    #[test]
    fn mutated_requests_get_a_reply(
        request in mutated_request(),
        now_offset in 0u64..10_000_000,
        seed in any::<u64>(),
    ) {
        let body = serde_json::to_vec(&request).expect("serialisable");
        let reply = exercise(shared(), &body, None, NOW + now_offset, seed)?;
        if let Some(id) = reply["context"]["request_id"].as_str() {
            let sent = request.get("request_id").and_then(Value::as_str)
                .or_else(|| request.pointer("/message/message_id").and_then(Value::as_str));
            prop_assert_eq!(Some(id), sent);
        }
    }
}

// ---- random policies: never a weight-0 provider, never an open breaker ------------------------

#[derive(Debug, Clone)]
struct RandomPolicy {
    /// (weight as written in the policy, breaker open)
    providers: Vec<(Value, bool)>,
    sticky: bool,
}

fn random_policy() -> impl Strategy<Value = RandomPolicy> {
    let weight = prop_oneof![
        2 => Just(json!(0)),
        1 => Just(json!(0.0)),
        3 => (1u64..=100).prop_map(Value::from),
        2 => (0.001f64..1.0).prop_map(Value::from),
    ];
    (vec((weight, any::<bool>()), 1..7), any::<bool>())
        .prop_map(|(providers, sticky)| RandomPolicy { providers, sticky })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn zero_weight_and_open_breaker_providers_are_never_chosen(
        policy in random_policy(),
        users in vec(prop::option::of(0u8..6), 40),
        seed in any::<u64>(),
    ) {
        let router = Router::new(RouterSettings::default());
        let providers: Vec<Value> = policy.providers.iter().enumerate()
            .map(|(i, (weight, _))| json!({"name": format!("p{i}"), "weight": weight}))
            .collect();
        let mut doc = json!({"providers": providers,
                             "circuit_breaker": {"failure_threshold": 1, "timeout_ms": 3_600_000}});
        if policy.sticky {
            doc["sticky"] = json!({"session_key": "user_id", "ttl": "1h"});
        }
        upsert(&router, "acme", "default", doc);
        let request = |user: Option<u8>| match user {
            Some(u) => set(base(), "metadata.user_id", json!(format!("u{u}"))),
            None => base(),
        };
        let mut rng = rng(seed);
        // Sticky mappings first, while every breaker is closed.
        for user in 0..6 {
            parse(&router.handle(&bytes(&request(Some(user))), None, NOW, &mut rng));
        }
        for (i, (_, open)) in policy.providers.iter().enumerate() {
            if *open {
                router.feedback(&feedback("acme", &format!("p{i}"), "failure"), NOW + 1)
                    .expect("recorded");
            }
        }
        let usable: HashSet<String> = policy.providers.iter().enumerate()
            .filter(|(_, (weight, open))| weight.as_f64().is_some_and(|w| w > 0.0) && !open)
            .map(|(i, _)| format!("p{i}"))
            .collect();
        for user in users {
            let reply = check(&router.handle(&bytes(&request(user)), None, NOW + 2, &mut rng))?;
            if usable.is_empty() {
                prop_assert_eq!(&reply["error"]["code"], "decision_failed");
            } else {
                let chosen = reply["decision"]["provider_id"].as_str().unwrap_or("");
                prop_assert!(usable.contains(chosen), "{} not in {:?}", chosen, usable);
                let reason = reply["decision"]["reason"].as_str().unwrap_or("");
                prop_assert!(reason == "weighted" || reason == "sticky", "{}", reply);
            }
        }
    }
}

// ---- the weighted split ---------------------------------------------------------------------

/// Over 100,000 draws with a fixed seed each provider's share is within 1 percentage point of
/// its weight's share.
#[test]
fn weighted_split_matches_the_policy() {
    let router = router();
    upsert(
        &router,
        "acme",
        "mixed",
        json!({"providers": [{"name": "a", "weight": 0.05}, {"name": "b", "weight": 0.15},
                             {"name": "c", "weight": 0.3}, {"name": "d", "weight": 0.5},
                             {"name": "off", "weight": 0}]}),
    );
    let cases = [
        ("default_tenant", "default"),
        ("acme", "default"),
        ("acme", "mixed"),
        ("globex", "default"),
    ];
    for (tenant, policy_id) in cases {
        let policy = router.policies().get(tenant, policy_id).expect("policy");
        let total: f64 = policy.providers.iter().map(|p| p.weight).sum();
        let context = Map::new();
        let mut rng = rng(2024);
        let mut counts: HashMap<String, u32> = HashMap::new();
        const DRAWS: u32 = 100_000;
        for _ in 0..DRAWS {
            let decision = router
                .engine()
                .decide(&policy, tenant, &context, NOW, &mut rng)
                .expect("a decision");
            *counts.entry(decision.provider_id).or_default() += 1;
        }
        for provider in &policy.providers {
            let expected = provider.weight / total;
            let observed =
                f64::from(counts.get(&provider.name).copied().unwrap_or(0)) / f64::from(DRAWS);
            assert!(
                (observed - expected).abs() < 0.01,
                "{tenant}/{policy_id}: {} drawn {:.4}, weight share {:.4}",
                provider.name,
                observed,
                expected
            );
        }
        assert_eq!(
            counts.values().sum::<u32>(),
            DRAWS,
            "nothing outside the policy: {counts:?}"
        );
    }
}

// ---- hostile input: deep nesting, huge numbers ----------------------------------------------

const DEEP: usize = 100_000;

fn deep_lists() -> String {
    format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP))
}

fn deep_objects() -> String {
    format!("{}1{}", r#"{"a":"#.repeat(DEEP), "}".repeat(DEEP))
}

/// `base()` with `field` set to the raw JSON text `value`.
fn with_raw(field: &str, value: &str) -> Vec<u8> {
    let mut request = base();
    let marker = "\u{0}MARKER\u{0}";
    request = set(request, field, json!(marker));
    let text = serde_json::to_string(&request).expect("serialisable");
    text.replace(&format!("\"{}\"", "\\u0000MARKER\\u0000"), value)
        .into_bytes()
}

struct Hostile {
    name: String,
    body: Vec<u8>,
    /// `None`: a decision; `Some((intake, field, request_id))`: that `invalid_request`.
    expect: Option<(&'static str, Option<&'static str>, Option<&'static str>)>,
}

fn hostile_rows() -> Vec<Hostile> {
    const SCHEMA: &str = "SCHEMA_VALIDATION_FAILED";
    let mut rows = Vec::new();
    for (shape, deep) in [("lists", deep_lists()), ("objects", deep_objects())] {
        let row = |name: &str, body: Vec<u8>, expect| Hostile {
            name: format!("{name} ({shape} nested {DEEP} deep)"),
            body,
            expect,
        };
        rows.push(row("top level", deep.clone().into_bytes(), {
            if shape == "lists" {
                Some((SCHEMA, None, None))
            } else {
                // {"a": {"a": ...}}: an unknown field; the request has no request_id.
                Some(("CORRELATION_FIELDS_INVALID", Some("request_id"), None))
            }
        }));
        rows.push(row(
            "unclosed at top level",
            deep.as_bytes()[..DEEP * if shape == "lists" { 1 } else { 5 }].to_vec(),
            Some((SCHEMA, None, None)),
        ));
        rows.push(row(
            "constraints",
            with_raw("constraints.x", &deep),
            Some((SCHEMA, Some("constraints"), Some("r-1"))),
        ));
        rows.push(row(
            "metadata",
            with_raw("metadata.x", &deep),
            Some((SCHEMA, Some("metadata"), Some("r-1"))),
        ));
        rows.push(row(
            "task.payload",
            with_raw("task.payload.x", &deep),
            Some((SCHEMA, Some("task.payload"), Some("r-1"))),
        ));
        rows.push(row(
            "request_id",
            with_raw("request_id", &deep),
            Some((SCHEMA, Some("request_id"), None)),
        ));
        rows.push(row(
            "version",
            with_raw("version", &deep),
            Some(("VERSION_UNSUPPORTED", Some("version"), Some("r-1"))),
        ));
        rows.push(row(
            "task",
            with_raw("task", &deep),
            if shape == "lists" {
                Some((SCHEMA, Some("task"), Some("r-1")))
            } else {
                // An object whose only (unknown) field is skipped: task.type is missing.
                Some(("CORRELATION_FIELDS_INVALID", Some("task.type"), Some("r-1")))
            },
        ));
        // Unknown fields are ignored whatever they hold; serde_json skips them without
        // recursion.
        rows.push(row("an unknown field", with_raw("extra", &deep), None));
        rows.push(row(
            "an unknown field of task",
            with_raw("task.extra", &deep),
            None,
        ));
    }
    // 128 levels of payload are fine; 129 are not.
    let nested = |levels: usize| {
        format!(
            r#"{}"prompt":"hello"{}"#,
            r#"{"a":"#.repeat(levels - 1) + "{",
            "}".repeat(levels)
        )
    };
    rows.push(Hostile {
        name: "payload nested 128 deep".into(),
        body: with_raw("task.payload", &nested(128)),
        expect: None,
    });
    rows.push(Hostile {
        name: "payload nested 129 deep".into(),
        body: with_raw("task.payload", &nested(129)),
        expect: Some((SCHEMA, Some("task.payload"), Some("r-1"))),
    });
    // Huge numbers.
    for number in ["1e400", "-1e400", "123456789012345678901234567890e300"] {
        let name = |field: &str| format!("{number} in {field}");
        rows.push(Hostile {
            name: name("constraints.deadline"),
            body: with_raw("constraints.deadline", number),
            expect: Some((SCHEMA, Some("constraints"), Some("r-1"))),
        });
        rows.push(Hostile {
            name: name("metadata.retry_attempt"),
            body: with_raw("metadata.retry_attempt", number),
            expect: Some((SCHEMA, Some("metadata"), Some("r-1"))),
        });
        rows.push(Hostile {
            name: name("version"),
            body: with_raw("version", number),
            expect: Some(("VERSION_UNSUPPORTED", Some("version"), Some("r-1"))),
        });
        rows.push(Hostile {
            name: name("request_id"),
            body: with_raw("request_id", number),
            expect: Some((SCHEMA, Some("request_id"), None)),
        });
        // The payload is passed through as raw text and not interpreted.
        rows.push(Hostile {
            name: name("task.payload"),
            body: with_raw("task.payload.n", number),
            expect: None,
        });
        rows.push(Hostile {
            name: name("an unknown field"),
            body: with_raw("extra", number),
            expect: None,
        });
    }
    // Big integers that serde_json reads as floats.
    rows.push(Hostile {
        name: "a 30-digit deadline is far in the future".into(),
        body: with_raw("constraints.deadline", "123456789012345678901234567890"),
        expect: None,
    });
    rows.push(Hostile {
        name: "a 30-digit retry_attempt is not an integer".into(),
        body: with_raw(
            "constraints.retry_attempt",
            "123456789012345678901234567890",
        ),
        expect: Some((SCHEMA, Some("retry_attempt"), Some("r-1"))),
    });
    rows
}

/// Deep nesting and huge numbers get the expected reply, without a stack overflow (the test
/// runs on a thread with the default 2 MiB test stack).
#[test]
fn hostile_input_gets_invalid_request_without_crashing() {
    let router = router();
    let mut failures = Vec::new();
    for row in hostile_rows() {
        assert!(row.body.len() <= 1024 * 1024, "{}: over 1 MiB", row.name);
        let handled = router.handle(&row.body, None, NOW, &mut rng(1));
        let reply = match check(&handled) {
            Ok(reply) => reply,
            Err(err) => {
                failures.push(format!("{}: {err}", row.name));
                continue;
            }
        };
        let got = if reply["ok"] == true {
            None
        } else {
            Some((
                reply["error"]["intake_error_code"].clone(),
                reply["error"]["details"]["field"].clone(),
                reply["context"]["request_id"].clone(),
            ))
        };
        let want = row
            .expect
            .map(|(intake, field, id)| (json!(intake), json!(field), json!(id)));
        if got != want {
            failures.push(format!("{}: got {got:?}, expected {want:?}", row.name));
        }
        if row.expect.is_some() {
            assert_eq!(reply["error"]["code"], "invalid_request", "{}", row.name);
        }
        // The other entry points survive the same bytes.
        check(&router.overloaded(&row.body, 30)).expect("overloaded reply");
        let _ = router.feedback(&row.body, NOW);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Feedback with hostile numbers and nesting is refused, not applied.
#[test]
fn hostile_feedback_is_refused() {
    let router = router();
    for body in [
        r#"{"tenant_id":"acme","provider_id":"openai","outcome":"failure","latency_ms":1e400}"#
            .to_owned(),
        format!(
            r#"{{"tenant_id":"acme","provider_id":"openai","outcome":{}}}"#,
            deep_lists()
        ),
        deep_objects(),
    ] {
        assert!(router.feedback(body.as_bytes(), NOW).is_err());
    }
    assert_eq!(router.engine().breakers().not_closed(), 0);
}
