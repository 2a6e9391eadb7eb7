//! The request as it arrives: its top-level fields, `task` and `message` kept as raw JSON
//! text ([`WireRequest`]), and the readers that turn a raw value into a string or an object,
//! or reject it naming the field.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{IntakeErrorCode, Rejection};

/// The top-level fields of a request body, each kept as raw JSON until its rule reads it.
#[derive(Deserialize)]
pub(super) struct WireRequest<'a> {
    #[serde(borrow, default)]
    pub(super) version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) request_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) tenant_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) trace_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) task: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) policy_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) constraints: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) run_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) flow_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) step_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) idempotency_key: Option<&'a RawValue>,
}

/// The `task` object: its type and its payload (a reference or inline).
#[derive(Deserialize)]
pub(super) struct WireTask<'a> {
    #[serde(borrow, default, rename = "type")]
    pub(super) task_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) payload_ref: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) payload: Option<&'a RawValue>,
}

/// The gateway's `message` object, accepted instead of `task`.
#[derive(Deserialize)]
pub(super) struct WireMessage<'a> {
    #[serde(borrow, default)]
    pub(super) message_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) payload_ref: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub(super) message_id: Option<&'a RawValue>,
}

/// True when the first byte that is not white space opens a JSON object.
pub(super) fn starts_with_object(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// `raw` decoded as the object type `T`, or a rejection naming `field`.
pub(super) fn parse_object<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    field: &str,
) -> Result<T, Rejection> {
    let wrong = || {
        Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            field,
            format!("{field} must be a JSON object"),
        )
    };
    if !raw.get().starts_with('{') {
        return Err(wrong());
    }
    serde_json::from_str(raw.get()).map_err(|err| {
        Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            field,
            format!("{field} is invalid: {err}"),
        )
    })
}

/// `raw` as an owned string, or a rejection naming `field` for any other JSON type.
pub(super) fn required_string(raw: &RawValue, field: &str) -> Result<String, Rejection> {
    parse_string(raw).map(Cow::into_owned).ok_or_else(|| {
        Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            field,
            format!("{field} must be a string"),
        )
    })
}

/// A JSON string, borrowed when it has no escapes; `None` for any other JSON type.
pub(super) fn parse_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    // A raw value is valid JSON: a string without a backslash is exactly the text between
    // its quotes (a control character or a stray quote would not have parsed).
    if let Some(inner) = text.get(1..text.len() - 1) {
        if !inner.as_bytes().contains(&b'\\') {
            return Some(Cow::Borrowed(inner));
        }
    }
    match serde_json::from_str::<&str>(text) {
        Ok(borrowed) => Some(Cow::Borrowed(borrowed)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}
