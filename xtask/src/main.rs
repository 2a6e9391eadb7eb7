//! Project commands, run as `cargo xtask <command>`.
//!
//! Each subcommand lives in its own module with an `Args` struct and a `run` function that
//! returns the process exit code. No routing logic lives here: xtask orchestrates processes
//! and files.

mod bench_cmd;
mod certs_cmd;
mod check_docs;
mod child;
mod ci;
mod cluster_cmd;
mod freeze_check;
mod gate_selftest;
mod heavy;
mod nats_cmd;
mod paths;
mod perf_gate;
mod policy_cmd;
mod scenario_cmd;
mod validate_tls;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Beamline Router project tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate (or keep) the CA, server and per-role client certificates under _artifacts/certs/.
    Certs(certs_cmd::Args),
    /// Start nats-server with JetStream (idempotent).
    NatsStart(nats_cmd::StartArgs),
    /// Show pid, ports, health and figures of the running nats-server.
    NatsStatus(nats_cmd::StatusArgs),
    /// Stop the nats-server started by nats-start.
    NatsStop(nats_cmd::StopArgs),
    /// Render the nats-server config again (tenants added or removed) and reload it.
    NatsReload(nats_cmd::ReloadArgs),
    /// Start a nats-server cluster with JetStream (and the router buckets) on loopback.
    ClusterStart(cluster_cmd::StartArgs),
    /// Show each cluster node: process, health, routes, JetStream meta leader.
    ClusterStatus(cluster_cmd::RecordArgs),
    /// Stop the cluster started by cluster-start.
    ClusterStop(cluster_cmd::RecordArgs),
    /// Policies in the JetStream bucket router_policies: put, get, list, delete, validate.
    Policy(policy_cmd::Args),
    /// Positive and negative mutual-TLS cases against a real server.
    ValidateTls(validate_tls::Args),
    /// NATS (TLS) + router + load: candidate JSON and Markdown summary.
    Bench(bench_cmd::Args),
    /// The weighted and adaptive strategies side by side while a simulated provider
    /// slows down, fails or rate-limits.
    Scenario(scenario_cmd::Args),
    /// Judge a candidate (or bench first) against the baselines under the policies.
    PerfGate(perf_gate::Args),
    /// Prove the perf gate fails a router made 25 % slower and passes the unchanged one.
    GateSelftest(gate_selftest::Args),
    /// Start NATS with TLS, run the integration suites against it, always stop it.
    Heavy(heavy::Args),
    /// Check that README.md and docs/ name only commands, paths and messages that exist.
    CheckDocs(check_docs::Args),
    /// Everything CI runs.
    Ci(ci::Args),
    /// Verify every freeze artifact exists, then run heavy, validate-tls and the perf gate.
    FreezeCheck(freeze_check::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Certs(args) => certs_cmd::run(args),
        Command::NatsStart(args) => nats_cmd::start(args),
        Command::NatsStatus(args) => nats_cmd::status(args),
        Command::NatsStop(args) => nats_cmd::stop(args),
        Command::NatsReload(args) => nats_cmd::reload(args),
        Command::ClusterStart(args) => cluster_cmd::start(args),
        Command::ClusterStatus(args) => cluster_cmd::status(args),
        Command::ClusterStop(args) => cluster_cmd::stop(args),
        Command::Policy(args) => policy_cmd::run(args),
        Command::ValidateTls(args) => validate_tls::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Scenario(args) => scenario_cmd::run(args),
        Command::PerfGate(args) => perf_gate::run(args),
        Command::GateSelftest(args) => gate_selftest::run(args),
        Command::Heavy(args) => heavy::run(args),
        Command::CheckDocs(args) => check_docs::run(args, parses),
        Command::Ci(args) => ci::run(args),
        Command::FreezeCheck(args) => freeze_check::run(args, parses),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask <args> --help` parses: the subcommand and its options exist. The error is
/// the parser's first line (`error: unrecognized subcommand …`). check-docs checks the
/// documents' commands with it, freeze-check those of its manifest.
fn parses(args: &[String]) -> Result<(), String> {
    let argv = std::iter::once("cargo xtask")
        .chain(args.iter().map(String::as_str))
        .chain(std::iter::once("--help"));
    match Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        // Help or version shown: everything before `--help` parsed.
        Err(err) if !err.use_stderr() => Ok(()),
        Err(err) => Err(err
            .to_string()
            .lines()
            .next()
            .unwrap_or("no message")
            .to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_xtask_command_parses() -> anyhow::Result<()> {
        let docs = docs_check::documents(&paths::project_root())?;
        let findings = docs_check::check_commands(&docs, parses);
        assert!(
            findings.checked >= docs_check::checks::MIN_FOUND,
            "{findings:?}"
        );
        assert!(
            findings.problems.is_empty(),
            "commands that do not parse, {} checked:\n{}",
            findings.checked,
            findings.problems.join("\n")
        );
        Ok(())
    }

    #[test]
    fn a_renamed_command_fails_to_parse() {
        let renamed = parses(&["heavy-renamed".to_owned()]);
        assert!(
            renamed
                .as_ref()
                .is_err_and(|why| why.contains("heavy-renamed")),
            "{renamed:?}"
        );
        let option = parses(&["heavy".to_owned(), "--no-such-option".to_owned()]);
        assert!(option.is_err(), "{option:?}");
        let args: Vec<String> = ["heavy", "--suite", "decide"].map(String::from).to_vec();
        assert_eq!(parses(&args), Ok(()));
        assert_eq!(parses(&[]), Ok(()));
    }
}
