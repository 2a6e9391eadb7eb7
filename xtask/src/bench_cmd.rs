//! `cargo xtask bench`: the main job end to end. Release build, its own nats-server (mutual
//! TLS by default), the router, its echo responder (`router --responder echo`: the same
//! process, connections and publish path without the decision) and the raw echo (`raw-echo`:
//! a bare NATS client with a fixed reply, the physical limit) on free ports, and
//! `router-bench` measuring the three in interleaved rounds. Writes
//! `_artifacts/perf_<timestamp>.json` and `.md`, prints the per-round table and the perf
//! gate's verdict. When the spread between rounds is too large to judge, it runs again (fresh
//! processes) and pools the blocks, up to `--max-runs` runs, so that it ends on a verdict; it
//! prints how noisy the machine was beside it. Everything started is stopped afterwards, on
//! failure too.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bench::gate::evaluate::{Outcome, Report};
use bench::gate::policy::{self, LoadedPolicy};
use bench::gate::verdict;
use bench::report::{Candidate, Status};
use nats_harness::process::Signal;
use nats_harness::{NatsServer, RouterOptions, RouterProcess, ServerOptions};

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
    let policies = match policy::load_all(&paths::perf_dir()) {
        Ok(policies) => policies,
        Err(err) => {
            // Without policies there is no verdict, but the figures are still worth having.
            eprintln!("perf-gate: {err:#}");
            let (path, candidate) = bench(&args)?;
            println!("{}", candidate.to_markdown());
            println!("bench: wrote {} and its .md", paths::display(&path));
            return Ok(exit_of(&candidate));
        }
    };
    let judged = bench_until_judged(&args, &policies, args.max_runs)?;
    println!("{}", judged.candidate.to_markdown());
    println!("bench: wrote {} and its .md", paths::display(&judged.path));
    judged.print();
    Ok(exit_of(&judged.candidate))
}

fn exit_of(candidate: &Candidate) -> ExitCode {
    if candidate.status == Status::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A pooled candidate with the gate's judgement of it.
pub struct Judged {
    /// Where the pooled candidate was written.
    pub path: PathBuf,
    /// The pooled candidate.
    pub candidate: Candidate,
    /// Its judgement under the policies.
    pub report: Report,
    /// The runs pooled into it.
    pub runs: usize,
    /// Most runs that were allowed.
    pub max_runs: usize,
}

impl Judged {
    /// Prints the gate's notes and table, how noisy the machine was, what to do when even
    /// the pooled runs could not be judged, and the verdict line last.
    pub fn print(&self) {
        let verdict = verdict::conclude(&self.report);
        print!("{}", verdict.before_line());
        print!("{}", verdict::noise(&self.candidate, self.runs));
        if self.report.outcome() == Outcome::TooNoisy {
            println!(
                "bench: still too noisy to judge after {} run(s) ({}). The machine is too busy \
                 for these limits: stop other load and run again, pool more runs \
                 (--max-runs {}), or lengthen the rounds (--round 4s).",
                self.runs,
                verdict::noisy_rows(&self.report),
                self.max_runs.max(self.runs) * 2
            );
        } else if self.runs > 1 {
            println!(
                "bench: judged on {} block(s) pooled from {} run(s)",
                self.candidate.blocks.len(),
                self.runs
            );
        }
        println!("{}", verdict.line);
    }

    /// The gate's exit status.
    pub fn exit(&self) -> bench::gate::exit::GateExit {
        self.report.outcome().into()
    }
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

/// Judges `pooled` (from `runs` runs) and, while it is too noisy to judge and fewer than
/// `max_runs` runs are pooled, absorbs one more run from `more`.
fn pool_until_judged(
    policies: &[LoadedPolicy],
    mut pooled: Candidate,
    mut runs: usize,
    max_runs: usize,
    mut more: impl FnMut(&Candidate) -> anyhow::Result<Candidate>,
) -> anyhow::Result<Judged> {
    loop {
        let report = verdict::judge(policies, &pooled);
        if report.outcome() != Outcome::TooNoisy || runs >= max_runs {
            return Ok(Judged {
                path: PathBuf::new(),
                candidate: pooled,
                report,
                runs,
                max_runs,
            });
        }
        eprintln!(
            "bench: too noisy to judge after {runs} run(s) of {} block(s) ({}); adding run {} \
             of at most {max_runs} and pooling its blocks",
            pooled.blocks.len(),
            verdict::noisy_rows(&report),
            runs + 1
        );
        let next = more(&pooled)?;
        pooled = pooled.absorb(next);
        runs += 1;
    }
}

/// Builds, runs every run and writes the pooled candidate; returns its path and contents.
pub fn bench(args: &Args) -> anyhow::Result<(PathBuf, Candidate)> {
    let mut session = Session::start(args, args.runs)?;
    let candidate = session.runs(args, args.runs)?;
    session.write(&candidate)?;
    Ok((session.out, candidate))
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
        command
            .arg("--tls-ca")
            .arg(&files.ca_cert)
            .arg("--tls-cert")
            .arg(&files.client_cert)
            .arg("--tls-key")
            .arg(&files.client_key);
    }
}

/// One run: fresh nats-server, router, echo responder and raw echo, router-bench in
/// interleaved rounds.
/// The router's policies: the shipped ones, or their metered copies with `--quotas`.
fn router_policy_dir(args: &Args) -> PathBuf {
    if args.quotas {
        paths::perf_dir().join("policies_quota")
    } else {
        paths::project_root().join("config/policies")
    }
}

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
    let mut raw_echo = RawEcho::start(
        &bin.join("raw-echo"),
        &server,
        &run_dir.join(format!("raw_echo_{label}.log")),
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

/// The `raw-echo` binary as a child process, connected with the router's certificate (its
/// identity may subscribe below `beamline.`), replying with a copy of one of the router's
/// replies to the corpus (`--reply-like`); killed when dropped.
struct RawEcho {
    child: Child,
    log: PathBuf,
}

impl RawEcho {
    /// How long it may take to connect and subscribe.
    const READY_TIMEOUT: Duration = Duration::from_secs(15);

    /// Starts it against `server`, its stderr in `log`, and waits until it says it answers.
    fn start(binary: &Path, server: &NatsServer, log: &Path) -> anyhow::Result<RawEcho> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create the raw echo log {}", log.display()))?;
        let mut command = Command::new(binary);
        // Its reply is a copy of one of the router's (started before it) to the corpus.
        command
            .arg("--nats-url")
            .arg(server.client_url())
            .args(["--subject-prefix", RAW_ECHO_PREFIX])
            .args(["--reply-like", ROUTER_PREFIX]);
        if let Some(tls) = server.tls() {
            command.args(tls.router_tls_args());
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut raw_echo = RawEcho {
            child,
            log: log.to_path_buf(),
        };
        raw_echo.wait_ready()?;
        Ok(raw_echo)
    }

    /// Waits for its "answering" line; fails with its log when it exits or takes too long.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Self::READY_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains("raw-echo: answering") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("raw-echo exited ({status}) before answering; its log:\n{text}");
            }
            if Instant::now() > deadline {
                bail!(
                    "raw-echo did not subscribe within {:?}; its log:\n{text}",
                    Self::READY_TIMEOUT
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after `grace`.
    fn stop(&mut self, grace: Duration) {
        let _ = nats_harness::process::signal(self.child.id(), Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RawEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bench::environment::Environment;
    use bench::figures::BlockFigures;
    use bench::report::Measured;

    fn shipped() -> Vec<LoadedPolicy> {
        policy::load_all(&paths::perf_dir()).expect("the shipped policies")
    }

    /// A candidate at the shipped own baseline, one block per factor of `jitter` (every
    /// ratio of a block multiplied by it).
    fn candidate(jitter: &[f64]) -> Candidate {
        let own = &shipped()[1].baseline.metrics;
        let mut c = Candidate::new(Environment::default(), &Measured::default());
        c.rps = Some(40_000.0);
        c.latency_p95_ms = Some(2.0);
        c.latency_p99_ms = Some(3.0);
        c.mem_mb = Some(own["mem_mb"]);
        c.errors_total = Some(0);
        c.echo_errors_total = Some(0);
        c.backpressure_active_total = Some(0.0);
        let blocks: Vec<BlockFigures> = jitter
            .iter()
            .map(|j| BlockFigures {
                throughput: own["rps_ratio_to_echo"] * j,
                p50: own["latency_p50_ratio_to_echo"] * j,
                p99: own["latency_p99_ratio_to_echo"] * j,
                cpu_per_request: Some(own["cpu_per_request_ratio_to_echo"] * j),
                echo_aa: *j,
                throughput_to_raw_echo: None,
                p50_to_raw_echo: None,
                p99_to_raw_echo: None,
                cpu_per_request_to_raw_echo: None,
            })
            .collect();
        // Absorbing a copy that has the blocks computes the ratios from them.
        let mut with_blocks = c.clone();
        with_blocks.blocks = blocks;
        c.absorb(with_blocks)
    }

    const NOISY: [f64; 8] = [1.4, 0.6, 1.4, 0.6, 1.4, 0.6, 1.4, 0.6];
    const STEADY: [f64; 8] = [1.0; 8];

    #[test]
    fn a_noisy_run_is_pooled_with_more_until_it_can_be_judged() {
        let policies = shipped();
        assert_eq!(
            verdict::judge(&policies, &candidate(&NOISY)).outcome(),
            Outcome::TooNoisy
        );
        let mut asked = 0;
        let judged = pool_until_judged(&policies, candidate(&NOISY), 1, 4, |_| {
            asked += 1;
            Ok(candidate(&STEADY))
        })
        .expect("judged");
        assert_eq!(judged.report.outcome(), Outcome::Pass);
        assert!(judged.runs > 1 && judged.runs <= 4, "{}", judged.runs);
        assert_eq!(asked, judged.runs - 1);
        assert_eq!(judged.candidate.blocks.len(), 8 * judged.runs);
    }

    #[test]
    fn the_cap_ends_the_pooling_and_says_so() {
        let policies = shipped();
        let mut asked = 0;
        let judged = pool_until_judged(&policies, candidate(&NOISY), 1, 3, |_| {
            asked += 1;
            Ok(candidate(&NOISY))
        })
        .expect("judged");
        assert_eq!(judged.report.outcome(), Outcome::TooNoisy);
        assert_eq!((judged.runs, asked), (3, 2));
        assert!(!verdict::noisy_rows(&judged.report).is_empty());
    }

    #[test]
    fn a_verdict_needs_no_more_runs() {
        let policies = shipped();
        for first in [candidate(&STEADY), candidate(&[0.5; 8])] {
            let judged = pool_until_judged(&policies, first, 1, 4, |_| {
                anyhow::bail!("no second run is needed")
            })
            .expect("judged");
            assert_eq!(judged.runs, 1);
            assert_ne!(judged.report.outcome(), Outcome::TooNoisy);
        }
        // A failing extra run is an error, not a verdict.
        let failed = pool_until_judged(&policies, candidate(&NOISY), 1, 2, |_| {
            anyhow::bail!("nats-server did not start")
        });
        assert!(failed.is_err());
    }

    #[test]
    fn defaults_cap_at_four_runs() {
        let args = Args::defaults();
        assert_eq!((args.runs, args.max_runs, args.blocks), (1, 4, 8));
    }
}
