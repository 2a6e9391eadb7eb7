//! Shape checks for identifiers: tenant ids, W3C trace ids, UUIDs and ULIDs.

/// `[A-Za-z0-9._-]+`, the tenant id alphabet.
pub fn is_tenant_id(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// 32 lowercase hex digits (a W3C trace id) or a UUID.
pub fn is_trace_id(value: &str) -> bool {
    (value.len() == 32
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        || is_uuid(value)
}

/// `8-4-4-4-12` hex digits, either case.
pub fn is_uuid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// 26 characters of Crockford base32, the first at most `7` (a 128-bit ULID).
pub fn is_ulid(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 26
        && matches!(bytes[0], b'0'..=b'7')
        && bytes.iter().all(|b| {
            let b = b.to_ascii_uppercase();
            b.is_ascii_digit()
                || (b.is_ascii_uppercase() && !matches!(b, b'I' | b'L' | b'O' | b'U'))
        })
}

/// `[a-z0-9_]+`, the provider name alphabet of the policy DSL.
pub fn is_provider_name(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(is_tenant_id("acme.eu_1-x"));
        assert!(!is_tenant_id("acme/eu"));
        assert!(!is_tenant_id(""));
        assert!(is_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!is_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736"));
        assert!(is_trace_id("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_trace_id("123e4567e89b-12d3-a456-426614174000x"));
        assert!(is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert!(!is_ulid("81ARZ3NDEKTSV4RRFFQ69G5FAV"));
        assert!(!is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAU"));
        assert!(is_provider_name("local_llm2"));
        assert!(!is_provider_name("OpenAI"));
    }
}
