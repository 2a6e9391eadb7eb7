//! `router-scenario`: routing strategies compared end to end over NATS.
//!
//! Simulated callers decide through the router, "call" the provider of the decision (the
//! outcome is computed by [`model::Providers`], nothing sleeps), fail over along
//! `decision.fallbacks` when a call fails, and report every call on the feedback subject.
//! The `weighted` and `adaptive` policies of the tenant run side by side, with the same
//! providers, while one provider changes behaviour at `--change-at`.
//!
//! It needs a router serving the policies `<strategy>_<scenario>` of the tenant
//! (`config/scenarios/policies`; `cargo xtask scenario` sets everything up).

pub mod model;
pub mod summary;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::Client;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::nats_args::NatsArgs;
use model::{CallResult, Providers, Scenario};
use summary::Record;

/// The strategies compared, as named in the policy ids.
pub const STRATEGIES: [&str; 2] = ["weighted", "adaptive"];
/// Calls a caller makes at most for one request (the chosen provider and two of its plan).
const MAX_ATTEMPTS: usize = 3;
/// Decisions in flight at most, per strategy.
const MAX_IN_FLIGHT: usize = 256;

/// Options of `router-scenario`.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "router-scenario", version)]
pub struct Options {
    /// Where NATS is and the TLS files to reach it with.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Subject prefix of the router.
    #[arg(long, default_value = "beamline.router")]
    pub subject_prefix: String,
    /// Tenant whose `<strategy>_<scenario>` policies are played.
    #[arg(long, default_value = "sim")]
    pub tenant: String,
    /// Scenarios to play (repeatable; default: all, one after the other).
    #[arg(long, value_enum)]
    pub scenario: Vec<Scenario>,
    /// Length of one scenario.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// When the provider changes, from the start of the scenario.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub change_at: Duration,
    /// Decisions per second, per strategy.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Options {
    /// Checks the figures; the error says which option is wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1.0..=10_000.0).contains(&self.rate) {
            anyhow::bail!("--rate must be from 1 to 10000 decisions per second");
        }
        if self.change_at.is_zero() || self.change_at >= self.duration {
            anyhow::bail!("--change-at must fall inside --duration");
        }
        if self.duration > Duration::from_secs(3_600) {
            anyhow::bail!("--duration must be at most 1h");
        }
        Ok(())
    }

    fn scenarios(&self) -> Vec<Scenario> {
        if self.scenario.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            self.scenario.clone()
        }
    }
}

/// Plays every scenario; returns the summary table (Markdown).
pub async fn run(options: &Options) -> anyhow::Result<String> {
    let client = connect(options).await?;
    let scenarios = options.scenarios();
    let total = options.duration * scenarios.len() as u32;
    let progress = progress_bar(total, options.quiet);
    let mut summaries = Vec::new();
    for scenario in scenarios {
        progress.set_message(scenario.name());
        let providers = Providers {
            scenario,
            change_at: options.change_at,
        };
        let mut plays = Vec::new();
        for strategy in STRATEGIES {
            let policy_id = format!("{strategy}_{}", scenario.name());
            plays.push(tokio::spawn(play(
                client.clone(),
                options.clone(),
                providers,
                policy_id,
            )));
        }
        let started = Instant::now();
        while plays.iter().any(|p| !p.is_finished()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            progress.set_position(
                progress
                    .position()
                    .max((started.elapsed().as_secs_f64() * 10.0) as u64),
            );
        }
        for (strategy, play) in STRATEGIES.iter().zip(plays) {
            let records = play.await.context("a simulated caller stopped")??;
            summaries.push(summary::Summary::of(
                scenario,
                strategy,
                &records,
                options.change_at,
            ));
        }
        progress.set_position(progress.position().max(progress.length().unwrap_or(0)));
    }
    progress.finish_and_clear();
    client.flush().await.context("flushing the last feedback")?;
    Ok(summary::table(&summaries))
}

fn progress_bar(total: Duration, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new((total.as_secs_f64() * 10.0) as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {elapsed_precise} of the scenarios",
    ) {
        bar.set_style(style);
    }
    bar
}

async fn connect(options: &Options) -> anyhow::Result<Client> {
    let tls = options.nats.client_tls()?;
    let connect = async_nats::ConnectOptions::new()
        .name("router-scenario")
        .request_timeout(Some(Duration::from_secs(5)));
    router_bin::transport::nats::tls_options(connect, tls.as_ref())
        .connect(options.nats.nats_url.as_str())
        .await
        .with_context(|| {
            format!(
                "connecting to {}: is nats-server running there, with the router? \
                 (`cargo xtask scenario` starts both)",
                options.nats.nats_url
            )
        })
}

/// One strategy through one scenario: paced decisions, each followed by its calls.
async fn play(
    client: Client,
    options: Options,
    providers: Providers,
    policy_id: String,
) -> anyhow::Result<Vec<Record>> {
    let started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / options.rate);
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = Vec::new();
    let mut next = started;
    let mut index = 0u64;
    while started.elapsed() < options.duration {
        tokio::time::sleep_until(next).await;
        next += period;
        index += 1;
        let permit = limit.clone().acquire_owned().await?;
        let caller = Caller {
            client: client.clone(),
            decide: format!("{}.v1.decide", options.subject_prefix),
            feedback: format!("{}.v1.feedback", options.subject_prefix),
            tenant: options.tenant.clone(),
            policy_id: policy_id.clone(),
            providers,
        };
        let at = started.elapsed();
        tasks.push(tokio::spawn(async move {
            let record = caller.one(index, at).await;
            drop(permit);
            record
        }));
    }
    let mut records = Vec::with_capacity(tasks.len());
    for task in tasks {
        records.push(task.await.context("a simulated caller panicked")??);
    }
    Ok(records)
}

/// One simulated caller.
struct Caller {
    client: Client,
    decide: String,
    feedback: String,
    tenant: String,
    policy_id: String,
    providers: Providers,
}

impl Caller {
    /// Decides, calls along the plan until a call works, reports each call.
    async fn one(&self, index: u64, at: Duration) -> anyhow::Result<Record> {
        let body = json!({
            "version": "1",
            "request_id": format!("sim-{index}"),
            "tenant_id": self.tenant,
            "task": {"type": "text.generate", "payload": {"prompt": "hello"}},
            "constraints": {"policy_id": self.policy_id},
        });
        let reply = self
            .client
            .request(self.decide.clone(), body.to_string().into())
            .await
            .with_context(|| format!("no decision on {}: is the router running?", self.decide))?;
        let reply: Value = serde_json::from_slice(&reply.payload).context("a reply not JSON")?;
        let decision = &reply["decision"];
        let Some(first) = decision["provider_id"].as_str() else {
            return Ok(Record::refused(at));
        };
        let plan: Vec<&str> = std::iter::once(first)
            .chain(
                decision["fallbacks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            )
            .take(MAX_ATTEMPTS)
            .collect();
        let mut rng = SmallRng::seed_from_u64(index);
        let mut waited_ms = 0.0;
        let mut ok = false;
        for (attempt, provider) in plan.iter().enumerate() {
            let call = self.providers.call(provider, at, &mut rng);
            waited_ms += call.latency_ms;
            let mut report = json!({"tenant_id": self.tenant, "provider_id": provider,
                                    "latency_ms": call.latency_ms.round()});
            if attempt == 0 {
                report["decision_id"] = decision["decision_id"].clone();
            } else {
                report["policy_id"] = json!(self.policy_id);
            }
            match call.result {
                CallResult::Ok => report["outcome"] = json!("success"),
                CallResult::Failed => report["status"] = json!("5xx"),
                CallResult::RateLimited(seconds) => {
                    report["status"] = json!("rate_limited");
                    report["retry_after_s"] = json!(seconds);
                }
            }
            self.client
                .publish(self.feedback.clone(), report.to_string().into())
                .await
                .context("publishing feedback")?;
            if call.result == CallResult::Ok {
                ok = true;
                break;
            }
        }
        Ok(Record {
            at,
            first: Some(first.to_owned()),
            caller_latency_ms: waited_ms,
            ok,
        })
    }
}
