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

/// The `decision_id` of a reply: `d1-<issued ms, hex>-<random, 8 hex>-<policy id, hex>`. It
/// names the policy and the time of the decision, so that any router of a fleet can tie a
/// feedback message carrying it to the breakers of that policy and tell a late report from
/// a probe result, without shared state.
pub fn decision_id(issued_ms: u64, random: u32, policy_id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(32 + 2 * policy_id.len());
    id.push_str("d1-");
    // issued_ms without leading zeros, then the random part in exactly 8 digits.
    let digits = (64 - issued_ms.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        id.push(char::from(HEX[((issued_ms >> (4 * shift)) & 0xf) as usize]));
    }
    id.push('-');
    for shift in (0..8).rev() {
        id.push(char::from(HEX[((random >> (4 * shift)) & 0xf) as usize]));
    }
    id.push('-');
    for byte in policy_id.bytes() {
        id.push(char::from(HEX[usize::from(byte >> 4)]));
        id.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    id
}

/// What a `decision_id` names: (issued ms, policy id); `None` when it is not one.
pub fn parse_decision_id(id: &str) -> Option<(u64, String)> {
    let rest = id.strip_prefix("d1-")?;
    let mut parts = rest.splitn(3, '-');
    let issued = u64::from_str_radix(parts.next()?, 16).ok()?;
    let random = parts.next()?;
    let policy = parts.next()?;
    if random.len() != 8 || policy.is_empty() || policy.len() % 2 != 0 || policy.len() > 512 {
        return None;
    }
    let bytes = (0..policy.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(policy.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some((issued, String::from_utf8(bytes).ok()?))
}

#[cfg(test)]
mod decision_id_tests {
    use super::*;

    #[test]
    fn a_decision_id_names_its_time_and_policy() {
        let id = decision_id(1_764_182_400_000, 0xabc, "default");
        assert_eq!(id, "d1-19ac1771c00-00000abc-64656661756c74");
        assert_eq!(decision_id(0, u32::MAX, "p"), "d1-0-ffffffff-70");
        assert_eq!(
            parse_decision_id(&id),
            Some((1_764_182_400_000, "default".to_owned()))
        );
        let odd = decision_id(1, 2, "polícy-ü.1");
        assert_eq!(parse_decision_id(&odd), Some((1, "polícy-ü.1".to_owned())));
        for bad in [
            "",
            "d1-",
            "d2-1-00000000-64",
            "d1-zz-00000000-64",
            "d1-1-0-64",
            "d1-1-00000000-6",
        ] {
            assert_eq!(parse_decision_id(bad), None, "{bad}");
        }
    }
}
