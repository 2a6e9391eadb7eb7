//! The operator's subcommands and their arguments.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Usage against each quota in its current window, fleet-wide (`quota_store = "kv"`).
    Quota(QuotaArgs),
    /// Why a decision went where it went: its record as a table (records on).
    Explain(ExplainArgs),
    /// Follow decisions live, one line each, from the decision records stream.
    Tail(TailArgs),
}

/// `router explain`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExplainArgs {
    /// The reply's `decision.decision_id`.
    pub decision_id: String,
    /// Print the record as stored (JSON) instead of the table.
    #[arg(long)]
    pub raw: bool,
}

/// `router tail`.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// Only this tenant's decisions.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only decisions that chose this provider.
    #[arg(long)]
    pub provider: Option<String>,
    /// Stop after this many decisions (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
}

/// `router quota`.
#[derive(Debug, Clone, clap::Args)]
pub struct QuotaArgs {
    /// Only this tenant's quotas.
    #[arg(long)]
    pub tenant: Option<String>,
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
