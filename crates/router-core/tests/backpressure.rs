//! CONTRACT §5 backpressure: the status from the signals, the monitor and its report, and
//! the `overloaded` answer while active.

mod common;

use common::*;
use router_core::backpressure::{classify, Signals};
use router_core::{BackpressureMonitor, BackpressureStatus, Thresholds};
use serde_json::json;

fn signals(pending: u64, inflight: u64, p95: f64) -> Signals {
    Signals {
        pending_messages: pending,
        inflight_messages: inflight,
        latency_p95_ms: p95,
    }
}

/// 0 signals over → inactive, 1 → warning, ≥ 2 → active; "over" is strictly greater.
#[test]
fn every_backpressure_status() {
    use BackpressureStatus::*;
    let t = Thresholds::default();
    assert_eq!(
        (t.queue_overload, t.inflight_overload, t.latency_overload_ms),
        (1000, 500, 100.0)
    );
    let rows = [
        ("idle", signals(0, 0, 0.0), Inactive),
        ("all at the threshold", signals(1000, 500, 100.0), Inactive),
        ("pending over", signals(1001, 0, 0.0), Warning),
        ("inflight over", signals(0, 501, 0.0), Warning),
        ("latency over", signals(0, 0, 100.001), Warning),
        ("pending + inflight", signals(1001, 501, 0.0), Active),
        ("pending + latency", signals(1001, 0, 101.0), Active),
        ("inflight + latency", signals(0, 501, 101.0), Active),
        ("all three", signals(u64::MAX, u64::MAX, f64::MAX), Active),
    ];
    for (name, s, expected) in rows {
        assert_eq!(classify(&s, &t), expected, "{name}");
    }
}

/// The monitor: latency p95 over the last 1000 decisions of the last second, the status, the
/// transition counter and the §5 report.
#[test]
fn backpressure_monitor_and_report() {
    use BackpressureStatus::*;
    let monitor = BackpressureMonitor::new(Thresholds::default(), 30);
    let moved = |change: Option<router_core::StatusChange>| change.map(|c| (c.from, c.to));
    assert_eq!(monitor.status(), Inactive);
    assert_eq!(moved(monitor.classify_now(0, 3, Inactive)), None);
    assert_eq!(
        moved(monitor.classify_now(1001, 3, Inactive)),
        Some((Inactive, Warning))
    );
    assert!(!monitor.is_active());
    assert_eq!(
        moved(monitor.classify_now(1001, 501, Inactive)),
        Some((Warning, Active))
    );
    assert!(monitor.is_active());
    assert_eq!(
        moved(monitor.classify_now(2000, 900, Inactive)),
        None,
        "still active"
    );
    assert_eq!(monitor.activations(), 1);
    assert_eq!(
        moved(monitor.classify_now(0, 0, Inactive)),
        Some((Active, Inactive))
    );
    // Latency: 960 fast decisions and 40 slow ones → p95 fast; 60 slow → p95 slow.
    let now = 5_000;
    for _ in 0..960 {
        monitor.record_latency(0.2, now);
    }
    for _ in 0..40 {
        monitor.record_latency(9000.0, now);
    }
    assert_eq!(moved(monitor.evaluate(0, 0, now)), None);
    assert_eq!(monitor.refresh_latency(now), 0.2);
    for _ in 0..20 {
        monitor.record_latency(9000.0, now);
    }
    assert_eq!(
        moved(monitor.evaluate(0, 0, now)),
        Some((Inactive, Warning))
    );
    assert_eq!(
        moved(monitor.evaluate(1001, 0, now)),
        Some((Warning, Active))
    );
    assert_eq!(monitor.activations(), 2);

    let report = serde_json::to_value(monitor.report(
        "beamline.router.v1.decide",
        1001,
        3,
        1_764_182_400_000,
    ))
    .expect("serialisable");
    assert_eq!(
        report,
        json!({"subject": "beamline.router.v1.decide", "status": "active",
               "metrics": {"pending_messages": 1001, "inflight_messages": 3,
                           "latency_p95_ms": 9000.0},
               "thresholds": {"queue_overload": 1000, "inflight_overload": 500,
                              "latency_overload_ms": 100.0},
               "policy": {"retry_after_seconds": 30}, "timestamp": 1_764_182_400_000_u64})
    );
}

/// While active, a decide request is answered `overloaded` with the monitor's retry-after —
/// never left unanswered.
#[test]
fn active_backpressure_answers_overloaded() {
    let router = router();
    let monitor = BackpressureMonitor::new(
        Thresholds {
            queue_overload: 10,
            inflight_overload: 10,
            latency_overload_ms: 100.0,
        },
        12,
    );
    monitor.classify_now(11, 11, BackpressureStatus::Inactive);
    assert!(monitor.is_active());
    let body = bytes(&base());
    let handled = if monitor.is_active() {
        router.overloaded(&body, monitor.retry_after_seconds())
    } else {
        router.handle(&body, None, NOW, &mut rng(1))
    };
    let reply = parse(&handled);
    assert_eq!(code(&reply), "overloaded");
    assert_eq!(reply["error"]["details"]["retry_after_seconds"], 12);
}
