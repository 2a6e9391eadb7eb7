//! Fuzz targets for the policy DSL, driven by proptest (cargo-fuzz needs a nightly
//! toolchain; only stable Rust exists here). Each target is a plain function, as a
//! libFuzzer target would be.
//!
//! - [`target_parse`]: `Policy::from_json` on any text: never panics; a rejection names a
//!   field; an accepted policy keeps every rule of CONTRACT §4.2 (provider names
//!   `[a-z0-9_]+`, weights finite and >= 0, retry 0–10, sticky TTL 1 s–24 h, breaker
//!   settings in range), and a policy whose input breaks one of those rules is refused.
//! - [`target_decide_with`]: an accepted policy routes: every decision names one of its
//!   providers, and nothing but `decision_failed` / `deadline_exceeded` / the engine's own
//!   field checks comes back for a valid request.
//! - [`target_store`]: `PolicyStore::load_dir` over a directory of fuzzed files: every file
//!   is either loaded or reported, never both, never neither.
//!
//! Cases per target: `PROPTEST_CASES` (default 256).

use std::collections::HashSet;
use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use router_core::{Policy, PolicyStore, Router, RouterSettings};
use serde_json::{json, Map, Value};

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

fn is_provider_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Parses `text`; checks the rejection or the accepted policy. Returns the policy.
fn target_parse(text: &str) -> Result<Option<Policy>, TestCaseError> {
    match Policy::from_json(text, "fuzz", "default") {
        Err(err) => {
            prop_assert!(
                !err.field.is_empty(),
                "a rejection names a field: {:?}",
                err
            );
            prop_assert!(!err.message.is_empty(), "{:?}", err);
            prop_assert_eq!(err.to_string(), format!("{}: {}", err.field, err.message));
            Ok(None)
        }
        Ok(policy) => {
            check_policy(&policy)?;
            if let Ok(input) = serde_json::from_str::<Value>(text) {
                check_input_rules(&input)?;
            }
            Ok(Some(policy))
        }
    }
}

/// Every rule an accepted policy keeps.
fn check_policy(policy: &Policy) -> Result<(), TestCaseError> {
    prop_assert_eq!(&policy.tenant_id, "fuzz");
    prop_assert_eq!(&policy.policy_id, "default");
    let mut names = HashSet::new();
    for provider in &policy.providers {
        prop_assert!(is_provider_name(&provider.name), "{:?}", provider);
        prop_assert!(
            names.insert(provider.name.clone()),
            "listed twice: {:?}",
            provider
        );
        prop_assert!(
            provider.weight.is_finite() && provider.weight >= 0.0,
            "{:?}",
            provider
        );
        for figure in [provider.expected_latency_ms, provider.expected_cost]
            .into_iter()
            .flatten()
        {
            prop_assert!(figure.is_finite() && figure >= 0.0, "{:?}", provider);
        }
    }
    for rule in &policy.fallbacks {
        prop_assert!(is_provider_name(&rule.to), "{:?}", rule);
        prop_assert!(rule.retry <= 10, "{:?}", rule);
    }
    if let Some(fallback) = &policy.legacy_fallback {
        let name = &fallback.to;
        prop_assert!(is_provider_name(name), "{:?}", name);
    }
    if let Some(sticky) = &policy.sticky {
        prop_assert!(!sticky.session_key.is_empty());
        prop_assert!(
            (1_000..=86_400_000).contains(&sticky.ttl_ms),
            "{:?}",
            sticky
        );
    }
    if let Some(breaker) = &policy.circuit_breaker {
        for count in [
            breaker.failure_threshold,
            breaker.success_threshold,
            breaker.half_open_max_calls,
        ] {
            prop_assert!((1..=1_000_000).contains(&count), "{:?}", breaker);
        }
        prop_assert!(breaker.timeout_ms >= 1, "{:?}", breaker);
        prop_assert!(breaker.error_rate_window_ms >= 1_000, "{:?}", breaker);
        prop_assert!(
            breaker.error_rate_threshold > 0.0 && breaker.error_rate_threshold <= 1.0,
            "{:?}",
            breaker
        );
    }
    Ok(())
}

/// Rules read straight from the input: a document breaking one must not have been accepted.
fn check_input_rules(input: &Value) -> Result<(), TestCaseError> {
    if let Some(list) = input.get("providers").and_then(Value::as_array) {
        for entry in list {
            let name = entry.get("name").and_then(Value::as_str).unwrap_or("");
            prop_assert!(is_provider_name(name), "accepted provider {:?}", entry);
            let weight = entry.get("weight").and_then(Value::as_f64);
            prop_assert!(
                weight.is_some_and(|w| w >= 0.0),
                "accepted weight {:?}",
                entry
            );
        }
    }
    if let Some(map) = input.get("weights").and_then(Value::as_object) {
        for (name, weight) in map {
            prop_assert!(is_provider_name(name), "accepted provider {:?}", name);
            prop_assert!(
                weight.as_f64().is_some_and(|w| w >= 0.0),
                "accepted weight {}",
                weight
            );
        }
    }
    if let Some(rules) = input.get("fallbacks").and_then(Value::as_array) {
        for rule in rules {
            let to = rule.get("to").and_then(Value::as_str).unwrap_or("");
            prop_assert!(is_provider_name(to), "accepted fallback {}", rule);
            if let Some(retry) = rule.get("retry") {
                prop_assert!(
                    retry.as_u64().is_some_and(|r| r <= 10),
                    "accepted retry {}",
                    rule
                );
            }
        }
    }
    Ok(())
}

/// Every provider an accepted policy can answer with.
fn named(policy: &Policy) -> Vec<String> {
    policy
        .providers
        .iter()
        .map(|p| p.name.clone())
        .chain(policy.fallbacks.iter().map(|f| f.to.clone()))
        .chain(policy.legacy_fallback.iter().map(|f| f.to.clone()))
        .collect()
}

/// An accepted policy in a router: every reply to a valid request is a decision for one
/// of its providers or one of the errors a policy can lead to.
fn target_decide_with(
    policy: &Policy,
    context: &Map<String, Value>,
    seed: u64,
) -> Result<(), TestCaseError> {
    let router = Router::new(RouterSettings::default());
    router.policies().upsert(policy.clone());
    let body = json!({
        "request_id": "fuzz-1",
        "tenant_id": "fuzz",
        "task": {"type": "chat", "payload": {"prompt": "hello world"}},
        "constraints": context,
    });
    let bytes = serde_json::to_vec(&body).expect("serialisable");
    let mut rng = SmallRng::seed_from_u64(seed);
    // Twice: the second call meets the sticky mapping and breaker state of the first.
    for _ in 0..2 {
        let handled = router.handle(&bytes, None, NOW, &mut rng);
        let reply: Value = serde_json::from_slice(&handled.reply)
            .map_err(|err| TestCaseError::fail(format!("reply is not JSON: {err}")))?;
        if reply["ok"] == true {
            let provider = reply["decision"]["provider_id"].as_str().unwrap_or("");
            if reply["decision"]["reason"] == "retry" {
                // A retry stays on the provider the caller names (CONTRACT §4.3, step 4).
                prop_assert_eq!(
                    context.get("current_provider").and_then(Value::as_str),
                    Some(provider),
                    "{}",
                    reply
                );
            } else {
                prop_assert!(
                    named(policy).iter().any(|p| p == provider),
                    "{} is not in the policy {:?}",
                    provider,
                    policy
                );
            }
        } else {
            let code = reply["error"]["code"].as_str().unwrap_or("");
            let field = reply["error"]["details"]["field"].as_str().unwrap_or("");
            prop_assert!(
                matches!(code, "decision_failed" | "deadline_exceeded")
                    || (code == "invalid_request"
                        && matches!(field, "deadline" | "retry_attempt" | "current_provider")),
                "unexpected reply for an accepted policy: {}",
                reply
            );
        }
    }
    Ok(())
}

/// One fuzzed file of a policy directory.
#[derive(Debug, Clone)]
struct PolicyFile {
    tenant: String,
    policy: String,
    bytes: Vec<u8>,
}

/// `load_dir` over fuzzed files: each one loaded or reported, and every loaded policy
/// keeps the rules.
fn target_store(files: &[PolicyFile]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut written: Vec<(String, String)> = Vec::new();
    let mut bad_tenant_dirs = HashSet::new();
    for file in files {
        let tenant_dir = dir.path().join(&file.tenant);
        std::fs::create_dir_all(&tenant_dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = tenant_dir.join(format!("{}.json", file.policy));
        std::fs::write(&path, &file.bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let key = (file.tenant.clone(), file.policy.clone());
        if !written.contains(&key) {
            written.push(key);
        }
        let valid_tenant = !file.tenant.is_empty()
            && file
                .tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_tenant {
            bad_tenant_dirs.insert(file.tenant.clone());
        }
    }
    let store = PolicyStore::new();
    let report = store
        .load_dir(dir.path())
        .map_err(|e| TestCaseError::fail(format!("an existing directory must load: {e}")))?;
    let files_in_good_dirs = written
        .iter()
        .filter(|(tenant, _)| !bad_tenant_dirs.contains(tenant))
        .count();
    // Errors about a tenant directory sit right under the root; file errors one level down.
    let file_errors = report
        .errors
        .iter()
        .filter(|e| e.path.parent() != Some(dir.path()))
        .count();
    prop_assert_eq!(
        report.loaded + file_errors,
        files_in_good_dirs,
        "every file is loaded or reported: {:?}",
        report
    );
    prop_assert_eq!(report.errors.len() - file_errors, bad_tenant_dirs.len());
    for error in &report.errors {
        prop_assert!(!error.reason.is_empty(), "{:?}", error);
    }
    for (tenant, policy) in &written {
        if let Some(loaded) = store.get(tenant, policy) {
            prop_assert_eq!(&loaded.tenant_id, tenant);
            prop_assert_eq!(&loaded.policy_id, policy);
            let file = Path::new(tenant).join(format!("{policy}.json"));
            let reported = report.errors.iter().any(|e| e.path.ends_with(&file));
            prop_assert!(!reported, "{}/{} both loaded and reported", tenant, policy);
        }
    }
    Ok(())
}

// ---- generators ----------------------------------------------------------------------------

/// Valid policies: the contract example, the legacy form, a minimal one.
fn valid_policy() -> impl Strategy<Value = Value> {
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

fn near_valid_policy() -> impl Strategy<Value = String> {
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
fn ordinary_weights() -> impl Strategy<Value = Vec<f64>> {
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
fn overflowing_weights() -> impl Strategy<Value = Vec<f64>> {
    let weight = prop_oneof![Just(1e308), Just(f64::MAX), Just(1.7e308), 1e307f64..1e308];
    (vec(weight, 2..5), 0.0f64..1.0).prop_map(|(mut weights, small)| {
        weights.push(small);
        weights
    })
}

/// A policy with these weights (providers `p0`, `p1`, ...) routes, over 400 decisions, at
/// least once to every provider holding a quarter of the weight or more.
fn target_weighted_draw(weights: &[f64]) -> Result<(), TestCaseError> {
    let providers: Vec<Value> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| json!({"name": format!("p{i}"), "weight": w}))
        .collect();
    let text = json!({ "providers": providers }).to_string();
    let Some(policy) = target_parse(&text)? else {
        return Err(TestCaseError::fail(format!(
            "finite weights >= 0 refused: {text}"
        )));
    };
    // Shares computed on weights scaled by the largest, so that the sum stays finite.
    let largest = weights.iter().cloned().fold(0.0, f64::max);
    prop_assume!(largest > 0.0);
    let scaled: Vec<f64> = weights.iter().map(|w| w / largest).collect();
    let total: f64 = scaled.iter().sum();
    let router = Router::new(RouterSettings::default());
    router.policies().upsert(policy);
    let body = br#"{"request_id":"w","tenant_id":"fuzz","task":{"type":"t","payload":{"prompt":"hello world"}}}"#;
    let mut seen = HashSet::new();
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..400 {
        let reply: Value = serde_json::from_slice(&router.handle(body, None, NOW, &mut rng).reply)
            .map_err(|err| TestCaseError::fail(format!("reply is not JSON: {err}")))?;
        prop_assert_eq!(&reply["ok"], &json!(true), "{}", reply);
        seen.insert(
            reply["decision"]["provider_id"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    for (i, share) in scaled.iter().map(|w| w / total).enumerate() {
        // P(never drawn in 400 draws | share >= 0.25) < 1e-49.
        if share >= 0.25 {
            prop_assert!(
                seen.contains(&format!("p{i}")),
                "p{} holds {:.0} % of the weight but was never drawn in 400 decisions \
                 (weights {:?}, drawn {:?})",
                i,
                share * 100.0,
                weights,
                seen
            );
        }
    }
    Ok(())
}

/// Routing contexts: sticky keys, fallback inputs, deadlines, wrong types.
fn context() -> impl Strategy<Value = Map<String, Value>> {
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

fn policy_file() -> impl Strategy<Value = PolicyFile> {
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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_policy_arbitrary_bytes(bytes in vec(any::<u8>(), 0..1024)) {
        target_parse(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn fuzz_policy_near_valid_documents(text in near_valid_policy(), context in context(), seed in any::<u64>()) {
        if let Some(policy) = target_parse(&text)? {
            target_decide_with(&policy, &context, seed)?;
        }
    }

    #[test]
    fn fuzz_policy_valid_documents_are_accepted(doc in valid_policy()) {
        // The control: the unedited templates parse.
        let policy = target_parse(&doc.to_string())?;
        prop_assert!(policy.is_some(), "{}", doc);
    }

    #[test]
    fn fuzz_policy_store_loads_or_reports_every_file(files in vec(policy_file(), 1..6)) {
        target_store(&files)?;
    }

    #[test]
    fn fuzz_policy_weighted_draw_reaches_every_heavy_provider(weights in ordinary_weights()) {
        target_weighted_draw(&weights)?;
    }

    // Weights whose sum overflows f64 (e.g. [f64::MAX, 1e300]) must keep their proportions
    // (the draw once made the point infinite, so the last provider always won).
    #[test]
    fn fuzz_policy_weighted_draw_survives_weights_summing_past_f64_max(
        weights in overflowing_weights(),
    ) {
        target_weighted_draw(&weights)?;
    }
}
