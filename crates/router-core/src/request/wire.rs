//! The request as it arrives: its top-level fields and those of `task` / `message`, each
//! kept as raw JSON text ([`RequestFields`], [`TaskFields`]), and the readers that turn a
//! raw value into a string or an object, or reject it naming the field.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{IntakeErrorCode, Rejection};

use super::context::RoutingContext;
use super::scan;

/// The top-level fields of a request body, each kept as raw JSON text until its rule reads
/// it.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RequestFields<'a> {
    pub(super) version: Option<&'a str>,
    pub(super) request_id: Option<&'a str>,
    pub(super) tenant_id: Option<&'a str>,
    pub(super) trace_id: Option<&'a str>,
    pub(super) task: Option<&'a str>,
    pub(super) message: Option<&'a str>,
    pub(super) policy_id: Option<&'a str>,
    pub(super) constraints: Option<&'a str>,
    pub(super) metadata: Option<&'a str>,
    pub(super) run_id: Option<&'a str>,
    pub(super) flow_id: Option<&'a str>,
    pub(super) step_id: Option<&'a str>,
    pub(super) idempotency_key: Option<&'a str>,
}

/// The `task` object (its type and payload), or the gateway's `message` accepted instead:
/// raw JSON text of each field.
#[derive(Debug, Default, PartialEq)]
pub(super) struct TaskFields<'a> {
    /// `task.type` or `message.message_type`.
    pub(super) task_type: Option<&'a str>,
    pub(super) payload_ref: Option<&'a str>,
    pub(super) payload: Option<&'a str>,
    /// `message.message_id` (a `task` has none).
    pub(super) message_id: Option<&'a str>,
}

/// The members of `task`, `message`, `constraints` and `metadata`, split from a body by the
/// same scan that found its top-level fields ([`RequestFields::read`]), so that their readers
/// need not scan them again. Empty when `serde_json` read the body.
#[derive(Debug, Default)]
pub(super) struct SplitMembers<'a> {
    members: scan::Members<'a>,
    /// The range of `members` each [`Nested`] object holds, when it was split.
    ranges: [Option<Range<usize>>; 4],
}

/// The request objects whose members the body's scan splits off.
#[derive(Debug, Clone, Copy)]
pub(super) enum Nested {
    Task,
    Message,
    Constraints,
    Metadata,
}

impl Nested {
    /// The object a top-level member of this name holds.
    fn named(key: &str) -> Option<Self> {
        match key {
            "task" => Some(Nested::Task),
            "message" => Some(Nested::Message),
            "constraints" => Some(Nested::Constraints),
            "metadata" => Some(Nested::Metadata),
            _ => None,
        }
    }
}

impl<'a> SplitMembers<'a> {
    /// The members of `object`, when the scan split it.
    pub(super) fn of(&self, object: Nested) -> Option<&[(&'a str, &'a str)]> {
        let range = self.ranges[object as usize].clone()?;
        self.members.get(range)
    }
}

impl<'a> RequestFields<'a> {
    /// The fields of a body: one scan ([`scan`]) when the body is plain JSON, which also
    /// splits its objects into their members (into `split`, left empty otherwise), else
    /// `serde_json`, whose error names what is wrong.
    pub(super) fn read(
        text: &'a str,
        split: &mut SplitMembers<'a>,
    ) -> Result<Self, serde_json::Error> {
        match Self::scanned(text, split) {
            Some(fields) => Ok(fields),
            None => {
                *split = SplitMembers::default();
                serde_json::from_str::<WireRequest>(text).map(Into::into)
            }
        }
    }

    /// The fields as [`scan`] finds them (the objects split into `split`); `None` when it
    /// gives up.
    fn scanned(text: &'a str, split: &mut SplitMembers<'a>) -> Option<Self> {
        let mut fields = RequestFields::default();
        let splits = |key: &str| Nested::named(key).is_some();
        scan::object_members_split(text, &mut split.members, splits, |key, value, members| {
            if let Some(object) = Nested::named(key) {
                split.ranges[object as usize] = members;
            }
            let slot = match key {
                "version" => &mut fields.version,
                "request_id" => &mut fields.request_id,
                "tenant_id" => &mut fields.tenant_id,
                "trace_id" => &mut fields.trace_id,
                "task" => &mut fields.task,
                "message" => &mut fields.message,
                "policy_id" => &mut fields.policy_id,
                "constraints" => &mut fields.constraints,
                "metadata" => &mut fields.metadata,
                "run_id" => &mut fields.run_id,
                "flow_id" => &mut fields.flow_id,
                "step_id" => &mut fields.step_id,
                "idempotency_key" => &mut fields.idempotency_key,
                _ => return Some(()),
            };
            fill(slot, value)
        })?;
        Some(fields)
    }
}

impl<'a> TaskFields<'a> {
    /// The fields of a `task` (`message` false) or `message` object, as
    /// [`RequestFields::read`] reads a body.
    pub(super) fn read(text: &'a str, message: bool) -> Result<Self, serde_json::Error> {
        match (Self::scanned(text, message), message) {
            (Some(fields), _) => Ok(fields),
            (None, false) => serde_json::from_str::<WireTask>(text).map(Into::into),
            (None, true) => serde_json::from_str::<WireMessage>(text).map(Into::into),
        }
    }

    /// The fields as [`scan`] finds them; `None` when it gives up.
    fn scanned(text: &'a str, message: bool) -> Option<Self> {
        let mut fields = TaskFields::default();
        scan::object_members(text, |key, value| fields.take(key, value, message))?;
        Some(fields)
    }

    /// The fields among `members`, split from the body ([`SplitMembers`]); `None` for what
    /// [`TaskFields::scanned`] leaves to `serde_json`.
    fn from_split(members: &[(&'a str, &'a str)], message: bool) -> Option<Self> {
        let mut fields = TaskFields::default();
        for (key, value) in members {
            fields.take(key, value, message)?;
        }
        Some(fields)
    }

    /// Keeps the member `key` when it is one of the fields.
    fn take(&mut self, key: &str, value: &'a str, message: bool) -> Option<()> {
        let type_key = if message { "message_type" } else { "type" };
        let slot = match key {
            "payload_ref" => &mut self.payload_ref,
            "payload" => &mut self.payload,
            "message_id" if message => &mut self.message_id,
            key if key == type_key => &mut self.task_type,
            _ => return Some(()),
        };
        fill(slot, value)
    }
}

/// Fills a field seen for the first time. A field named twice (which `serde_json` refuses)
/// or given as `null` (which it reads as absent) is left to `serde_json`.
fn fill<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Option<()> {
    if slot.is_some() || value == "null" {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// The top-level fields as `serde_json` reads them.
#[derive(Deserialize)]
struct WireRequest<'a> {
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    request_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tenant_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    trace_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    task: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
    #[serde(borrow, default)]
    policy_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    constraints: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    run_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    flow_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    step_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    idempotency_key: Option<&'a RawValue>,
}

impl<'a> From<WireRequest<'a>> for RequestFields<'a> {
    fn from(wire: WireRequest<'a>) -> Self {
        let text = |raw: Option<&'a RawValue>| raw.map(RawValue::get);
        RequestFields {
            version: text(wire.version),
            request_id: text(wire.request_id),
            tenant_id: text(wire.tenant_id),
            trace_id: text(wire.trace_id),
            task: text(wire.task),
            message: text(wire.message),
            policy_id: text(wire.policy_id),
            constraints: text(wire.constraints),
            metadata: text(wire.metadata),
            run_id: text(wire.run_id),
            flow_id: text(wire.flow_id),
            step_id: text(wire.step_id),
            idempotency_key: text(wire.idempotency_key),
        }
    }
}

/// The `task` object as `serde_json` reads it.
#[derive(Deserialize)]
struct WireTask<'a> {
    #[serde(borrow, default, rename = "type")]
    task_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload_ref: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

impl<'a> From<WireTask<'a>> for TaskFields<'a> {
    fn from(wire: WireTask<'a>) -> Self {
        TaskFields {
            task_type: wire.task_type.map(RawValue::get),
            payload_ref: wire.payload_ref.map(RawValue::get),
            payload: wire.payload.map(RawValue::get),
            message_id: None,
        }
    }
}

/// The gateway's `message` object as `serde_json` reads it.
#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(borrow, default)]
    message_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload_ref: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message_id: Option<&'a RawValue>,
}

impl<'a> From<WireMessage<'a>> for TaskFields<'a> {
    fn from(wire: WireMessage<'a>) -> Self {
        TaskFields {
            task_type: wire.message_type.map(RawValue::get),
            payload_ref: wire.payload_ref.map(RawValue::get),
            payload: wire.payload.map(RawValue::get),
            message_id: wire.message_id.map(RawValue::get),
        }
    }
}

/// True when the first byte that is not white space opens a JSON object.
pub(super) fn starts_with_object(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// `raw` (JSON text) read as a routing-context section (from its `split` members when the
/// body's scan found them), or a rejection naming `field`.
pub(super) fn parse_context<'a>(
    raw: &'a str,
    split: Option<&[(&'a str, &'a str)]>,
    field: &str,
) -> Result<RoutingContext<'a>, Rejection> {
    match split {
        Some(members) => Ok(RoutingContext::from_split(members)),
        None => read_object(raw, field, RoutingContext::read),
    }
}

/// The fields of `task` (`message` false) or of the gateway's `message` object (from its
/// `split` members when the body's scan found them), or a rejection naming `field`.
pub(super) fn parse_task<'a>(
    raw: &'a str,
    split: Option<&[(&'a str, &'a str)]>,
    field: &str,
    message: bool,
) -> Result<TaskFields<'a>, Rejection> {
    match split.and_then(|members| TaskFields::from_split(members, message)) {
        Some(fields) => Ok(fields),
        None => read_object(raw, field, |text| TaskFields::read(text, message)),
    }
}

/// `read(raw)` when `raw` is a JSON object; a rejection naming `field` when it is not one or
/// `read` fails.
fn read_object<'a, T>(
    raw: &'a str,
    field: &str,
    read: impl FnOnce(&'a str) -> Result<T, serde_json::Error>,
) -> Result<T, Rejection> {
    if !raw.starts_with('{') {
        return Err(Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            field,
            format!("{field} must be a JSON object"),
        ));
    }
    read(raw).map_err(|err| {
        Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            field,
            format!("{field} is invalid: {err}"),
        )
    })
}

/// `raw` (JSON text) as an owned string, or a rejection naming `field` for any other JSON
/// type.
pub(super) fn required_string(raw: &str, field: &str) -> Result<String, Rejection> {
    string_field(raw, field).map(Cow::into_owned)
}

/// `raw` (JSON text) as a string borrowed from it when it has no escapes, or a rejection
/// naming `field` for any other JSON type.
pub(super) fn string_field<'a>(raw: &'a str, field: &str) -> Result<Cow<'a, str>, Rejection> {
    parse_string(raw).ok_or_else(|| {
        Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            field,
            format!("{field} must be a string"),
        )
    })
}

/// A JSON string (valid JSON text), borrowed when it has no escapes; `None` for any other
/// JSON type.
pub(super) fn parse_string(text: &str) -> Option<Cow<'_, str>> {
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

#[cfg(test)]
mod tests;
