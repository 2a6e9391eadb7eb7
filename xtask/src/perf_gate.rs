//! `cargo xtask perf-gate`: judges a bench candidate against the CP1 floor and this
//! router's own baseline.
//!
//! Without `--candidate` or `--latest` it runs `cargo xtask bench` itself; when a figure's
//! spread over the blocks is too large to judge, it benches again and pools the blocks, up
//! to `--max-runs` runs, and only then answers "too noisy to judge".
//!
//! Exit status: 0 every rule of every policy passed; 1 a regression (or a failed run, or a
//! missing metric); 2 the gate could not judge (no candidate, or a candidate, policy or
//! baseline file that cannot be read); 3 too noisy to judge (the figures are printed; CI
//! treats it as a warning).

mod candidate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use bench::gate::evaluate::{self, Outcome, Report};
use bench::gate::policy::{self, LoadedPolicy};
use bench::gate::table;
use bench::report::Candidate;

use crate::{bench_cmd, paths};

/// Arguments.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 pass, 1 regression, 2 nothing to judge, 3 too noisy to judge."
)]
pub struct Args {
    /// Candidate JSON written by router-bench or `cargo xtask bench` (`--out`).
    #[arg(long, conflicts_with = "latest")]
    pub candidate: Option<PathBuf>,
    /// Judge the newest `_artifacts/perf_*.json`.
    #[arg(long)]
    pub latest: bool,
    /// Folder holding policy_cp1.json, policy.json and the baselines they name.
    #[arg(long)]
    pub baseline_dir: Option<PathBuf>,
    /// When the gate benches itself: most bench runs whose blocks it pools before it says
    /// "too noisy to judge".
    #[arg(long, default_value_t = 2)]
    pub max_runs: usize,
    /// When the gate benches itself: the router binary to measure (default: this checkout's
    /// release build).
    #[arg(long, value_name = "FILE")]
    pub router_binary: Option<PathBuf>,
}

/// The gate's outcome, mapped to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateExit {
    /// Every rule passed.
    Pass = 0,
    /// At least one rule failed.
    Regression = 1,
    /// Nothing could be judged.
    CannotJudge = 2,
    /// The figures were too noisy to judge.
    TooNoisy = 3,
}

impl GateExit {
    /// The exit code of this outcome.
    pub fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }

    /// The graver of two outcomes: a regression over anything, then no verdict, then noise,
    /// then a pass.
    pub fn max_severity(self, other: GateExit) -> GateExit {
        let rank = |e: GateExit| match e {
            GateExit::Pass => 0,
            GateExit::TooNoisy => 1,
            GateExit::CannotJudge => 2,
            GateExit::Regression => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let policies = match load_policies(args.baseline_dir.as_deref()) {
        Ok(policies) => policies,
        Err(err) => {
            eprintln!("perf-gate: {err:#}");
            return Ok(GateExit::CannotJudge.code());
        }
    };
    if args.candidate.is_some() || args.latest {
        return Ok(gate_file(&args, &policies, &paths::artifacts_dir()).code());
    }
    Ok(bench_and_gate(args.router_binary.clone(), args.max_runs, &policies)?.code())
}

/// The gate benching `router_binary` (default: this checkout's release build) under the
/// shipped policies, pooling up to `max_runs` runs while too noisy to judge.
pub fn bench_and_gate_binary(
    router_binary: Option<PathBuf>,
    max_runs: usize,
) -> anyhow::Result<GateExit> {
    let policies = load_policies(None)?;
    bench_and_gate(router_binary, max_runs, &policies)
}

/// Loads the policies of `dir` (default `perf/`).
fn load_policies(dir: Option<&Path>) -> anyhow::Result<Vec<LoadedPolicy>> {
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| paths::project_root().join("perf"));
    policy::load_all(&dir)
}

/// Judges a given candidate file (`--candidate` or `--latest` under `artifacts`).
fn gate_file(args: &Args, policies: &[LoadedPolicy], artifacts: &Path) -> GateExit {
    let path = match (&args.candidate, args.latest) {
        (Some(path), _) => Ok(path.clone()),
        (None, true) => candidate::latest(artifacts),
        (None, false) => Err(anyhow::anyhow!(
            "no candidate: pass --candidate FILE or --latest (or neither, to bench first)"
        )),
    };
    let candidate = match path.and_then(|p| Ok((Candidate::read(&p)?, p))) {
        Ok((candidate, path)) => {
            println!("perf-gate: candidate {}", path.display());
            candidate
        }
        Err(err) => {
            eprintln!("perf-gate: {err:#}");
            return GateExit::CannotJudge;
        }
    };
    let exit = show(policies, &candidate);
    if exit == GateExit::TooNoisy {
        println!(
            "perf-gate: run `cargo xtask perf-gate` without a candidate: it benches and adds \
             blocks until the figures can be judged."
        );
    }
    exit
}

/// Benches, judges, and benches again while the figures are too noisy to judge.
fn bench_and_gate(
    router_binary: Option<PathBuf>,
    max_runs: usize,
    policies: &[LoadedPolicy],
) -> anyhow::Result<GateExit> {
    println!("perf-gate: no candidate given; running the benchmark first");
    let mut bench_args = bench_cmd::Args::defaults();
    bench_args.router_binary = router_binary;
    let (path, mut pooled) = bench_cmd::bench(&bench_args)?;
    let mut runs = 1;
    loop {
        println!("perf-gate: candidate {} ({runs} run(s))", path.display());
        let report = judge(policies, &pooled);
        if report.outcome() != Outcome::TooNoisy || runs >= max_runs.max(1) {
            return Ok(conclude(&report));
        }
        print!("{}", table::render(&report));
        println!(
            "perf-gate: the spread between rounds is too large to judge; running {} more \
             blocks",
            bench_args.blocks
        );
        bench_args.out = Some(path.with_file_name(format!(
            "{}_more{runs}.json",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("perf")
        )));
        let (_, more) = bench_cmd::bench(&bench_args)?;
        pooled = pooled.absorb(more);
        pooled
            .write(&path)
            .with_context(|| format!("cannot write the pooled candidate {}", path.display()))?;
        runs += 1;
    }
}

/// Judges `candidate` against `policies`.
fn judge(policies: &[LoadedPolicy], candidate: &Candidate) -> Report {
    let value = serde_json::to_value(candidate).unwrap_or_default();
    evaluate::judge(policies, &value, &candidate.blocks)
}

/// Prints the table and the verdict of `candidate` under the shipped policies, for
/// `cargo xtask bench`; returns the outcome.
pub fn print_verdict(candidate: &Candidate) -> GateExit {
    match load_policies(None) {
        Ok(policies) => show(&policies, candidate),
        Err(err) => {
            eprintln!("perf-gate: {err:#}");
            GateExit::CannotJudge
        }
    }
}

/// Prints the provisional-baseline notes, the table and the verdict.
fn show(policies: &[LoadedPolicy], candidate: &Candidate) -> GateExit {
    for loaded in policies {
        if loaded.baseline.provisional {
            println!(
                "perf-gate: note: baseline `{}` ({}) is provisional: {}",
                loaded.baseline.name,
                loaded.path.display(),
                loaded.baseline.note.as_deref().unwrap_or("re-measure it")
            );
        }
    }
    conclude(&judge(policies, candidate))
}

/// Prints the table and the one-line verdict of `report`.
fn conclude(report: &Report) -> GateExit {
    print!("{}", table::render(report));
    let names = |rows: Vec<&evaluate::Row>| -> String {
        rows.iter()
            .map(|r| format!("{}/{}", r.policy, r.metric))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match report.outcome() {
        Outcome::Pass => {
            println!("perf-gate: PASS ({} checks)", report.rows.len());
            GateExit::Pass
        }
        Outcome::Regression => {
            let failed: Vec<_> = report.rows.iter().filter(|r| r.verdict.failed()).collect();
            println!(
                "perf-gate: FAIL: {} of {} checks failed: {}. See perf/README.md for what each \
                 metric means and how a baseline is updated.",
                failed.len(),
                report.rows.len(),
                names(failed)
            );
            GateExit::Regression
        }
        Outcome::TooNoisy => {
            let noisy: Vec<_> = report.failures().collect();
            println!(
                "perf-gate: CANNOT JUDGE: the spread between rounds is too large for {} (see \
                 the ± column); nothing failed. Run the gate again on a quieter machine, or \
                 pool more runs (RUNBOOK.md, Perf gate failure).",
                names(noisy)
            );
            GateExit::TooNoisy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench::environment::Environment;
    use bench::figures::{RoundFigures, Side, BLOCK_PATTERN};
    use bench::load::PhaseResult;
    use bench::outcome::Outcome as RequestOutcome;
    use bench::report::Measured;
    use bench::stats::Recorder;
    use std::time::Duration;

    fn perf_dir() -> PathBuf {
        paths::project_root().join("perf")
    }

    fn shipped() -> Vec<LoadedPolicy> {
        load_policies(Some(&perf_dir())).expect("shipped policies")
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
    fn candidate(
        blocks: usize,
        echo: Side3,
        router: Side3,
        jitter: impl Fn(usize) -> f64,
    ) -> Candidate {
        let mut measured = Measured::default();
        for block in 0..blocks {
            for side in BLOCK_PATTERN {
                let s = match side {
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

    fn args(candidate: Option<PathBuf>, latest: bool) -> Args {
        Args {
            candidate,
            latest,
            baseline_dir: Some(perf_dir()),
            max_runs: 2,
            router_binary: None,
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
        let report = judge(&shipped(), &candidate(6, ECHO, at_baseline(), steady));
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
        let report = judge(&shipped(), &candidate(6, ECHO, slow, steady));
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
        let report = judge(&shipped(), &candidate(6, ECHO, slow, steady));
        assert_eq!(report.outcome(), Outcome::Regression);
    }

    #[test]
    fn ordinary_noise_passes() {
        // ±4 % from block to block around the baseline.
        let jitter = |block: usize| if block % 2 == 0 { 1.04 } else { 0.96 };
        let report = judge(&shipped(), &candidate(6, ECHO, at_baseline(), jitter));
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
        let report = judge(&shipped(), &candidate(6, ECHO, at_baseline(), jitter));
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
    fn a_failed_run_is_a_regression() {
        let mut c = candidate(6, ECHO, at_baseline(), steady);
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
            &candidate(6, ECHO, at_baseline(), steady),
        );
        assert_eq!(
            gate_file(&args(Some(good), false), &policies, dir.path()),
            GateExit::Pass
        );
        let noisy = candidate(
            6,
            ECHO,
            at_baseline(),
            |b| if b % 2 == 0 { 1.4 } else { 0.6 },
        );
        let noisy = write(dir.path(), "noisy.json", &noisy);
        assert_eq!(
            gate_file(&args(Some(noisy), false), &policies, dir.path()),
            GateExit::TooNoisy
        );
        // Nothing to judge: no file, not JSON, not a candidate.
        let absent = dir.path().join("absent.json");
        assert_eq!(
            gate_file(&args(Some(absent), false), &policies, dir.path()),
            GateExit::CannotJudge
        );
        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, "not json").expect("write");
        assert_eq!(
            gate_file(&args(Some(garbage), false), &policies, dir.path()),
            GateExit::CannotJudge
        );
        let empty = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            gate_file(&args(None, true), &policies, empty.path()),
            GateExit::CannotJudge
        );
    }

    #[test]
    fn latest_finds_the_bench_output() {
        let dir = tempfile::tempdir().expect("temp dir");
        write(
            dir.path(),
            "perf_1.json",
            &candidate(6, ECHO, at_baseline(), steady),
        );
        assert_eq!(
            gate_file(&args(None, true), &shipped(), dir.path()),
            GateExit::Pass
        );
    }

    #[test]
    fn unreadable_policies_cannot_judge() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(load_policies(Some(dir.path())).is_err());
    }
}
