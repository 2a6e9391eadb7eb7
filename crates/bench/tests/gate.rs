//! The perf gate on candidate files: the shipped policies and baselines, the judgement of
//! candidates built at, above and below the baseline (steady and noisy), and the exit status
//! of `cargo xtask perf-gate` for a candidate file that is good, noisy, missing or not a
//! candidate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bench::environment::Environment;
use bench::figures::{block_pattern, RoundFigures, Side};
use bench::gate::evaluate::{self, Outcome};
use bench::gate::exit::GateExit;
use bench::gate::policy::{self, LoadedPolicy};
use bench::gate::verdict::judge;
use bench::gate::{candidate, table, verdict};
use bench::load::PhaseResult;
use bench::outcome::Outcome as RequestOutcome;
use bench::report::{Candidate, Measured};
use bench::stats::Recorder;

fn perf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../perf")
}

fn shipped() -> Vec<LoadedPolicy> {
    policy::load_all(&perf_dir()).expect("shipped policies")
}

/// The shipped own baseline's figure for `metric`.
fn baseline(metric: &str) -> f64 {
    let own = policy::load(&perf_dir().join("policy.json")).expect("shipped own policy");
    own.baseline.metrics[metric]
}

/// What one side's round looks like: its throughput, p99, CPU per request.
#[derive(Clone, Copy)]
struct Side3 {
    rps: f64,
    p99_ms: f64,
    cpu_us: f64,
}

/// A candidate of `blocks` blocks where the router is `router` and the echo `echo`,
/// each router round multiplied by `jitter(block)`.
fn bench_candidate(
    blocks: usize,
    echo: Side3,
    router: Side3,
    jitter: impl Fn(usize) -> f64,
) -> Candidate {
    bench_candidate_with(blocks, None, echo, router, jitter)
}

/// [`bench_candidate`] with six-round blocks when `raw_echo` is given.
fn bench_candidate_with(
    blocks: usize,
    raw_echo: Option<Side3>,
    echo: Side3,
    router: Side3,
    jitter: impl Fn(usize) -> f64,
) -> Candidate {
    let mut measured = Measured::default();
    for block in 0..blocks {
        for &side in block_pattern(raw_echo.is_some()) {
            let s = match side {
                Side::RawEcho => raw_echo.unwrap_or(echo),
                Side::Echo => echo,
                Side::Router => Side3 {
                    rps: router.rps * jitter(block),
                    ..router
                },
            };
            let requests = s.rps as u64;
            let mut recorder = Recorder::new();
            for _ in 0..requests {
                recorder.record(
                    &RequestOutcome::Ok,
                    Duration::from_micros((s.p99_ms * 1000.0) as u64),
                );
            }
            let result = PhaseResult {
                recorder,
                window: Duration::from_secs(1),
                cpu_s: Some(s.cpu_us * requests as f64 / 1e6),
            };
            let stats = result.stats();
            measured.rounds.push(RoundFigures {
                block,
                side,
                rps: stats.rps,
                p50_ms: s.p99_ms,
                p99_ms: s.p99_ms,
                requests,
                errors: 0,
                cpu_s: result.cpu_s,
            });
            measured
                .totals
                .entry(side.as_str().to_owned())
                .or_default()
                .add(&result);
        }
    }
    let mut c = Candidate::new(Environment::default(), &measured);
    c.backpressure_active_total = Some(0.0);
    c.mem_mb = Some(baseline("mem_mb"));
    c
}

const ECHO: Side3 = Side3 {
    rps: 10_000.0,
    p99_ms: 2.0,
    cpu_us: 10.0,
};

/// The router exactly at the shipped baseline's ratios.
fn at_baseline() -> Side3 {
    Side3 {
        rps: ECHO.rps * baseline("rps_ratio_to_echo"),
        p99_ms: ECHO.p99_ms * baseline("latency_p99_ratio_to_echo"),
        cpu_us: ECHO.cpu_us * baseline("cpu_per_request_ratio_to_echo"),
    }
}

fn steady(_: usize) -> f64 {
    1.0
}

fn write(dir: &Path, name: &str, candidate: &Candidate) -> PathBuf {
    let path = dir.join(name);
    candidate.write(&path).expect("write candidate");
    path
}

/// What `cargo xtask perf-gate --candidate FILE` (or `--latest` in `artifacts`) exits with.
fn gate_file(
    file: Option<PathBuf>,
    latest: bool,
    policies: &[LoadedPolicy],
    artifacts: &Path,
) -> GateExit {
    match candidate::pick(file.as_deref(), latest, artifacts) {
        Ok((_, candidate)) => verdict::of(policies, &candidate).exit,
        Err(_) => GateExit::CannotJudge,
    }
}

#[test]
fn shipped_policies_load_and_cover_the_cp1_metrics() {
    let policies = shipped();
    let cp1 = &policies[0];
    for metric in [
        "rps",
        "latency_p95_ms",
        "latency_p99_ms",
        "errors_total",
        "backpressure_active_total",
        "mem_mb",
    ] {
        assert!(
            cp1.policy.rules.iter().any(|r| r.metric == metric),
            "cp1 gates {metric}"
        );
    }
    let own = &policies[1];
    for metric in [
        "rps_ratio_to_echo",
        "cpu_per_request_ratio_to_echo",
        "latency_p99_ratio_to_echo",
    ] {
        let rule = own.policy.rules.iter().find(|r| r.metric == metric);
        assert!(
            rule.is_some_and(|r| r.max_spread_pct.is_some()),
            "own gates {metric} with a spread limit"
        );
    }
    for rule in &own.policy.rules {
        assert!(
            !rule.metric.ends_with("_ms"),
            "no absolute latency is gated: {}",
            rule.metric
        );
    }
}

#[test]
fn shipped_baselines_pass_themselves() {
    let report = judge(&shipped(), &bench_candidate(6, ECHO, at_baseline(), steady));
    assert_eq!(
        report.outcome(),
        Outcome::Pass,
        "{}",
        table::render(&report)
    );
}

#[test]
fn a_router_with_a_quarter_more_cpu_per_request_fails() {
    let slow = Side3 {
        cpu_us: at_baseline().cpu_us * 1.25,
        ..at_baseline()
    };
    let report = judge(&shipped(), &bench_candidate(6, ECHO, slow, steady));
    assert_eq!(report.outcome(), Outcome::Regression);
    let failed: Vec<_> = report
        .rows
        .iter()
        .filter(|r| r.verdict.failed())
        .map(|r| r.metric.as_str())
        .collect();
    assert_eq!(failed, ["cpu_per_request_ratio_to_echo"]);
}

#[test]
fn a_router_with_a_fifth_less_throughput_fails() {
    let slow = Side3 {
        rps: at_baseline().rps * 0.8,
        ..at_baseline()
    };
    let report = judge(&shipped(), &bench_candidate(6, ECHO, slow, steady));
    assert_eq!(report.outcome(), Outcome::Regression);
}

#[test]
fn ordinary_noise_passes() {
    // ±4 % from block to block around the baseline.
    let jitter = |block: usize| if block % 2 == 0 { 1.04 } else { 0.96 };
    let report = judge(&shipped(), &bench_candidate(6, ECHO, at_baseline(), jitter));
    assert_eq!(
        report.outcome(),
        Outcome::Pass,
        "{}",
        table::render(&report)
    );
}

#[test]
fn a_wide_spread_cannot_be_judged() {
    // Blocks that disagree by ±40 %: the median is not known well enough.
    let jitter = |block: usize| if block % 2 == 0 { 1.4 } else { 0.6 };
    let report = judge(&shipped(), &bench_candidate(6, ECHO, at_baseline(), jitter));
    assert_eq!(
        report.outcome(),
        Outcome::TooNoisy,
        "{}",
        table::render(&report)
    );
    let row = report
        .rows
        .iter()
        .find(|r| r.metric == "rps_ratio_to_echo")
        .expect("throughput row");
    assert!(matches!(row.verdict, evaluate::Verdict::TooNoisy { .. }));
}

#[test]
fn raw_echo_ratios_are_reported_beside_the_judged_ones() {
    let raw = Side3 {
        rps: 20_000.0,
        p99_ms: 1.0,
        cpu_us: 4.0,
    };
    // Far below any target against the raw echo, yet at the baseline against the echo.
    let c = bench_candidate_with(6, Some(raw), ECHO, at_baseline(), steady);
    assert!(c.rps_ratio_to_raw_echo.is_some_and(|r| r < 0.5), "{c:?}");
    let report = judge(&shipped(), &c);
    assert_eq!(
        report.outcome(),
        Outcome::Pass,
        "{}",
        table::render(&report)
    );
    let text = table::render(&report);
    for key in [
        "rps_ratio_to_raw_echo",
        "latency_p50_ratio_to_raw_echo",
        "latency_p99_ratio_to_raw_echo",
        "cpu_per_request_ratio_to_raw_echo",
    ] {
        let line = text.lines().find(|l| l.contains(key)).unwrap_or_default();
        assert!(line.contains("report only"), "{key}: {text}");
    }
    // The verdict counts the judged checks only.
    let verdict = verdict::conclude(&report);
    let judged = report.judged().count();
    assert!(
        verdict.text.contains(&format!("PASS ({judged} checks)")),
        "{}",
        verdict.text
    );
    assert_eq!(judged + 4, report.rows.len());
}

#[test]
fn a_failed_run_is_a_regression() {
    let mut c = bench_candidate(6, ECHO, at_baseline(), steady);
    c.fail("cannot connect");
    assert_eq!(judge(&shipped(), &c).outcome(), Outcome::Regression);
}

#[test]
fn candidate_files_and_exit_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policies = shipped();
    let good = write(
        dir.path(),
        "good.json",
        &bench_candidate(6, ECHO, at_baseline(), steady),
    );
    assert_eq!(
        gate_file(Some(good), false, &policies, dir.path()),
        GateExit::Pass
    );
    let noisy = bench_candidate(
        6,
        ECHO,
        at_baseline(),
        |b| if b % 2 == 0 { 1.4 } else { 0.6 },
    );
    let noisy = write(dir.path(), "noisy.json", &noisy);
    assert_eq!(
        gate_file(Some(noisy), false, &policies, dir.path()),
        GateExit::TooNoisy
    );
    // Nothing to judge: no file, not JSON, not a candidate.
    let absent = dir.path().join("absent.json");
    assert_eq!(
        gate_file(Some(absent), false, &policies, dir.path()),
        GateExit::CannotJudge
    );
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json").expect("write");
    assert_eq!(
        gate_file(Some(garbage), false, &policies, dir.path()),
        GateExit::CannotJudge
    );
    let empty = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        gate_file(None, true, &policies, empty.path()),
        GateExit::CannotJudge
    );
}

#[test]
fn latest_finds_the_bench_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "perf_1.json",
        &bench_candidate(6, ECHO, at_baseline(), steady),
    );
    assert_eq!(
        gate_file(None, true, &shipped(), dir.path()),
        GateExit::Pass
    );
}

#[test]
fn unreadable_policies_cannot_judge() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(policy::load_all(dir.path()).is_err());
}
