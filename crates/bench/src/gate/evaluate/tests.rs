//! Judging candidates: rules, spreads, missing figures and report-only rows.

use super::super::policy::{Baseline, Policy};
use super::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn rule(metric: &str, direction: Direction, pct: f64, abs: f64) -> Rule {
    Rule {
        metric: metric.to_owned(),
        direction,
        tolerance_pct: pct,
        tolerance_abs: abs,
        max_spread_pct: None,
        why: None,
    }
}

/// The CP1 floor as frozen by the seed.
fn cp1() -> LoadedPolicy {
    use Direction::*;
    LoadedPolicy {
        policy: Policy {
            name: "cp1".into(),
            baseline: "baseline_cp1.json".into(),
            description: None,
            rules: vec![
                rule("rps", HigherIsBetter, 10.0, 0.0),
                rule("latency_p95_ms", LowerIsBetter, 15.0, 0.0),
                rule("latency_p99_ms", LowerIsBetter, 20.0, 0.0),
                rule("mem_mb", LowerIsBetter, 15.0, 0.0),
                rule("errors_total", MustEqual, 0.0, 0.0),
                rule("backpressure_active_total", MustEqual, 0.0, 0.0),
            ],
        },
        baseline: Baseline {
            name: "cp1".into(),
            provisional: false,
            note: None,
            metrics: BTreeMap::from([
                ("rps".into(), 62.0),
                ("latency_p95_ms".into(), 99.0),
                ("latency_p99_ms".into(), 200.0),
                ("mem_mb".into(), 94.0),
                ("errors_total".into(), 0.0),
                ("backpressure_active_total".into(), 0.0),
            ]),
        },
        path: PathBuf::from("perf/policy_cp1.json"),
    }
}

/// An own-baseline policy leaning on the ratio to echo.
fn own() -> LoadedPolicy {
    use Direction::*;
    LoadedPolicy {
        policy: Policy {
            name: "own".into(),
            baseline: "baseline.json".into(),
            description: None,
            rules: vec![
                rule("rps_ratio_to_echo", HigherIsBetter, 20.0, 0.0),
                rule("latency_p99_ms", LowerIsBetter, 75.0, 2.0),
            ],
        },
        baseline: Baseline {
            name: "own".into(),
            provisional: false,
            note: None,
            metrics: BTreeMap::from([
                ("rps_ratio_to_echo".into(), 0.6),
                ("latency_p99_ms".into(), 4.0),
            ]),
        },
        path: PathBuf::from("perf/policy.json"),
    }
}

fn good() -> Value {
    json!({
        "status": "ok", "exit_status": 0,
        "rps": 40000.0, "latency_p95_ms": 2.5, "latency_p99_ms": 4.0,
        "mem_mb": 30.0, "errors_total": 0, "backpressure_active_total": 0,
        "rps_ratio_to_echo": 0.6, "echo_rps": 66666.0
    })
}

fn failed_metrics(report: &Report) -> Vec<String> {
    report
        .failures()
        .map(|r| format!("{}:{}", r.policy, r.metric))
        .collect()
}

#[test]
fn good_candidate_passes_both_policies() {
    let report = judge(&[cp1(), own()], &good(), &[]);
    assert!(report.passed(), "{:?}", failed_metrics(&report));
    assert_eq!(report.rows.len(), 1 + 6 + 2);
}

#[test]
fn each_cp1_rule_fails_alone() {
    let cases = [
        ("rps", json!(55.0)),             // floor 55.8
        ("latency_p95_ms", json!(114.0)), // ceiling 113.85
        ("latency_p99_ms", json!(240.5)), // ceiling 240
        ("mem_mb", json!(108.2)),         // ceiling 108.1
        ("errors_total", json!(1)),       // must stay 0
        ("backpressure_active_total", json!(1)),
    ];
    for (metric, bad) in cases {
        let mut candidate = good();
        candidate[metric] = bad;
        let report = judge(&[cp1()], &candidate, &[]);
        assert_eq!(
            failed_metrics(&report),
            vec![format!("cp1:{metric}")],
            "{metric} alone fails"
        );
        let row = report.failures().next().expect("one failure");
        assert_eq!(row.verdict, Verdict::Regression);
    }
}

#[test]
fn exactly_at_the_limit_passes() {
    let mut candidate = good();
    candidate["rps"] = json!(62.0 * 0.9);
    candidate["latency_p95_ms"] = json!(99.0 * 1.15);
    candidate["latency_p99_ms"] = json!(240.0);
    candidate["mem_mb"] = json!(94.0 * 1.15);
    assert!(judge(&[cp1()], &candidate, &[]).passed());
}

#[test]
fn each_own_rule_fails_alone() {
    let mut slow = good();
    slow["rps_ratio_to_echo"] = json!(0.47); // floor 0.48
    assert_eq!(
        failed_metrics(&judge(&[own()], &slow, &[])),
        vec!["own:rps_ratio_to_echo"]
    );
    let mut laggy = good();
    laggy["latency_p99_ms"] = json!(7.1); // ceiling 4 + max(3, 2) = 7
    assert_eq!(
        failed_metrics(&judge(&[own()], &laggy, &[])),
        vec!["own:latency_p99_ms"]
    );
}

#[test]
fn a_25_percent_slower_candidate_fails() {
    let mut candidate = good();
    candidate["rps_ratio_to_echo"] = json!(0.6 * 0.75);
    let report = judge(&[cp1(), own()], &candidate, &[]);
    assert!(!report.passed());
    assert_eq!(failed_metrics(&report), vec!["own:rps_ratio_to_echo"]);
}

#[test]
fn missing_metric_fails_never_reads_as_zero() {
    for absent in [Value::Null, json!("12"), json!({"x": 1})] {
        let mut candidate = good();
        candidate["errors_total"] = absent;
        let report = judge(&[cp1()], &candidate, &[]);
        let row = report.failures().next().expect("a failure");
        assert_eq!(row.metric, "errors_total");
        assert_eq!(row.verdict, Verdict::MissingInCandidate);
    }
    let mut candidate = good();
    candidate.as_object_mut().expect("object").remove("mem_mb");
    assert_eq!(
        failed_metrics(&judge(&[cp1()], &candidate, &[])),
        vec!["cp1:mem_mb"]
    );
}

#[test]
fn metric_missing_from_baseline_fails() {
    let mut policy = own();
    policy.baseline.metrics.remove("latency_p99_ms");
    let report = judge(&[policy], &good(), &[]);
    let row = report.failures().next().expect("a failure");
    assert_eq!(row.verdict, Verdict::MissingInBaseline);
}

#[test]
fn baseline_zero_behaviour() {
    // lower_is_better / must_equal with baseline 0: must stay 0 ...
    let lower = rule("errors_total", Direction::LowerIsBetter, 50.0, 0.0);
    assert!(judge_rule("p", &lower, Some(0.0), Some(0.0))
        .verdict
        .passed());
    assert_eq!(
        judge_rule("p", &lower, Some(0.0), Some(1.0)).verdict,
        Verdict::Regression
    );
    let equal = rule("errors_total", Direction::MustEqual, 50.0, 0.0);
    assert_eq!(
        judge_rule("p", &equal, Some(0.0), Some(1.0)).verdict,
        Verdict::Regression
    );
    // ... or within the absolute tolerance when one is given.
    let lenient = rule("errors_total", Direction::LowerIsBetter, 50.0, 2.0);
    assert!(judge_rule("p", &lenient, Some(0.0), Some(2.0))
        .verdict
        .passed());
    assert_eq!(
        judge_rule("p", &lenient, Some(0.0), Some(3.0)).verdict,
        Verdict::Regression
    );
    // higher_is_better with baseline 0 sets no floor: the rule fails.
    let higher = rule("rps", Direction::HigherIsBetter, 10.0, 0.0);
    assert_eq!(
        judge_rule("p", &higher, Some(0.0), Some(1000.0)).verdict,
        Verdict::UnusableBaseline
    );
}

#[test]
fn failed_run_fails_even_with_good_figures() {
    let mut candidate = good();
    candidate["status"] = json!("failed");
    candidate["reason"] = json!("no responders on beamline.router.v1.decide");
    let report = judge(&[cp1(), own()], &candidate, &[]);
    assert_eq!(failed_metrics(&report), vec!["run:status"]);
    let row = report.failures().next().expect("a failure");
    assert!(row.verdict.describe().contains("no responders"));

    let mut no_status = good();
    no_status.as_object_mut().expect("object").remove("status");
    assert!(!judge(&[cp1()], &no_status, &[]).passed());
}

/// Blocks whose router ÷ raw echo throughput is `raw` (and everything else 1).
fn raw_blocks(raw: &[f64]) -> Vec<BlockFigures> {
    raw.iter()
        .map(|&r| BlockFigures {
            throughput: 0.6,
            p50: 1.0,
            p99: 1.0,
            cpu_per_request: Some(1.0),
            echo_aa: 1.0,
            throughput_to_raw_echo: Some(r),
            p50_to_raw_echo: Some(2.0),
            p99_to_raw_echo: Some(2.0),
            cpu_per_request_to_raw_echo: Some(3.0),
        })
        .collect()
}

#[test]
fn raw_echo_ratios_no_rule_names_are_reported_not_judged() {
    // Wildly spread and far from any target: still only reported.
    let blocks = raw_blocks(&[0.1, 0.9, 0.2, 0.8, 0.5]);
    let report = judge(&[cp1(), own()], &good(), &blocks);
    assert!(report.passed(), "{:?}", failed_metrics(&report));
    assert_eq!(report.outcome(), Outcome::Pass);
    let info: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::ReportOnly)
        .collect();
    let keys: Vec<&str> = info.iter().map(|r| r.metric.as_str()).collect();
    assert_eq!(keys, Ratio::TO_RAW_ECHO.map(Ratio::key));
    assert!(info.iter().all(|r| r.policy == "info" && r.limit.is_none()));
    assert_eq!(info[0].candidate, Some(0.5));
    assert!(info[0].spread_pct.is_some_and(|p| p > 50.0));
    assert_eq!(report.judged().count(), 1 + 6 + 2);
    // Blocks without the raw echo add no row.
    let four = BlockFigures {
        throughput_to_raw_echo: None,
        p50_to_raw_echo: None,
        p99_to_raw_echo: None,
        cpu_per_request_to_raw_echo: None,
        ..raw_blocks(&[1.0])[0].clone()
    };
    assert_eq!(judge(&[own()], &good(), &[four]).rows.len(), 1 + 2);
}

#[test]
fn a_rule_that_names_a_raw_echo_ratio_judges_it() {
    let mut policy = own();
    let mut raw = rule(
        "rps_ratio_to_raw_echo",
        Direction::HigherIsBetter,
        10.0,
        0.0,
    );
    raw.max_spread_pct = Some(10.0);
    policy.policy.rules.push(raw);
    policy
        .baseline
        .metrics
        .insert("rps_ratio_to_raw_echo".into(), 0.8);
    let report = judge(&[policy.clone()], &good(), &raw_blocks(&[0.6; 5]));
    assert_eq!(failed_metrics(&report), vec!["own:rps_ratio_to_raw_echo"]);
    let reported = report
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::ReportOnly)
        .count();
    assert_eq!(reported, 3, "the other three are still reported");
    let report = judge(&[policy], &good(), &raw_blocks(&[0.8; 5]));
    assert!(report.passed(), "{:?}", failed_metrics(&report));
}

#[test]
fn dotted_paths_reach_nested_figures() {
    let candidate = json!({"phases": {"echo": {"rps": 5.0}}, "a.b": 1.0});
    assert_eq!(metric(&candidate, "phases.echo.rps"), Some(5.0));
    assert_eq!(metric(&candidate, "a.b"), Some(1.0));
    assert_eq!(metric(&candidate, "phases.router.rps"), None);
}
