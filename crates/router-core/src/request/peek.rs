//! [`peek_ids`]: the request and trace ids of a body read without validating it, for the
//! replies that skip the decision path (overload, internal errors).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ids;

use super::model::{is_valid_id, IntakeLimits};
use super::wire::{parse_string, starts_with_object};

/// The ids of a request read without validating it, for replies that skip the decision
/// path (overload, internal errors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeekedIds {
    /// `request_id`, else the gateway's `message.message_id`, when it is a valid id.
    pub request_id: Option<String>,
    /// `trace_id`, when it is a valid trace id.
    pub trace_id: Option<String>,
}

/// Reads only the ids from a body (see [`PeekedIds`]); nothing when it is not a JSON object.
pub fn peek_ids(body: &[u8]) -> PeekedIds {
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(borrow, default)]
        request_id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        trace_id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        message: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct PeekMessage<'a> {
        #[serde(borrow, default)]
        message_id: Option<&'a RawValue>,
    }
    if body.len() > IntakeLimits::default().max_payload || !starts_with_object(body) {
        return PeekedIds::default();
    }
    let Ok(peek) = serde_json::from_slice::<Peek>(body) else {
        return PeekedIds::default();
    };
    let valid_id = |raw: &RawValue| {
        parse_string(raw.get())
            .filter(|id| is_valid_id(id))
            .map(Cow::into_owned)
    };
    let message_id = || {
        let message = peek.message.filter(|m| m.get().starts_with('{'))?;
        let message: PeekMessage = serde_json::from_str(message.get()).ok()?;
        valid_id(message.message_id?)
    };
    PeekedIds {
        request_id: peek.request_id.and_then(valid_id).or_else(message_id),
        trace_id: peek
            .trace_id
            .and_then(|raw| parse_string(raw.get()))
            .filter(|t| ids::is_trace_id(t))
            .map(Cow::into_owned),
    }
}
