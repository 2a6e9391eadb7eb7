//! Unit tests of the breakers through the registry: opening, half-open probes, closing.

use super::*;
use crate::policy::BreakerConfig;
use BreakerState::*;
use CallOutcome::*;

fn config() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 3,
        success_threshold: 2,
        timeout_ms: 1_000,
        half_open_max_calls: 2,
        error_rate_threshold: 0.5,
        error_rate_window_ms: 10_000,
    }
}

const KEY: (&str, &str, &str) = ("t", "default", "p");

fn report(outcome: CallOutcome) -> Report {
    Report {
        outcome,
        decided_at_ms: None,
    }
}

fn record(reg: &BreakerRegistry, outcome: CallOutcome, now: u64) -> Option<Transition> {
    reg.record(KEY, report(outcome), &config(), now)
}

fn admits(reg: &BreakerRegistry, now: u64) -> bool {
    reg.policy("t", "default", &config(), now).admits("p")
}

fn take(reg: &BreakerRegistry, now: u64) -> bool {
    reg.policy("t", "default", &config(), now).take("p")
}

#[test]
fn consecutive_failures_open_it() {
    let reg = BreakerRegistry::new();
    assert_eq!(record(&reg, Failure, 0), None);
    assert_eq!(record(&reg, Timeout, 1), None);
    let t = record(&reg, RateLimited, 2);
    assert_eq!(
        t,
        Some(Transition {
            from: Closed,
            to: Open
        })
    );
    assert!(!admits(&reg, 3));
    assert_eq!(reg.state(KEY, &config(), 3), Open);
    assert_eq!(
        reg.policy("t", "default", &config(), 3).admits_in_ms("p"),
        999
    );
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let reg = BreakerRegistry::new();
    let cfg = BreakerConfig {
        error_rate_threshold: 1.0,
        ..config()
    };
    for (outcome, t) in [(Failure, 0), (Failure, 1), (Success, 2), (Failure, 3)] {
        reg.record(KEY, report(outcome), &cfg, t);
    }
    assert_eq!(reg.state(KEY, &cfg, 4), Closed);
}

#[test]
fn error_rate_opens_it() {
    let reg = BreakerRegistry::new();
    let cfg = BreakerConfig {
        failure_threshold: 4,
        ..config()
    };
    // S F S F: consecutive never reaches 4, but 2/4 = 0.5 >= 0.5 once 4 samples exist.
    for (outcome, t) in [(Success, 0), (Failure, 1), (Success, 2)] {
        reg.record(KEY, report(outcome), &cfg, t);
    }
    assert_eq!(reg.state(KEY, &cfg, 3), Closed);
    reg.record(KEY, report(Failure), &cfg, 3);
    assert_eq!(reg.state(KEY, &cfg, 4), Open);
}

#[test]
fn old_outcomes_leave_the_window() {
    let reg = BreakerRegistry::new();
    let cfg = BreakerConfig {
        failure_threshold: 4,
        ..config()
    };
    for (outcome, t) in [
        (Failure, 0),
        (Success, 1),
        (Failure, 2),
        // 20 s later the earlier failures are outside the 10 s window.
        (Success, 20_000),
        (Success, 20_001),
        (Success, 20_002),
        (Failure, 20_003),
    ] {
        reg.record(KEY, report(outcome), &cfg, t);
    }
    assert_eq!(reg.state(KEY, &cfg, 20_004), Closed);
}

#[test]
fn half_open_probes_then_close() {
    let reg = BreakerRegistry::new();
    for t in 0..3 {
        record(&reg, Failure, t);
    }
    assert!(!admits(&reg, 999));
    assert_eq!(reg.state(KEY, &config(), 1_002), HalfOpen);
    assert!(take(&reg, 1_002));
    assert!(take(&reg, 1_003));
    assert!(!take(&reg, 1_004), "only 2 probes while half-open");
    assert_eq!(record(&reg, Success, 1_005), None);
    let t = record(&reg, Success, 1_006);
    assert_eq!(
        t,
        Some(Transition {
            from: HalfOpen,
            to: Closed
        })
    );
    assert!(admits(&reg, 1_007));
    let events: Vec<_> = reg
        .take_events()
        .into_iter()
        .map(|e| (e.transition.from, e.transition.to))
        .collect();
    assert_eq!(
        events,
        [(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)],
        "every change is an event"
    );
    assert!(reg.take_events().is_empty());
}

#[test]
fn probes_are_counted_under_the_lock_that_admits_them() {
    let reg = BreakerRegistry::new();
    for t in 0..3 {
        record(&reg, Failure, t);
    }
    // Two decisions at once: each admits and takes under one lock, so at most
    // half_open_max_calls (2) probes go out however they interleave.
    let taken = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| take(&reg, 1_500))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .filter(|t| *t)
            .count()
    });
    assert_eq!(taken, 2);
}

#[test]
fn a_late_success_is_not_a_probe_result() {
    let reg = BreakerRegistry::new();
    for t in 0..3 {
        record(&reg, Failure, t);
    }
    // Half-open from 1_002; no probe sent yet: a success without a decision id is a
    // late report about an earlier call.
    assert_eq!(record(&reg, Success, 1_100), None);
    assert_eq!(record(&reg, Success, 1_101), None);
    assert_eq!(reg.state(KEY, &config(), 1_102), HalfOpen);
    // One probe: one success counts, a second without a probe does not.
    assert!(take(&reg, 1_200));
    assert_eq!(record(&reg, Success, 1_201), None);
    assert_eq!(record(&reg, Success, 1_202), None);
    assert_eq!(reg.state(KEY, &config(), 1_203), HalfOpen);
    // A report naming a decision issued before the breaker went half-open: ignored,
    // failure or success.
    let early = |outcome| Report {
        outcome,
        decided_at_ms: Some(500),
    };
    assert_eq!(reg.record(KEY, early(Failure), &config(), 1_300), None);
    assert_eq!(reg.record(KEY, early(Success), &config(), 1_300), None);
    // A decision issued after: counts.
    let fresh = Report {
        outcome: Success,
        decided_at_ms: Some(1_200),
    };
    assert_eq!(
        reg.record(KEY, fresh, &config(), 1_400),
        Some(Transition {
            from: HalfOpen,
            to: Closed
        })
    );
}

#[test]
fn half_open_failure_reopens() {
    let reg = BreakerRegistry::new();
    for t in 0..3 {
        record(&reg, Failure, t);
    }
    assert!(take(&reg, 1_500));
    let t = record(&reg, Failure, 1_600);
    assert_eq!(
        t,
        Some(Transition {
            from: HalfOpen,
            to: Open
        })
    );
    assert!(!admits(&reg, 2_000));
    assert!(admits(&reg, 2_600));
}

#[test]
fn breakers_are_per_tenant_policy_and_provider() {
    let reg = BreakerRegistry::new();
    for t in 0..3 {
        reg.record(("a", "default", "p"), report(Failure), &config(), t);
    }
    let admits =
        |tenant, policy, provider| reg.policy(tenant, policy, &config(), 10).admits(provider);
    assert!(!admits("a", "default", "p"));
    assert!(admits("b", "default", "p"));
    assert!(admits("a", "other", "p"), "another policy of the tenant");
    assert!(admits("a", "default", "q"));
    assert_eq!(reg.not_closed(), 1);
    let states = reg.states(10, |_, _| Some(config()));
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0.policy, "default");
    assert_eq!(states[0].1, Open);
}
