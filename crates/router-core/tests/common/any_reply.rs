//! What every reply must be, whatever the input (CONTRACT §3), for the property suites
//! (`properties`, `draw_properties`, `hostile_json`): JSON with the right envelope, codes
//! from the contract, never `internal`, and small.

use proptest::prelude::*;
use router_core::Handled;
use serde_json::Value;

/// `error.code` values of CONTRACT §3.
pub const CODES: [&str; 7] = [
    "invalid_request",
    "unauthorized",
    "policy_not_found",
    "decision_failed",
    "deadline_exceeded",
    "overloaded",
    "internal",
];
/// `intake_error_code` values of CONTRACT §3.
pub const INTAKE_CODES: [&str; 5] = [
    "SCHEMA_VALIDATION_FAILED",
    "VERSION_UNSUPPORTED",
    "CORRELATION_FIELDS_INVALID",
    "TENANT_FORBIDDEN",
    "PAYLOAD_TOO_SMALL",
];
/// Decision reasons with their contract priority.
pub const REASONS: [(&str, u64); 5] = [
    ("sticky", 100),
    ("weighted", 50),
    ("retry", 50),
    ("fallback", 25),
    ("circuit_breaker_fallback", 20),
];

/// Every reply: JSON, `ok` a bool, a `context.request_id` that is null or a string, the
/// right envelope for `ok`, codes from the contract, never `internal`, and small.
pub fn check(handled: &Handled) -> Result<Value, TestCaseError> {
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
