//! Properties (proptest) of the request path: arbitrary bytes, corrupted requests, arbitrary
//! JSON, objects with the contract's field names and mutated requests all get a reply.
//! CONTRACT §3: no input may crash, hang or go unanswered.

mod common;

use std::sync::OnceLock;

use common::any_reply::check;
use common::*;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use router_core::Router;
use serde_json::{json, Map, Value};

const W3C: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";
const ULID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

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
