//! `cargo xtask gate-selftest`: proof that the perf gate catches a slower router. Builds the
//! router with the `canary` feature (about 25 % more CPU per decision, calibrated against
//! the process itself) beside the unchanged one, and runs the gate — bench and judgement —
//! on each: the canary must fail, the unchanged router must pass.
//!
//! Exit status: 0 both verdicts as expected; 1 the canary passed or the unchanged router
//! failed; 3 a run was too noisy to judge (a warning: nothing was shown either way).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use bench::gate::exit::GateExit;

use crate::{bench_cmd, perf_gate};

/// Arguments of `cargo xtask gate-selftest`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 as expected, 1 the gate is wrong, 3 too noisy to judge.")]
pub struct Args {
    /// Most bench runs the gate pools per router before it says "too noisy to judge".
    #[arg(long, default_value_t = 2)]
    pub max_runs: usize,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let canary = build_canary()?;
    // The unchanged router, rebuilt after the canary replaced it in target/release.
    let bin = bench_cmd::build_release()?;
    let cases = [
        (
            "canary (+25 % CPU per decision)",
            canary,
            GateExit::Regression,
        ),
        ("unchanged router", bin.join("router"), GateExit::Pass),
    ];
    let mut results = Vec::new();
    for (name, binary, expected) in cases {
        println!("gate-selftest: the gate on the {name}");
        let got = perf_gate::bench_and_gate_binary(Some(binary), args.max_runs)?;
        results.push((name, expected, got));
    }
    println!();
    println!(
        "{:<34} {:<12} {:<12} result",
        "router", "expected", "gate said"
    );
    let mut exit = GateExit::Pass;
    for (name, expected, got) in &results {
        let result = if got == expected {
            "ok"
        } else if *got == GateExit::TooNoisy {
            exit = exit.max_severity(GateExit::TooNoisy);
            "WARNING: too noisy to judge"
        } else {
            exit = GateExit::Regression;
            "WRONG"
        };
        println!(
            "{name:<34} {:<12} {:<12} {result}",
            describe(*expected),
            describe(*got)
        );
    }
    match exit {
        GateExit::Pass => println!(
            "gate-selftest: PASS: the gate fails the canary and passes the unchanged router"
        ),
        GateExit::TooNoisy => println!(
            "gate-selftest: CANNOT JUDGE: a run was too noisy; nothing was shown either way"
        ),
        _ => println!(
            "gate-selftest: FAIL: the gate does not tell the canary from the unchanged router"
        ),
    }
    Ok(exit.code())
}

fn describe(exit: GateExit) -> &'static str {
    match exit {
        GateExit::Pass => "pass",
        GateExit::Regression => "fail",
        GateExit::CannotJudge => "no verdict",
        GateExit::TooNoisy => "too noisy",
    }
}

/// Builds the router with the `canary` feature and keeps it as `router-canary`.
fn build_canary() -> anyhow::Result<PathBuf> {
    eprintln!("gate-selftest: building the canary router (--features canary)...");
    let release = bench_cmd::cargo_build_release(&["-p", "router-bin", "--features", "canary"])
        .context("building the canary router failed")?;
    let canary = release.join("router-canary");
    std::fs::copy(release.join("router"), &canary)
        .with_context(|| format!("cannot copy the canary router to {}", canary.display()))?;
    Ok(canary)
}
