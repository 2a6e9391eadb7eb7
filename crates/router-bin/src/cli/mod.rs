//! The command line of the `router` binary: its flags ([`Cli`], which also build the
//! service's [`Config`]) and the operator's subcommands, which ask a running router fleet
//! over NATS with the service's own configuration and certificates.
//!
//! - `router decide` sends one decide request and prints the reply;
//! - `router feedback` reports one provider outcome and prints what the routers did with it;
//! - `router status` lists every router of the fleet (micro service discovery);
//! - `router top` redraws that table every second, with decisions per second and the
//!   breakers that are not closed;
//! - `router quota` prints usage against each quota in its window, from the shared buckets;
//! - `router explain` prints one decision's record as a table, `router tail` follows the
//!   records as they are written.
//!
//! Exit codes: 0 an answer that says `ok` (or at least one router listed), 1 an error reply,
//! 2 nothing answered or no connection (with what to check).

mod ask;
mod commands;
mod flags;
mod fleet;
mod quota;
mod records;
mod top;

use std::process::ExitCode;

use crate::config::Config;

pub use commands::{
    Command, DecideArgs, ExplainArgs, FeedbackArgs, QuotaArgs, StatusArgs, TailArgs, TopArgs,
};
pub use flags::Cli;
pub use fleet::{fleet_stats, RouterStats};

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
        Command::Quota(args) => quota::run(&client, &args).await,
        Command::Explain(args) => records::explain(&client, config, &args).await,
        Command::Tail(args) => records::tail(&client, config, &args).await,
    }
}
