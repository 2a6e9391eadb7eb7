//! `cargo xtask validate-tls`: positive and negative mutual-TLS cases, then the
//! authorization cases (who may do what once connected), against a real nats-server running
//! the shipped `config/nats_tls.conf` and the real router.
//!
//! It builds the router (`cargo build -p router-bin`), starts a nats-server with mutual TLS
//! (`verify_and_map: true` and the per-role permissions, nats-harness) and the router against it, issues the certificates of every
//! case from the server's CA into `<artifacts>/validate-tls/certs/` (the certs library), then
//! tries each case with a real NATS client and prints a table: case, expected, observed,
//! verdict. Exit 0 when every case behaved as expected, 1 otherwise.
//!
//! A refused case passes only when the client is refused *for the expected reason* (the TLS
//! alert or verification error named in the case), so a broken setup cannot make refusals
//! pass; and the accepted case must get a decision (`ok: true`) through the router.
//!
//! The wrong-SAN case needs a server presenting a certificate without the dialled name: a
//! second nats-server is started with a certificate from the same CA whose only SAN is
//! `wrong.example`, and the client dials it as `127.0.0.1`. Dialling another name for the
//! first server was not an option: every name that resolves to loopback here (`localhost`,
//! `127.0.0.1`, `::1`) is in its certificate. A control case proves the second server
//! accepts the same client when it verifies the name `wrong.example`, so the refusal is due
//! to the name alone.
//!
//! Everything started is stopped when the command ends, on error too (Drop guards). Logs
//! (`validate-tls.log`, `router.log`, both nats-server logs and configs) and `report.json`
//! stay in `<artifacts>/validate-tls/`; the certificates and keys are deleted at the end
//! unless `--keep-artifacts` is given.

mod authz;
mod cases;
mod lab;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

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
    let certs_dir = out_dir.join("certs");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the tokio runtime")?;
    let outcome = runtime.block_on(lab::run_all(&binary, &out_dir, &certs_dir));
    // Certificates and private keys do not outlive the run unless asked for.
    if !args.keep_artifacts {
        remove_dir(&certs_dir);
    }
    let results = outcome?;

    report::print_table(&results);
    let report_path = out_dir.join("report.json");
    report::write_json(&report_path, &results)?;
    let failed = results.iter().filter(|r| !r.passed()).count();
    println!();
    println!(
        "validate-tls: {} of {} cases as expected; logs and report in {}{}",
        results.len() - failed,
        results.len(),
        paths::display(&out_dir),
        if args.keep_artifacts {
            " (certificates kept in certs/)"
        } else {
            ""
        }
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo build -p router-bin` (debug), then the path of `router`.
fn build_router() -> anyhow::Result<PathBuf> {
    println!("validate-tls: building the router (cargo build -p router-bin)...");
    let sh = crate::child::shell()?;
    crate::child::cargo(&sh)
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

fn remove_dir(dir: &Path) {
    if let Err(err) = std::fs::remove_dir_all(dir) {
        if err.kind() != std::io::ErrorKind::NotFound {
            eprintln!("validate-tls: could not remove {}: {err}", dir.display());
        }
    }
}
