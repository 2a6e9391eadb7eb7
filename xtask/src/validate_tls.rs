//! `cargo xtask validate-tls`: positive and negative mutual-TLS cases, then the authorization
//! cases (who may do what once connected), against a real nats-server running the shipped
//! `config/nats_tls.conf` and the real router.
//!
//! It builds the router (`cargo build -p router-bin`) unless `--router-binary` names one,
//! then runs the suite of the `tls-lab` crate that holds the lab and the cases
//! (`cargo test -p tls-lab --test validate_tls`), which prints the table (case, expected,
//! observed, verdict) and writes `<artifacts>/validate-tls/report.json` next to the logs;
//! the certificates and keys it issued into `<artifacts>/validate-tls/certs/` are deleted at
//! the end unless `--keep-artifacts` is given. Exit 0 when every case behaved as expected,
//! 1 otherwise.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;
use tls_lab::report::{Summary, REPORT};
use tls_lab::suite::{EXIT_FAILED, EXIT_PASSED};

use crate::child;
use crate::paths::{self, ArtifactsArg};

/// Arguments of `cargo xtask validate-tls`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 every case behaved as expected, \
1 a case did not (or the run could not be set up).")]
pub struct Args {
    /// Keep the generated certificates and keys in <artifacts>/validate-tls/certs/ after the
    /// run (logs and the report are always kept).
    #[arg(long)]
    pub keep_artifacts: bool,
    /// Use this router executable instead of building one.
    #[arg(long, value_name = "PATH")]
    pub router_binary: Option<PathBuf>,
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let out_dir = args.artifacts.resolve()?.join("validate-tls");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("could not create {}", out_dir.display()))?;
    let binary = match &args.router_binary {
        Some(path) => paths::absolute(path),
        None => build_router()?,
    };
    let mut suite: Vec<std::ffi::OsString> = [
        "test",
        "--quiet",
        "-p",
        "tls-lab",
        "--test",
        "validate_tls",
        "--",
    ]
    .map(Into::into)
    .to_vec();
    suite.extend(["--router-binary".into(), binary.into_os_string()]);
    suite.extend(["--out-dir".into(), out_dir.clone().into_os_string()]);
    if args.keep_artifacts {
        suite.push("--keep-artifacts".into());
    }
    let sh = child::shell()?;
    let status = Command::from(child::cargo(&sh).args(&suite))
        .stdin(Stdio::null())
        .status()
        .context("could not run the validate-tls suite (cargo test -p tls-lab)")?;
    // Any other status: the suite did not get to its table (it, or cargo, said why).
    let code = match status.code().and_then(|c| u8::try_from(c).ok()) {
        Some(code @ (EXIT_PASSED | EXIT_FAILED)) => code,
        _ => return Ok(ExitCode::FAILURE),
    };
    let summary = Summary::read(&out_dir.join(REPORT))?;
    println!();
    println!(
        "validate-tls: {} of {} cases as expected; logs and report in {}{}",
        summary.passed,
        summary.total(),
        paths::display(&out_dir),
        if args.keep_artifacts {
            " (certificates kept in certs/)"
        } else {
            ""
        }
    );
    Ok(if code == EXIT_PASSED && summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo build -p router-bin` (debug), then the path of `router`.
fn build_router() -> anyhow::Result<PathBuf> {
    println!("validate-tls: building the router (cargo build -p router-bin)...");
    let sh = child::shell()?;
    child::cargo(&sh)
        .args(["build", "--quiet", "-p", "router-bin"])
        .quiet()
        .run()
        .context("could not build the router")?;
    let binary = paths::target_dir().join("debug").join("router");
    if !binary.is_file() {
        anyhow::bail!("the build finished but {} does not exist", binary.display());
    }
    Ok(binary)
}
