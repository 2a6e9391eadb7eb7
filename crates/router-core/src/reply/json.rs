//! The few JSON writers the success reply needs, each writing exactly what `serde_json`
//! writes for the same value (the tests compare them), without its serializer machinery.

/// Writes `text` as a JSON string. Text with nothing to escape (the usual case: ids,
/// provider and policy names) is copied as it is; anything else goes through `serde_json`,
/// so the escaping is always its own.
pub(super) fn string(out: &mut Vec<u8>, text: &str) {
    if !needs_escape(text.as_bytes()) {
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

/// True when `bytes` hold a byte JSON escapes: a quote, a backslash or a control character
/// (below 0x20). Eight bytes at a time: a word has such a byte exactly when one of the
/// classic "has a zero byte" / "has a byte less than n" tests fires (both are exact for
/// presence, and bytes from 0x80 up never fire them).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
        if control
            || has_zero(word ^ (ONES * u64::from(b'"')))
            || has_zero(word ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::needs_escape;

    #[test]
    fn finds_every_byte_json_escapes_at_every_position() {
        for len in 0..20 {
            for at in 0..len {
                for byte in 0u8..=255 {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
                    assert_eq!(
                        needs_escape(&text),
                        expected,
                        "byte {byte:#x} at {at} of {len}"
                    );
                }
            }
            assert!(!needs_escape(&vec![b'a'; len]));
        }
    }
}
