//! The task payload: exactly one of `payload_ref` or an inline `payload` object, the inline
//! one measured by a flat scan (compact size, nesting depth) against the intake limits.

use serde_json::value::RawValue;

use crate::error::{IntakeErrorCode, Rejection};

use super::model::{IntakeLimits, Payload, MAX_PAYLOAD_DEPTH};
use super::wire::required_string;

/// The payload of `section` (`task` or `message`): exactly one of `payload_ref` and an
/// inline `payload` object within the nesting and size limits.
pub(super) fn payload(
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
