//! The task payload: exactly one of `payload_ref` or an inline `payload` object, the inline
//! one measured by a flat scan (compact size, nesting depth) against the intake limits.

use crate::error::{IntakeErrorCode, Rejection};
use crate::json_bytes::first_special;

use super::model::{IntakeLimits, Payload, MAX_PAYLOAD_DEPTH};
use super::wire::required_string;

/// The payload of `section` (`task` or `message`): exactly one of `payload_ref` and an
/// inline `payload` object within the nesting and size limits.
pub(super) fn payload(
    payload_ref: Option<&str>,
    inline: Option<&str>,
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
            if !raw.starts_with('{') {
                let field = field();
                return Err(Rejection::intake(
                    SchemaValidationFailed,
                    &field,
                    format!("{field} must be a JSON object"),
                ));
            }
            let (compact_len, depth) = compact_len(raw);
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
    let bytes = json.as_bytes();
    let (mut len, mut at) = (0, 0);
    let (mut depth, mut deepest) = (0usize, 0usize);
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b' ' | b'\n' | b'\r' | b'\t' => {
                at += 1;
                continue;
            }
            b'"' => {
                let end = string_end(bytes, at + 1);
                len += end - at;
                at = end;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        len += 1;
        at += 1;
    }
    (len, deepest)
}

/// The index just past the quote that closes the string whose contents start at `from`.
fn string_end(bytes: &[u8], mut from: usize) -> usize {
    loop {
        let Some(rest) = bytes.get(from..) else {
            return bytes.len();
        };
        let Some(next) = first_special(rest) else {
            return bytes.len();
        };
        from += next;
        match bytes[from] {
            b'"' => return from + 1,
            b'\\' => from += 2,
            _ => from += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::compact_len;

    #[test]
    fn white_space_counts_only_inside_strings() {
        assert_eq!(compact_len(r#"{}"#), (2, 1));
        assert_eq!(
            compact_len(" { \"a b\" : [ 1 , {\"c\":\"\\\" }\"} ] } "),
            (24, 3)
        );
        assert_eq!(compact_len(r#"{"k":"\\"}"#), (10, 1));
        assert_eq!(
            compact_len(r#"{"long string of more than eight bytes":"é\u00e9"}"#),
            (51, 1)
        );
    }
}
