//! DecideRequest decoding and validation (CONTRACT §2).
//!
//! [`decode`] takes the raw message body and its `version` header and returns either a
//! validated [`DecideRequest`] or a [`RejectedRequest`] ready to become an error reply. It never
//! panics and never recurses without bound: serde_json caps nesting at 128 levels in the fields
//! it parses and skips ignored fields without recursion; inline payloads, kept as raw text,
//! are checked by a flat scan against [`MAX_PAYLOAD_DEPTH`].

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{IntakeErrorCode, Rejection};
use crate::ids;

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

/// A request that passed every intake rule.
#[derive(Debug, Clone, PartialEq)]
pub struct DecideRequest {
    /// Caller's id of this request.
    pub request_id: String,
    /// The tenant whose policy applies.
    pub tenant_id: String,
    /// W3C trace id or UUID, echoed in the reply context.
    pub trace_id: Option<String>,
    /// `task.type` (or `message.message_type`).
    pub task_type: String,
    /// How the task payload was given.
    pub payload: Payload,
    /// The policy to apply (`default` when none is named).
    pub policy_id: String,
    /// `constraints` merged with `metadata` (metadata wins) plus `tenant_id`.
    pub context: Map<String, Value>,
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

#[derive(Deserialize)]
struct WireTask<'a> {
    #[serde(borrow, default, rename = "type")]
    task_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload_ref: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

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

/// Decodes and validates one request body. `version_header` is the message's `version`
/// header, which wins over the body's `version` field.
pub fn decode(
    body: &[u8],
    version_header: Option<&str>,
    limits: &IntakeLimits,
) -> Result<DecideRequest, Box<RejectedRequest>> {
    let mut ids = KnownIds::default();
    decode_inner(body, version_header, limits, &mut ids).map_err(|rejection| {
        Box::new(RejectedRequest {
            rejection,
            request_id: ids.request_id,
            trace_id: ids.trace_id,
            tenant_id: ids.tenant_id,
        })
    })
}

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
        parse_string(raw)
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
            .and_then(parse_string)
            .filter(|t| ids::is_trace_id(t))
            .map(Cow::into_owned),
    }
}

/// 1 to [`MAX_ID_BYTES`] bytes: the rule for `request_id`, and for echoing one in a reply.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES
}

#[derive(Default)]
struct KnownIds {
    request_id: Option<String>,
    trace_id: Option<String>,
    tenant_id: Option<String>,
}

fn decode_inner(
    body: &[u8],
    version_header: Option<&str>,
    limits: &IntakeLimits,
    known: &mut KnownIds,
) -> Result<DecideRequest, Rejection> {
    use IntakeErrorCode::*;

    if body.len() > limits.max_payload {
        return Err(Rejection::intake(
            SchemaValidationFailed,
            "",
            format!(
                "body is {} bytes, over the limit of {} bytes",
                body.len(),
                limits.max_payload
            ),
        )
        .with_detail("max_payload", limits.max_payload));
    }
    if !starts_with_object(body) {
        return Err(Rejection::intake(
            SchemaValidationFailed,
            "",
            "body must be a JSON object",
        ));
    }
    // JSON text is UTF-8 (RFC 8259 §8.1). serde_json checks that only for the strings it
    // decodes, not for the values of ignored fields, so check the whole body here.
    let text = std::str::from_utf8(body).map_err(|err| {
        Rejection::intake(
            SchemaValidationFailed,
            "",
            format!("body is not valid UTF-8: {err}"),
        )
    })?;
    let wire: WireRequest = serde_json::from_str(text).map_err(|err| {
        Rejection::intake(
            SchemaValidationFailed,
            "",
            format!("body is not a valid request: {err}"),
        )
    })?;

    // The request id first, so that every later rejection (version included) can name the
    // request.
    let top_request_id = wire
        .request_id
        .map(|raw| required_string(raw, "request_id"));
    if let Some(Ok(id)) = &top_request_id {
        if is_valid_id(id) {
            known.request_id = Some(id.clone());
        }
    }

    check_version(version_header, wire.version)?;

    let message = match wire.message {
        Some(raw) => Some(parse_object::<WireMessage>(raw, "message")?),
        None => None,
    };

    let (request_id, id_field) = match (top_request_id, message.as_ref().and_then(|m| m.message_id))
    {
        (Some(id), _) => (id?, "request_id"),
        (None, Some(raw)) => (
            required_string(raw, "message.message_id")?,
            "message.message_id",
        ),
        (None, None) => {
            return Err(Rejection::intake(
                CorrelationFieldsInvalid,
                "request_id",
                "request_id is missing",
            ))
        }
    };
    if !is_valid_id(&request_id) {
        return Err(Rejection::intake(
            CorrelationFieldsInvalid,
            id_field,
            format!("{id_field} must be 1 to {MAX_ID_BYTES} bytes"),
        ));
    }
    if known.request_id.is_none() {
        known.request_id = Some(request_id.clone());
    }

    let tenant_id = match wire.tenant_id {
        Some(raw) => required_string(raw, "tenant_id")?,
        None => {
            return Err(Rejection::intake(
                CorrelationFieldsInvalid,
                "tenant_id",
                "tenant_id is missing",
            ))
        }
    };
    if tenant_id.len() > MAX_TENANT_BYTES || !ids::is_tenant_id(&tenant_id) {
        return Err(Rejection::intake(
            CorrelationFieldsInvalid,
            "tenant_id",
            format!("tenant_id must be 1 to {MAX_TENANT_BYTES} bytes of [A-Za-z0-9._-]"),
        ));
    }
    known.tenant_id = Some(tenant_id.clone());

    let trace_id = match wire.trace_id {
        Some(raw) => {
            let trace_id = required_string(raw, "trace_id")?;
            if !ids::is_trace_id(&trace_id) {
                return Err(Rejection::intake(
                    CorrelationFieldsInvalid,
                    "trace_id",
                    "trace_id must be 32 lowercase hex digits or a UUID",
                ));
            }
            known.trace_id = Some(trace_id.clone());
            Some(trace_id)
        }
        None => None,
    };

    let (task_type, payload) = match (wire.task, message) {
        (Some(_), Some(_)) => {
            return Err(Rejection::intake(
                SchemaValidationFailed,
                "task",
                "give either task or message, not both",
            ))
        }
        (Some(raw), None) => {
            let task: WireTask = parse_object(raw, "task")?;
            let task_type = task_type(task.task_type, "task.type")?;
            let payload = payload(task.payload_ref, task.payload, "task", limits)?;
            (task_type, payload)
        }
        (None, Some(message)) => {
            let task_type = task_type(message.message_type, "message.message_type")?;
            let payload = payload(message.payload_ref, message.payload, "message", limits)?;
            (task_type, payload)
        }
        (None, None) => {
            return Err(Rejection::intake(
                SchemaValidationFailed,
                "task",
                "task is missing (or the gateway's message)",
            ))
        }
    };

    let correlation = correlation(wire.run_id, wire.flow_id, wire.step_id)?;

    let idempotency_key = match wire.idempotency_key {
        Some(raw) => {
            let key = required_string(raw, "idempotency_key")?;
            if key.is_empty() || key.len() > MAX_ID_BYTES {
                return Err(Rejection::intake(
                    SchemaValidationFailed,
                    "idempotency_key",
                    format!("idempotency_key must be 1 to {MAX_ID_BYTES} bytes"),
                ));
            }
            Some(key)
        }
        None => None,
    };

    let mut context = match wire.constraints {
        Some(raw) => parse_object::<Map<String, Value>>(raw, "constraints")?,
        None => Map::new(),
    };
    let metadata = match wire.metadata {
        Some(raw) => Some(parse_object::<Map<String, Value>>(raw, "metadata")?),
        None => None,
    };

    // policy_id, else constraints.policy_id, else metadata.policy_id, else "default" — read
    // before the merge, in which metadata wins.
    let policy_id = match wire.policy_id {
        Some(raw) => required_string(raw, "policy_id")?,
        None => match context_policy_id(&context, "constraints")? {
            Some(id) => id,
            None => match metadata.as_ref() {
                Some(metadata) => context_policy_id(metadata, "metadata")?,
                None => None,
            }
            .unwrap_or_else(|| "default".to_owned()),
        },
    };
    if let Some(metadata) = metadata {
        context.extend(metadata);
    }
    if policy_id.is_empty() || policy_id.len() > MAX_TENANT_BYTES {
        return Err(Rejection::intake(
            SchemaValidationFailed,
            "policy_id",
            format!("policy_id must be 1 to {MAX_TENANT_BYTES} bytes"),
        ));
    }
    context.insert("tenant_id".to_owned(), Value::String(tenant_id.clone()));

    Ok(DecideRequest {
        request_id,
        tenant_id,
        trace_id,
        task_type,
        payload,
        policy_id,
        context,
        correlation,
        idempotency_key,
    })
}

/// `policy_id` of the `constraints` or `metadata` section; `null` counts as absent.
fn context_policy_id(
    section: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, Rejection> {
    match section.get("policy_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(id.clone())),
        Some(_) => {
            let field = format!("{name}.policy_id");
            Err(Rejection::intake(
                IntakeErrorCode::SchemaValidationFailed,
                &field,
                format!("{field} must be a string"),
            ))
        }
    }
}

fn check_version(header: Option<&str>, body: Option<&RawValue>) -> Result<(), Rejection> {
    let unsupported = |shown: &str| {
        Rejection::intake(
            IntakeErrorCode::VersionUnsupported,
            "version",
            format!("version {shown} is not supported; use \"{SUPPORTED_VERSION}\""),
        )
    };
    if let Some(header) = header {
        return match header.trim() {
            SUPPORTED_VERSION => Ok(()),
            other => Err(unsupported(&format!("header {:?}", excerpt(other)))),
        };
    }
    match body {
        None => Ok(()),
        Some(raw) => match parse_string(raw) {
            Some(version) if version == SUPPORTED_VERSION => Ok(()),
            Some(version) => Err(unsupported(&format!("{:?}", excerpt(&version)))),
            None => Err(Rejection::intake(
                IntakeErrorCode::VersionUnsupported,
                "version",
                format!(
                    "version must be the string \"{SUPPORTED_VERSION}\", not {}",
                    excerpt(raw.get())
                ),
            )),
        },
    }
}

/// At most the first 32 characters of `text`, so that an error message quoting the input
/// stays small (a reply larger than the NATS max_payload could not be sent at all).
fn excerpt(text: &str) -> Cow<'_, str> {
    const MAX_CHARS: usize = 32;
    match text.char_indices().nth(MAX_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}...", &text[..end])),
    }
}

fn task_type(raw: Option<&RawValue>, field: &str) -> Result<String, Rejection> {
    let missing = || {
        Rejection::intake(
            IntakeErrorCode::CorrelationFieldsInvalid,
            field,
            format!("{field} is missing"),
        )
    };
    let task_type = required_string(raw.ok_or_else(missing)?, field)?;
    if task_type.is_empty() {
        return Err(missing());
    }
    Ok(task_type)
}

fn payload(
    payload_ref: Option<&RawValue>,
    inline: Option<&RawValue>,
    section: &str,
    limits: &IntakeLimits,
) -> Result<Payload, Rejection> {
    use IntakeErrorCode::*;
    match (payload_ref, inline) {
        (Some(_), Some(_)) => Err(Rejection::intake(
            SchemaValidationFailed,
            &format!("{section}.payload"),
            format!("give exactly one of {section}.payload_ref or {section}.payload"),
        )),
        (None, None) => Err(Rejection::intake(
            SchemaValidationFailed,
            &format!("{section}.payload"),
            format!("{section}.payload_ref or {section}.payload is missing"),
        )),
        (Some(raw), None) => {
            let field = format!("{section}.payload_ref");
            let reference = required_string(raw, &field)?;
            if reference.is_empty() {
                return Err(Rejection::intake(
                    SchemaValidationFailed,
                    &field,
                    format!("{field} is empty"),
                ));
            }
            Ok(Payload::Ref(reference))
        }
        (None, Some(raw)) => {
            let field = || format!("{section}.payload");
            if !raw.get().starts_with('{') {
                let field = field();
                return Err(Rejection::intake(
                    SchemaValidationFailed,
                    &field,
                    format!("{field} must be a JSON object"),
                ));
            }
            let (compact_len, depth) = compact_len(raw.get());
            if depth > MAX_PAYLOAD_DEPTH {
                let field = field();
                return Err(Rejection::intake(
                    SchemaValidationFailed,
                    &field,
                    format!("{field} is nested deeper than {MAX_PAYLOAD_DEPTH} levels"),
                ));
            }
            if compact_len < limits.min_payload_size {
                let field = field();
                return Err(Rejection::intake(
                    PayloadTooSmall,
                    &field,
                    format!(
                        "{field} is {compact_len} bytes, under the minimum of {} bytes",
                        limits.min_payload_size
                    ),
                )
                .with_detail("min_payload_size", limits.min_payload_size));
            }
            Ok(Payload::Inline { compact_len })
        }
    }
}

fn correlation(
    run_id: Option<&RawValue>,
    flow_id: Option<&RawValue>,
    step_id: Option<&RawValue>,
) -> Result<Option<Correlation>, Rejection> {
    let invalid = |field: &str, message: String| {
        Rejection::intake(IntakeErrorCode::CorrelationFieldsInvalid, field, message)
    };
    let (run_id, flow_id, step_id) = match (run_id, flow_id, step_id) {
        (None, None, None) => return Ok(None),
        (Some(run), Some(flow), Some(step)) => (run, flow, step),
        (run, flow, _) => {
            let missing = if run.is_none() {
                "run_id"
            } else if flow.is_none() {
                "flow_id"
            } else {
                "step_id"
            };
            return Err(invalid(
                missing,
                format!("run_id, flow_id and step_id go together: {missing} is missing"),
            ));
        }
    };
    let check = |raw: &RawValue, field: &str| -> Result<String, Rejection> {
        let value = required_string(raw, field)?;
        if ids::is_uuid(&value) || ids::is_ulid(&value) {
            Ok(value)
        } else {
            Err(invalid(field, format!("{field} must be a UUID or a ULID")))
        }
    };
    Ok(Some(Correlation {
        run_id: check(run_id, "run_id")?,
        flow_id: check(flow_id, "flow_id")?,
        step_id: check(step_id, "step_id")?,
    }))
}

fn starts_with_object(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

fn parse_object<'a, T: Deserialize<'a>>(raw: &'a RawValue, field: &str) -> Result<T, Rejection> {
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

fn required_string(raw: &RawValue, field: &str) -> Result<String, Rejection> {
    parse_string(raw).map(Cow::into_owned).ok_or_else(|| {
        Rejection::intake(
            IntakeErrorCode::SchemaValidationFailed,
            field,
            format!("{field} must be a string"),
        )
    })
}

/// A JSON string, borrowed when it has no escapes; `None` for any other JSON type.
fn parse_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(borrowed) => Some(Cow::Borrowed(borrowed)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

/// Length of valid JSON text without insignificant white space, and its deepest nesting of
/// objects and lists (`{}` is 1).
fn compact_len(json: &str) -> (usize, usize) {
    let (mut in_string, mut escaped, mut len) = (false, false, 0);
    let (mut depth, mut deepest) = (0usize, 0usize);
    for byte in json.bytes() {
        if in_string {
            len += 1;
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
            len += 1;
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    (len, deepest)
}
