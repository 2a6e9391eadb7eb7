//! What intake produces: a validated [`DecideRequest`] (with its [`Payload`] and
//! [`Correlation`]) or a [`RejectedRequest`]; the [`IntakeLimits`] and the fixed limits that
//! decide between them.

use std::borrow::Cow;

use crate::error::Rejection;

use super::context::RoutingContext;

/// Limits applied at intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Bodies larger than this many bytes are rejected before parsing (default 1 MiB).
    pub max_payload: usize,
    /// The compact encoding of an inline `payload` must be at least this long (default 10).
    pub min_payload_size: usize,
}

impl Default for IntakeLimits {
    fn default() -> Self {
        IntakeLimits {
            max_payload: 1024 * 1024,
            min_payload_size: 10,
        }
    }
}

/// The only supported protocol version.
pub const SUPPORTED_VERSION: &str = "1";
/// Longest accepted `request_id` / `idempotency_key`, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest accepted `tenant_id` / `policy_id`, in bytes.
pub const MAX_TENANT_BYTES: usize = 128;
/// Deepest nesting of an inline payload: the limit serde_json applies to the fields it parses.
pub const MAX_PAYLOAD_DEPTH: usize = 128;

/// A request that passed every intake rule. Its identifiers borrow from the body when it
/// gives them without escapes (as callers do), so reading them copies nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideRequest<'a> {
    /// Caller's id of this request.
    pub request_id: Cow<'a, str>,
    /// The tenant whose policy applies.
    pub tenant_id: Cow<'a, str>,
    /// W3C trace id or UUID, echoed in the reply context.
    pub trace_id: Option<Cow<'a, str>>,
    /// `task.type` (or `message.message_type`).
    pub task_type: Cow<'a, str>,
    /// How the task payload was given.
    pub payload: Payload,
    /// The policy to apply (`default` when none is named).
    pub policy_id: Cow<'a, str>,
    /// `constraints` merged with `metadata` (metadata wins) plus `tenant_id`.
    pub context: RoutingContext<'a>,
    /// `run_id`, `flow_id`, `step_id` when given (always all three).
    pub correlation: Option<Correlation>,
    /// Replay key: a repeat of (tenant, key) returns the first decision.
    pub idempotency_key: Option<String>,
}

/// The task payload: a reference or an inline JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `payload_ref`: where the executor finds the payload.
    Ref(String),
    /// `payload`: an inline object; only its compact size is kept.
    Inline {
        /// Bytes of the compact JSON encoding.
        compact_len: usize,
    },
}

/// Run, flow and step identifiers (UUIDs or ULIDs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correlation {
    /// Run identifier.
    pub run_id: String,
    /// Flow identifier.
    pub flow_id: String,
    /// Step identifier.
    pub step_id: String,
}

/// A request rejected at intake, with whatever identifiers could be read for the reply.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRequest {
    /// Why it was rejected.
    pub rejection: Rejection,
    /// `request_id` when it could be read.
    pub request_id: Option<String>,
    /// `trace_id` when it could be read and was valid.
    pub trace_id: Option<String>,
    /// `tenant_id` when it could be read.
    pub tenant_id: Option<String>,
}

/// 1 to [`MAX_ID_BYTES`] bytes: the rule for `request_id`, and for echoing one in a reply.
pub(super) fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES
}
