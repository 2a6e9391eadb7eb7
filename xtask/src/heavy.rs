//! `cargo xtask heavy`: the integration suites of `router-bin` against one external
//! nats-server with mutual TLS.
//!
//! 1. Builds the suites (`cargo test -p router-bin --no-run --test …`).
//! 2. Starts nats-server with JetStream and mutual TLS on free ports through nats-harness
//!    (never 4222/8222, so a developer's `nats-start` is left alone), certificates in a
//!    temporary folder.
//! 3. Runs each suite — every file `crates/router-bin/tests/<name>.rs`, or those named by
//!    `--suite` — as `cargo test -p router-bin --test <name> -- --test-threads=1` with
//!    `NATS_URL`, `NATS_CA`, `NATS_CERT`, `NATS_KEY` and `NATS_MONITOR_PORT` naming that server.
//!    Tests share it one at a time: every router joins the same decide queue group. Tests
//!    that stop or restart NATS, or need another server configuration, start their own.
//! 4. Stops the server and checks that its pid is gone and its ports are free — after
//!    success, failure, or a signal (Ctrl-C, SIGTERM, SIGHUP stop the running `cargo test`
//!    with its process tree first).
//! 5. Prints the table suite / result / tests / duration. Everything goes to
//!    `_artifacts/heavy_<timestamp>.log`. With `--retries N` a failed suite runs again, up to
//!    N times; one that then passes shows as `flaky` and counts as passed.
//!
//! The hidden flag `--allow-unknown-suite` passes a name that is not a suite on to
//! `cargo test`, which then fails: the cleanup test uses it to make a suite fail on purpose.

mod cargo_run;
mod interrupt;
mod suites;
mod summary;

use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nats_harness::{process, NatsServer};

use crate::paths::{self, ArtifactsArg};
use cargo_run::Log;
use summary::{Row, Verdict};

/// Lines of a failing suite's output printed on the terminal (all of it is in the log).
const TAIL_LINES: usize = 40;

/// Arguments of `cargo xtask heavy`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 every suite passed, 1 a suite failed or the run could \
not be set up, 130 interrupted (Ctrl-C, SIGTERM, SIGHUP). nats-server is stopped in every case."
)]
pub struct Args {
    /// Run only this suite (repeatable): a file name in crates/router-bin/tests/ without `.rs`.
    #[arg(long, value_name = "NAME")]
    pub suite: Vec<String>,
    /// Run a failed suite again, up to N times; one that then passes counts as passed and
    /// shows as `flaky` in the table.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// List the suites and exit.
    #[arg(long)]
    pub list: bool,
    /// Let a `--suite` name that is not a suite through to `cargo test` (which then fails).
    #[arg(long, hide = true)]
    pub allow_unknown_suite: bool,
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = paths::project_root();
    let known = suites::discover(&root)?;
    if args.list {
        for name in &known {
            println!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let selected = suites::select(&known, &args.suite, args.allow_unknown_suite)?;
    interrupt::install()?;
    let log_path = args
        .artifacts
        .resolve()?
        .join(format!("heavy_{}.log", paths::file_stamp()));
    let mut log = Log::create(&log_path)?;
    println!("heavy: log {}", paths::display(&log_path));

    let (rows, stopped_clean) = run_suites(&root, &known, &selected, args.retries, &mut log);
    let table = summary::render(&rows);
    println!();
    print!("{table}");
    log.line("");
    log.line(&table);

    let flaky: Vec<&str> = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Flaky)
        .map(|r| r.suite.as_str())
        .collect();
    let passed = rows.iter().filter(|r| r.verdict.passed()).count();
    let flaky_note = if flaky.is_empty() {
        String::new()
    } else {
        format!(" ({} flaky: passed on a retry)", flaky.join(", "))
    };
    let line = format!(
        "heavy: {passed} of {} suites passed{flaky_note}; log {}",
        rows.len(),
        paths::display(&log_path)
    );
    log.line(&line);
    println!("{line}");
    Ok(if interrupt::interrupted() {
        ExitCode::from(interrupt::EXIT_INTERRUPTED)
    } else if passed == rows.len() && stopped_clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Builds, starts the server, runs every suite and stops the server; never returns early
/// while the server runs. Set-up failures are reported and leave the rows "not run". The
/// flag is false when the server could not be stopped cleanly.
fn run_suites(
    root: &Path,
    known: &[String],
    selected: &[String],
    retries: u32,
    log: &mut Log,
) -> (Vec<Row>, bool) {
    let mut rows: Vec<Row> = selected
        .iter()
        .map(|suite| Row {
            suite: suite.clone(),
            verdict: Verdict::NotRun,
            counts: None,
            elapsed: None,
        })
        .collect();
    if let Err(err) = build(root, known, selected, log) {
        report_error(log, &err);
        return (rows, true);
    }
    if interrupt::interrupted() {
        return (rows, true);
    }
    let mut server = match start_server(log) {
        Ok(server) => server,
        Err(err) => {
            report_error(log, &err);
            return (rows, true);
        }
    };
    let envs = server_env(&server);
    for row in &mut rows {
        if interrupt::interrupted() {
            break;
        }
        for attempt in 0..=retries {
            if attempt > 0 {
                println!("heavy: suite {}: retry {attempt} of {retries}", row.suite);
            }
            run_one(root, row, &envs, log);
            if row.verdict != Verdict::Failed || interrupt::interrupted() {
                break;
            }
        }
    }
    match stop_server(&mut server, log) {
        Ok(()) => (rows, true),
        Err(err) => {
            report_error(log, &err);
            (rows, false)
        }
    }
}

/// Compiles the selected suites that exist, so the durations measure tests, not builds.
fn build(root: &Path, known: &[String], selected: &[String], log: &mut Log) -> anyhow::Result<()> {
    let mut args = vec!["test", "-p", "router-bin", "--no-run"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    let mut any = false;
    for suite in selected.iter().filter(|s| known.contains(s)) {
        args.push("--test".into());
        args.push(suite.clone());
        any = true;
    }
    if !any {
        return Ok(());
    }
    println!("heavy: building the suites (cargo {})", args.join(" "));
    let finished = cargo_run::run(root, &args, &[], log)?;
    if interrupt::interrupted() {
        anyhow::bail!("interrupted while building");
    }
    if !finished.status.success() {
        anyhow::bail!(
            "the suites did not build ({}):\n{}\nfix the build, then run `cargo xtask heavy` again",
            finished.status,
            cargo_run::tail(&finished.output, TAIL_LINES)
        );
    }
    Ok(())
}

fn start_server(log: &mut Log) -> anyhow::Result<NatsServer> {
    let server = NatsServer::start_tls().context(
        "could not start nats-server with TLS; `cargo xtask nats-status` and the log above say more",
    )?;
    interrupt::set_server(server.pid());
    let line = format!(
        "heavy: nats-server pid {} on {} (monitor port {}), certificates in {}",
        server.pid().unwrap_or(0),
        server.client_url(),
        server.monitor_port(),
        server
            .dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
    println!("{line}");
    log.line(&line);
    Ok(server)
}

/// The environment that points a suite at `server` (see `NatsServer::external_from_env`).
fn server_env(server: &NatsServer) -> Vec<(&'static str, String)> {
    let mut envs = vec![
        ("NATS_URL", server.client_url()),
        ("NATS_MONITOR_PORT", server.monitor_port().to_string()),
    ];
    if let Some(tls) = server.tls() {
        envs.push(("NATS_CA", tls.ca_cert.display().to_string()));
        envs.push(("NATS_CERT", tls.client_cert.display().to_string()));
        envs.push(("NATS_KEY", tls.client_key.display().to_string()));
    }
    envs
}

fn run_one(root: &Path, row: &mut Row, envs: &[(&str, String)], log: &mut Log) {
    let args: Vec<String> = [
        "test",
        "-p",
        "router-bin",
        "--test",
        &row.suite,
        "--",
        "--test-threads=1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    println!("heavy: suite {}: cargo {}", row.suite, args.join(" "));
    let retried = row.verdict == Verdict::Failed;
    match cargo_run::run(root, &args, envs, log) {
        Ok(finished) => {
            let before = row.elapsed.unwrap_or_default();
            row.elapsed = Some(before + finished.elapsed);
            row.counts = cargo_run::counts(&finished.output);
            row.verdict = if interrupt::interrupted() {
                Verdict::Interrupted
            } else if finished.status.success() && retried {
                Verdict::Flaky
            } else if finished.status.success() {
                Verdict::Passed
            } else {
                Verdict::Failed
            };
            let verdict = format!(
                "heavy: suite {}: {} in {:.1}s",
                row.suite,
                row.verdict.label(),
                finished.elapsed.as_secs_f64()
            );
            println!("{verdict}");
            log.line(&verdict);
            if row.verdict == Verdict::Failed {
                println!("{}", cargo_run::tail(&finished.output, TAIL_LINES));
            }
        }
        Err(err) => {
            row.verdict = Verdict::Failed;
            report_error(log, &err);
        }
    }
}

/// Stops the server and checks that its process and ports are gone.
fn stop_server(server: &mut NatsServer, log: &mut Log) -> anyhow::Result<()> {
    let pid = server.pid();
    let ports = [server.port(), server.monitor_port()];
    server
        .stop()
        .context("could not stop nats-server; kill it by its pid (printed above)")?;
    interrupt::set_server(None);
    if let Some(pid) = pid {
        if process::is_alive(pid) {
            anyhow::bail!("nats-server (pid {pid}) is still running after the stop; kill it");
        }
    }
    for port in ports {
        if !port_is_free(port) {
            anyhow::bail!("port {port} is still in use after nats-server stopped; see `ss -ltnp`");
        }
    }
    let line = format!(
        "heavy: nats-server pid {} stopped; ports {} and {} are free",
        pid.unwrap_or(0),
        ports[0],
        ports[1]
    );
    println!("{line}");
    log.line(&line);
    Ok(())
}

/// True when nothing listens on `port` (retried briefly: a socket may linger for a moment).
fn port_is_free(port: u16) -> bool {
    for _ in 0..20 {
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn report_error(log: &mut Log, err: &anyhow::Error) {
    let line = format!("heavy: error: {err:#}");
    eprintln!("{line}");
    log.line(&line);
}
