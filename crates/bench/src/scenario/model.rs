//! Simulated providers: what a call to each would cost at a given second of a scenario.
//! Nothing sleeps: the outcome of a call is computed and reported as feedback.

use std::time::Duration;

use rand::Rng;

/// The provider that changes behaviour at the change point.
pub const CHANGING: &str = "p1";
/// The provider that keeps its behaviour.
pub const STEADY: &str = "p2";
/// Usual latency of each, ms.
const BASE_LATENCY_MS: [(&str, f64); 2] = [(CHANGING, 800.0), (STEADY, 900.0)];
/// Latency of the changing provider once degraded, ms.
const DEGRADED_LATENCY_MS: f64 = 3_000.0;
/// Share of failures during the error burst.
const BURST_FAILURE_RATE: f64 = 0.5;
/// The Retry-After of the rate-limit scenario: the provider refuses until then.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a 429 takes to come back, ms.
const RATE_LIMITED_LATENCY_MS: f64 = 50.0;
/// Jitter of every latency (± this share).
const JITTER: f64 = 0.1;

/// What changes at the change point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// The changing provider goes from 800 ms to 3,000 ms.
    Latency,
    /// Half of the changing provider's calls fail.
    Errors,
    /// The changing provider answers 429 with Retry-After 5 s until its quota resets.
    RateLimit,
}

impl Scenario {
    /// Every scenario, in the order they run.
    pub const ALL: [Scenario; 3] = [Scenario::Latency, Scenario::Errors, Scenario::RateLimit];

    /// The name used in policy ids and tables.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Latency => "latency",
            Scenario::Errors => "errors",
            Scenario::RateLimit => "rate_limit",
        }
    }
}

/// How one call ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CallResult {
    /// It worked.
    Ok,
    /// The provider failed (a 5xx).
    Failed,
    /// 429 with this Retry-After, seconds.
    RateLimited(u64),
}

/// One simulated call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Call {
    /// What it took, ms.
    pub latency_ms: f64,
    /// How it ended.
    pub result: CallResult,
}

/// Providers of one scenario that changes at `change_at`.
#[derive(Debug, Clone, Copy)]
pub struct Providers {
    /// What changes.
    pub scenario: Scenario,
    /// When, from the start of the scenario.
    pub change_at: Duration,
}

impl Providers {
    /// A call to `provider` made `at` into the scenario.
    pub fn call(&self, provider: &str, at: Duration, rng: &mut impl Rng) -> Call {
        let jitter = 1.0 + rng.random_range(-JITTER..=JITTER);
        let base = BASE_LATENCY_MS
            .iter()
            .find(|(name, _)| *name == provider)
            .map_or(1_000.0, |(_, ms)| *ms);
        let changed = provider == CHANGING && at >= self.change_at;
        if !changed {
            return Call {
                latency_ms: base * jitter,
                result: CallResult::Ok,
            };
        }
        match self.scenario {
            Scenario::Latency => Call {
                latency_ms: DEGRADED_LATENCY_MS * jitter,
                result: CallResult::Ok,
            },
            Scenario::Errors => Call {
                latency_ms: base * jitter,
                result: if rng.random::<f64>() < BURST_FAILURE_RATE {
                    CallResult::Failed
                } else {
                    CallResult::Ok
                },
            },
            Scenario::RateLimit => {
                let reset = self.change_at + RETRY_AFTER;
                if at < reset {
                    Call {
                        latency_ms: RATE_LIMITED_LATENCY_MS,
                        result: CallResult::RateLimited((reset - at).as_secs_f64().ceil() as u64),
                    }
                } else {
                    Call {
                        latency_ms: base * jitter,
                        result: CallResult::Ok,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    const CHANGE: Duration = Duration::from_secs(10);

    fn providers(scenario: Scenario) -> Providers {
        Providers {
            scenario,
            change_at: CHANGE,
        }
    }

    #[test]
    fn only_the_changing_provider_changes_and_only_after_the_change() {
        let mut rng = SmallRng::seed_from_u64(1);
        for scenario in Scenario::ALL {
            let p = providers(scenario);
            let before = p.call(CHANGING, CHANGE - Duration::from_millis(1), &mut rng);
            assert_eq!(before.result, CallResult::Ok);
            assert!((720.0..=880.0).contains(&before.latency_ms));
            let steady = p.call(STEADY, CHANGE * 2, &mut rng);
            assert_eq!(steady.result, CallResult::Ok);
        }
        let slow = providers(Scenario::Latency).call(CHANGING, CHANGE, &mut rng);
        assert!(slow.latency_ms >= 2_700.0);
    }

    #[test]
    fn the_error_burst_fails_about_half() {
        let mut rng = SmallRng::seed_from_u64(2);
        let p = providers(Scenario::Errors);
        let failed = (0..10_000)
            .filter(|_| p.call(CHANGING, CHANGE, &mut rng).result == CallResult::Failed)
            .count();
        assert!((4_500..=5_500).contains(&failed), "{failed}");
    }

    #[test]
    fn the_rate_limit_says_when_the_quota_resets() {
        let mut rng = SmallRng::seed_from_u64(3);
        let p = providers(Scenario::RateLimit);
        let first = p.call(CHANGING, CHANGE, &mut rng);
        assert_eq!(first.result, CallResult::RateLimited(5));
        let later = p.call(CHANGING, CHANGE + Duration::from_millis(3_500), &mut rng);
        assert_eq!(later.result, CallResult::RateLimited(2));
        let reset = p.call(CHANGING, CHANGE + RETRY_AFTER, &mut rng);
        assert_eq!(reset.result, CallResult::Ok);
    }
}
