//! `cargo xtask nats-start|nats-status|nats-reload|nats-stop`: a long-lived nats-server for
//! development.
//!
//! Files under the artifacts folder (`_artifacts/` or `--artifacts-dir`):
//! `nats.pid` (pid), `nats.json` (pid, ports, TLS, paths), `nats.conf` (the rendered
//! config), `nats_<timestamp>.log` (server output), `certs/` (with `--tls`).

mod holder;
mod reload;
mod start;
mod state;
mod status;
mod stop;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::paths::ArtifactsArg;

/// Default client port.
pub const DEFAULT_PORT: u16 = 4222;
/// Default monitoring port.
pub const DEFAULT_MONITOR_PORT: u16 = 8222;
/// Default JetStream store.
pub const DEFAULT_STORE_DIR: &str = "/tmp/nats-store";

/// Arguments of nats-start.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 running and healthy (started now or already), \
1 could not start (port in use, unhealthy, bad config; the log tail is printed)."
)]
pub struct StartArgs {
    /// Mutual TLS (`verify_and_map`: each certificate is a user with its role's permissions)
    /// with the certificates of `cargo xtask certs` (created if missing).
    #[arg(long)]
    pub tls: bool,
    /// Client port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// HTTP monitoring port (/healthz, /varz, /jsz).
    #[arg(long, default_value_t = DEFAULT_MONITOR_PORT)]
    pub monitor_port: u16,
    /// JetStream store directory.
    #[arg(long, default_value = DEFAULT_STORE_DIR, value_name = "DIR")]
    pub store_dir: PathBuf,
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// Arguments of nats-status.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 running and healthy, 1 not running, \
2 running but unhealthy (/healthz fails, a port is not listening \
or the NATS handshake fails).")]
pub struct StatusArgs {
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// Arguments of nats-reload.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the server reloads the new configuration, \
1 no server is running or nats-server refused the new configuration (it keeps the old one)."
)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// Arguments of nats-stop.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit codes: 0 stopped (or nothing was running), \
1 a port is still in use afterwards or the process could not be stopped.")]
pub struct StopArgs {
    #[command(flatten)]
    pub artifacts: ArtifactsArg,
}

/// Starts nats-server (idempotent).
pub fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    start::run(args)
}

/// Shows the server status.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    status::run(args)
}

/// Renders the configuration again and has the running server reload it.
pub fn reload(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    reload::run(args)
}

/// Stops the server.
pub fn stop(args: StopArgs) -> anyhow::Result<ExitCode> {
    stop::run(args)
}
