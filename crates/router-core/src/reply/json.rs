//! The few JSON writers the success reply needs, each writing exactly what `serde_json`
//! writes for the same value (the tests compare them), without its serializer machinery.

use crate::json_bytes::first_special;

/// Writes `text` as a JSON string. Text with nothing to escape (the usual case: ids,
/// provider and policy names) is copied as it is; anything else goes through `serde_json`,
/// so the escaping is always its own.
pub(super) fn string(out: &mut Vec<u8>, text: &str) {
    if first_special(text.as_bytes()).is_none() {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing a &str to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Writes an unsigned integer.
pub(super) fn unsigned(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Writes a whole number as a JSON integer (`850`, not `850.0`) and any other value as
/// `serde_json` writes an `f64` (`null` when not finite).
pub(super) fn whole_or_float(out: &mut Vec<u8>, value: f64) {
    // Within ±2^53 every whole f64 converts to i64 exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if value.fract() == 0.0 && value.abs() <= EXACT {
        out.extend_from_slice(itoa::Buffer::new().format(value as i64).as_bytes());
    } else {
        let _ = serde_json::to_writer(&mut *out, &value);
    }
}
