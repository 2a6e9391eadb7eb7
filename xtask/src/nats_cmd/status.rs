//! nats-status: pid, ports, `/healthz`, figures from `/varz` and `/jsz`, log tail.

use std::process::ExitCode;
use std::time::Duration;

use nats_harness::probe::{self, ClientTls};
use nats_harness::{logs, monitor};
use serde_json::Value;

use super::state::{Found, RunRecord, StateFiles};
use super::{holder, StatusArgs};
use crate::paths;

const TIMEOUT: Duration = Duration::from_secs(2);
const LOG_LINES: usize = 10;

/// Exit code: running but unhealthy.
const UNHEALTHY: u8 = 2;

/// Runs nats-status.
pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let artifacts = args.artifacts.resolve()?;
    let state = StateFiles::new(&artifacts);
    let (pid, record) = match state.find()? {
        Found::Nothing => {
            println!(
                "nats-server: not running (no pid file {})",
                paths::display(&state.pid)
            );
            return Ok(ExitCode::FAILURE);
        }
        Found::Stale(pid) => {
            println!(
                "nats-server: not running (stale pid file {} names pid {pid}; \
                 nats-start or nats-stop will remove it)",
                paths::display(&state.pid)
            );
            return Ok(ExitCode::FAILURE);
        }
        Found::Running(pid, Some(record)) => (pid, *record),
        Found::Running(pid, None) => {
            println!(
                "nats-server: running (pid {pid}) but {} is missing: ports unknown",
                paths::display(&state.record)
            );
            return Ok(ExitCode::from(UNHEALTHY));
        }
    };

    println!(
        "nats-server {} running (pid {pid}) since {}",
        record.version, record.started_at
    );
    println!("  url      {}", record.url);
    println!("  config   {}", paths::display(&record.config));
    println!("  log      {}", paths::display(&record.log));
    let mut healthy = true;
    for (what, port) in [("client", record.port), ("monitor", record.monitor_port)] {
        let (ok, word) = match holder::owner_pid(port) {
            Some(owner) if owner == pid => (true, "listening".to_owned()),
            Some(_) => (false, holder::busy_message(port)),
            None if !holder::is_free(port) => (true, "listening".to_owned()),
            None => (false, "NOT listening".to_owned()),
        };
        healthy &= ok;
        println!("  port     {port} ({what}) {word}");
    }
    healthy &= print_handshake(&record);

    match monitor::healthz(record.monitor_port, TIMEOUT) {
        Ok(body) => println!("/healthz: {body}"),
        Err(e) => {
            healthy = false;
            println!("/healthz: FAILED: {e:#}");
        }
    }
    print_varz(&record);
    print_jsz(&record);

    println!("last {LOG_LINES} log lines:");
    for line in logs::tail(&record.log, LOG_LINES) {
        println!("  {line}");
    }
    if healthy {
        println!("status: healthy");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("status: UNHEALTHY (run `cargo xtask nats-stop` then `cargo xtask nats-start`)");
        Ok(ExitCode::from(UNHEALTHY))
    }
}

/// A NATS CONNECT/PING/PONG, over mutual TLS with the recorded client certificate.
fn print_handshake(record: &RunRecord) -> bool {
    let tls = record.client_tls.as_ref().map(|files| ClientTls {
        ca_cert: files.ca_cert.clone(),
        client: Some((files.client_cert.clone(), files.client_key.clone())),
        server_name: None,
    });
    let kind = if tls.is_some() {
        "mutual TLS handshake + PING"
    } else {
        "PING"
    };
    match probe::ping("127.0.0.1", record.port, tls.as_ref(), TIMEOUT) {
        Ok(_) => {
            println!("  client   {kind}: ok");
            true
        }
        Err(e) => {
            println!("  client   {kind}: FAILED: {e:#}");
            false
        }
    }
}

fn print_varz(record: &RunRecord) {
    let varz = match monitor::get_json(record.monitor_port, "/varz", TIMEOUT) {
        Ok(varz) => varz,
        Err(e) => return println!("/varz: unavailable: {e:#}"),
    };
    println!("/varz:");
    for key in ["version", "uptime", "connections", "total_connections"] {
        println!("  {key:<18} {}", show(&varz[key]));
    }
    for key in [
        "in_msgs",
        "out_msgs",
        "in_bytes",
        "out_bytes",
        "slow_consumers",
    ] {
        println!("  {key:<18} {}", show(&varz[key]));
    }
    let mem = varz["mem"].as_u64().map_or_else(
        || "?".to_owned(),
        |bytes| format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
    );
    println!("  {:<18} {mem}", "mem");
    println!("  {:<18} {}", "tls_required", show(&varz["tls_required"]));
    println!("  {:<18} {}", "tls_verify", show(&varz["tls_verify"]));
}

fn print_jsz(record: &RunRecord) {
    let jsz = match monitor::get_json(record.monitor_port, "/jsz", TIMEOUT) {
        Ok(jsz) => jsz,
        Err(e) => return println!("/jsz: unavailable: {e:#}"),
    };
    if jsz["disabled"] == true {
        return println!("/jsz: JetStream disabled");
    }
    let figures: Vec<String> = [
        "streams",
        "consumers",
        "messages",
        "bytes",
        "memory",
        "storage",
    ]
    .iter()
    .map(|key| format!("{key} {}", show(&jsz[*key])))
    .collect();
    println!("/jsz: {}", figures.join(", "));
}

fn show(value: &Value) -> String {
    match value {
        Value::Null => "?".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
