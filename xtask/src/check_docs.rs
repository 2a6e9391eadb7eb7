//! `cargo xtask check-docs`: the documentation says only what exists (the checks are the
//! `docs-check` crate's). The commands of the documents are parsed by [`parses`], this
//! command line's own parser, which `freeze-check` also uses for its manifest.

use std::process::ExitCode;

use clap::Parser;

use crate::paths;

/// Arguments of `cargo xtask check-docs`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every check passed, 1 a check found a problem \
(each problem is printed with the document that has it)."
)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
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

/// `cargo xtask <args> --help` parses: the subcommand and its options exist. The error is
/// the parser's first line (`error: unrecognized subcommand …`).
pub fn parses(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("cargo xtask")
        .chain(args.iter().map(String::as_str))
        .chain(std::iter::once("--help"));
    match crate::Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        // Help or version shown: everything before `--help` parsed.
        Err(err) if !err.use_stderr() => Ok(()),
        Err(err) => Err(err
            .to_string()
            .lines()
            .next()
            .unwrap_or("no message")
            .to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_xtask_command_parses() -> anyhow::Result<()> {
        let docs = docs_check::documents(&paths::project_root())?;
        let findings = docs_check::check_commands(&docs, parses);
        assert!(
            findings.checked >= docs_check::checks::MIN_FOUND,
            "{findings:?}"
        );
        assert!(
            findings.problems.is_empty(),
            "commands that do not parse, {} checked:\n{}",
            findings.checked,
            findings.problems.join("\n")
        );
        Ok(())
    }

    #[test]
    fn a_renamed_command_fails_to_parse() {
        let renamed = parses(&["heavy-renamed".to_owned()]);
        assert!(
            renamed
                .as_ref()
                .is_err_and(|why| why.contains("heavy-renamed")),
            "{renamed:?}"
        );
        let option = parses(&["heavy".to_owned(), "--no-such-option".to_owned()]);
        assert!(option.is_err(), "{option:?}");
        let args: Vec<String> = ["heavy", "--suite", "decide"].map(String::from).to_vec();
        assert_eq!(parses(&args), Ok(()));
        assert_eq!(parses(&[]), Ok(()));
    }
}
