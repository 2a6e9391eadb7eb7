//! `cargo xtask perf-gate`: judges a bench candidate against the CP1 floor and this
//! router's own baseline.
//!
//! Without `--candidate` or `--latest` it runs `cargo xtask bench` itself; when a figure's
//! spread over the blocks is too large to judge, it benches again and pools the blocks, up
//! to `--max-runs` runs, and only then answers "too noisy to judge". Reading the files,
//! judging and the verdict are `bench::gate`'s; this command names the files, runs the
//! benches and prints.
//!
//! Exit status: 0 every rule of every policy passed; 1 a regression (or a failed run, or a
//! missing metric); 2 the gate could not judge (no candidate, or a candidate, policy or
//! baseline file that cannot be read); 3 too noisy to judge (the figures are printed; CI
//! treats it as a warning).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bench::gate::exit::GateExit;
use bench::gate::policy::{self, LoadedPolicy};
use bench::gate::{candidate, verdict};

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
        return Ok(gate_file(&args, &policies).code());
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
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(paths::perf_dir);
    policy::load_all(&dir)
}

/// Judges a given candidate file (`--candidate`, or `--latest` under `_artifacts/`).
fn gate_file(args: &Args, policies: &[LoadedPolicy]) -> GateExit {
    let artifacts = paths::artifacts_dir();
    let candidate = match candidate::pick(args.candidate.as_deref(), args.latest, &artifacts) {
        Ok((path, candidate)) => {
            println!("perf-gate: candidate {}", path.display());
            candidate
        }
        Err(err) => {
            eprintln!("perf-gate: {err:#}");
            return GateExit::CannotJudge;
        }
    };
    let verdict = verdict::of(policies, &candidate);
    print!("{}", verdict.text);
    if verdict.exit == GateExit::TooNoisy {
        println!(
            "perf-gate: run `cargo xtask perf-gate` without a candidate: it benches and adds \
             blocks until the figures can be judged."
        );
    }
    verdict.exit
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
    let judged = bench_cmd::bench_until_judged(&bench_args, policies, max_runs)?;
    println!(
        "perf-gate: candidate {} ({} run(s))",
        judged.path.display(),
        judged.runs
    );
    judged.print();
    Ok(judged.exit())
}
