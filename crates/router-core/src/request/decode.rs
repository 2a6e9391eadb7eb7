//! [`decode`]: the intake rules of CONTRACT §2 in order, from the body size to the routing
//! context, turning the wire fields into a [`DecideRequest`].

use std::borrow::Cow;

use serde_json::Value;

use crate::error::{IntakeErrorCode, Rejection};
use crate::ids;

use super::context::RoutingContext;
use super::correlation::correlation;
use super::model::{
    is_valid_id, DecideRequest, IntakeLimits, RejectedRequest, MAX_ID_BYTES, MAX_TENANT_BYTES,
    SUPPORTED_VERSION,
};
use super::payload::payload;
use super::wire::{
    parse_context, parse_string, parse_task, required_string, starts_with_object, string_field,
    Nested, RequestFields, SplitMembers,
};

/// Decodes and validates one request body. `version_header` is the message's `version`
/// header, which wins over the body's `version` field.
pub fn decode<'a>(
    body: &'a [u8],
    version_header: Option<&str>,
    limits: &IntakeLimits,
) -> Result<DecideRequest<'a>, Box<RejectedRequest>> {
    let mut ids = KnownIds::default();
    decode_inner(body, version_header, limits, &mut ids).map_err(|rejection| {
        Box::new(RejectedRequest {
            rejection,
            request_id: ids.request_id.and_then(owned_string),
            trace_id: ids.trace_id.and_then(owned_string),
            tenant_id: ids.tenant_id.and_then(owned_string),
        })
    })
}

/// The identifiers a rejection can name, as their raw JSON: read into strings only when the
/// request is rejected, so that a request that passes copies each of them once.
#[derive(Default)]
struct KnownIds<'a> {
    request_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    tenant_id: Option<&'a str>,
}

fn owned_string(raw: &str) -> Option<String> {
    parse_string(raw).map(Cow::into_owned)
}

fn decode_inner<'a>(
    body: &'a [u8],
    version_header: Option<&str>,
    limits: &IntakeLimits,
    known: &mut KnownIds<'a>,
) -> Result<DecideRequest<'a>, Rejection> {
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
    let mut split = SplitMembers::default();
    let wire = RequestFields::read(text, &mut split).map_err(|err| {
        Rejection::intake(
            SchemaValidationFailed,
            "",
            format!("body is not a valid request: {err}"),
        )
    })?;

    // The request id first, so that every later rejection (version included) can name the
    // request.
    let top_request_id = wire.request_id.map(|raw| string_field(raw, "request_id"));
    if let (Some(Ok(id)), Some(raw)) = (&top_request_id, wire.request_id) {
        if is_valid_id(id) {
            known.request_id = Some(raw);
        }
    }

    check_version(version_header, wire.version)?;

    let message = match wire.message {
        Some(raw) => Some(parse_task(raw, split.of(Nested::Message), "message", true)?),
        None => None,
    };

    let (request_id, id_field, id_raw) =
        match (top_request_id, message.as_ref().and_then(|m| m.message_id)) {
            (Some(id), _) => (id?, "request_id", wire.request_id),
            (None, Some(raw)) => (
                string_field(raw, "message.message_id")?,
                "message.message_id",
                Some(raw),
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
        known.request_id = id_raw;
    }

    let Some(tenant_raw) = wire.tenant_id else {
        return Err(Rejection::intake(
            CorrelationFieldsInvalid,
            "tenant_id",
            "tenant_id is missing",
        ));
    };
    let tenant_id = string_field(tenant_raw, "tenant_id")?;
    if tenant_id.len() > MAX_TENANT_BYTES || !ids::is_tenant_id(&tenant_id) {
        return Err(Rejection::intake(
            CorrelationFieldsInvalid,
            "tenant_id",
            format!("tenant_id must be 1 to {MAX_TENANT_BYTES} bytes of [A-Za-z0-9._-]"),
        ));
    }
    known.tenant_id = Some(tenant_raw);

    let trace_id = match wire.trace_id {
        Some(raw) => {
            let trace_id = string_field(raw, "trace_id")?;
            if !ids::is_trace_id(&trace_id) {
                return Err(Rejection::intake(
                    CorrelationFieldsInvalid,
                    "trace_id",
                    "trace_id must be 32 lowercase hex digits or a UUID",
                ));
            }
            known.trace_id = Some(raw);
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
            let task = parse_task(raw, split.of(Nested::Task), "task", false)?;
            let task_type = task_type(task.task_type, "task.type")?;
            let payload = payload(task.payload_ref, task.payload, "task", limits)?;
            (task_type, payload)
        }
        (None, Some(message)) => {
            let task_type = task_type(message.task_type, "message.message_type")?;
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
        Some(raw) => parse_context(raw, split.of(Nested::Constraints), "constraints")?,
        None => RoutingContext::new(),
    };
    let metadata = match wire.metadata {
        Some(raw) => Some(parse_context(raw, split.of(Nested::Metadata), "metadata")?),
        None => None,
    };

    // policy_id, else constraints.policy_id, else metadata.policy_id, else "default" — read
    // before the merge, in which metadata wins.
    let policy_id = match wire.policy_id {
        Some(raw) => string_field(raw, "policy_id")?,
        None => match context_policy_id(&context, "constraints")? {
            Some(id) => Cow::Owned(id),
            None => match metadata.as_ref() {
                Some(metadata) => context_policy_id(metadata, "metadata")?.map(Cow::Owned),
                None => None,
            }
            .unwrap_or(Cow::Borrowed("default")),
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
    context.insert_raw(Cow::Borrowed("tenant_id"), tenant_raw);

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
    section: &RoutingContext<'_>,
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

fn check_version(header: Option<&str>, body: Option<&str>) -> Result<(), Rejection> {
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
                    excerpt(raw)
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

fn task_type<'a>(raw: Option<&'a str>, field: &str) -> Result<Cow<'a, str>, Rejection> {
    let missing = || {
        Rejection::intake(
            IntakeErrorCode::CorrelationFieldsInvalid,
            field,
            format!("{field} is missing"),
        )
    };
    let task_type = string_field(raw.ok_or_else(missing)?, field)?;
    if task_type.is_empty() {
        return Err(missing());
    }
    Ok(task_type)
}
