//! `cargo xtask bench`: the main job end to end. Release build, its own nats-server (mutual
//! TLS by default), the router and its echo responder (`router --responder echo`: the same
//! process, connections and publish path without the decision) on free ports, and
//! `router-bench` measuring both in interleaved rounds. Writes
//! `_artifacts/perf_<timestamp>.json` and `.md`, prints the per-round table and the perf
//! gate's verdict. Everything started is stopped afterwards, on failure too.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use bench::gate::{policy, verdict};
use bench::report::{Candidate, Status};
use nats_harness::{NatsServer, RouterOptions, RouterProcess, ServerOptions};

use crate::paths;

/// Subject prefix of the echo responder the router is compared with.
pub const ECHO_PREFIX: &str = "beamline.echo";

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Runs, each with a fresh nats-server, router and echo responder; their blocks are
    /// pooled into one candidate.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Blocks of four interleaved rounds (echo, router, router, echo) per run.
    #[arg(long, default_value_t = 8)]
    pub blocks: usize,
    /// Length of one measured round (e.g. 2s).
    #[arg(long, default_value = "2s")]
    pub round: String,
    /// Warm-up of each side before the first round.
    #[arg(long, default_value = "2s")]
    pub warmup: String,
    /// Plaintext NATS instead of mutual TLS.
    #[arg(long)]
    pub no_tls: bool,
    /// Concurrent requesters.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// NATS connections of the load generator.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Candidate JSON path (default `_artifacts/perf_<timestamp>.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Extra flag passed to the router and to the echo responder (repeatable), e.g.
    /// `--router-arg=--concurrency=2`.
    #[arg(long = "router-arg", allow_hyphen_values = true)]
    pub router_args: Vec<String>,
    /// Measure this router binary instead of building this checkout's (the echo responder
    /// still comes from this checkout).
    #[arg(long, value_name = "FILE")]
    pub router_binary: Option<PathBuf>,
}

impl Args {
    /// The defaults of `cargo xtask bench` with no flag.
    pub fn defaults() -> Args {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: Args,
        }
        <Defaults as clap::Parser>::parse_from(["bench"]).args
    }
}

/// Runs the command: the verdict is printed; exit 0 when the run could be done, 1 when not.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (path, candidate) = bench(&args)?;
    println!("{}", candidate.to_markdown());
    println!("bench: wrote {} and its .md", paths::display(&path));
    print_verdict(&candidate);
    Ok(if candidate.status == Status::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the perf gate's table and verdict of `candidate` under the shipped policies.
fn print_verdict(candidate: &Candidate) {
    match policy::load_all(&paths::perf_dir()) {
        Ok(policies) => print!("{}", verdict::of(&policies, candidate).text),
        Err(err) => eprintln!("perf-gate: {err:#}"),
    }
}

/// Builds, runs every run and writes the pooled candidate; returns its path and contents.
pub fn bench(args: &Args) -> anyhow::Result<(PathBuf, Candidate)> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let artifacts = paths::artifacts_dir();
    let stamp = paths::file_stamp();
    let run_dir = artifacts.join(format!("bench_{stamp}"));
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| artifacts.join(format!("perf_{stamp}.json")));

    let bin = build_release()?;
    let router_binary = args
        .router_binary
        .clone()
        .unwrap_or_else(|| bin.join("router"));
    let mut pooled: Option<Candidate> = None;
    for index in 1..=args.runs {
        let label = format!("run{index}");
        eprintln!(
            "bench: {label} of {}: nats-server + router + echo responder + load",
            args.runs
        );
        let candidate = one_run(&bin, &router_binary, &run_dir, &label, args)
            .with_context(|| format!("bench {label} failed; logs in {}", run_dir.display()))?;
        pooled = Some(match pooled {
            None => candidate,
            Some(first) => first.absorb(candidate),
        });
    }
    let candidate = pooled.context("no run to report")?;
    candidate.write(&out)?;
    Ok((out, candidate))
}

/// `cargo build --release` of the router and router-bench; returns the binaries' folder.
pub fn build_release() -> anyhow::Result<PathBuf> {
    eprintln!("bench: building release binaries (router, router-bench)...");
    cargo_build_release(&["-p", "router-bin", "-p", "bench"]).context("release build failed")
}

/// `cargo build --release --quiet <args>`; returns the release binaries' folder.
pub fn cargo_build_release(args: &[&str]) -> anyhow::Result<PathBuf> {
    let sh = crate::child::shell()?;
    crate::child::cargo(&sh)
        .args(["build", "--release", "--quiet"])
        .args(args)
        .run()?;
    Ok(paths::target_dir().join("release"))
}

/// Points a load tool (`router-bench`, `router-scenario`) at `server`'s TLS files, if any.
pub fn add_client_tls(command: &mut Command, server: &NatsServer) {
    if let Some(files) = server.tls() {
        command
            .arg("--tls-ca")
            .arg(&files.ca_cert)
            .arg("--tls-cert")
            .arg(&files.client_cert)
            .arg("--tls-key")
            .arg(&files.client_key);
    }
}

/// One run: fresh nats-server, router and echo responder, router-bench in interleaved rounds.
fn one_run(
    bin: &Path,
    router_binary: &Path,
    run_dir: &Path,
    label: &str,
    args: &Args,
) -> anyhow::Result<Candidate> {
    let server = NatsServer::start(ServerOptions {
        tls: !args.no_tls,
        ..ServerOptions::default()
    })
    .context("cannot start nats-server")?;
    let policy_dir = paths::project_root().join("config/policies");
    let mut router = RouterProcess::start(
        &server,
        &RouterOptions {
            binary: router_binary.to_path_buf(),
            policy_dir: policy_dir.clone(),
            log: run_dir.join(format!("router_{label}.log")),
            extra_args: args.router_args.clone(),
        },
    )
    .context("cannot start the router")?;
    let mut echo_args = vec![
        "--responder".to_owned(),
        "echo".to_owned(),
        "--subject-prefix".to_owned(),
        ECHO_PREFIX.to_owned(),
        "--queue-group".to_owned(),
        "beamline-echo-group".to_owned(),
    ];
    echo_args.extend(args.router_args.iter().cloned());
    let mut echo = RouterProcess::start(
        &server,
        &RouterOptions {
            binary: bin.join("router"),
            policy_dir,
            log: run_dir.join(format!("echo_{label}.log")),
            extra_args: echo_args,
        },
    )
    .context("cannot start the echo responder")?;

    let candidate_path = run_dir.join(format!("{label}.json"));
    let mut command = Command::new(bin.join("router-bench"));
    command
        .arg("--nats-url")
        .arg(server.client_url())
        .args(["--echo-prefix", ECHO_PREFIX])
        .args(["--router-pid", &router.pid().to_string()])
        .args(["--echo-pid", &echo.pid().to_string()])
        .args(["--blocks", &args.blocks.to_string()])
        .args(["--round", &args.round, "--warmup", &args.warmup])
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .arg("--metrics-url")
        .arg(format!("http://{}/metrics", router.http))
        .arg("--out")
        .arg(&candidate_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    add_client_tls(&mut command, &server);
    // Its progress bar and messages go to this terminal.
    let status = command.status().context("cannot run router-bench")?;
    router.stop(Duration::from_secs(10));
    echo.stop(Duration::from_secs(10));
    Candidate::read(&candidate_path)
        .with_context(|| format!("router-bench ({status}) wrote no readable candidate"))
}
