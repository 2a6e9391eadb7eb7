//! The policy DSL's duration syntax, `^\d+[smh]$` (`30s`, `10m`, `2h`), shared by the sticky
//! TTL and the routing time constants.

/// `^\d+[smh]$` → seconds.
pub(super) fn parse_ttl(ttl: &str) -> Option<u64> {
    let unit = match ttl.as_bytes().last()? {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        _ => return None,
    };
    let digits = &ttl[..ttl.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}
