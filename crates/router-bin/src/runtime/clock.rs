//! Wall-clock time as router-core takes it: epoch milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current time in epoch milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the first call in this process, from the monotonic clock: the time
/// base of the backpressure signals.
pub fn monotonic_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(std::time::Instant::now);
    origin.elapsed().as_millis() as u64
}
