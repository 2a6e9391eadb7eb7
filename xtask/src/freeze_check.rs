//! `cargo xtask freeze-check`: is the CP1 freeze intact?
//!
//! 1. Every artifact listed in `docs/CP1_FREEZE.md` (table `## Artifacts`) exists: files
//!    and folders on disk, `cargo xtask …` commands parse (with `--help` appended, as
//!    `check-docs` parses them); and the manifest still lists every artifact of
//!    [`manifest::REQUIRED`].
//! 2. The invariants readable from files: client certificates required by
//!    `config/nats_tls.conf`, the frozen CP1 baseline and gate policy, the blocking gate job.
//! 3. `cargo xtask heavy`, `cargo xtask validate-tls`, then `cargo xtask perf-gate`, which
//!    benches and judges (with `--candidate FILE` it judges that file instead). A gate that
//!    is too noisy to judge (exit 3) is a warning, not a pass and not a failure.
//!
//! Prints one line per check (check, result, detail); exit 0 when every check that ran
//! passed (warnings included), 1 otherwise. `--skip heavy|validate-tls|perf-gate` leaves a
//! run out (`cargo xtask ci` runs heavy and the gate as steps of their own).

mod invariants;
mod manifest;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

use crate::check_docs::ParseCheck;
use crate::paths;
use manifest::Artifact;
use report::Check;

/// The runs that `--skip` can leave out.
const RUNS: &[&str] = &["heavy", "validate-tls", "perf-gate"];

/// Arguments of `cargo xtask freeze-check`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 every check that ran passed, 1 a check failed.")]
pub struct Args {
    /// Leave out one of the runs (repeatable): heavy, validate-tls, perf-gate.
    #[arg(long, value_name = "RUN")]
    pub skip: Vec<String>,
    /// Judge this candidate JSON instead of running a bench.
    #[arg(long, value_name = "FILE")]
    pub candidate: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args, parses: ParseCheck) -> anyhow::Result<ExitCode> {
    for name in &args.skip {
        if !RUNS.contains(&name.as_str()) {
            bail!(
                "unknown run {name:?} in --skip; runs are: {}",
                RUNS.join(", ")
            );
        }
    }
    let root = paths::project_root();
    let mut checks = artifact_checks(&root, parses);
    checks.extend(invariants::check_all(&root));
    let skipped = |name: &str| args.skip.iter().any(|s| s == name);
    if RUNS.iter().any(|run| !skipped(run)) {
        // The file checks now, before runs that take minutes.
        print!("{}", report::render(&checks));
        println!();
    }
    checks.push(if skipped("heavy") {
        Check::skipped("heavy", "--skip heavy")
    } else {
        // One retry, as in CI (see ci.rs): a retried suite shows in heavy's summary line.
        run_check("heavy", &["heavy", "--retries", "1"])
    });
    checks.push(if skipped("validate-tls") {
        Check::skipped("validate-tls", "--skip validate-tls")
    } else {
        run_check("validate-tls", &["validate-tls"])
    });
    checks.push(if skipped("perf-gate") {
        Check::skipped("perf-gate", "--skip perf-gate")
    } else {
        perf_check(&args)
    });

    println!();
    println!(
        "freeze-check: {}",
        paths::display(&root.join(manifest::MANIFEST))
    );
    print!("{}", report::render(&checks));
    let failed = checks.iter().filter(|c| c.passed == Some(false)).count();
    let ran = checks.iter().filter(|c| c.passed.is_some()).count();
    let warnings = checks.iter().filter(|c| c.warning).count();
    if failed == 0 && warnings > 0 {
        println!("freeze-check: PASS with {warnings} warning(s) ({ran} checks)");
        Ok(ExitCode::SUCCESS)
    } else if failed == 0 {
        println!("freeze-check: PASS ({ran} checks)");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("freeze-check: FAIL: {failed} of {ran} checks failed");
        Ok(ExitCode::FAILURE)
    }
}

/// One check per listed artifact, plus one per required artifact the manifest dropped.
fn artifact_checks(root: &Path, parses: ParseCheck) -> Vec<Check> {
    let artifacts = match manifest::load(root) {
        Ok(artifacts) => artifacts,
        Err(err) => return vec![Check::failed("manifest", format!("{err:#}"))],
    };
    let mut checks: Vec<Check> = artifacts
        .iter()
        .map(|a| artifact_check(root, a, parses))
        .collect();
    let labels: Vec<String> = artifacts.iter().map(Artifact::label).collect();
    for required in manifest::REQUIRED {
        if !labels.iter().any(|l| l == required) {
            checks.push(Check::failed(
                format!("listed {required}"),
                format!(
                    "{} no longer lists it: add its row back",
                    manifest::MANIFEST
                ),
            ));
        }
    }
    checks
}

fn artifact_check(root: &Path, artifact: &Artifact, parses: ParseCheck) -> Check {
    let name = format!("artifact {}", artifact.label());
    match artifact {
        Artifact::Path(path) => match std::fs::metadata(root.join(path)) {
            Ok(meta) if meta.is_dir() => Check::ok(name, "folder"),
            Ok(meta) => Check::ok(name, format!("file, {} bytes", meta.len())),
            Err(_) => Check::failed(name, "missing: restore it from git or fix the manifest"),
        },
        Artifact::Command(args) => match parses(args) {
            Ok(()) => Check::ok(name, "command parses (--help)"),
            Err(why) => Check::failed(name, format!("does not parse: {why}")),
        },
    }
}

/// Runs `cargo xtask <args>` as a check: passed when it exits 0.
fn run_check(name: &str, args: &[&str]) -> Check {
    run_check_warning_on(name, args, None)
}

/// [`run_check`], with an exit code that makes the check a warning instead of a failure.
fn run_check_warning_on(name: &str, args: &[&str], warning_code: Option<i32>) -> Check {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    println!("==> freeze-check: cargo xtask {}", args.join(" "));
    match crate::child::xtask_echoed(&args) {
        Ok(ran) => {
            let detail = format!(
                "{} ({:.0} s)",
                if ran.last_line.is_empty() {
                    "no output"
                } else {
                    &ran.last_line
                },
                ran.elapsed.as_secs_f64()
            );
            if ran.code == Some(0) {
                Check::ok(name, detail)
            } else if ran.code.is_some() && ran.code == warning_code {
                Check::warning(
                    name,
                    format!("exit {}: {detail}", ran.code.unwrap_or_default()),
                )
            } else {
                let code = ran
                    .code
                    .map_or("a signal".to_owned(), |c| format!("exit {c}"));
                Check::failed(name, format!("{code}: {detail}"))
            }
        }
        Err(err) => Check::failed(name, format!("{err:#}")),
    }
}

/// The perf gate: it benches itself, or judges `--candidate`. Exit 3 (too noisy to judge)
/// is a warning.
fn perf_check(args: &Args) -> Check {
    let mut gate = vec!["perf-gate".to_owned()];
    if let Some(path) = &args.candidate {
        gate.push("--candidate".to_owned());
        gate.push(paths::absolute(path).to_string_lossy().into_owned());
    }
    let gate: Vec<&str> = gate.iter().map(String::as_str).collect();
    run_check_warning_on(
        "perf-gate",
        &gate,
        Some(bench::gate::exit::GateExit::TooNoisy as i32),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_command_must_parse() {
        let root = paths::project_root();
        let parses: ParseCheck = |args| match args.first().map(String::as_str) {
            Some("heavy") => Ok(()),
            _ => Err("error: unrecognized subcommand".to_owned()),
        };
        let good = artifact_check(&root, &Artifact::Command(vec!["heavy".into()]), parses);
        assert_eq!(good.passed, Some(true), "{good:?}");
        let renamed = artifact_check(
            &root,
            &Artifact::Command(vec!["heavy-renamed".into()]),
            parses,
        );
        assert_eq!(renamed.passed, Some(false), "{renamed:?}");
        assert!(renamed.detail.contains("does not parse"), "{renamed:?}");
        let missing = artifact_check(&root, &Artifact::Path("docs/NO_SUCH.md".into()), parses);
        assert_eq!(missing.passed, Some(false), "{missing:?}");
    }
}
