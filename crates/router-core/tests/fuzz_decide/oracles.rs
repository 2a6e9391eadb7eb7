//! The oracles every reply is held to: the envelope and codes of the contract, a small
//! size, agreement with the `Outcome` the service layer counts, and agreement with
//! `request::decode` on every intake rejection.

use proptest::prelude::*;
use router_core::request::{self, IntakeLimits};
use router_core::Outcome;
use serde_json::{json, Value};

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

/// The envelope every reply must have.
pub fn check_reply(bytes: &[u8]) -> Result<Value, TestCaseError> {
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
pub fn check_outcome(outcome: &Outcome, reply: &Value) -> Result<(), TestCaseError> {
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
        Outcome::AwaitingLease => {
            prop_assert!(
                false,
                "a router counting alone never waits for a lease: {reply}"
            );
        }
    }
    Ok(())
}

/// Intake rejections are exactly those of `request::decode`, with its code and field.
pub fn check_against_decode(
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
                Some(&*decoded.request_id)
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
