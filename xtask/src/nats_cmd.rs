//! `cargo xtask nats-start|nats-status|nats-stop` (not implemented yet).

use std::process::ExitCode;

/// Arguments of nats-start.
#[derive(Debug, clap::Args)]
pub struct StartArgs {}
/// Arguments of nats-status.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {}
/// Arguments of nats-stop.
#[derive(Debug, clap::Args)]
pub struct StopArgs {}

/// Starts nats-server.
pub fn start(_args: StartArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
/// Shows the server status.
pub fn status(_args: StatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
/// Stops the server.
pub fn stop(_args: StopArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
