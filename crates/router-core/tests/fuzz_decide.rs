//! Fuzz targets for the request path, driven by proptest (cargo-fuzz needs a nightly
//! toolchain; only stable Rust exists here). Each target is a plain function over bytes, as
//! a libFuzzer target would be, so it can move under `fuzz/` unchanged later.
//!
//! - [`target_decide`]: decode + validate + decide through `Router::handle` on any bytes,
//!   with any `version` header, clock and intake limits, against two routers (open, and
//!   with a tenant allow-list).
//! - Inputs: arbitrary bytes, and near-valid requests: valid ones with fields replaced by
//!   arbitrary JSON, removed, renamed or nested deep, then maybe mutated byte-wise the way a
//!   fuzzer mutates (flip, insert, delete, duplicate, truncate).
//!
//! Oracles, for every input: the reply is JSON with a boolean `ok`; an error carries a code
//! from the contract, never `internal`, and an intake code exactly when the contract says
//! so; the reply stays small whatever the input size; the reply agrees with the `Outcome`
//! the service layer counts and dead-letters; intake rejections are exactly those of
//! `request::decode`, with the same code and field; decisions name a provider of the
//! policy; and the same input on a fresh router with the same seed gives the same bytes.
//!
//! Cases per target: `PROPTEST_CASES` (default 256), e.g.
//! `PROPTEST_CASES=5000 cargo test -p router-core --test fuzz_decide --release`.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use router_core::request::{self, IntakeLimits};
use router_core::{Outcome, Policy, Router, RouterSettings};
use serde_json::{json, Map, Value};

/// `error.code` values of CONTRACT §3.
const CODES: [&str; 7] = [
    "invalid_request",
    "unauthorized",
    "policy_not_found",
    "decision_failed",
    "deadline_exceeded",
    "overloaded",
    "internal",
];
/// `intake_error_code` values that go with `invalid_request`.
const INVALID_REQUEST_INTAKE: [&str; 4] = [
    "SCHEMA_VALIDATION_FAILED",
    "VERSION_UNSUPPORTED",
    "CORRELATION_FIELDS_INVALID",
    "PAYLOAD_TOO_SMALL",
];
/// Context fields the decision engine itself validates after intake.
const ENGINE_FIELDS: [&str; 3] = ["deadline", "retry_attempt", "current_provider"];
/// No reply may be larger than this, whatever the input (a reply over the NATS max_payload
/// could not be sent at all).
const MAX_REPLY: usize = 8 * 1024;
/// A fixed "now" (epoch ms).
const NOW: u64 = 1_764_182_400_000;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The shipped policies, parsed once.
fn policies() -> &'static Vec<Policy> {
    static POLICIES: OnceLock<Vec<Policy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/policies");
        let router = Router::new(RouterSettings::default());
        let report = router
            .policies()
            .load_dir(&dir)
            .expect("config/policies is readable");
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        router
            .policies()
            .snapshot()
            .keys()
            .iter()
            .map(|(tenant, policy)| {
                Policy::clone(&router.policies().get(tenant, policy).expect("listed"))
            })
            .collect()
    })
}

/// A fresh router with the shipped policies.
fn fresh_router(limits: IntakeLimits, allow_list: bool) -> Router {
    let allowed = allow_list.then(|| {
        ["acme", "default_tenant"]
            .iter()
            .map(|t| (*t).to_owned())
            .collect::<HashSet<_>>()
    });
    let router = Router::new(RouterSettings {
        limits,
        allowed_tenants: allowed,
        ..RouterSettings::default()
    });
    for policy in policies() {
        router.policies().upsert(policy.clone());
    }
    router
}

/// Long-lived routers: sticky, breaker and idempotency state accumulates across cases.
fn shared_routers() -> &'static [Arc<Router>; 2] {
    static ROUTERS: OnceLock<[Arc<Router>; 2]> = OnceLock::new();
    ROUTERS.get_or_init(|| {
        [
            Arc::new(fresh_router(IntakeLimits::default(), false)),
            Arc::new(fresh_router(IntakeLimits::default(), true)),
        ]
    })
}

/// Every provider a policy of `tenant` names (weighted, fallback targets, legacy fallback).
fn named_providers(tenant: &str, policy_id: &str) -> Vec<String> {
    policies()
        .iter()
        .filter(|p| p.tenant_id == tenant && p.policy_id == policy_id)
        .flat_map(|p| {
            p.providers
                .iter()
                .map(|x| x.name.clone())
                .chain(p.fallbacks.iter().map(|f| f.to.clone()))
                .chain(p.legacy_fallback.iter().map(|f| f.to.clone()))
        })
        .collect()
}

/// How a target call is set up, derived from the input like a fuzzer's data would be.
#[derive(Debug, Clone)]
struct Setup {
    header: Option<String>,
    now_ms: u64,
    limits: IntakeLimits,
    seed: u64,
}

fn setup() -> impl Strategy<Value = Setup> {
    let header = prop_oneof![
        6 => Just(None),
        2 => Just(Some("1".to_owned())),
        1 => Just(Some(" 1 ".to_owned())),
        1 => any::<String>().prop_map(Some),
    ];
    let limits = prop_oneof![
        4 => Just(IntakeLimits::default()),
        1 => (0usize..600, 0usize..64).prop_map(|(max_payload, min_payload_size)| IntakeLimits {
            max_payload,
            min_payload_size,
        }),
    ];
    let now = prop_oneof![Just(NOW), Just(0u64), Just(u64::MAX), any::<u64>()];
    (header, now, limits, any::<u64>()).prop_map(|(header, now_ms, limits, seed)| Setup {
        header,
        now_ms,
        limits,
        seed,
    })
}

/// The target: one body through the request path, every oracle checked.
fn target_decide(body: &[u8], setup: &Setup) -> Result<(), TestCaseError> {
    let header = setup.header.as_deref();
    let routers: Vec<Arc<Router>> = if setup.limits == IntakeLimits::default() {
        shared_routers().to_vec()
    } else {
        vec![Arc::new(fresh_router(setup.limits, false))]
    };
    for router in &routers {
        let handled = router.handle(
            body,
            header,
            setup.now_ms,
            &mut SmallRng::seed_from_u64(setup.seed),
        );
        let reply = check_reply(&handled.reply)?;
        check_outcome(&handled.outcome, &reply)?;
        check_against_decode(body, header, &setup.limits, &reply)?;
        if reply["ok"] == true {
            let tenant = reply["decision"]["metadata"]["tenant_id"]
                .as_str()
                .unwrap_or("");
            let policy = reply["decision"]["policy_id"].as_str().unwrap_or("");
            let provider = reply["decision"]["provider_id"].as_str().unwrap_or("");
            prop_assert!(
                named_providers(tenant, policy)
                    .iter()
                    .any(|p| p == provider),
                "provider {} is not in policy {}/{}: {}",
                provider,
                tenant,
                policy,
                reply
            );
        }
    }
    // Reproducible: two fresh routers, the same seed, the same bytes.
    let first = fresh_router(setup.limits, false).handle(
        body,
        header,
        setup.now_ms,
        &mut SmallRng::seed_from_u64(setup.seed),
    );
    let second = fresh_router(setup.limits, false).handle(
        body,
        header,
        setup.now_ms,
        &mut SmallRng::seed_from_u64(setup.seed),
    );
    prop_assert_eq!(
        first.reply,
        second.reply,
        "same input, same seed, other reply"
    );
    Ok(())
}

/// The envelope every reply must have.
fn check_reply(bytes: &[u8]) -> Result<Value, TestCaseError> {
    prop_assert!(bytes.len() <= MAX_REPLY, "reply of {} bytes", bytes.len());
    let reply: Value = serde_json::from_slice(bytes).map_err(|err| {
        TestCaseError::fail(format!(
            "reply is not JSON ({err}): {}",
            String::from_utf8_lossy(bytes)
        ))
    })?;
    let Some(ok) = reply["ok"].as_bool() else {
        return Err(TestCaseError::fail(format!("no boolean ok: {reply}")));
    };
    let context = reply["context"].as_object();
    prop_assert!(
        context.is_some_and(|c| c.contains_key("request_id")),
        "no context.request_id: {}",
        reply
    );
    let request_id = &reply["context"]["request_id"];
    prop_assert!(
        request_id.is_null()
            || request_id
                .as_str()
                .is_some_and(|id| !id.is_empty() && id.len() <= 256),
        "bad context.request_id: {}",
        reply
    );
    if ok {
        prop_assert!(
            request_id.is_string(),
            "a decision names its request: {}",
            reply
        );
        prop_assert!(reply["decision"]["provider_id"].is_string(), "{}", reply);
        prop_assert!(reply.get("error").is_none(), "{}", reply);
        return Ok(reply);
    }
    let error = &reply["error"];
    let code = error["code"].as_str().unwrap_or("");
    prop_assert!(CODES.contains(&code), "unknown code: {}", reply);
    prop_assert_ne!(code, "internal", "bad input is never internal: {}", reply);
    prop_assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply
    );
    prop_assert!(reply.get("decision").is_none(), "{}", reply);
    let intake = error.get("intake_error_code").and_then(Value::as_str);
    match code {
        "invalid_request" => prop_assert!(
            intake.is_some_and(|i| INVALID_REQUEST_INTAKE.contains(&i)),
            "invalid_request without its intake code: {}",
            reply
        ),
        "unauthorized" => prop_assert_eq!(intake, Some("TENANT_FORBIDDEN"), "{}", reply),
        _ => prop_assert_eq!(intake, None, "{}", reply),
    }
    if code == "policy_not_found" {
        prop_assert!(
            error["details"]["tenant_id"].is_string() && error["details"]["policy_id"].is_string(),
            "policy_not_found names both: {}",
            reply
        );
    }
    Ok(reply)
}

/// The `Outcome` (what metrics count and the DLQ receives) says what the reply says.
fn check_outcome(outcome: &Outcome, reply: &Value) -> Result<(), TestCaseError> {
    match outcome {
        Outcome::Decided { reason, replayed } => {
            prop_assert_eq!(&reply["ok"], &json!(true));
            prop_assert_eq!(&reply["decision"]["reason"], &json!(reason.as_str()));
            prop_assert_eq!(reply["replayed"] == true, *replayed, "{}", reply);
        }
        Outcome::Rejected { code, intake, .. } => {
            prop_assert_eq!(&reply["ok"], &json!(false));
            prop_assert_eq!(&reply["error"]["code"], &json!(code.as_str()));
            prop_assert_eq!(
                reply["error"]["intake_error_code"].as_str(),
                intake.map(|i| i.as_str())
            );
        }
    }
    Ok(())
}

/// Intake rejections are exactly those of `request::decode`, with its code and field.
fn check_against_decode(
    body: &[u8],
    header: Option<&str>,
    limits: &IntakeLimits,
    reply: &Value,
) -> Result<(), TestCaseError> {
    match request::decode(body, header, limits) {
        Err(rejected) => {
            let rejection = &rejected.rejection;
            prop_assert_eq!(&reply["error"]["code"], &json!("invalid_request"));
            prop_assert_eq!(
                reply["error"]["intake_error_code"].as_str(),
                rejection.intake.map(|i| i.as_str())
            );
            prop_assert_eq!(
                &reply["error"]["details"]["field"],
                rejection.details.get("field").unwrap_or(&Value::Null)
            );
            prop_assert_eq!(
                reply["context"]["request_id"].as_str(),
                rejected.request_id.as_deref()
            );
        }
        Ok(decoded) => {
            prop_assert_eq!(
                reply["context"]["request_id"].as_str(),
                Some(decoded.request_id.as_str())
            );
            if reply["error"]["code"] == "invalid_request" {
                let field = reply["error"]["details"]["field"].as_str().unwrap_or("");
                prop_assert!(
                    ENGINE_FIELDS.contains(&field),
                    "decode accepted it, yet invalid_request on {:?}: {}",
                    field,
                    reply
                );
            }
        }
    }
    Ok(())
}

// ---- near-valid requests --------------------------------------------------------------------

/// A valid request: the task form or the gateway's message form.
fn valid_request() -> impl Strategy<Value = Value> {
    let tenant = prop::sample::select(vec!["acme", "default_tenant", "globex"]);
    (tenant, any::<bool>(), 0u32..1000).prop_map(|(tenant, gateway, n)| {
        if gateway {
            json!({
                "tenant_id": tenant,
                "message": {"message_type": "chat", "payload": {"prompt": "hello world"},
                            "message_id": format!("m-{n}")},
            })
        } else {
            json!({
                "version": "1",
                "request_id": format!("r-{n}"),
                "tenant_id": tenant,
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "task": {"type": "text.generate", "payload": {"prompt": "hello world"}},
                "constraints": {"user_id": format!("u-{}", n % 7)},
                "metadata": {"source": "fuzz"},
            })
        }
    })
}

/// Any JSON value, a few levels deep, with awkward scalars.
fn any_json() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
        prop::sample::select(vec![
            "1",
            "2",
            "",
            "acme",
            "default",
            "openai",
            "user_id",
            "timeout",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "123e4567-e89b-12d3-a456-426614174000",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "\u{0}",
            "\u{feff}",
            "e\u{301}",
        ])
        .prop_map(Value::from),
        (1usize..70_000).prop_map(|n| Value::from("x".repeat(n))),
    ];
    scalar.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((".{0,12}", inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Paths the request path reads, at any depth.
const PATHS: [&str; 26] = [
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
    "constraints.policy_id",
    "constraints.deadline",
    "constraints.user_id",
    "constraints.current_provider",
    "constraints.status",
    "constraints.retry_attempt",
    "metadata",
    "metadata.policy_id",
    "run_id",
    "flow_id",
    "step_id",
    "idempotency_key",
];

/// One edit of a request.
#[derive(Debug, Clone)]
enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
    /// Wrap the value at the path in `depth` arrays (objects when `objects`).
    Nest(&'static str, usize, bool),
}

/// Values a client could plausibly send at the paths the engine reads.
fn plausible() -> impl Strategy<Value = Edit> {
    prop_oneof![
        prop::sample::select(vec!["default", "nope", "premium", ""])
            .prop_map(|p| Edit::Set("policy_id", json!(p))),
        prop::sample::select(vec!["acme", "globex", "default_tenant", "unknown_tenant"])
            .prop_map(|t| Edit::Set("tenant_id", json!(t))),
        prop_oneof![
            Just(0u64),
            Just(NOW - 1),
            Just(NOW + 60_000),
            Just(u64::MAX)
        ]
        .prop_map(|d| Edit::Set("constraints.deadline", json!(d))),
        prop::sample::select(vec!["openai", "anthropic", "local_llm", "other"])
            .prop_map(|p| Edit::Set("constraints.current_provider", json!(p))),
        prop::sample::select(vec!["timeout", "5xx", "rate_limited", "ok"])
            .prop_map(|s| Edit::Set("constraints.status", json!(s))),
        (0u64..6).prop_map(|n| Edit::Set("constraints.retry_attempt", json!(n))),
        "[a-z0-9]{1,6}".prop_map(|k| Edit::Set("idempotency_key", json!(k))),
        // The inputs of a fallback rule, together.
        (
            prop::sample::select(vec!["openai", "anthropic", "local_llm"]),
            prop::sample::select(vec!["timeout", "5xx", "rate_limited"]),
            0u64..4,
        )
            .prop_map(|(provider, status, attempt)| Edit::Set(
                "constraints",
                json!({"current_provider": provider, "status": status, "retry_attempt": attempt}),
            )),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    let path = prop::sample::select(PATHS.to_vec());
    prop_oneof![
        4 => plausible(),
        4 => (path.clone(), any_json()).prop_map(|(p, v)| Edit::Set(p, v)),
        2 => path.clone().prop_map(Edit::Remove),
        1 => (path, 1usize..400, any::<bool>()).prop_map(|(p, d, o)| Edit::Nest(p, d, o)),
    ]
}

fn apply(request: &mut Value, edit: &Edit) {
    let (path, op) = match edit {
        Edit::Set(path, _) | Edit::Remove(path) | Edit::Nest(path, _, _) => (*path, edit),
    };
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().unwrap_or(path);
    let mut node = request;
    for segment in segments {
        if !node[segment].is_object() {
            node[segment] = json!({});
        }
        node = &mut node[segment];
    }
    let Some(map) = node.as_object_mut() else {
        return;
    };
    match op {
        Edit::Set(_, value) => {
            map.insert(last.to_owned(), value.clone());
        }
        Edit::Remove(_) => {
            map.remove(last);
        }
        Edit::Nest(_, depth, objects) => {
            let mut value = map.remove(last).unwrap_or(Value::Null);
            for _ in 0..*depth {
                value = if *objects {
                    json!({ "n": value })
                } else {
                    json!([value])
                };
            }
            map.insert(last.to_owned(), value);
        }
    }
}

/// A byte-level mutation, as a fuzzer's mutator makes them.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match mutation {
        Mutation::Flip(at, bits) => bytes[at % len] ^= bits,
        Mutation::Insert(at, new) => {
            let at = at % (len + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        Mutation::Delete(at, n) => {
            let at = at % len;
            bytes.drain(at..(at + n).min(len));
        }
        Mutation::Duplicate(at, n) => {
            let at = at % len;
            let chunk = bytes[at..(at + n).min(len)].to_vec();
            bytes.splice(at..at, chunk);
        }
        Mutation::Truncate(at) => bytes.truncate(at % len),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_decide_arbitrary_bytes(body in vec(any::<u8>(), 0..2048), setup in setup()) {
        target_decide(&body, &setup)?;
    }

    #[test]
    fn fuzz_decide_object_shaped_bytes(
        tail in vec(any::<u8>(), 0..512),
        setup in setup(),
    ) {
        let mut body = b"{\"request_id\":".to_vec();
        body.extend(tail);
        target_decide(&body, &setup)?;
    }

    #[test]
    fn fuzz_decide_near_valid_requests(
        request in valid_request(),
        edits in vec(edit(), 0..4),
        mutations in prop_oneof![3 => Just(Vec::new()), 1 => vec(mutation(), 1..3)],
        setup in setup(),
    ) {
        let mut request = request;
        for edit in &edits {
            apply(&mut request, edit);
        }
        let mut body = serde_json::to_vec(&request).expect("serialisable");
        for m in &mutations {
            mutate(&mut body, m);
        }
        target_decide(&body, &setup)?;
    }

    #[test]
    fn fuzz_decide_valid_requests_are_decided(request in valid_request(), seed in any::<u64>()) {
        // The control: without edits, every request gets a decision on the open router.
        let body = serde_json::to_vec(&request).expect("serialisable");
        let setup = Setup { header: None, now_ms: NOW, limits: IntakeLimits::default(), seed };
        target_decide(&body, &setup)?;
        let handled = shared_routers()[0].handle(&body, None, NOW, &mut SmallRng::seed_from_u64(seed));
        let reply = check_reply(&handled.reply)?;
        prop_assert_eq!(&reply["ok"], &json!(true), "{}", reply);
    }
}
