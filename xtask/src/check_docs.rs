//! `cargo xtask check-docs`: the documentation says only what exists (the checks are the
//! `docs-check` crate's). The commands of the documents are checked with the [`ParseCheck`]
//! it is given: xtask's own command line parser (`main.rs`), which `freeze-check` also uses
//! for its manifest.

use std::process::ExitCode;

use crate::paths;

/// Whether `cargo xtask <args>` parses; the error is the parser's first line.
pub type ParseCheck = fn(&[String]) -> Result<(), String>;

/// Arguments of `cargo xtask check-docs`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every check passed, 1 a check found a problem \
(each problem is printed with the document that has it)."
)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args, parses: ParseCheck) -> anyhow::Result<ExitCode> {
    let checks = docs_check::check_all(&paths::project_root(), parses)?;
    let mut failed = false;
    for check in &checks {
        let findings = &check.findings;
        if findings.problems.is_empty() {
            println!(
                "check-docs: {}: {} checked, ok",
                check.name, findings.checked
            );
        } else {
            failed = true;
            println!(
                "check-docs: {}: {} checked, {} FAILED:",
                check.name,
                findings.checked,
                findings.problems.len()
            );
            for problem in &findings.problems {
                println!("  {problem}");
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
