//! `cargo xtask ci`: everything CI runs, as a list of named steps, with a summary table.
//!
//! To add a step, add one line to [`steps`].

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use xshell::Shell;

use crate::paths;

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
        xtask("heavy", &["heavy", "--retries", "1"]),
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

    let sh = Shell::new().context("could not set up the shell")?;
    sh.change_dir(paths::project_root());
    let mut results = Vec::with_capacity(steps.len());
    let mut failed = false;
    for step in &steps {
        if args.skip.iter().any(|s| s == step.name) || (failed && args.fail_fast) {
            results.push((step, Outcome::Skipped));
            continue;
        }
        eprintln!("==> ci step {}: {}", step.name, describe(step));
        let started = Instant::now();
        let outcome = match run_step(&sh, step) {
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
fn run_step(sh: &Shell, step: &Step) -> anyhow::Result<Option<String>> {
    let cmd = match step.action {
        Action::Cargo(args) => cargo_command(sh).args(args),
        Action::Xtask(args) => without_package_env(sh.cmd(self_exe()?).args(args)),
        Action::XtaskJudging(args) => {
            let mut command = std::process::Command::new(self_exe()?);
            for var in package_env_vars() {
                command.env_remove(var);
            }
            let status = command
                .args(args)
                .current_dir(paths::project_root())
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
    };
    cmd.run()?;
    Ok(None)
}

/// The cargo that runs xtask (`$CARGO`, else `cargo`), without the package's variables (see
/// [`package_env_vars`]).
pub fn cargo_command(sh: &Shell) -> xshell::Cmd<'_> {
    without_package_env(sh.cmd(cargo_program()))
}

/// The cargo that runs xtask: `$CARGO`, else `cargo` from `PATH`.
pub fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn without_package_env(mut cmd: xshell::Cmd<'_>) -> xshell::Cmd<'_> {
    for var in package_env_vars() {
        cmd = cmd.env_remove(var);
    }
    cmd
}

/// This xtask executable, to run it again as a child. On Linux `/proc/self/exe`, which keeps
/// working when cargo replaces `target/debug/xtask` meanwhile (`cargo test --workspace`
/// rebuilds it with the workspace's features while `ci` runs).
pub fn self_exe() -> anyhow::Result<std::path::PathBuf> {
    let proc_exe = std::path::Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe.to_path_buf());
    }
    std::env::current_exe().context("could not find the xtask executable; run `cargo xtask` again")
}

/// The variables `cargo run` (and `cargo test`) set for the package being run —
/// `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, `CARGO_BIN_EXE_*`, ... — found in this process's
/// environment. A cargo started from xtask must not inherit them: build scripts that watch
/// one (ring's watches `CARGO_MANIFEST_DIR`) would see it change and rebuild half the
/// dependency tree on every switch between `cargo xtask` and a plain cargo command.
pub fn package_env_vars() -> Vec<std::ffi::OsString> {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_RUSTC_CURRENT_DIR",
        "CARGO_TARGET_TMPDIR",
    ];
    const PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_BIN_EXE_"];
    std::env::vars_os()
        .map(|(key, _)| key)
        .filter(|key| {
            key.to_str().is_some_and(|key| {
                EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
            })
        })
        .collect()
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
