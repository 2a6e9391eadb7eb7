//! nats-reload: render the config again from the templates (a tenant added to or removed
//! from `config/nats_tls.conf`, renewed certificates) and have the running nats-server reload
//! it (SIGHUP). Connections of a user no longer in the file are closed; their certificate is
//! refused from then on.

use std::fs;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use nats_harness::config::{self, ConfigValues, ServerTls};
use nats_harness::process::{self, Signal};

use super::state::{Found, StateFiles};
use super::ReloadArgs;
use crate::paths;

/// Runs nats-reload.
pub fn run(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let artifacts = args.artifacts.resolve()?;
    let state = StateFiles::new(&artifacts);
    let (pid, record) = match state.find()? {
        Found::Running(pid, Some(record)) => (pid, record),
        Found::Running(pid, None) => bail!(
            "nats-server (pid {pid}) has no run record {}; restart it with \
             `cargo xtask nats-stop && cargo xtask nats-start --tls`",
            paths::display(&state.record)
        ),
        Found::Stale(_) | Found::Nothing => {
            eprintln!(
                "error: no nats-server running; start it with `cargo xtask nats-start --tls`"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let tls = record.client_tls.as_ref().map(|files| {
        let set = certs::BundlePaths::new(files.ca_cert.parent().unwrap_or(&artifacts));
        ServerTls {
            ca_cert: set.ca_cert,
            server_cert: set.server_cert,
            server_key: set.server_key,
        }
    });
    let values = ConfigValues {
        host: "127.0.0.1".to_owned(),
        port: Some(record.port),
        monitor_port: Some(record.monitor_port),
        jetstream: true,
        store_dir: record.store_dir.clone(),
        tls,
        extra: String::new(),
    };
    let rendered = config::render(&values)?;
    let candidate = record.config.with_extension("conf.new");
    fs::write(&candidate, &rendered)
        .with_context(|| format!("could not write {}", candidate.display()))?;
    // nats-server checks the file first: a broken edit never reaches the running server.
    let check = Command::new(&record.binary)
        .arg("-t")
        .arg("-c")
        .arg(&candidate)
        .output()
        .with_context(|| format!("could not run {}", record.binary.display()))?;
    if !check.status.success() {
        let said = String::from_utf8_lossy(&check.stderr);
        let _ = fs::remove_file(&candidate);
        eprintln!(
            "error: the new configuration is refused, the server keeps the old one: {}",
            said.trim()
        );
        return Ok(ExitCode::FAILURE);
    }
    fs::rename(&candidate, &record.config)
        .with_context(|| format!("could not replace {}", record.config.display()))?;
    process::signal(pid, Signal::SIGHUP)?;
    let users = rendered
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("user:"))
        .count();
    println!(
        "nats-server (pid {pid}) reloads {} ({users} users)",
        paths::display(&record.config)
    );
    Ok(ExitCode::SUCCESS)
}
