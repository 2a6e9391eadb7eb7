//! Generated inputs: valid policy templates and near-valid edits of them, weights (ordinary
//! and overflowing), routing contexts, and files of a policy directory.

use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::store_target::PolicyFile;

/// Valid policies: the contract example, the legacy form, a minimal one.
pub fn valid_policy() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"version": "1.0",
            "providers": [{"name": "openai", "weight": 70, "expected_latency_ms": 850, "expected_cost": 0.012},
                          {"name": "anthropic", "weight": 30}],
            "fallbacks": [{"when": {"status": ["timeout", "5xx"]}, "retry": 2, "to": "anthropic"},
                          {"when": {"status": ["rate_limited"]}, "retry": 0, "to": "local_llm"}],
            "sticky": {"enabled": true, "session_key": "user_id", "ttl": "10m"},
            "circuit_breaker": {"enabled": true, "failure_threshold": 5, "success_threshold": 2,
                                "timeout_ms": 60000, "half_open_max_calls": 3,
                                "error_rate_threshold": 0.5, "error_rate_window_seconds": 60},
            "metadata": {"strategy": "cp1"}}),
        json!({"weights": {"openai": 60, "anthropic": 40},
               "fallback": {"provider": "local_llm", "conditions": ["timeout"]}}),
        json!({"providers": [{"name": "a", "weight": 0.5}, {"name": "b_2", "weight": 0.5}],
               "fallbacks": [{"when": {">=": [{"var": "retry_attempt"}, 3]}, "to": "a"}]}),
    ])
}

/// Values that are nearly right for some policy field.
fn policy_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            json!(0),
            json!(-1),
            json!(10),
            json!(11),
            json!(100),
            json!(0.0),
            json!(-0.0),
            json!(1e308),
            json!(f64::MAX),
            json!(5e-324),
            json!(86400),
            json!(86401),
            json!(1_000_000),
            json!(1_000_001),
            json!("10m"),
            json!("0s"),
            json!("25h"),
            json!("86401s"),
            json!("1d"),
            json!(""),
            json!("openai"),
            json!("Open_AI"),
            json!("local-llm"),
            json!("a b"),
            json!("ü"),
            json!("user_id"),
            json!("\u{0}"),
            json!({}),
            json!([]),
            json!({"var": "a.b"}),
            json!({"==": [1, 1]}),
            json!({"status": ["timeout"]}),
            json!({"in": [{"var": "x"}, [1, 2]]}),
            json!({">": [{"var": ""}, 1]}),
            json!({"==": [1]}),
            json!({"status": {"a": 1}}),
        ]),
        "[a-z0-9_]{0,8}".prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(("[a-z_=<>!]{0,10}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Paths a policy document has.
const POLICY_PATHS: [&str; 30] = [
    "version",
    "providers",
    "providers.0",
    "providers.0.name",
    "providers.0.weight",
    "providers.0.expected_latency_ms",
    "providers.0.expected_cost",
    "providers.1.name",
    "providers.1.weight",
    "providers.2",
    "weights",
    "weights.openai",
    "weights.Open AI",
    "fallbacks",
    "fallbacks.0.when",
    "fallbacks.0.retry",
    "fallbacks.0.to",
    "fallbacks.1",
    "fallback",
    "fallback.provider",
    "fallback.conditions",
    "sticky",
    "sticky.enabled",
    "sticky.session_key",
    "sticky.ttl",
    "sticky.ttl_seconds",
    "circuit_breaker.failure_threshold",
    "circuit_breaker.error_rate_threshold",
    "circuit_breaker.error_rate_window_seconds",
    "metadata",
];

/// Sets `path` in `doc`; numeric segments index lists (appending at the end).
fn set_path(doc: &mut Value, path: &str, value: Value) {
    let segments: Vec<&str> = path.split('.').collect();
    let mut node = doc;
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if let Ok(index) = segment.parse::<usize>() {
            if !node.is_array() {
                *node = json!([]);
            }
            let Some(list) = node.as_array_mut() else {
                return;
            };
            let index = index.min(list.len());
            if index == list.len() {
                list.push(json!({}));
            }
            if last {
                list[index] = value;
                return;
            }
            node = &mut list[index];
        } else {
            if !node.is_object() {
                *node = json!({});
            }
            let Some(map) = node.as_object_mut() else {
                return;
            };
            if last {
                map.insert((*segment).to_owned(), value);
                return;
            }
            node = map.entry((*segment).to_owned()).or_insert(Value::Null);
        }
    }
}

/// A valid template with a few paths set to nearly right values, as JSON text.
pub fn near_valid_policy() -> impl Strategy<Value = String> {
    (
        valid_policy(),
        vec(
            (prop::sample::select(POLICY_PATHS.to_vec()), policy_value()),
            0..4,
        ),
        vec((any::<usize>(), any::<u8>()), 0..2),
    )
        .prop_map(|(mut doc, edits, flips)| {
            for (path, value) in edits {
                set_path(&mut doc, path, value);
            }
            let mut bytes = doc.to_string().into_bytes();
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let len = bytes.len();
                    bytes[at % len] = byte;
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

/// Weights from the subnormal to 1e300: their sum stays finite.
pub fn ordinary_weights() -> impl Strategy<Value = Vec<f64>> {
    let weight = prop_oneof![
        Just(5e-324),
        Just(1e-300),
        0.0f64..1.0,
        1.0f64..100.0,
        1.0f64..1e300,
    ];
    vec(weight, 2..5)
}

/// Weights up to f64::MAX: accepted by the DSL (finite, >= 0), but their sum overflows.
pub fn overflowing_weights() -> impl Strategy<Value = Vec<f64>> {
    let weight = prop_oneof![Just(1e308), Just(f64::MAX), Just(1.7e308), 1e307f64..1e308];
    (vec(weight, 2..5), 0.0f64..1.0).prop_map(|(mut weights, small)| {
        weights.push(small);
        weights
    })
}

/// Routing contexts: sticky keys, fallback inputs, deadlines, wrong types.
pub fn context() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop::sample::select(vec![
        "user_id",
        "status",
        "current_provider",
        "retry_attempt",
        "deadline",
        "x",
    ]);
    vec((key, policy_value()), 0..4).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    })
}

/// One file of a policy directory: a tenant, a policy name and near-valid or arbitrary bytes.
pub fn policy_file() -> impl Strategy<Value = PolicyFile> {
    let tenant = prop_oneof![
        4 => prop::sample::select(vec!["acme", "globex", "t.1", "a-b_c"]).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9 ._!-]{1,8}".prop_filter("not . or ..", |t| !t.trim_matches('.').is_empty()),
    ];
    let policy =
        prop::sample::select(vec!["default", "p1", "premium", "x y"]).prop_map(str::to_owned);
    let bytes = prop_oneof![
        3 => near_valid_policy().prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..256),
    ];
    (tenant, policy, bytes).prop_map(|(tenant, policy, bytes)| PolicyFile {
        tenant,
        policy,
        bytes,
    })
}
