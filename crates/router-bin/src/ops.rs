//! The operator's subcommands of the `router` binary: ask a running router fleet over NATS
//! with the service's own configuration and certificates.
//!
//! - `router decide` sends one decide request and prints the reply;
//! - `router feedback` reports one provider outcome and prints what the routers did with it;
//! - `router status` lists every router of the fleet (micro service discovery);
//! - `router top` redraws that table every second, with decisions per second and the
//!   breakers that are not closed.
//!
//! Exit codes: 0 an answer that says `ok` (or at least one router listed), 1 an error reply,
//! 2 nothing answered or no connection (with what to check).

mod ask;
mod fleet;
mod top;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Config;

pub use fleet::{fleet_stats, RouterStats};

/// A client subcommand.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Send one decide request and print the reply (exit 0 ok, 1 error reply, 2 no answer).
    Decide(DecideArgs),
    /// Report one provider outcome and print the routers' answer.
    Feedback(FeedbackArgs),
    /// List every router of the fleet: id, version, uptime, decisions, errors, backpressure.
    Status(StatusArgs),
    /// The status table redrawn every second, with decisions/s and breakers not closed.
    Top(TopArgs),
}

/// `router decide`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecideArgs {
    /// Tenant (default: the tenant of a tenant's certificate).
    #[arg(long)]
    pub tenant: Option<String>,
    /// User id, sent as `constraints.user_id` (the sticky key of the shipped policies).
    #[arg(long)]
    pub user: Option<String>,
    /// Policy id (default: `default`).
    #[arg(long)]
    pub policy: Option<String>,
    /// Send this request body instead (a file, or `-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Print the reply as received, on one line.
    #[arg(long)]
    pub raw: bool,
    /// How long to wait for the reply.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `router feedback`.
#[derive(Debug, Clone, clap::Args)]
pub struct FeedbackArgs {
    /// Tenant (default: the tenant of a tenant's certificate).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Provider the outcome is about.
    #[arg(long)]
    pub provider: String,
    /// `success` or `failure`.
    #[arg(long)]
    pub outcome: String,
    /// End-to-end latency of the call, milliseconds.
    #[arg(long)]
    pub latency_ms: Option<f64>,
    /// Policy the call was decided under.
    #[arg(long)]
    pub policy: Option<String>,
    /// The `decision_id` of the reply the call followed.
    #[arg(long)]
    pub decision_id: Option<String>,
    /// How long to wait for the answer.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `router status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// How long to collect answers from the fleet.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `router top`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    /// Time between two screens.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Stop after this many screens (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
}

/// Runs a client subcommand with `config`'s connection settings.
pub async fn run(command: Command, config: &Config) -> ExitCode {
    let client = match ask::connect(config).await {
        Ok(client) => client,
        Err(err) => {
            eprintln!("router: {err:#}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Decide(args) => ask::decide(&client, config, &args).await,
        Command::Feedback(args) => ask::feedback(&client, config, &args).await,
        Command::Status(args) => fleet::status(&client, &args).await,
        Command::Top(args) => top::run(&client, &args).await,
    }
}
