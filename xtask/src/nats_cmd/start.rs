//! nats-start: render the config, launch nats-server detached, wait for `/healthz`.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use nats_harness::config::{self, ConfigValues, ServerTls};
use nats_harness::process::{self, Signal};
use nats_harness::{logs, monitor};

use super::state::{ClientFiles, Found, RunRecord, StateFiles};
use super::{holder, StartArgs};
use crate::paths;

const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_LINES_ON_FAILURE: usize = 20;

/// Runs nats-start.
pub fn run(args: StartArgs) -> anyhow::Result<ExitCode> {
    let artifacts = args.artifacts.resolve()?;
    let state = StateFiles::new(&artifacts);

    match state.find()? {
        Found::Running(pid, record) => return already_running(pid, record.as_deref(), &args),
        Found::Stale(pid) => {
            state.remove()?;
            println!(
                "removed stale pid file {} (pid {pid} is not running)",
                paths::display(&state.pid)
            );
        }
        Found::Nothing => {}
    }

    for port in [args.port, args.monitor_port] {
        if !holder::is_free(port) {
            eprintln!(
                "error: {}; stop it or choose another port with --port/--monitor-port",
                holder::busy_message(port)
            );
            return Ok(ExitCode::FAILURE);
        }
    }

    let binary = nats_harness::nats_server()?;
    let tls = if args.tls {
        let report = certs::ensure(
            &paths::certs_dir(&artifacts),
            &certs::EnsureOptions::default(),
        )
        .context("could not prepare the TLS certificates")?;
        let kept = if report.all_kept() { "kept" } else { "written" };
        println!(
            "certificates {kept} in {}",
            paths::display(&report.paths.dir)
        );
        Some(report.paths)
    } else {
        None
    };

    let store_dir = paths::absolute(&args.store_dir);
    fs::create_dir_all(&store_dir).with_context(|| {
        format!(
            "could not create the store directory {}",
            store_dir.display()
        )
    })?;
    let values = ConfigValues {
        host: "127.0.0.1".to_owned(),
        port: Some(args.port),
        monitor_port: Some(args.monitor_port),
        jetstream: true,
        store_dir: store_dir.clone(),
        tls: tls.as_ref().map(|p| ServerTls {
            ca_cert: p.ca_cert.clone(),
            server_cert: p.server_cert.clone(),
            server_key: p.server_key.clone(),
        }),
        extra: String::new(),
    };
    let config_path = artifacts.join("nats.conf");
    fs::write(&config_path, config::render(&values)?)
        .with_context(|| format!("could not write {}", config_path.display()))?;

    let started_at = paths::utc_stamp();
    let log_path = artifacts.join(format!("nats_{}.log", paths::file_stamp()));
    let mut child = spawn_detached(&binary.path, &config_path, &log_path)?;
    let scheme = if args.tls { "tls" } else { "nats" };
    let record = RunRecord {
        pid: child.id(),
        port: args.port,
        monitor_port: args.monitor_port,
        tls: args.tls,
        url: format!("{scheme}://127.0.0.1:{}", args.port),
        config: config_path,
        log: log_path.clone(),
        store_dir,
        binary: binary.path.clone(),
        version: binary.version.to_string(),
        client_tls: tls.as_ref().map(|p| ClientFiles {
            ca_cert: p.ca_cert.clone(),
            client_cert: p.client_cert.clone(),
            client_key: p.client_key.clone(),
        }),
        started_at,
    };
    state.write(&record)?;

    let health = monitor::wait_healthy(args.monitor_port, HEALTH_TIMEOUT, || {
        match child.try_wait() {
            Ok(Some(status)) => bail!("nats-server exited during start-up ({status})"),
            Ok(None) => Ok(()),
            Err(e) => Err(e).context("could not poll nats-server"),
        }
    });
    match health {
        Ok(body) => {
            println!(
                "nats-server {} started (pid {})",
                record.version, record.pid
            );
            println!("  url      {}", record.url);
            println!("  monitor  http://127.0.0.1:{}", record.monitor_port);
            println!("  config   {}", paths::display(&record.config));
            println!("  log      {}", paths::display(&record.log));
            println!("  store    {}", record.store_dir.display());
            println!("/healthz: {body}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            eprintln!("{}", logs::tail_for_error(&log_path, LOG_LINES_ON_FAILURE));
            stop_child(&mut child);
            state.remove()?;
            eprintln!(
                "stopped the nats-server this command started (pid {})",
                record.pid
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn already_running(
    pid: u32,
    record: Option<&RunRecord>,
    args: &StartArgs,
) -> anyhow::Result<ExitCode> {
    let Some(record) = record else {
        eprintln!(
            "error: nats-server (pid {pid}) is running but its record nats.json is missing; \
             run `cargo xtask nats-stop` and start again"
        );
        return Ok(ExitCode::FAILURE);
    };
    if record.tls != args.tls
        || record.port != args.port
        || record.monitor_port != args.monitor_port
    {
        eprintln!(
            "error: nats-server (pid {pid}) is already running with other settings ({} on port {}, \
             monitor {}); run `cargo xtask nats-stop` first",
            if record.tls { "TLS" } else { "plain" },
            record.port,
            record.monitor_port
        );
        return Ok(ExitCode::FAILURE);
    }
    match monitor::wait_healthy(record.monitor_port, HEALTH_TIMEOUT, || Ok(())) {
        Ok(body) => {
            println!("already running (pid {pid}) at {}", record.url);
            println!("/healthz: {body}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "error: nats-server (pid {pid}) is running but unhealthy: {e:#}\n{}\n\
                 run `cargo xtask nats-stop` and start again",
                logs::tail_for_error(&record.log, LOG_LINES_ON_FAILURE)
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Starts nats-server in its own process group (it outlives this command and is not hit
/// by a Ctrl-C aimed at it), with stdout and stderr appended to `log`.
fn spawn_detached(binary: &Path, config: &Path, log: &Path) -> anyhow::Result<Child> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("could not open the log {}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("could not reopen the log {}", log.display()))?;
    Command::new(binary)
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("could not start {}", binary.display()))
}

fn stop_child(child: &mut Child) {
    let pid = child.id();
    let _ = process::signal(pid, Signal::SIGTERM);
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
