//! [`Timing`]: the instants that bound one load phase (warm-up, measurement, drain), read by
//! the requesters and by the progress bar.

use std::time::Duration;

use tokio::time::Instant;

/// The instants that bound a phase.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Phase start (warm-up begins).
    pub start: Instant,
    /// Warm-up ends, measurement begins.
    pub measure_start: Instant,
    /// No new request is started (or scheduled) from here.
    pub end: Instant,
    /// Nothing is sent after this; in-flight requests end by their own timeout.
    pub hard_end: Instant,
}

impl Timing {
    /// Timing of a phase starting now.
    pub fn starting_now(warmup: Duration, duration: Duration, request_timeout: Duration) -> Self {
        let start = Instant::now();
        let measure_start = start + warmup;
        let end = measure_start + duration;
        Self {
            start,
            measure_start,
            end,
            hard_end: end + request_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timing_is_ordered() {
        let t = Timing::starting_now(
            Duration::from_secs(2),
            Duration::from_secs(10),
            Duration::from_secs(3),
        );
        assert_eq!(t.measure_start - t.start, Duration::from_secs(2));
        assert_eq!(t.end - t.measure_start, Duration::from_secs(10));
        assert_eq!(t.hard_end - t.end, Duration::from_secs(3));
    }
}
