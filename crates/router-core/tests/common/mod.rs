//! Helpers shared by the integration tests: a router loaded with the shipped policies, a
//! valid base request, small edits of it, and reply parsing; `intake_table` holds the
//! table of rules the intake suites share, `any_reply` what every reply must be.

#![allow(dead_code)] // each test binary uses a different subset

pub mod any_reply;
pub mod intake_table;

use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use router_core::{Handled, Policy, Router, RouterSettings};
use serde_json::{json, Value};

/// A fixed "now" (epoch ms) for tests that do not care about time.
pub const NOW: u64 = 1_764_182_400_000;

/// `config/policies` of the repository.
pub fn policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/policies")
}

/// A router with `config/policies` loaded (acme, globex, default_tenant).
pub fn router() -> Router {
    router_with(RouterSettings::default())
}

/// A router with these settings and `config/policies` loaded.
pub fn router_with(settings: RouterSettings) -> Router {
    let router = Router::new(settings);
    let report = router
        .policies()
        .load_dir(&policy_dir())
        .expect("config/policies is readable");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.loaded, 3);
    router
}

/// Adds (or replaces) one policy given as JSON.
pub fn upsert(router: &Router, tenant: &str, policy_id: &str, doc: Value) {
    let policy = Policy::from_value(&doc, tenant, policy_id).expect("test policy is valid");
    router.policies().upsert(policy);
}

/// A router with the shipped policies and `doc` as acme's policy `policy_id`.
pub fn acme_with(policy_id: &str, doc: Value) -> Router {
    let router = router();
    upsert(&router, "acme", policy_id, doc);
    router
}

/// `base()` under acme's policy `policy_id`.
pub fn acme_request(policy_id: &str) -> Value {
    set(base(), "policy_id", json!(policy_id))
}

/// A deterministic random source.
pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

/// A valid request for tenant `acme`.
pub fn base() -> Value {
    json!({
        "version": "1",
        "request_id": "r-1",
        "tenant_id": "acme",
        "task": {"type": "chat", "payload": {"prompt": "hello"}}
    })
}

/// `default_tenant/default` (openai 70 / anthropic 30, sticky on `user_id` for 10 minutes).
pub fn dt() -> Value {
    base_for("default_tenant")
}

/// `request` with the session key `metadata.user_id` set to `id`.
pub fn user(request: Value, id: &str) -> Value {
    set(request, "metadata.user_id", json!(id))
}

/// `base()` for another tenant.
pub fn base_for(tenant: &str) -> Value {
    let mut request = base();
    request["tenant_id"] = json!(tenant);
    request
}

/// Sets `path` (dot separated; objects are created on the way) to `value`.
pub fn set(mut request: Value, path: &str, value: Value) -> Value {
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().expect("non-empty path");
    let mut node = &mut request;
    for segment in segments {
        if !node.get(segment).is_some_and(Value::is_object) {
            node[segment] = json!({});
        }
        node = &mut node[segment];
    }
    node[last] = value;
    request
}

/// Removes `path` (dot separated).
pub fn del(mut request: Value, path: &str) -> Value {
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().expect("non-empty path");
    let mut node = &mut request;
    for segment in segments {
        node = &mut node[segment];
    }
    node.as_object_mut()
        .expect("parent is an object")
        .remove(last)
        .expect("path exists");
    request
}

/// Encodes a JSON value as request bytes.
pub fn bytes(request: &Value) -> Vec<u8> {
    serde_json::to_vec(request).expect("serialisable")
}

/// Parses a reply and checks the envelope every reply must have.
pub fn parse(handled: &Handled) -> Value {
    let reply: Value = serde_json::from_slice(&handled.reply).unwrap_or_else(|err| {
        panic!(
            "reply is not JSON ({err}): {}",
            String::from_utf8_lossy(&handled.reply)
        )
    });
    assert!(reply["ok"].is_boolean(), "reply without ok: {reply}");
    assert!(
        reply["context"].is_object(),
        "reply without context: {reply}"
    );
    reply
}

/// Sends raw bytes; returns the parsed reply.
pub fn send_raw(router: &Router, body: &[u8], header: Option<&str>, now: u64) -> Value {
    parse(&router.handle(body, header, now, &mut rng(1)))
}

/// Sends a JSON request at `now`; returns the parsed reply.
pub fn send_at(router: &Router, request: &Value, now: u64) -> Value {
    send_raw(router, &bytes(request), None, now)
}

/// Sends a JSON request with a given random source.
pub fn send_rng(router: &Router, request: &Value, now: u64, rng: &mut SmallRng) -> Value {
    parse(&router.handle(&bytes(request), None, now, rng))
}

/// Sends a JSON request at [`NOW`]; returns the parsed reply.
pub fn send(router: &Router, request: &Value) -> Value {
    send_at(router, request, NOW)
}

/// The provider of a success reply; panics with the reply otherwise.
pub fn provider(reply: &Value) -> &str {
    assert_eq!(reply["ok"], true, "expected a decision: {reply}");
    reply["decision"]["provider_id"]
        .as_str()
        .expect("provider_id is a string")
}

/// The reason of a success reply.
pub fn reason(reply: &Value) -> &str {
    assert_eq!(reply["ok"], true, "expected a decision: {reply}");
    reply["decision"]["reason"]
        .as_str()
        .expect("reason is a string")
}

/// The error code of an error reply.
pub fn code(reply: &Value) -> &str {
    assert_eq!(reply["ok"], false, "expected an error: {reply}");
    reply["error"]["code"].as_str().expect("code is a string")
}

/// A feedback message body.
pub fn feedback(tenant: &str, provider: &str, outcome: &str) -> Vec<u8> {
    bytes(
        &json!({"tenant_id": tenant, "provider_id": provider, "outcome": outcome, "latency_ms": 12.5}),
    )
}
