//! Reply envelopes (CONTRACT §3), encoded straight to bytes: the success reply by a writer
//! of its own ([`success`]), error replies through `serde`.

mod json;
mod success;
#[cfg(test)]
mod tests;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::decision::Decision;
use crate::error::{ErrorCode, IntakeErrorCode, Rejection};

/// `context` of every reply.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ReplyContext<'a> {
    /// The request's id, `null` when it could not be read.
    pub request_id: Option<&'a str>,
    /// The request's trace id, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
}

/// The success envelope as `serde` writes it: the reference the success writer is tested
/// against.
#[cfg(test)]
#[derive(Serialize)]
struct Success<'a> {
    ok: bool,
    decision: &'a Decision,
    context: ReplyContext<'a>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replayed: bool,
}

#[derive(Serialize)]
struct Failure<'a> {
    ok: bool,
    error: ErrorBody<'a>,
    context: ReplyContext<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    intake_error_code: Option<IntakeErrorCode>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    details: &'a Map<String, Value>,
}

/// `{"ok": true, "decision": ..., "context": ...}`; `replayed` is added only when true.
pub fn encode_success(decision: &Decision, context: ReplyContext<'_>, replayed: bool) -> Vec<u8> {
    success::encode(decision, context, replayed)
}

/// `{"ok": false, "error": ..., "context": ...}`.
pub fn encode_error(rejection: &Rejection, context: ReplyContext<'_>) -> Vec<u8> {
    encode(&Failure {
        ok: false,
        error: ErrorBody {
            code: rejection.code,
            message: &rejection.message,
            intake_error_code: rejection.intake,
            details: &rejection.details,
        },
        context,
    })
}

fn encode(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(384);
    match serde_json::to_writer(&mut out, value) {
        Ok(()) => out,
        // Only possible with a non-string map key or a failing Serialize impl, neither of
        // which these types have; answer with a fixed internal error rather than nothing.
        Err(_) => br#"{"ok":false,"error":{"code":"internal","message":"reply encoding failed"},"context":{"request_id":null}}"#.to_vec(),
    }
}
