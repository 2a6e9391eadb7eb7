//! `cargo xtask scenario`: the routing strategies compared end to end. Release build, its
//! own nats-server (mutual TLS), a router serving `config/scenarios/policies`, and
//! `router-scenario` playing simulated callers and providers. Prints the table and writes it
//! to `_artifacts/scenario_<timestamp>.md`. Everything started is stopped afterwards.

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use nats_harness::{NatsServer, RouterOptions, RouterProcess, ServerOptions};

use crate::{bench_cmd, paths};

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Scenarios to play (latency, errors, rate-limit; repeatable; default: all).
    #[arg(long)]
    pub scenario: Vec<String>,
    /// Length of one scenario.
    #[arg(long, default_value = "20s")]
    pub duration: String,
    /// When the provider changes.
    #[arg(long, default_value = "10s")]
    pub change_at: String,
    /// Decisions per second, per strategy.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
}

/// Runs the command: exit 0 when every scenario was played.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    eprintln!("scenario: building release binaries (router, router-scenario)...");
    let bin = bench_cmd::cargo_build_release(&["-p", "router-bin", "-p", "bench"])
        .context("release build failed")?;
    let artifacts = paths::artifacts_dir();
    let stamp = paths::file_stamp();
    let run_dir = artifacts.join(format!("scenario_{stamp}"));
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let server = NatsServer::start(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })
    .context("cannot start nats-server")?;
    let mut router = RouterProcess::start(
        &server,
        &RouterOptions {
            binary: bin.join("router"),
            policy_dir: paths::project_root().join("config/scenarios/policies"),
            log: run_dir.join("router.log"),
            extra_args: Vec::new(),
        },
    )
    .context("cannot start the router")?;
    let mut command = Command::new(bin.join("router-scenario"));
    command
        .arg("--nats-url")
        .arg(server.client_url())
        .args(["--duration", &args.duration, "--change-at", &args.change_at])
        .args(["--rate", &args.rate.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    for scenario in &args.scenario {
        command.args(["--scenario", scenario]);
    }
    bench_cmd::add_client_tls(&mut command, &server);
    let output = command.output().context("cannot run router-scenario")?;
    router.stop(Duration::from_secs(10));
    let table = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        eprintln!(
            "scenario: router-scenario failed ({}); router log: {}",
            output.status,
            run_dir.join("router.log").display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let report = artifacts.join(format!("scenario_{stamp}.md"));
    std::fs::write(&report, &table)
        .with_context(|| format!("cannot write {}", report.display()))?;
    print!("{table}");
    println!("scenario: wrote {}", paths::display(&report));
    Ok(ExitCode::SUCCESS)
}
