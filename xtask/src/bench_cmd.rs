//! `cargo xtask bench`: the main job end to end. Release build, its own nats-server (mutual
//! TLS by default), the router, its echo responder (`router --responder echo`: the same
//! process without the decision) and the raw echo (`raw-echo`: a bare NATS client with a
//! fixed reply, the physical limit), and `router-bench` measuring the three in interleaved
//! rounds. Writes `_artifacts/perf_<timestamp>.json` and `.md` and prints the gate's verdict;
//! when the spread is too large to judge it pools more runs (`--max-runs`) and says how noisy
//! the machine was. Everything started is stopped afterwards, on failure too.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench::gate::policy::{self, LoadedPolicy};
use bench::gate::pooling::{pool_until_judged, Judged};
use bench::report::{Candidate, Status};
use nats_harness::{NatsServer, RawEchoProcess, RouterOptions, RouterProcess, ServerOptions};

use crate::paths;

/// Subject prefix of the router measured (its default).
pub const ROUTER_PREFIX: &str = "beamline.router";

/// Subject prefix of the echo responder the router is compared with.
pub const ECHO_PREFIX: &str = "beamline.echo";

/// Subject prefix of the raw echo (below `beamline.`, where the router's certificate, which
/// it connects with, may subscribe).
pub const RAW_ECHO_PREFIX: &str = "beamline.raw";

/// Arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Runs, each with a fresh nats-server, router, echo responder and raw echo; their blocks
    /// are pooled into one candidate.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Most runs in all: while the gate cannot judge because the spread between rounds is too
    /// large, another run is added and pooled, up to this many (never fewer than --runs).
    #[arg(long, default_value_t = 4)]
    pub max_runs: usize,
    /// Blocks of six interleaved rounds (raw echo, echo, router, router, echo, raw echo) per
    /// run.
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
    /// and the raw echo still come from this checkout).
    #[arg(long, value_name = "FILE")]
    pub router_binary: Option<PathBuf>,
    /// Decide with quotas on: the shipped policies with per-provider `rpm`/`tpm` and prices
    /// and a tenant `quota` (rpm, tpm, day and month budgets) far above what a run reaches
    /// (`perf/policies_quota/`), so every decision counts and none is refused.
    #[arg(long)]
    pub quotas: bool,
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
    // Without policies there is no verdict, but the figures are still worth having.
    let policies = policy::load_all(&paths::perf_dir())
        .inspect_err(|err| eprintln!("perf-gate: {err:#}"))
        .ok();
    let judged = bench_until_judged(&args, policies.as_deref().unwrap_or(&[]), args.max_runs)?;
    println!("{}", judged.candidate.to_markdown());
    println!("bench: wrote {} and its .md", paths::display(&judged.path));
    if policies.is_some() {
        judged.print();
    }
    Ok(if judged.candidate.status == Status::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Benches `args.runs` runs, then, while the gate cannot judge the pooled candidate because
/// its spread is too large, one more run at a time up to `max_runs` in all; returns the
/// pooled candidate (written to its path) and its judgement.
pub fn bench_until_judged(
    args: &Args,
    policies: &[LoadedPolicy],
    max_runs: usize,
) -> anyhow::Result<Judged> {
    let max_runs = max_runs.max(args.runs).max(1);
    let mut session = Session::start(args, max_runs)?;
    let first = session.runs(args, args.runs)?;
    let pooled = pool_until_judged(policies, first, args.runs, max_runs, |pooled| {
        // The pooled figures so far stay on disk while the next run goes.
        session.write(pooled)?;
        session.runs(args, 1)
    })?;
    session.write(&pooled.candidate)?;
    Ok(Judged {
        path: session.out.clone(),
        max_runs,
        ..pooled
    })
}

/// The binaries and folders of one `cargo xtask bench`, and the runs done so far.
struct Session {
    bin: PathBuf,
    router_binary: PathBuf,
    run_dir: PathBuf,
    out: PathBuf,
    done: usize,
    max_runs: usize,
}

impl Session {
    /// Builds the release binaries and makes the run folder, for at most `max_runs` runs.
    fn start(args: &Args, max_runs: usize) -> anyhow::Result<Session> {
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
        Ok(Session {
            bin,
            router_binary,
            run_dir,
            out,
            done: 0,
            max_runs,
        })
    }

    /// `count` more runs, pooled into one candidate.
    fn runs(&mut self, args: &Args, count: usize) -> anyhow::Result<Candidate> {
        let mut pooled: Option<Candidate> = None;
        for _ in 0..count {
            self.done += 1;
            let label = format!("run{}", self.done);
            eprintln!(
                "bench: {label} of at most {}: nats-server + router + echo responder + raw \
                 echo + load",
                self.max_runs
            );
            let started = Instant::now();
            let candidate = one_run(&self.bin, &self.router_binary, &self.run_dir, &label, args)
                .with_context(|| {
                    format!("bench {label} failed; logs in {}", self.run_dir.display())
                })?;
            eprintln!(
                "bench: {label} done in {:.0} s",
                started.elapsed().as_secs_f64()
            );
            pooled = Some(match pooled {
                None => candidate,
                Some(first) => first.absorb(candidate),
            });
        }
        pooled.context("no run to report")
    }

    /// Writes the pooled candidate to the session's path.
    fn write(&self, candidate: &Candidate) -> anyhow::Result<()> {
        candidate
            .write(&self.out)
            .with_context(|| format!("cannot write the candidate {}", self.out.display()))?;
        Ok(())
    }
}

/// `cargo build --release` of the router, router-bench and raw-echo; returns the binaries'
/// folder.
pub fn build_release() -> anyhow::Result<PathBuf> {
    eprintln!("bench: building release binaries (router, router-bench, raw-echo)...");
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
        command.args(files.client_tls_args());
    }
}

/// The router's policies: the shipped ones, or their metered copies with `--quotas`.
fn router_policy_dir(args: &Args) -> PathBuf {
    if args.quotas {
        paths::perf_dir().join("policies_quota")
    } else {
        paths::project_root().join("config/policies")
    }
}

/// One run: fresh nats-server, router, echo responder and raw echo, router-bench in
/// interleaved rounds.
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
    let policy_dir = router_policy_dir(args);
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
    let mut raw_echo = RawEchoProcess::start(
        &bin.join("raw-echo"),
        &server,
        &run_dir.join(format!("raw_echo_{label}.log")),
        RAW_ECHO_PREFIX,
        ROUTER_PREFIX,
    )
    .context("cannot start the raw echo")?;

    let candidate_path = run_dir.join(format!("{label}.json"));
    let mut command = Command::new(bin.join("router-bench"));
    command
        .arg("--nats-url")
        .arg(server.client_url())
        .args(["--echo-prefix", ECHO_PREFIX])
        .args(["--raw-echo-prefix", RAW_ECHO_PREFIX])
        .args(["--router-pid", &router.pid().to_string()])
        .args(["--echo-pid", &echo.pid().to_string()])
        .args(["--raw-echo-pid", &raw_echo.pid().to_string()])
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
    let status = command.status().context("cannot run router-bench");
    router.stop(Duration::from_secs(10));
    echo.stop(Duration::from_secs(10));
    raw_echo.stop(Duration::from_secs(5));
    let status = status?;
    Candidate::read(&candidate_path)
        .with_context(|| format!("router-bench ({status}) wrote no readable candidate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cap_at_four_runs() {
        let args = Args::defaults();
        assert_eq!((args.runs, args.max_runs, args.blocks), (1, 4, 8));
    }
}
