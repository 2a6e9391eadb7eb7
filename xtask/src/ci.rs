//! `cargo xtask ci`: everything CI runs, as a list of named steps, with a summary table.
//!
//! To add a step, add one line to [`steps`].

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::child;

/// Arguments of `cargo xtask ci`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 every step that ran passed, 1 a step failed.")]
pub struct Args {
    /// Skip a step (repeatable): see --list for the names.
    #[arg(long, value_name = "STEP")]
    pub skip: Vec<String>,
    /// Stop at the first failing step instead of running the rest.
    #[arg(long)]
    pub fail_fast: bool,
    /// List the steps and exit.
    #[arg(long)]
    pub list: bool,
}

/// What a step runs.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// A cargo command with these arguments.
    Cargo(&'static [&'static str]),
    /// This xtask binary with these arguments (no rebuild).
    Xtask(&'static [&'static str]),
    /// This xtask binary with these arguments; exit code 3 ("too noisy to judge") is a
    /// warning, not a failure.
    XtaskJudging(&'static [&'static str]),
}

/// One named step.
#[derive(Debug, Clone, Copy)]
struct Step {
    name: &'static str,
    action: Action,
}

const fn cargo(name: &'static str, args: &'static [&'static str]) -> Step {
    Step {
        name,
        action: Action::Cargo(args),
    }
}

const fn xtask(name: &'static str, args: &'static [&'static str]) -> Step {
    Step {
        name,
        action: Action::Xtask(args),
    }
}

const fn judging(name: &'static str, args: &'static [&'static str]) -> Step {
    Step {
        name,
        action: Action::XtaskJudging(args),
    }
}

/// The exit code of a judgement that could not conclude (the perf gate's "too noisy").
const CANNOT_JUDGE: i32 = 3;

/// The steps, in order. One line per step.
fn steps() -> Vec<Step> {
    vec![
        cargo("fmt", &["fmt", "--all", "--", "--check"]),
        cargo(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        // The docs check (its tests also run in `test`); first, it fails fast on a stale doc.
        xtask("docs", &["check-docs"]),
        cargo("test", &["test", "--workspace", "--no-fail-fast"]),
        // The router-bin suites again, against one external TLS nats-server. One retry for
        // timing on a loaded 2-core machine; a retried suite shows as `flaky` in heavy's
        // table, so it is seen, not hidden.
        xtask("heavy", &["heavy"]),
        // Artifacts, invariants and validate-tls; heavy ran above and the gate runs below.
        xtask(
            "freeze-check",
            &["freeze-check", "--skip", "heavy", "--skip", "perf-gate"],
        ),
        // The perf gate on the unchanged router (must pass) and on the canary router, 25 %
        // slower per decision (must fail).
        judging("gate-selftest", &["gate-selftest"]),
    ]
}

enum Outcome {
    Passed(Duration),
    Warning(Duration, String),
    Failed(Duration, String),
    Skipped,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let steps = steps();
    if args.list {
        for step in &steps {
            println!("{:<12} {}", step.name, describe(step));
        }
        return Ok(ExitCode::SUCCESS);
    }
    for name in &args.skip {
        if !steps.iter().any(|s| s.name == name) {
            let known: Vec<&str> = steps.iter().map(|s| s.name).collect();
            bail!(
                "unknown step {name:?} in --skip; steps are: {}",
                known.join(", ")
            );
        }
    }

    let mut results = Vec::with_capacity(steps.len());
    let mut failed = false;
    for step in &steps {
        if args.skip.iter().any(|s| s == step.name) || (failed && args.fail_fast) {
            results.push((step, Outcome::Skipped));
            continue;
        }
        eprintln!("==> ci step {}: {}", step.name, describe(step));
        let started = Instant::now();
        let outcome = match run_step(step) {
            Ok(None) => Outcome::Passed(started.elapsed()),
            Ok(Some(warning)) => Outcome::Warning(started.elapsed(), warning),
            Err(e) => {
                failed = true;
                Outcome::Failed(started.elapsed(), format!("{e:#}"))
            }
        };
        results.push((step, outcome));
    }

    print_table(&results);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs a step: `Ok(None)` passed, `Ok(Some(why))` a warning, `Err` failed.
fn run_step(step: &Step) -> anyhow::Result<Option<String>> {
    let sh = child::shell()?;
    match step.action {
        Action::Cargo(args) => child::cargo(&sh).args(args).run()?,
        Action::Xtask(args) => child::xtask(&sh)?.args(args).run()?,
        Action::XtaskJudging(args) => {
            let status = Command::from(child::xtask(&sh)?.args(args))
                .stdin(Stdio::null())
                .status()
                .context("could not run xtask")?;
            return match status.code() {
                Some(0) => Ok(None),
                Some(CANNOT_JUDGE) => Ok(Some(
                    "too noisy to judge (exit 3): see the figures above".to_owned(),
                )),
                _ => bail!("cargo xtask {} failed: {status}", args.join(" ")),
            };
        }
    }
    Ok(None)
}

fn describe(step: &Step) -> String {
    match step.action {
        Action::Cargo(args) => format!("cargo {}", args.join(" ")),
        Action::Xtask(args) | Action::XtaskJudging(args) => {
            format!("cargo xtask {}", args.join(" "))
        }
    }
}

fn print_table(results: &[(&Step, Outcome)]) {
    println!();
    println!("{:<12} {:<8} {:>8}", "step", "result", "time");
    for (step, outcome) in results {
        let (result, time) = match outcome {
            Outcome::Passed(d) => ("ok", format!("{:.1}s", d.as_secs_f64())),
            Outcome::Warning(d, _) => ("WARNING", format!("{:.1}s", d.as_secs_f64())),
            Outcome::Failed(d, _) => ("FAILED", format!("{:.1}s", d.as_secs_f64())),
            Outcome::Skipped => ("skipped", "-".to_owned()),
        };
        println!("{:<12} {result:<8} {time:>8}", step.name);
    }
    for (step, outcome) in results {
        if let Outcome::Failed(_, why) | Outcome::Warning(_, why) = outcome {
            println!("{}: {why}", step.name);
        }
    }
}
