//! `cargo xtask certs`: CA, server and one client certificate per role under
//! `_artifacts/certs/` — router, operator, internal caller (`client-cert.pem`) — plus
//! `tenant-<id>-cert.pem` for each `--tenant` (and each tenant already there).
//!
//! Existing certificates are kept while they chain to the CA, carry the expected names and
//! usages, match their keys and stay valid for more than 30 days; `--force` renews all.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::paths::{self, ArtifactsArg};

/// Arguments of `cargo xtask certs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Regenerate every certificate even if the existing ones are good.
    #[arg(long)]
    pub force: bool,
    /// Validity of newly generated certificates, in days (more than the 30-day renewal window).
    #[arg(long, default_value_t = certs::DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(31..=3650))]
    pub days: u32,
    /// Also issue the caller certificate of this tenant (repeatable): it may decide and
    /// report only as that tenant. Add the tenant's user to config/nats_tls.conf too.
    #[arg(long = "tenant", value_name = "TENANT_ID")]
    pub tenants: Vec<String>,
    /// Output folder [default: <artifacts>/certs].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = match &args.out {
        Some(out) => paths::absolute(out),
        None => paths::certs_dir(&args.artifacts.resolve()?),
    };
    let options = certs::EnsureOptions {
        days: args.days,
        force: args.force,
        tenants: args.tenants.clone(),
        ..certs::EnsureOptions::default()
    };
    let report = certs::ensure(&dir, &options)
        .with_context(|| format!("could not prepare certificates in {}", dir.display()))?;
    print_report(&report);
    Ok(ExitCode::SUCCESS)
}

/// Prints one line per file: path, expiry date, what was done.
pub fn print_report(report: &certs::Report) {
    let rows: Vec<(String, String, String, String)> = report
        .entries
        .iter()
        .flat_map(|entry| {
            let expires = entry.not_after.date().to_string();
            let action = entry.action.to_string();
            [
                (
                    entry.role.clone(),
                    paths::display(&entry.cert),
                    expires.clone(),
                    action.clone(),
                ),
                (String::new(), paths::display(&entry.key), expires, action),
            ]
        })
        .collect();
    let width = rows.iter().map(|r| r.1.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<18}  {:<width$}  {:<10}  action",
        "identity", "file", "expires"
    );
    for (role, file, expires, action) in rows {
        println!("{role:<18}  {file:<width$}  {expires:<10}  {action}");
    }
    if report.all_kept() {
        println!("all certificates kept (use --force to renew)");
    }
}
