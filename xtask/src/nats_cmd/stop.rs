//! nats-stop: SIGTERM, wait, SIGKILL after a bound, then check the ports are free.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use nats_harness::process::{self, Signal};

use super::state::{Found, StateFiles};
use super::{holder, StopArgs, DEFAULT_MONITOR_PORT, DEFAULT_PORT};
use crate::paths;

const TERM_TIMEOUT: Duration = Duration::from_secs(10);
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
const PORT_RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs nats-stop.
pub fn run(args: StopArgs) -> anyhow::Result<ExitCode> {
    let artifacts = args.artifacts.resolve()?;
    let state = StateFiles::new(&artifacts);
    let record = state.read_record();
    let (pid, record) = match state.find()? {
        Found::Nothing => {
            println!(
                "nats-server is not running (no pid file {})",
                paths::display(&state.pid)
            );
            return Ok(ExitCode::SUCCESS);
        }
        Found::Stale(pid) => {
            state.remove()?;
            println!("nats-server is not running; removed the stale pid file (pid {pid})");
            return Ok(ExitCode::SUCCESS);
        }
        Found::Running(pid, found) => (pid, found.map(|r| *r).or(record)),
    };

    let started = Instant::now();
    process::signal(pid, Signal::SIGTERM)?;
    let mut how = "SIGTERM";
    if !process::wait_gone(pid, TERM_TIMEOUT) {
        eprintln!(
            "nats-server (pid {pid}) still running {} s after SIGTERM; sending SIGKILL",
            TERM_TIMEOUT.as_secs()
        );
        process::signal(pid, Signal::SIGKILL)?;
        how = "SIGKILL";
        if !process::wait_gone(pid, KILL_TIMEOUT) {
            eprintln!("error: nats-server (pid {pid}) survived SIGKILL; pid file left in place");
            return Ok(ExitCode::FAILURE);
        }
    }
    state.remove()?;
    println!(
        "stopped nats-server (pid {pid}) with {how} in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let ports = match &record {
        Some(r) => [r.port, r.monitor_port],
        None => [DEFAULT_PORT, DEFAULT_MONITOR_PORT],
    };
    let mut all_free = true;
    for port in ports {
        if wait_free(port) {
            println!("port {port} is free");
        } else {
            all_free = false;
            eprintln!(
                "error: {} after stopping nats-server",
                holder::busy_message(port)
            );
        }
    }
    Ok(if all_free {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn wait_free(port: u16) -> bool {
    let deadline = Instant::now() + PORT_RELEASE_TIMEOUT;
    loop {
        if holder::is_free(port) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
