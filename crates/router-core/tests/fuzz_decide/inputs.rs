//! Near-valid requests: valid ones (the task form or the gateway's message form), edited at
//! the paths the request path reads, then maybe mutated byte-wise the way a fuzzer mutates.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::target::NOW;

/// A valid request: the task form or the gateway's message form.
pub fn valid_request() -> impl Strategy<Value = Value> {
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
pub enum Edit {
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

/// Any edit: a plausible value, arbitrary JSON at a path, a removal, or deep nesting.
pub fn edit() -> impl Strategy<Value = Edit> {
    let path = prop::sample::select(PATHS.to_vec());
    prop_oneof![
        4 => plausible(),
        4 => (path.clone(), any_json()).prop_map(|(p, v)| Edit::Set(p, v)),
        2 => path.clone().prop_map(Edit::Remove),
        1 => (path, 1usize..400, any::<bool>()).prop_map(|(p, d, o)| Edit::Nest(p, d, o)),
    ]
}

/// Applies `edit` to `request` (objects are created on the way to its path).
pub fn apply(request: &mut Value, edit: &Edit) {
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
pub enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

/// Any byte-level mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Applies `mutation` to `bytes` (positions wrap around the length).
pub fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
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
